"""Episodes waiting for a person: the queue, a decision, and the show's timeout policy."""

from __future__ import annotations

import time
from typing import Any

from castline.config import Show
from castline.engine import runtime
from castline.engine.episodes import EventCallback, Outcome, follow
from castline.errors import RunNotResumable
from castline.store import RunRecord


def pending_reviews() -> list[dict[str, Any]]:
    """Episodes waiting for a person, oldest first, with what the evaluators disagreed on."""
    store = runtime.store()
    waiting = []
    for review in store.pending_reviews():
        record = store.get_run(review["run_id"])
        waiting.append({**review, "record": record})
    return waiting


def review_of(run_id: str) -> dict[str, Any]:
    store = runtime.store()
    record = store.get_run(run_id)
    review = store.review(record.id)
    if review is None:
        raise RunNotResumable(f"run {record.id} never asked for a review", run_id=record.id)
    return {**review, "record": record}


def decide(
    run_id: str,
    status: str,
    *,
    note: str | None = None,
    script: dict[str, Any] | None = None,
    on_event: EventCallback | None = None,
) -> Outcome:
    """Record a person's decision and continue the episode from its review gate."""
    from castline.engine import workflows

    store = runtime.store()
    review = review_of(run_id)
    record = review["record"]
    if review["status"] != "pending":
        raise RunNotResumable(
            f"run {record.id} was already {review['status']} on review", run_id=record.id
        )
    store.decide_review(record.id, review["round"], status, note=note, script=script)
    store.add_event(record.id, "review-decided", f"a person {status} the episode: {note or ''}")
    runtime.launch()
    assert record.workflow_id is not None
    store.update_run(record.id, status="running")  # before it can end again
    handle = workflows.continue_after_review(record.workflow_id)
    store.claim_run(record.id)
    store.update_run(record.id, workflow_id=handle.workflow_id)
    return follow(record.id, handle, on_event)


def apply_review_timeouts(now: float | None = None) -> list[tuple[str, str]]:
    """Decide, by each show's policy, the reviews nobody answered in time."""
    decided = []
    moment = time.time() if now is None else now
    for review in pending_reviews():
        record: RunRecord = review["record"]
        quality = Show.model_validate(record.spec["show"]).quality
        if moment - review["requested_at"] < quality.review_timeout_hours * 3600:
            continue
        status = "approved" if quality.on_timeout == "approve" else "rejected"
        note = f"nobody answered within {quality.review_timeout_hours:g} hours"
        decide(record.id, status, note=note)
        decided.append((record.id, status))
    return decided

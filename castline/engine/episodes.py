"""Producing, queueing and resuming episodes, and following a run to its end."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from castline.budget.ledger import Ledger
from castline.budget.prices import Pricer
from castline.config import Show, load_show, roles_reached, show_key
from castline.engine import runtime
from castline.engine.inspection import owner_alive, owner_beating
from castline.engine.preflight import NUMBER_RELEASED_BY, create_run
from castline.errors import (
    NothingToCite,
    ProviderError,
    RunError,
    RunNotResumable,
    StageFailed,
)
from castline.llm.registry import plan_routing
from castline.store import EventRecord, RunRecord

if TYPE_CHECKING:
    from castline.engine.runner import RunResult

# DBOS and the workflows are imported where a run starts, so that commands that only read the
# store start fast.

EventCallback = Callable[[EventRecord], None]


@dataclass(frozen=True)
class Outcome:
    """How a run ended."""

    run_id: str
    status: str
    output_dir: Path | None
    cost: Decimal
    offline: bool
    words: int
    blocking: list[str]
    budget: Decimal
    budget_mode: str
    halted_at: str | None = None
    skipped: list[str] = field(default_factory=list)
    number: int | None = None


def produce(
    show_path: Path,
    topic: str,
    source_paths: Sequence[Path | str],
    *,
    provider: str | None = None,
    number: int | None = None,
    on_event: EventCallback | None = None,
    allow_private_urls: bool = False,
) -> Outcome:
    """Produce one episode end to end; see `create_run` for what is checked before spending."""
    from castline.engine import workflows

    run_id = create_run(
        show_path,
        topic,
        source_paths,
        provider=provider,
        number=number,
        allow_private_urls=allow_private_urls,
    )
    runtime.launch()
    return follow(run_id, workflows.start(run_id), on_event)


def enqueue(
    show_path: Path,
    topic: str,
    source_paths: Sequence[Path | str],
    *,
    provider: str | None = None,
    number: int | None = None,
    allow_private_urls: bool = False,
) -> str:
    """Check every input, record the run and put it on the episode queue for `castline
    worker`; return its id. Nothing is spent until a worker takes it."""
    from castline.engine import queue

    run_id = create_run(
        show_path,
        topic,
        source_paths,
        provider=provider,
        number=number,
        queued=True,
        allow_private_urls=allow_private_urls,
    )
    queue.enqueue_run(run_id)
    return run_id


def resume(run_id: str, *, on_event: EventCallback | None = None, force: bool = False) -> Outcome:
    """Finish a run that crashed, was interrupted or failed, without repeating completed steps."""
    from castline.engine import recovery, workflows

    store = runtime.store()
    record = store.get_run(run_id)
    if record.spec.get("check"):
        raise RunNotResumable(
            f"run {record.id} is a `castline check`, not an episode: run the check again",
            run_id=record.id,
        )
    if record.status == "awaiting-review":
        raise RunNotResumable(
            f"run {record.id} is waiting for a person: `castline review show {record.id}`, then "
            "`castline review approve` or `reject` continues it",
            run_id=record.id,
        )
    if record.status in {"completed", "rejected", "halted"}:
        raise RunNotResumable(
            f"run {record.id} already finished ({record.status}); its episode is in "
            f"{record.output_dir}",
            run_id=record.id,
        )
    beating = owner_beating(record) if force else None
    if beating is not None:
        raise RunNotResumable(
            f"run {record.id} is being run by {beating.describe()}, which is alive (its "
            f"heartbeat is {time.time() - beating.heartbeat_at:.0f} s old); two processes "
            "running one episode would pay for its calls twice. Stop it first (or wait for "
            "it); --force only takes over from a process that merely looks alive",
            run_id=record.id,
        )
    if not force and owner_alive(record):
        raise RunNotResumable(
            f"run {record.id} is being run by process {record.pid} on {record.host}; wait for "
            "it, or stop that process first (or pass --force if it is gone)",
            run_id=record.id,
        )
    runtime.launch()
    assert record.workflow_id is not None
    found = recovery.stuck(recovery.tree(record.workflow_id))
    if found.elsewhere and not force:
        where = ", ".join(
            owner.describe() if owner else executor for executor, owner in found.elsewhere.items()
        )
        raise RunNotResumable(
            f"run {record.id} is still running in {where}; wait for it, or stop that process "
            "first (or pass --force if it is gone)",
            run_id=record.id,
        )
    if not store.take_over(record):
        raise RunNotResumable(
            f"run {record.id} is being resumed by another process right now", run_id=record.id
        )
    if record.number is not None and record.status == "failed":
        show = Show.model_validate(record.spec["show"])
        other = store.reopen_numbered_run(
            record.id, show_key(show), record.number, NUMBER_RELEASED_BY
        )
        if other is not None:
            raise RunNotResumable(
                f"run {record.id}'s episode number {record.number} was given to run {other.id} "
                f"({other.status}) after this one failed; resuming would publish two episodes "
                "with one number. Produce this topic again instead.",
                run_id=record.id,
            )
    reroute(record)
    unreconciled = Ledger(store).mark_unreconciled(record.id)
    store.update_run(record.id, status="running", error=None)  # before it can end again
    handle = workflows.resume(record.workflow_id)
    # the fan-outs the dead process had started (research questions, judges, clip shares)
    # go back to a queue: the resumed parent would otherwise wait on them forever
    taken_over = set(found.elsewhere) if force else set()
    recovered = recovery.recover(found.dead_executors | taken_over)
    store.claim_run(record.id)
    store.update_run(record.id, workflow_id=handle.workflow_id)
    store.add_event(
        record.id,
        "resumed",
        f"resumed by process {os.getpid()} (was {record.status} in stage {record.stage}); "
        f"{unreconciled} call(s) in flight at the crash counted at their reservation as "
        "unreconciled",
        data={
            "workflow_id": handle.workflow_id,
            "unreconciled": unreconciled,
            "recovered": recovered,
        },
    )
    return follow(record.id, handle, on_event)


# How the show reaches its models; a resume takes these up from the show bible as it is now,
# so that "fix the routing, then resume" works. What the episode says (hosts, rules, budget,
# length) stays as the run started.
REACHING_KEYS = ("routing", "providers", "prices", "retries")


def reroute(record: RunRecord) -> None:
    """Give a resumed run the show bible's current routing, providers, prices and retries,
    checked as a new run's would be; a run keeps being offline or live as it started."""
    from dataclasses import asdict

    path = Path(record.show_path)
    if not path.exists():
        return
    current = load_show(path)
    started = Show.model_validate(record.spec["show"])
    if all(getattr(current, key) == getattr(started, key) for key in REACHING_KEYS):
        return
    updated = started.model_copy(update={key: getattr(current, key) for key in REACHING_KEYS})
    routing = plan_routing(updated, record.spec.get("provider"), needed=roles_reached(updated))
    store = runtime.store()
    if routing.offline != record.offline:
        store.add_event(
            record.id,
            "decision",
            f"{path} now routes the run {'offline' if routing.offline else 'live'}; it started "
            f"{'offline' if record.offline else 'live'} and keeps its routing",
        )
        return
    pricer = Pricer(updated.prices)
    for chain in routing.routes.values():
        for route in chain:
            pricer.check(route.priced_as)
    store.update_run(
        record.id,
        routing_reason=routing.reason,
        spec={
            **record.spec,
            "show": updated.model_dump(mode="json"),
            "routing": {role: [asdict(r) for r in chain] for role, chain in routing.routes.items()},
        },
    )
    runtime.forget(record.id)
    store.add_event(
        record.id,
        "rerouted",
        f"the run takes up {path}'s current routing: {routing.reason}",
        data={
            "routing": {role: [r.label for r in chain] for role, chain in routing.routes.items()}
        },
    )


def follow(run_id: str, handle: Any, on_event: EventCallback | None = None) -> Outcome:
    """Wait for the workflow while relaying new audit events, and return how the run ended.

    While it waits it watches the run's workflows: any part of it left by a process that died
    meanwhile (a worker running a fan-out, say) is recovered, so a wait never hangs silently.
    """
    from castline.engine import workflows

    store = runtime.store()
    box: dict[str, Any] = {}

    def wait() -> None:
        try:
            box["result"] = handle.get_result()
        except BaseException as exc:  # relayed to the caller below
            box["error"] = exc

    waiter = threading.Thread(target=wait, name=f"castline-wait-{run_id}", daemon=True)
    waiter.start()
    seen = 0
    watched = time.monotonic()
    while True:
        done = not waiter.is_alive()
        for event in store.events(run_id, after=seen):
            seen = event.id
            if on_event is not None:
                on_event(event)
        if done:
            break
        if time.monotonic() - watched > WATCH_S:
            watched = time.monotonic()
            _recover_orphans(run_id, handle.workflow_id)
        waiter.join(timeout=0.05)
    if "error" in box:
        error = box["error"]
        message = f"{type(error).__name__}: {error}"
        if store.get_run(run_id).status == "running":  # the workflow could not record it
            workflows.record_failure(run_id, message)
        record = store.get_run(run_id)
        if isinstance(error, (StageFailed, NothingToCite)):
            raise error  # already says where and how to continue, or why it cannot
        if isinstance(error, (ProviderError, RunError)) or not isinstance(error, Exception):
            raise StageFailed(record.stage or "unknown", run_id, str(error)) from error
        raise StageFailed(record.stage or "unknown", run_id, message) from error
    return outcome(run_id, box["result"])


# How often a waiting process looks for parts of its run left by a process that died.
WATCH_S = 2.0


def _recover_orphans(run_id: str, workflow_id: str) -> None:
    from castline.engine import recovery

    found = recovery.stuck(recovery.tree(workflow_id))
    recovered = recovery.recover(found.dead_executors)
    if recovered:
        runtime.store().add_event(
            run_id,
            "recovered",
            f"{len(recovered)} workflow(s) of a process that is gone taken over: "
            + ", ".join(recovered),
            data={"workflows": recovered, "executors": sorted(found.dead_executors)},
        )


def outcome(run_id: str, result: RunResult) -> Outcome:
    """The outcome of a run whose workflow returned `result` (recorded in the store by it)."""
    store = runtime.store()
    record = store.get_run(run_id)
    return Outcome(
        run_id=run_id,
        status=result.status,
        output_dir=Path(result.output_dir) if result.output_dir else None,
        cost=store.run_cost(run_id),
        offline=record.offline,
        words=result.words,
        blocking=result.blocking,
        budget=record.budget or Decimal(0),
        budget_mode=record.budget_mode,
        halted_at=result.halted_at,
        skipped=result.skipped,
        number=record.number,
    )

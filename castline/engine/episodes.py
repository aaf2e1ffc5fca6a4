"""The public API: produce an episode, resume a run, and follow its progress.

Everything that can be checked before money is spent is checked here, in this order: episode
number, topic, show bible, sources, routing (keys and provider names), prices. Only then is a run
created, with its episode number.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from castline.audio import costs, master
from castline.audio.tts import Voicing, plan_voicing
from castline.budget.ledger import Ledger
from castline.budget.prices import Pricer
from castline.budget.report import CostReport, cost_report
from castline.config import Show, load_show, roles_reached, show_key
from castline.domain import Episode, Script, Source
from castline.engine import runtime
from castline.errors import (
    ConfigError,
    EpisodeNumberTaken,
    ProviderError,
    RunError,
    RunNotResumable,
    StageFailed,
)
from castline.llm.registry import Routing, plan_routing
from castline.sources import read_sources
from castline.store import (
    ArtifactRecord,
    CallRecord,
    EventRecord,
    NumberedRun,
    RunRecord,
    Store,
    to_nanos,
)

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
    source_paths: Sequence[Path],
    *,
    provider: str | None = None,
    number: int | None = None,
    on_event: EventCallback | None = None,
) -> Outcome:
    """Produce one episode end to end; see `create_run` for what is checked before spending."""
    from castline.engine import workflows

    run_id = create_run(show_path, topic, source_paths, provider=provider, number=number)
    runtime.launch()
    return follow(run_id, workflows.start(run_id), on_event)


@dataclass(frozen=True)
class Prepared:
    """A run's inputs, validated: everything checked before any money is spent."""

    show_path: Path
    show: Show
    topic: str
    sources: list[Source]
    routing: Routing
    provider: str | None
    read_ms: float
    number: int | None = None  # the episode number asked for; None: the show's next
    voicing: Voicing | None = None  # None when the show publishes the script only


def prepare(
    show_path: Path,
    topic: str,
    source_paths: Sequence[Path],
    *,
    provider: str | None = None,
    number: int | None = None,
) -> Prepared:
    """Check, in this order, the episode number, the topic, the show bible, the sources, the
    routing (provider names and keys) and the prices of every routed model."""
    if number is not None and number < 1:
        raise ConfigError(f"--number {number}: episode numbers start at 1")
    topic = " ".join(topic.split())
    if not topic:
        raise ConfigError("the topic is empty; pass --topic with what the episode is about")
    show_path = Path(show_path)
    show = load_show(show_path)
    if not source_paths:
        raise ConfigError("no sources given; pass at least one --source FILE (text, md, html, pdf)")
    started = time.perf_counter()
    sources = read_sources([Path(p) for p in source_paths])
    read_ms = (time.perf_counter() - started) * 1000
    routing = plan_routing(show, provider, needed=roles_reached(show))
    pricer = Pricer(show.prices)
    for chain in routing.routes.values():
        for route in chain:
            pricer.check(route.priced_as)
    voicing = (
        plan_voicing(show, show_path.parent, offline=routing.offline, paid=provider != "offline")
        if show.audio.voice
        else None
    )
    if voicing is not None:
        costs.check(pricer, voicing)
        master.check_music(show.audio, show_path.parent)
    return Prepared(show_path, show, topic, sources, routing, provider, read_ms, number, voicing)


# Runs that ended without publishing an episode to the feed: their number may be given again.
NUMBER_RELEASED_BY = frozenset({"failed", "rejected", "halted"})


def episode_number(numbered: list[NumberedRun], requested: int | None) -> int:
    """The number a new episode of the show gets: `requested` unless a run that may still
    publish holds it, else one more than the highest any of the show's runs holds (failed ones
    too, so that resuming one never duplicates a number given out after it)."""
    if requested is None:
        return 1 + max((run.number for run in numbered), default=0)
    for run in numbered:
        if run.number == requested and run.status not in NUMBER_RELEASED_BY:
            raise EpisodeNumberTaken(requested, run.id, run.status)
    return requested


def record_run(
    store: Store,
    prepared: Prepared,
    run_id: str,
    output_dir: Path,
    *,
    status: str = "running",
    group: str | None = None,
) -> int:
    """Record a run with a snapshot of its inputs, so that a resume sees exactly these, and its
    episode number, fixed now; return the number."""
    show, routing = prepared.show, prepared.routing
    number = store.create_numbered_run(
        show_key(show),
        lambda numbered: episode_number(numbered, prepared.number),
        id=run_id,
        show_title=show.show.title,
        show_path=str(prepared.show_path.resolve()),
        topic=prepared.topic,
        status=status,
        stage="research",
        offline=routing.offline,
        routing_reason=routing.reason,
        spec={
            "show": show.model_dump(mode="json"),
            "routing": {
                role: [asdict(route) for route in chain] for role, chain in routing.routes.items()
            },
            "provider": prepared.provider,
            "voicing": asdict(prepared.voicing) if prepared.voicing else None,
            # the show's earlier episodes, fixed now so that a resumed run checks the same ones
            "earlier": [row["run_id"] for row in store.earlier_scripts(show_key(show), run_id)],
        },
        workflow_id=run_id,
        output_dir=str(output_dir),
        budget_nanos=to_nanos(show.budget.per_episode),
        group_id=group,
    )
    sources = prepared.sources
    store.save_sources(run_id, [source.model_dump(mode="json") for source in sources])
    store.add_event(
        run_id,
        "created",
        f"run created for {show.show.title!r}, episode {number}: {prepared.topic!r} from "
        f"{len(sources)} source(s); {routing.reason}",
        data={
            "sources": [s.id for s in sources],
            "offline": routing.offline,
            "compute_ms": prepared.read_ms,
            "number": number,
        },
    )
    return number


def create_run(
    show_path: Path,
    topic: str,
    source_paths: Sequence[Path],
    *,
    provider: str | None = None,
    number: int | None = None,
    queued: bool = False,
    group: str | None = None,
) -> str:
    """Validate every input and record a new run with its episode number (`number`, or the
    show's next); nothing is spent until the workflow starts. A `queued` run waits for a
    worker (`enqueue`)."""
    prepared = prepare(show_path, topic, source_paths, provider=provider, number=number)
    run_id = uuid.uuid4().hex[:12]
    slug = re.sub(r"[^a-z0-9]+", "-", prepared.topic.lower()).strip("-")[:48].rstrip("-")
    folder = f"{slug or 'episode'}-{run_id[:6]}"
    output_dir = (prepared.show_path.parent / prepared.show.output_dir / folder).resolve()
    record_run(
        runtime.store(),
        prepared,
        run_id,
        output_dir,
        status="queued" if queued else "running",
        group=group,
    )
    return run_id


def enqueue(
    show_path: Path,
    topic: str,
    source_paths: Sequence[Path],
    *,
    provider: str | None = None,
    number: int | None = None,
) -> str:
    """Check every input, record the run and put it on the episode queue for `castline
    worker`; return its id. Nothing is spent until a worker takes it."""
    from castline.engine import queue

    run_id = create_run(
        show_path, topic, source_paths, provider=provider, number=number, queued=True
    )
    queue.enqueue_run(run_id)
    return run_id


def resume(run_id: str, *, on_event: EventCallback | None = None, force: bool = False) -> Outcome:
    """Finish a run that crashed, was interrupted or failed, without repeating completed steps."""
    from castline.engine import recovery, workflows

    store = runtime.store()
    record = store.get_run(run_id)
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
    unreconciled = Ledger(store).mark_unreconciled(record.id)
    handle = workflows.resume(record.workflow_id)
    # the fan-outs the dead process had started (research questions, judges, clip shares)
    # go back to a queue: the resumed parent would otherwise wait on them forever
    taken_over = set(found.elsewhere) if force else set()
    recovered = recovery.recover(found.dead_executors | taken_over)
    store.claim_run(record.id)
    store.update_run(record.id, status="running", error=None, workflow_id=handle.workflow_id)
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


def _alive_elsewhere(record: RunRecord) -> bool:
    if record.status != "running" or record.pid is None or record.pid == os.getpid():
        return False
    if record.host != socket.gethostname():
        return True
    try:
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
        if isinstance(error, StageFailed):
            raise error  # already says where and how to continue
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


def display_status(record: RunRecord) -> str:
    """The stored status, except that a 'running' run whose process is gone is 'interrupted'."""
    if record.status == "running" and record.pid is not None and not _alive_elsewhere(record):
        return "running" if record.pid == os.getpid() else "interrupted"
    return record.status


@dataclass(frozen=True)
class RunDetail:
    record: RunRecord
    calls: list[CallRecord]
    cost: CostReport
    verdicts: list[dict[str, Any]]
    artifacts: list[ArtifactRecord]

    def as_json(self) -> dict[str, Any]:
        return {
            "run": {
                **asdict(self.record),
                "status": display_status(self.record),
                "number": self.record.number,
            },
            "cost": self.cost.as_json(),
            "calls": [
                {k: v for k, v in asdict(call).items() if k not in {"prompt", "response"}}
                for call in self.calls
            ],
            "verdicts": self.verdicts,
            "artifacts": [asdict(artifact) for artifact in self.artifacts],
        }


def describe(run_id: str) -> RunDetail:
    """Everything the store knows about one run, summarised for `castline runs show`."""
    store = runtime.store()
    record = store.get_run(run_id)
    reviews = [e for e in store.events(record.id) if e.kind == "verdicts"]
    return RunDetail(
        record=record,
        calls=store.calls(record.id),
        cost=cost_report(store, record.id),
        verdicts=reviews[-1].data.get("verdicts", []) if reviews else [],
        artifacts=store.artifacts(record.id),
    )


def audit_trail(run_id: str) -> list[dict[str, Any]]:
    """The run's events, oldest first, as plain dictionaries."""
    store = runtime.store()
    record = store.get_run(run_id)
    return [asdict(event) for event in store.events(record.id)]


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
    handle = workflows.continue_after_review(record.workflow_id)
    store.claim_run(record.id)
    store.update_run(record.id, status="running", workflow_id=handle.workflow_id)
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


def _current_voices(record: RunRecord) -> tuple[Show, Voicing]:
    """The run's show with the voices, audio settings, endpoints, prices and (if higher) budget
    the show bible has now (a changed voice or engine is why one voices again); the rest stays
    as the episode was written under. The voicing is planned again, and checked, before
    anything is spent."""
    show = Show.model_validate(record.spec["show"])
    path = Path(record.show_path)
    if path.exists():
        now = load_show(path)
        voices = {host.name: host.voices for host in now.hosts}
        hosts = [h.model_copy(update={"voices": voices.get(h.name, h.voices)}) for h in show.hosts]
        show = show.model_copy(
            update={
                "hosts": hosts,
                "audio": now.audio,
                "providers": now.providers,
                "prices": now.prices,
                "retries": now.retries,
                # a budget is only ever raised (to voice an episode it halted)
                "budget": max(show.budget, now.budget, key=lambda b: b.per_episode),
            }
        )
    if not show.audio.voice:
        raise ConfigError(
            f"{path} has `audio: {{voice: false}}`; set it to true to voice run {record.id}"
        )
    paid = record.spec.get("provider") != "offline"
    voicing = plan_voicing(show, path.parent, offline=record.offline, paid=paid)
    costs.check(Pricer(show.prices), voicing)
    master.check_music(show.audio, path.parent)
    return show, voicing


def revoice(
    run_id: str, *, script: Script | None = None, on_event: EventCallback | None = None
) -> Outcome:
    """Voice a finished episode again, optionally with an edited script, re-rendering only the
    clips that changed and paying nothing again for research, writing or review."""
    from castline.engine import workflows

    store = runtime.store()
    record = store.get_run(run_id)
    episode_file = Path(record.output_dir) / "episode.json"
    episode = json.loads(episode_file.read_text()) if episode_file.exists() else {}
    unvoiced = record.status == "halted" and episode["budget"]["halted_at"] == "voice"
    if record.status != "completed" and not unvoiced:
        raise RunNotResumable(
            f"run {record.id} is {record.status}; only a completed episode, or one the budget "
            "halted before its audio, can be voiced",
            run_id=record.id,
        )
    if script is not None:
        episode["script"] = script.model_dump(mode="json")
    show, voicing = _current_voices(record)
    if record.budget is not None and show.budget.per_episode > record.budget:
        store.update_run(record.id, budget_nanos=to_nanos(show.budget.per_episode))
        store.add_event(
            record.id,
            "budget-raised",
            f"budget raised from ${record.budget} to ${show.budget.per_episode} by the show "
            "bible, to voice the episode",
        )
    attempt = 1 + sum(1 for e in store.events(record.id) if e.kind == "revoice")
    store.update_run(
        record.id,
        spec={**record.spec, "show": show.model_dump(mode="json"), "voicing": asdict(voicing)},
    )
    store.add_event(
        record.id, "revoice", f"voicing the episode again (attempt {attempt}); {voicing.reason}"
    )
    runtime.launch()
    runtime.forget(record.id)
    store.update_run(record.id, status="running", stage="voice")
    store.claim_run(record.id)
    handle = workflows.start_revoice(record.id, Episode.model_validate(episode), attempt)
    store.update_run(record.id, workflow_id=handle.workflow_id)  # what `resume` continues
    return follow(record.id, handle, on_event)

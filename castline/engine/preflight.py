"""Everything checked before money is spent, in this order: episode number, topic, show bible,
sources, routing (keys and provider names, for every role a run can reach), prices, voicing.
Only then is a run recorded, with its episode number and a snapshot of its inputs."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from castline.audio import costs, master
from castline.audio.tts import Voicing, plan_voicing
from castline.budget.prices import Pricer
from castline.config import Show, load_show, roles_reached, show_key
from castline.domain import Source
from castline.engine import runtime
from castline.errors import ConfigError, EpisodeNumberTaken
from castline.llm.registry import Routing, plan_routing
from castline.sources import read_sources
from castline.store import NumberedRun, Store, to_nanos


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

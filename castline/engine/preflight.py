"""Everything checked before money is spent, in this order: episode number, topic, show bible,
sources (readable, and on the topic), routing (keys and provider names, for every role a run can
reach), prices, voicing, the cover art, the output folder, and whether the budget can cover the
episode at all. Only then is a run recorded, with its episode number and a snapshot of its
inputs."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from pathlib import Path

from castline import retrieval
from castline.audio import costs, master
from castline.audio.tts import Voicing, plan_voicing
from castline.budget.prices import Pricer
from castline.config import Show, load_show, roles_reached, show_key
from castline.domain import Source
from castline.engine import runtime
from castline.errors import ConfigError, EpisodeNumberTaken, SourcesOffTopic
from castline.llm.base import Usage
from castline.llm.registry import Route, Routing, plan_routing, routing_plan
from castline.publish import artwork
from castline.relevance import off_topic
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
    off_topic: tuple[str, ...] = ()  # ids of sources that share no word with the topic


# A topic is a sentence or two saying what the episode is about; detail belongs in a source.
MAX_TOPIC_CHARS = 300
# Episode numbers appear in feeds and players as integers; five digits is a long-running show.
MAX_EPISODE_NUMBER = 99_999
# Characters a token, at least, in the prose castline reads: the budget check below errs towards
# letting a run start, and the ledger still holds every call to the budget.
_CHARS_PER_TOKEN_AT_MOST = 5
_TOKENS_PER_SPOKEN_WORD = 1.3


def check_number(number: int | None) -> None:
    if number is not None and not 1 <= number <= MAX_EPISODE_NUMBER:
        raise ConfigError(
            f"--number {number}: an episode number is from 1 to {MAX_EPISODE_NUMBER:,}; leave "
            "it out for the show's next number"
        )


def check_topic(topic: str) -> str:
    topic = " ".join(topic.split())
    if not topic:
        raise ConfigError("the topic is empty; pass --topic with what the episode is about")
    if len(topic) > MAX_TOPIC_CHARS:
        raise ConfigError(
            f"the topic is {len(topic):,} characters; at most {MAX_TOPIC_CHARS} (a sentence or "
            "two saying what the episode is about). Put the detail in a source file and pass "
            "it with --source"
        )
    return topic


def check_sources_on_topic(topic: str, sources: Sequence[Source]) -> tuple[str, ...]:
    """Refuse sources none of which shares a content word with the topic (an episode could not
    be about it and cite them); return the ids of those that do not, for a warning."""
    unrelated = off_topic(sources, topic)
    if sources and len(unrelated) == len(sources):
        listed = ", ".join(source.title or source.id for source in sources)
        raise SourcesOffTopic(
            f"none of the sources mentions the topic {topic!r} (no word of it appears in "
            f"{listed}); give sources about the topic, or a topic your sources cover"
        )
    return tuple(source.id for source in unrelated)


def check_output_dir(show_path: Path, show: Show) -> Path:
    """Make sure episodes can be written where the show publishes them, before anything is
    spent: a file in the way or a folder without write permission is found now, not at
    publishing. Nothing is created: a forecast must leave no trace."""
    folder = (show_path.parent / show.output_dir).resolve()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    problem = None
    if not existing.is_dir():
        problem = f"{existing} is a file, not a folder"
    elif not os.access(existing, os.W_OK | os.X_OK):
        problem = f"{existing} is not writable by this user"
    if problem:
        raise ConfigError(
            f"output_dir {folder}: episodes cannot be written there ({problem}); make it a "
            "folder you can write, or set `output_dir` in the show bible to one"
        )
    return folder


# When the floor below comes within this share of the budget, the episode is forecast in full
# (a dry run offline, about a second) before it may start.
_FORECAST_WHEN_FLOOR_ABOVE = Decimal("0.05")


def check_budget(prepared: Prepared) -> None:
    """Refuse an episode whose cheapest possible cost is beyond its budget; for a tight budget,
    the full forecast decides."""
    show = prepared.show
    floor = check_budget_floor(show, prepared.routing, prepared.sources)
    limit = show.budget.per_episode
    if floor <= limit * _FORECAST_WHEN_FLOOR_ABOVE:
        return
    from castline.budget.estimate import forecast

    unlimited = show.budget.model_copy(update={"per_episode": max(limit * 1000, Decimal(1000))})
    lifted = show.model_copy(update={"budget": unlimited})
    dry = replace(
        prepared,
        show=lifted,
        routing=plan_routing(lifted, "offline", needed=roles_reached(lifted)),
        number=None,
    )
    predicted = forecast(dry)
    if predicted.low > limit:
        raise ConfigError(
            f"the budget ${limit:,.2f} cannot cover this episode: it is forecast at "
            f"${predicted.low:,.2f} at the least (${predicted.expected:,.2f} expected); raise "
            "`budget.per_episode`, shorten `episode.target_minutes` or the sources, or route "
            "to cheaper models. `castline estimate` shows the forecast by stage and model"
        )


def check_budget_floor(show: Show, routing: Routing, sources: list[Source]) -> Decimal:
    """Refuse an episode the budget cannot pay for even at its cheapest: one research call
    reading what a question reads (every source, or the most passages of long ones), and the
    script's words written once, by the cheapest model each role may fall back to. The
    forecast (`castline estimate`) gives the full picture."""
    pricer = Pricer(show.prices)
    budget = show.budget
    limit = budget.per_episode
    reserve = budget.reserve_share * limit
    if retrieval.too_long_to_send_whole(sources):
        longest = sorted((len(p.text) for p in retrieval.passages(sources)), reverse=True)
        chars = sum(longest[: retrieval.PASSAGES_PER_QUESTION])
    else:
        chars = sum(len(section.text) for source in sources for section in source.sections)
    source_tokens = chars // _CHARS_PER_TOKEN_AT_MOST
    research_route, research_cost = _cheapest(
        pricer, routing, "researcher", Usage(input_tokens=source_tokens)
    )
    research_room = budget.allocations["research"] * limit + reserve
    if research_cost > research_room:
        fits = int(research_room / research_cost * source_tokens * _CHARS_PER_TOKEN_AT_MOST / 6)
        raise ConfigError(
            f"the sources come to about {source_tokens:,} tokens: reading them once costs at "
            f"least ${research_cost:,.2f} with {research_route.priced_as}, more than research "
            f"may spend (${research_room:,.2f}: its share of the ${limit:,.2f} budget plus the "
            f"shared reserve). Keep the sources under about {fits:,} words, raise "
            "`budget.per_episode`, or route the researcher to a cheaper model"
        )
    words = show.episode.target_words
    output = Usage(output_tokens=round(words * _TOKENS_PER_SPOKEN_WORD))
    writer_route, writer_cost = _cheapest(pricer, routing, "writer", output)
    if research_cost + writer_cost > limit:
        raise ConfigError(
            f"the budget ${limit:,.2f} cannot cover this episode: reading the sources once "
            f"(${research_cost:,.2f}) and writing {words:,} words once with "
            f"{writer_route.priced_as} (${writer_cost:,.2f}) already exceed it. Raise "
            "`budget.per_episode`, shorten `episode.target_minutes` or the sources, or route "
            "to cheaper models"
        )
    return research_cost + writer_cost


def _cheapest(pricer: Pricer, routing: Routing, role: str, usage: Usage) -> tuple[Route, Decimal]:
    routes = [*routing.chain(role), *routing.chain("fallback")]
    priced = [(pricer.cost(route.priced_as, usage), index) for index, route in enumerate(routes)]
    cost, index = min(priced)
    return routes[index], cost


def prepare(
    show_path: Path,
    topic: str,
    source_paths: Sequence[Path | str],
    *,
    provider: str | None = None,
    number: int | None = None,
    forecast: bool = True,
    allow_private_urls: bool = False,
) -> Prepared:
    """Check, in the module's order, everything that can be checked before money is spent."""
    check_number(number)
    topic = check_topic(topic)
    show_path = Path(show_path)
    show = load_show(show_path)
    if not source_paths:
        raise ConfigError(
            "no sources given; pass at least one --source FILE or URL (text, md, html, pdf)"
        )
    started = time.perf_counter()
    private = allow_private_urls or show.research.allow_private_urls
    sources = read_sources(list(source_paths), allow_private_urls=private)
    read_ms = (time.perf_counter() - started) * 1000
    off_topic = check_sources_on_topic(topic, sources)
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
    artwork.check(show, show_path.parent, bible=show_path)  # a size or format Apple refuses
    check_output_dir(show_path, show)
    prepared = Prepared(
        show_path, show, topic, sources, routing, provider, read_ms, number, voicing, off_topic
    )
    if forecast:
        check_budget(prepared)
    else:
        check_budget_floor(show, routing, sources)
    return prepared


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
    plan = routing_plan(show, routing, Pricer(show.prices))
    store.add_event(
        run_id,
        "routing",
        "\n".join(plan.lines()),
        data={
            "rows": [
                {
                    "role": row.role + (" (default)" if row.left_at_default else ""),
                    "routes": [route.priced_as for route in routing.routes[row.role]],
                    "input": str(row.input_per_million),
                    "output": str(row.output_per_million),
                }
                for row in plan.rows
                if row.chain
            ],
            "warnings": [warning.message for warning in plan.warnings],
        },
    )
    if prepared.off_topic:
        store.add_event(
            run_id,
            "sources-off-topic",
            f"{len(prepared.off_topic)} source(s) share no word with the topic and will "
            f"probably go unused: {', '.join(prepared.off_topic)}",
            data={"sources": list(prepared.off_topic)},
        )
    return number


def create_run(
    show_path: Path,
    topic: str,
    source_paths: Sequence[Path | str],
    *,
    provider: str | None = None,
    number: int | None = None,
    queued: bool = False,
    group: str | None = None,
    allow_private_urls: bool = False,
) -> str:
    """Validate every input and record a new run with its episode number (`number`, or the
    show's next); nothing is spent until the workflow starts. A `queued` run waits for a
    worker (`enqueue`)."""
    prepared = prepare(
        show_path,
        topic,
        source_paths,
        provider=provider,
        number=number,
        allow_private_urls=allow_private_urls,
    )
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

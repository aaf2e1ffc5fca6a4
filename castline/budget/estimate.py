"""`castline estimate`: what an episode will cost, per stage and model, before anything is spent.

The forecast runs the real pipeline once with the offline provider in a scratch store (no DBOS,
no files written), so it sees the calls the episode will make and the prompts they will send,
sized by the sources and the outline. From those calls:

- *expected*: their usage priced as the routed models, as the run will send them: each
  provider's prompt cache is replayed call by call in the run's order (`_Caches`): Anthropic's
  breakpoints after the show and after each material block (written by the first call that sends
  a prefix, read by later ones; 1-hour writes in a batch), Gemini's and OpenAI's implicit caching
  of the longest prefix shared with an earlier prompt, each above the model's minimum; research
  is priced at batch rates where the show or economy mode batches it on a provider with a batch
  API. The offline run's own shadow cost is the same usage with no cache at all;
- *low*: ideal prompt caching (each prompt's prefix shared with an earlier call on the same model
  read from the cache, and written once by the call that first sends a prefix a later call
  reuses) and batch-eligible work batched, never above *expected*;
- *high*: every call at its reservation (its worst case: no cache hit, every input token at the
  dearest rate), plus revision rounds the offline run did not need, each as costly as rewriting
  every segment.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from castline.audio import costs as voice_costs
from castline.budget.ledger import Ledger, Reservation
from castline.budget.policy import BATCH_ELIGIBLE, Candidate, fixed
from castline.config import Show
from castline.domain import AudioInfo, Episode, KnowledgeBase, Outline, Script, Source, Verdict
from castline.engine.paid import calls as calls_module
from castline.engine.paid.calls import CallOutcome
from castline.engine.payloads import HumanDecision, Published, Voiced
from castline.engine.preflight import Prepared, prepare, record_run
from castline.engine.runner import Pipeline
from castline.llm import prompts, registry
from castline.llm.base import Task, Usage
from castline.llm.registry import Route
from castline.llm.tasks import JudgeTask, Question
from castline.quality import gates
from castline.stages import RunContext, research, web
from castline.store import CallRecord, Store
from castline.text import estimate_tokens

# Providers cache nothing shorter than this many tokens (Anthropic's minimum for Sonnet and Opus).
MIN_CACHEABLE_TOKENS = 1024
STAGE_ORDER = ("research", "plan", "write", "review", "polish", "voice")
# The high figure's margin on four characters a token: what a call's prompt could really be
# billed (its reservation uses the stricter `prompts.token_bound`, which a reply then settles).
INPUT_MARGIN = 1.1


@dataclass(frozen=True)
class ForecastRow:
    stage: str
    model: str
    calls: int
    low: Decimal
    expected: Decimal
    high: Decimal


@dataclass(frozen=True)
class Forecast:
    show_title: str
    topic: str
    budget: Decimal
    rows: list[ForecastRow]
    words: int

    @property
    def low(self) -> Decimal:
        return sum((row.low for row in self.rows), Decimal(0))

    @property
    def expected(self) -> Decimal:
        return sum((row.expected for row in self.rows), Decimal(0))

    @property
    def high(self) -> Decimal:
        return sum((row.high for row in self.rows), Decimal(0))


class _DryRunSteps:
    """The pipeline's steps without durability: calls go through the journal and ledger of a
    scratch store, nothing is published."""

    def __init__(self, ctx: RunContext, store: Store) -> None:
        self.ctx = ctx
        self.store = store
        # what the forecast needs to replay the providers' caches: each call's prompt blocks
        # (where the cache breakpoints go), and the calls the real run sends as a batch
        self.layouts: dict[str, prompts.Prompt] = {}
        self.batched: set[str] = set()

    def call(self, step_key: str, stage: str, role: str, task: Task[Any]) -> CallOutcome:
        self.layouts[step_key] = prompts.render(task)
        # the forecast reads each prompt whole from the scratch journal: no source references
        spec = replace(calls_module.CallSpec.of(self.ctx, step_key, stage, role), kept_sources={})
        return calls_module.execute(self.store, spec, task, self.ctx.policy)

    def research(self, questions: list[Question], *, batch: bool) -> list[CallOutcome]:
        keys = [f"research.question.{i}" for i in range(len(questions))]
        # the real run batches only when the researcher's first route has a batch API
        wire = _wire(self.ctx.show, self.ctx.routing.chain("researcher")[0].priced_as)
        if batch and wire is not None and wire.batches:
            self.batched.update(keys)
        return [
            self.call(key, "research", "researcher", research.research_task(self.ctx, question))
            for key, question in zip(keys, questions, strict=True)
        ]

    def event(self, kind: str, message: str, stage: str | None, **data: Any) -> None:
        self.store.add_event(self.ctx.run_id, kind, message, stage=stage, data=data)

    def fetch_page(self, url: str, source_id: str) -> Source | str:
        return "a forecast fetches nothing"  # its offline research never searches

    def review(
        self, round_: int, outline: Outline, script: Script, kb: KnowledgeBase
    ) -> list[Verdict]:
        ctx = self.ctx
        return gates.run_checks(
            ctx.show, outline, script, kb, ctx.earlier, ctx.source_titles.values()
        )

    def publish(self, episode: Episode) -> Published:
        return Published(output_dir=None)

    def judge(self, tasks: list[tuple[str, str, JudgeTask]]) -> list[CallOutcome]:
        return [self.call(key, "review", role, task) for key, role, task in tasks]

    def voice(self, outline: Outline, script: Script) -> Voiced:
        """The speech's price, booked like the real clips (one take each, lasting what the
        words imply at the show's pace); no audio is made."""
        voicing = self.ctx.voicing
        route = Route(voicing.engine, voicing.model or "", voicing.priced_as)
        pace = self.ctx.show.episode.words_per_minute
        pricer = self.ctx.policy.pricer
        ledger = Ledger(self.store)
        for index, turn in enumerate(script.turns):
            seconds = len(turn.text.split()) / pace * 60
            price = voice_costs.take_cost(pricer, voicing, turn.text, seconds, None)
            booked = ledger.reserve(
                self.ctx.run_id,
                self.ctx.policy,
                fixed([Candidate(route, 0, False, price)]),
                step_key=f"voice.turn.{index}",
                stage="voice",
                role="voice",
                task_kind="tts",
                prompt=turn.text,
                shadow=True,
            )
            if isinstance(booked, Reservation):
                self.store.finish_call(booked.call_id, cost=price, response="")
        words = script.word_count
        audio = self.ctx.show.audio
        forecast = AudioInfo(
            file="",
            bytes=0,
            duration_s=words / pace * 60,
            loudness_lufs=audio.loudness_lufs,
            true_peak_db=audio.true_peak_db,
            clips=len(script.turns),
            synthesized=len(script.turns),
        )
        return Voiced(audio=forecast)

    def await_review(self, round_: int, summary: dict[str, Any]) -> HumanDecision | None:
        # a forecast assumes the reviewer approves; the cost of waiting is nobody's money
        return HumanDecision(status="approved", note="assumed for the forecast")


def estimate(
    show_path: Path,
    topic: str,
    source_paths: Sequence[Path | str],
    *,
    allow_private_urls: bool = False,
) -> Forecast:
    prepared = prepare(
        show_path,
        topic,
        source_paths,
        provider="offline",
        forecast=False,
        allow_private_urls=allow_private_urls,
    )
    return forecast(prepared)


def forecast(prepared: Prepared) -> Forecast:
    """Run the pipeline on offline-routed inputs in a scratch store and price its calls."""
    with tempfile.TemporaryDirectory(prefix="castline-estimate-") as scratch:
        store = Store(f"sqlite:///{Path(scratch) / 'estimate.db'}")
        run_id = f"estimate-{uuid.uuid4().hex[:8]}"
        record_run(store, prepared, run_id, Path(scratch) / "episode")
        ctx = RunContext(
            run_id=run_id,
            show=prepared.show,
            topic=prepared.topic,
            sources=prepared.sources,
            routing=prepared.routing,
            output_dir=str(Path(scratch) / "episode"),
        )
        steps = _DryRunSteps(ctx, store)
        result = Pipeline(ctx, steps).run()
        made = [c for c in store.calls(run_id) if c.status == "ok"]
        store.engine.dispose()
    rows = _rows(ctx, made, steps)
    return Forecast(
        show_title=prepared.show.show.title,
        topic=prepared.topic,
        budget=prepared.show.budget.per_episode,
        rows=rows,
        words=result.words,
    )


def _rows(ctx: RunContext, made: list[CallRecord], steps: _DryRunSteps) -> list[ForecastRow]:
    pricer = ctx.policy.pricer
    spoken = [call for call in made if call.task_kind == "tts"]
    calls = [call for call in made if call.task_kind != "tts"]
    expected = _as_run(ctx, calls, steps) | {call.id: call.cost for call in spoken}
    ideal = _ideal_caching(ctx, calls)
    low = {call.id: min(ideal[call.id], expected[call.id]) for call in calls}
    low |= {call.id: call.cost for call in spoken}
    high: dict[int, Decimal] = {
        call.id: pricer.worst_case(
            call.priced_as,
            math.ceil(estimate_tokens(call.prompt) * INPUT_MARGIN) + 16,
            Task.of_kind(call.task_kind).max_output_tokens,
        )
        for call in calls
    }
    searches = web.search_limit(ctx, as_routed=True)
    for call in calls:  # a question's searches are billed apart; expected: it makes them all
        if searches and call.task_kind == "research":
            extra = pricer.search_cost(call.priced_as, searches)
            expected[call.id] += extra
            high[call.id] += extra
    pace = ctx.show.episode.words_per_minute
    for call in spoken:  # the most a clip can cost: two takes, as the run reserves
        high[call.id] = 2 * voice_costs.ceiling(pricer, ctx.voicing, call.prompt, pace)
    groups: dict[tuple[str, str], list[CallRecord]] = {}
    for call in made:
        groups.setdefault((call.stage, call.priced_as), []).append(call)
    rows = [
        ForecastRow(
            stage=stage,
            model=model,
            calls=len(members),
            low=sum((low[c.id] for c in members), Decimal(0)),
            expected=sum((expected[c.id] for c in members), Decimal(0)),
            high=sum((high[c.id] for c in members), Decimal(0)),
        )
        for (stage, model), members in groups.items()
    ]
    rounds_used = len({c.step_key.split(".")[1] for c in made if c.stage == "polish"})
    spare = max(0, ctx.show.quality.max_revision_rounds - rounds_used)
    rewrite = sum((high[c.id] for c in made if c.stage == "write"), Decimal(0))
    if spare and rewrite:
        polisher = ctx.routing.chain("polisher")[0].priced_as
        rows.append(
            ForecastRow(
                stage="polish",
                model=f"{polisher} (up to {spare} more revision round(s))",
                calls=0,
                low=Decimal(0),
                expected=Decimal(0),
                high=rewrite * spare,
            )
        )
    return sorted(rows, key=lambda r: (STAGE_ORDER.index(r.stage), r.model))


def _ideal_caching(ctx: RunContext, made: list[CallRecord]) -> dict[int, Decimal]:
    """Each call's cost if every prompt prefix shared between calls on one model were cached
    (where the provider caches at all)."""
    pricer = ctx.policy.pricer
    costs: dict[int, Decimal] = {}
    for call in made:
        batch = call.task_kind in BATCH_ELIGIBLE
        minimum = _minimum(ctx.show, call.priced_as)
        if minimum is None:
            usage = Usage(input_tokens=call.input_tokens, output_tokens=call.output_tokens)
            costs[call.id] = pricer.cost(call.priced_as, usage, batch=batch)
            continue
        same_model = [c for c in made if c.priced_as == call.priced_as]
        earlier = [c.prompt for c in same_model if c.id < call.id]
        later = [c.prompt for c in same_model if c.id > call.id]
        read = _cached(call.prompt, earlier, minimum)
        written = max(0, _cached(call.prompt, later, minimum) - read)
        total = call.input_tokens
        read, written = min(read, total), min(written, max(0, total - read))
        usage = Usage(
            input_tokens=total - read - written,
            cache_read_tokens=read,
            cache_write_tokens=written,
            output_tokens=call.output_tokens,
        )
        costs[call.id] = pricer.cost(call.priced_as, usage, batch=batch)
    return costs


def _cached(prompt: str, others: list[str], minimum: int = MIN_CACHEABLE_TOKENS) -> int:
    """Tokens of the longest prefix `prompt` shares with any of `others`, if cacheable."""
    longest = max((_shared_chars(prompt, other) for other in others), default=0)
    tokens = estimate_tokens(prompt[:longest])
    return tokens if tokens >= minimum else 0


def _shared_chars(a: str, b: str) -> int:
    """The length of the longest common prefix of two strings (a binary search on slices)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


# What the run will do: the providers' prompt caches, replayed.


@dataclass(frozen=True)
class _Wire:
    """How a wire format's adapter (castline/llm/anthropic.py, gemini.py, openai_compat.py) gets
    its prompts cached, and whether it has a batch API.

    `breakpoints`: the adapter marks a cache breakpoint after every block but the task (the
    show, each material block), and the provider caches exactly those prefixes (Anthropic);
    otherwise the provider caches implicitly the longest prefix shared with an earlier prompt to
    the same model, in steps of `granularity` tokens (Gemini, OpenAI). `minimum` is the shortest
    prefix a model caches (None: the model caches nothing)."""

    breakpoints: bool
    minimum: Callable[[str], int | None]
    granularity: int = 1
    batches: bool = False


def _anthropic_minimum(model: str) -> int | None:
    # Anthropic's prompt-caching page: 4,096 tokens for Opus 4.6 and 4.5 and Haiku 4.5, 2,048
    # for the Claude 3 Haikus, 1,024 for the others (Sonnet 4.x, Opus 4.1 and 4)
    for fragment, tokens in (("opus-4-6", 4096), ("opus-4-5", 4096), ("haiku-4", 4096)):
        if fragment in model:
            return tokens
    return 2048 if "haiku" in model else 1024


def _gemini_minimum(model: str) -> int | None:
    # implicit caching is on for Gemini 2.5 and newer; Google has published 2,048 and 4,096
    # (Pro), 1,024 and 2,048 (Flash) over time: the forecast takes the larger
    if model.startswith(("gemini-1", "gemini-2.0")):
        return None
    return 4096 if "pro" in model else 2048


_WIRES: dict[str, _Wire] = {
    "anthropic": _Wire(breakpoints=True, minimum=_anthropic_minimum, batches=True),
    "gemini": _Wire(breakpoints=False, minimum=_gemini_minimum, batches=True),
    # OpenAI caches prompts of 1,024 tokens or more, in steps of 128
    "openai": _Wire(breakpoints=False, minimum=lambda model: 1024, granularity=128),
}


def _wire(show: Show, route: str) -> _Wire | None:
    """How the provider a route ("provider:model") names caches prompts, if castline knows."""
    name = route.partition(":")[0]
    return _WIRES.get(registry.settings_for(name, show).api or name)


def _minimum(show: Show, route: str) -> int | None:
    """The shortest prefix the route's model caches for this show, or None if it caches none
    (an unknown provider, a model without caching, Anthropic with `prompt_cache: false`)."""
    wire = _wire(show, route)
    name, _, model = route.partition(":")
    if wire is None or (wire.breakpoints and not registry.settings_for(name, show).prompt_cache):
        return None
    return wire.minimum(model)


class _Caches:
    """The providers' prompt caches as the run fills them, call by call in the run's order.

    A cached prefix is taken to live for the rest of the episode: calls sharing one follow each
    other within its lifetime (five minutes from its last use, an hour in a batch). Calls made
    at once (a fan-out) are taken in order, as if each began after the one before it had."""

    def __init__(self, show: Show) -> None:
        self.show = show
        self.written: set[bytes] = set()  # breakpoint caching: the prefixes written, per model
        self.sent: dict[str, list[str]] = {}  # implicit caching: the prompts sent, per model

    def usage(self, call: CallRecord, layout: prompts.Prompt | None, *, batch: bool) -> Usage:
        """The call's usage split as its provider will bill it: read, written, uncached.
        `batch`: the call goes through a batch API, whose requests mark hour-long breakpoints."""
        wire = _wire(self.show, call.priced_as)
        minimum = _minimum(self.show, call.priced_as)
        read = written = 0
        if wire is not None and minimum is not None:
            if not wire.breakpoints:
                read = self._implicit(call.priced_as, call.prompt, minimum, wire.granularity)
            elif layout is not None:
                read, written = self._breakpoints(call.priced_as, layout, minimum)
        total = call.input_tokens
        read = min(read, total)
        written = min(written, total - read)
        return Usage(
            input_tokens=total - read - written,
            cache_read_tokens=read,
            cache_write_tokens=written,
            # a batch's breakpoints use the 1-hour TTL, since a batch can outlive five minutes
            cache_write_1h_tokens=written if batch else 0,
            output_tokens=call.output_tokens,
        )

    def _breakpoints(self, route: str, layout: prompts.Prompt, minimum: int) -> tuple[int, int]:
        """Tokens read and written: the longest marked prefix already written is read; the rest
        up to the last marked prefix long enough to cache is written."""
        digest = hashlib.sha256(route.encode("utf-8") + b"\0" + layout.system.encode("utf-8"))
        prefix = layout.system
        marks: list[tuple[bytes, int]] = []
        for block in layout.blocks[:-1]:  # the task block carries no breakpoint
            digest.update(("\n\n" + block).encode("utf-8"))
            prefix += "\n\n" + block
            tokens = estimate_tokens(prefix)
            if tokens >= minimum:
                marks.append((digest.copy().digest(), tokens))
        hits = [tokens for key, tokens in marks if key in self.written]
        read = hits[-1] if hits else 0
        written = marks[-1][1] - read if marks else 0
        self.written.update(key for key, _ in marks)
        return read, written

    def _implicit(self, route: str, prompt: str, minimum: int, granularity: int) -> int:
        """Tokens read: the longest prefix shared with an earlier prompt to the same model, in
        whole steps; implicit caching bills no writes."""
        earlier = self.sent.setdefault(route, [])
        shared = max((_shared_chars(prompt, other) for other in earlier), default=0)
        earlier.append(prompt)
        tokens = shared // 4  # whole tokens of the shared text
        return 0 if tokens < minimum else tokens // granularity * granularity


def _as_run(ctx: RunContext, calls: list[CallRecord], steps: _DryRunSteps) -> dict[int, Decimal]:
    """Each call's cost as the run will be billed for it: its prompt cached as its provider
    caches it, at batch rates where the run batches it."""
    pricer = ctx.policy.pricer
    caches = _Caches(ctx.show)
    costs: dict[int, Decimal] = {}
    for call in sorted(calls, key=lambda c: c.id):
        batched = call.step_key in steps.batched
        usage = caches.usage(call, steps.layouts.get(call.step_key), batch=batched)
        # priced as the run prices it: a batch, or a call the policy priced at batch rates
        costs[call.id] = pricer.cost(call.priced_as, usage, batch=batched or call.batch)
    return costs

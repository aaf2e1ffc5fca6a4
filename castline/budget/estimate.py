"""`castline estimate`: what an episode will cost, per stage and model, before anything is spent.

The forecast runs the real pipeline once with the offline provider in a scratch store (no DBOS,
no files written), so it sees the calls the episode will make and the prompts they will send,
sized by the sources and the outline. From those calls:

- *expected*: their usage priced as the routed models (the offline run's shadow cost);
- *low*: the same with ideal prompt caching (each prompt's prefix shared with an earlier call on
  the same model read from the cache, and written once by the call that first sends a prefix a
  later call reuses) and batch-eligible work batched;
- *high*: every call at its reservation (its worst case), plus revision rounds the offline run
  did not need, each as costly as rewriting every segment.
"""

from __future__ import annotations

import math
import os.path
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from castline.audio import costs as voice_costs
from castline.budget.ledger import Ledger, Reservation
from castline.budget.policy import BATCH_ELIGIBLE, Candidate, fixed
from castline.domain import AudioInfo, Episode, KnowledgeBase, Outline, Script, Verdict
from castline.engine.episodes import prepare, record_run
from castline.engine.paid import calls as calls_module
from castline.engine.runner import Pipeline
from castline.llm.base import Task, Usage
from castline.llm.registry import Route
from castline.llm.tasks import JudgeTask, Question
from castline.quality import gates
from castline.stages import RunContext, research
from castline.store import CallRecord, Store
from castline.text import estimate_tokens

# Providers cache nothing shorter than this many tokens (Anthropic's minimum for Sonnet and Opus).
MIN_CACHEABLE_TOKENS = 1024
STAGE_ORDER = ("research", "plan", "write", "review", "polish", "voice")


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

    def call(self, step_key: str, stage: str, role: str, task: Task[Any]) -> dict[str, Any]:
        spec = calls_module.CallSpec.of(self.ctx, step_key, stage, role)
        return calls_module.execute(self.store, spec, task, self.ctx.policy).as_dict()

    def research(self, questions: list[Question], *, batch: bool) -> list[dict[str, Any]]:
        return [
            self.call(f"research.question.{i}", "research", "researcher", task)
            for i, task in enumerate(research.research_task(self.ctx, q) for q in questions)
        ]

    def event(self, kind: str, message: str, stage: str | None, **data: Any) -> None:
        self.store.add_event(self.ctx.run_id, kind, message, stage=stage, data=data)

    def review(
        self, round_: int, outline: Outline, script: Script, kb: KnowledgeBase
    ) -> list[Verdict]:
        return gates.run_checks(self.ctx.show, outline, script, kb, self.ctx.earlier)

    def publish(self, episode: Episode) -> dict[str, Any]:
        return {"output_dir": None}

    def judge(self, tasks: list[tuple[str, str, JudgeTask]]) -> list[dict[str, Any]]:
        return [self.call(key, "review", role, task) for key, role, task in tasks]

    def voice(self, outline: Outline, script: Script) -> dict[str, Any]:
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
        return {"audio": forecast.model_dump(mode="json"), "timeline": {}}

    def await_review(self, round_: int, summary: dict[str, Any]) -> dict[str, Any] | None:
        # a forecast assumes the reviewer approves; the cost of waiting is nobody's money
        return {"status": "approved", "note": "assumed for the forecast", "script": None}


def estimate(show_path: Path, topic: str, source_paths: Sequence[Path]) -> Forecast:
    prepared = prepare(show_path, topic, source_paths, provider="offline")
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
        result = Pipeline(ctx, _DryRunSteps(ctx, store)).run()
        made = [c for c in store.calls(run_id) if c.status == "ok"]
        store.engine.dispose()
    rows = _rows(ctx, made)
    return Forecast(
        show_title=prepared.show.show.title,
        topic=prepared.topic,
        budget=prepared.show.budget.per_episode,
        rows=rows,
        words=result["words"],
    )


def _rows(ctx: RunContext, made: list[CallRecord]) -> list[ForecastRow]:
    pricer = ctx.policy.pricer
    spoken = [call for call in made if call.task_kind == "tts"]
    calls = [call for call in made if call.task_kind != "tts"]
    low = _ideal_caching(ctx, calls) | {call.id: call.cost for call in spoken}
    high: dict[int, Decimal] = {
        call.id: pricer.worst_case(
            call.priced_as,
            math.ceil(estimate_tokens(call.prompt) * calls_module.INPUT_MARGIN) + 16,
            calls_module.TASK_TYPES[call.task_kind].max_output_tokens,
        )
        for call in calls
    }
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
            expected=sum((c.cost for c in members), Decimal(0)),
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
    """Each call's cost if every prompt prefix shared between calls on one model were cached."""
    pricer = ctx.policy.pricer
    costs: dict[int, Decimal] = {}
    for call in made:
        same_model = [c for c in made if c.priced_as == call.priced_as]
        earlier = [c.prompt for c in same_model if c.id < call.id]
        later = [c.prompt for c in same_model if c.id > call.id]
        read = _cached(call.prompt, earlier)
        written = max(0, _cached(call.prompt, later) - read)
        total = call.input_tokens
        read, written = min(read, total), min(written, max(0, total - read))
        usage = Usage(
            input_tokens=total - read - written,
            cache_read_tokens=read,
            cache_write_tokens=written,
            output_tokens=call.output_tokens,
        )
        costs[call.id] = pricer.cost(call.priced_as, usage, batch=call.task_kind in BATCH_ELIGIBLE)
    return costs


def _cached(prompt: str, others: list[str]) -> int:
    """Tokens of the longest prefix `prompt` shares with any of `others`, if cacheable."""
    # a character prefix of text, not a path: commonprefix is the right tool here
    longest = max(
        (len(os.path.commonprefix([prompt, other])) for other in others),  # noqa: RUF071
        default=0,
    )
    tokens = estimate_tokens(prompt[:longest])
    return tokens if tokens >= MIN_CACHEABLE_TOKENS else 0

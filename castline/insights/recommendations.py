"""Recommendations for the next episode, computed from what one run measured: its journal of
calls, its audit trail and the price table. Each says what to change and what it would save.

A rule is a plain function of a run's `RunFacts`, so a test builds the facts (or a store) to
trigger it, and not to trigger it; `recommend` applies them all. The rules that need the show's
earlier episodes live in `castline.insights.history`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, TypeVar

from castline.budget.prices import CASTLINE_PRICES, MILLION, Pricer
from castline.budget.report import usage_of
from castline.config import Show
from castline.errors import UnpricedModel
from castline.llm.base import Usage
from castline.store import CallRecord, EventRecord, RunRecord, Store

Kind = Literal[
    "batch-research",
    "cache-layout",
    "max-tokens",
    "voice-engine",
    "recurring-gate-failure",
]
K = TypeVar("K")


@dataclass(frozen=True)
class Recommendation:
    """One change for the next episode: what to do, what it would save (money, time or both)
    and the measured figures it rests on."""

    kind: Kind
    message: str
    saving_usd: Decimal | None = None
    saving_s: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "saving_usd": str(self.saving_usd) if self.saving_usd is not None else None,
            "saving_s": self.saving_s,
            "evidence": _plain(self.evidence),
        }


@dataclass(frozen=True)
class RunFacts:
    """What the store recorded of one run, and the prices it was charged at."""

    run: RunRecord
    calls: list[CallRecord]
    events: list[EventRecord]
    pricer: Pricer

    @classmethod
    def load(cls, store: Store, run_id: str) -> RunFacts:
        record = store.get_run(run_id)
        return cls(record, store.calls(record.id), store.events(record.id), run_pricer(record))

    @property
    def paid(self) -> list[CallRecord]:
        """Model calls that were answered (speech and refused or failed calls left out)."""
        return [c for c in self.calls if c.status == "ok" and c.task_kind != "tts"]

    @property
    def speech(self) -> list[CallRecord]:
        return [c for c in self.calls if c.status == "ok" and c.task_kind == "tts"]


def run_pricer(record: RunRecord) -> Pricer:
    """The prices the run was charged at: castline's, with the show's overrides first."""
    show = record.spec.get("show")
    return Pricer(Show.model_validate(show).prices) if show else Pricer()


def batch_research(facts: RunFacts) -> list[Recommendation]:
    """Research answered one call at a time at list price, when the provider's batch API
    would have priced the same tokens at its discount (the stage is not in a hurry)."""
    eligible = [
        c
        for c in facts.paid
        if c.stage == "research" and not c.batch and facts.pricer.batch_discount(c.priced_as)
    ]
    if not eligible:
        return []
    paid = sum((c.cost for c in eligible), Decimal(0))
    batched = sum(
        (facts.pricer.cost(c.priced_as, usage_of(c), batch=True) for c in eligible), Decimal(0)
    )
    saving = paid - batched
    if saving <= 0:
        return []
    models = sorted({c.priced_as for c in eligible})
    return [
        Recommendation(
            kind="batch-research",
            message=(
                f"{len(eligible)} research calls went at list price (${paid:.4f}); through the "
                f"batch API they would have cost ${batched:.4f}, saving ${saving:.4f}. Set "
                "`research: {batch: true}` in the show bible when the episode can wait minutes "
                "to hours for its research."
            ),
            saving_usd=saving,
            evidence={
                "calls": len(eligible),
                "list_cost": paid,
                "batch_cost": batched,
                "models": models,
                "discount": {m: facts.pricer.batch_discount(m) for m in models},
            },
        )
    ]


def cache_layout(facts: RunFacts) -> list[Recommendation]:
    """A prompt cache that was written and then not read back: each later call wrote the
    prefix again (or nobody read it at all), paying the write premium instead of the read
    price. What reading it would have saved is priced per model."""
    found = []
    for model, rows in _by(facts.paid, lambda c: c.priced_as).items():
        writes = [c.cache_write_tokens for c in rows if c.cache_write_tokens]
        written, read = sum(writes), sum(c.cache_read_tokens for c in rows)
        if not writes or read >= written:
            continue
        largest = max(writes)
        rewritten = written - largest
        pricer = facts.pricer
        saving = pricer.list_cost(model, Usage(cache_write_tokens=rewritten)) - pricer.list_cost(
            model, Usage(cache_read_tokens=rewritten)
        )
        if read == 0:  # even the first write was never used: its premium over plain input
            saving += pricer.list_cost(model, Usage(cache_write_tokens=largest)) - (
                pricer.list_cost(model, Usage(input_tokens=largest))
            )
        if saving <= 0:
            continue
        prompt = sum(usage_of(c).prompt_tokens for c in rows)
        share = read / prompt if prompt else 0.0
        found.append(
            Recommendation(
                kind="cache-layout",
                message=(
                    f"{model}: {written:,} prompt tokens were written to the cache in "
                    f"{len(writes)} calls but only {read:,} read back ({share:.0%} of its "
                    "input): the shared prefix is not being reused. Keep what the calls share "
                    "(show bible, then knowledge base) byte-identical and first, before the "
                    f"cache breakpoints; reading it instead would have saved ${saving:.4f}."
                ),
                saving_usd=saving,
                evidence={
                    "model": model,
                    "calls": len(rows),
                    "writing_calls": len(writes),
                    "cache_write_tokens": written,
                    "cache_read_tokens": read,
                    "cache_read_share": round(share, 4),
                },
            )
        )
    return found


def max_tokens(facts: RunFacts) -> list[Recommendation]:
    """Replies cut off at their output allowance. The journal keeps no stop reason, but a
    provider stops exactly at `max_tokens`, so a call whose every attempt produced that many
    tokens hit the limit (a call's output is summed over its attempts). The rejected replies
    among them were paid for and made again."""
    found = []
    for (stage, role), rows in _by(facts.calls, lambda c: (c.stage, c.role)).items():
        capped = [
            c
            for c in rows
            if c.task_kind != "tts" and c.max_tokens and c.output_tokens >= c.max_tokens * _tries(c)
        ]
        if not capped:
            continue
        wasted = sum((c.rejected_cost for c in capped), Decimal(0))
        limits = sorted({c.max_tokens for c in capped if c.max_tokens})
        budgeted = sorted({c.budget_note for c in capped if c.budget_note})
        seconds = sum(_seconds(c) * c.rejected_replies / _tries(c) for c in capped)
        cause = (
            f" The budget lowered the limit ({'; '.join(budgeted)}): a larger budget avoids it."
            if budgeted
            else " Raise the role's output allowance or ask for shorter output."
        )
        found.append(
            Recommendation(
                kind="max-tokens",
                message=(
                    f"{len(capped)} of {len(rows)} {role} calls in {stage} stopped at their "
                    f"max_tokens ({', '.join(str(n) for n in limits)}), so their replies were "
                    f"cut off; {sum(c.rejected_replies for c in capped)} were rejected and paid "
                    f"for again (${wasted:.4f}).{cause}"
                ),
                saving_usd=wasted,
                saving_s=round(seconds, 3) if seconds else None,
                evidence={
                    "stage": stage,
                    "role": role,
                    "calls": [c.step_key for c in capped],
                    "max_tokens": limits,
                    "output_tokens": [c.output_tokens for c in capped],
                    "rejected_replies": sum(c.rejected_replies for c in capped),
                    "budget_notes": budgeted,
                },
            )
        )
    return found


def voice_engine(facts: RunFacts) -> list[Recommendation]:
    """A voice engine that is cheap per character but made so many takes again that another
    engine, paid once per clip, would have cost less: its retries cost more than the price
    difference."""
    found = []
    takes = _takes(facts.events)
    for route, rows in _by(facts.speech, lambda c: c.priced_as).items():
        paid = sum((c.cost for c in rows), Decimal(0))
        extra = sum(
            (c.cost * (takes.get(c.step_key, 1) - 1) / takes.get(c.step_key, 1) for c in rows),
            Decimal(0),
        )
        if extra <= 0:
            continue
        characters = sum(len(c.prompt) for c in rows)
        once = paid - extra
        options = [
            (other, rate * characters / MILLION)
            for other, rate in _character_rates(facts.pricer).items()
            if other != route
        ]
        cheaper = [(o, cost) for o, cost in options if once < cost < paid]
        if not cheaper:
            continue
        other, cost = min(cheaper, key=lambda item: item[1])
        retakes = sum(takes.get(c.step_key, 1) - 1 for c in rows)
        found.append(
            Recommendation(
                kind="voice-engine",
                message=(
                    f"{route} made {retakes} takes again for {len(rows)} clips: ${extra:.4f} of "
                    f"its ${paid:.4f}. {other} costs ${cost - once:.4f} more for the same "
                    f"{characters:,} characters taken once, less than those retries; switch "
                    f"`audio.engine` to it (saving ${paid - cost:.4f}) or find why takes fail."
                ),
                saving_usd=paid - cost,
                evidence={
                    "engine": route,
                    "clips": len(rows),
                    "retakes": retakes,
                    "paid": paid,
                    "retries_cost": extra,
                    "characters": characters,
                    "alternative": other,
                    "alternative_cost": cost,
                },
            )
        )
    return found


RULES: tuple[Callable[[RunFacts], list[Recommendation]], ...] = (
    batch_research,
    cache_layout,
    max_tokens,
    voice_engine,
)


def recommend(facts: RunFacts) -> list[Recommendation]:
    """Every run-level rule's recommendations, the largest saving first."""
    found = [r for rule in RULES for r in rule(facts)]
    return ranked(found)


def ranked(found: Iterable[Recommendation]) -> list[Recommendation]:
    return sorted(found, key=lambda r: (-(r.saving_usd or Decimal(0)), -(r.saving_s or 0.0)))


def _takes(events: list[EventRecord]) -> dict[str, int]:
    """How many takes each voiced clip needed (its `clip-synthesized` event), by step key."""
    takes = {}
    for event in events:
        if event.kind == "clip-synthesized":
            step_key = event.message.partition(":")[0]
            takes[step_key] = int(event.data.get("attempts", 1))
    return takes


def _character_rates(pricer: Pricer) -> dict[str, Decimal]:
    """Every engine priced per character, castline's table with the show's overrides."""
    rates = {}
    for route in {*CASTLINE_PRICES, *pricer.overrides}:
        try:
            rates[route] = pricer.characters_cost(route, 1_000_000)
        except UnpricedModel:
            continue
    return rates


def _tries(call: CallRecord) -> int:
    """The attempts a call paid for: its rejected replies, and the reply it settled on."""
    return max(call.rejected_replies + (1 if call.status == "ok" else 0), 1)


def _seconds(call: CallRecord) -> float:
    return (call.finished_at - call.started_at) if call.finished_at is not None else 0.0


def _by(rows: Iterable[CallRecord], key: Callable[[CallRecord], K]) -> dict[K, list[CallRecord]]:
    groups: dict[K, list[CallRecord]] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return groups


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value

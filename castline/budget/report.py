"""The cost report of a run: where the money went, what caching and batching saved, and how the
budget was held (peak reserved, budget left, mode changes, refusals).

Every paid call counts: a reply that was rejected (it did not validate) was billed, so its cost
and tokens are in its stage's row and counted apart as `rejected`; a call in flight at a crash
counts at its reservation as `unreconciled`, apart from the settled money and in the total."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from castline.budget.prices import Pricer
from castline.config import Show
from castline.llm.base import Usage
from castline.store import UNRECONCILED, CallRecord, Store


@dataclass(frozen=True)
class CostRow:
    """One group's money. `cost` is settled: every paid attempt, the `rejected` replies (paid
    for, but invalid) included; `unreconciled_cost` is what the group's `unreconciled` calls (in
    flight at a crash) still count at, their reservations."""

    key: str
    calls: int
    input_tokens: int
    cache_write_tokens: int
    cache_read_tokens: int
    output_tokens: int
    cost: Decimal
    rejected: int = 0
    rejected_cost: Decimal = Decimal(0)
    unreconciled: int = 0
    unreconciled_cost: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        return self.cost + self.unreconciled_cost


@dataclass(frozen=True)
class CostReport:
    """Where the money went. `spent` is settled money (rejected replies included);
    `unreconciled` what calls in flight at a crash still count at; `total` is both, what the run
    may have been billed, and what the budget holds it to."""

    run_id: str
    shadow: bool
    budget: Decimal
    spent: Decimal
    list_price: Decimal
    cache_savings: Decimal
    batch_savings: Decimal
    peak_reserved: Decimal
    mode: str
    mode_changes: list[dict[str, Any]]
    refused: int
    by_stage: list[CostRow]
    by_role: list[CostRow]
    by_model: list[CostRow]
    unreconciled: Decimal = Decimal(0)
    rejected: int = 0
    rejected_cost: Decimal = Decimal(0)
    unreconciled_calls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return self.spent + self.unreconciled

    @property
    def budget_left(self) -> Decimal:
        return self.budget - self.total

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["total"] = self.total
        data["budget_left"] = self.budget_left
        data["label"] = "shadow cost (offline)" if self.shadow else "cost"
        for name in ("by_stage", "by_role", "by_model"):
            for row, group in zip(data[name], getattr(self, name), strict=True):
                row["total"] = group.total
        result: dict[str, Any] = _strings(data)
        return result


def _strings(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strings(v) for v in value]
    return value


def cost_report(store: Store, run_id: str) -> CostReport:
    record = store.get_run(run_id)
    pricer = Pricer(Show.model_validate(record.spec["show"]).prices) if record.spec else Pricer()
    every = store.calls(record.id)
    # every call that was paid for or may have been: answered, failed after a billed attempt
    # (a rejected reply), or unreconciled
    paid = [c for c in every if c.status in ("ok", UNRECONCILED) or c.cost or c.rejected_replies]
    # speech is billed per character: its list price is what was paid, and it has no cache
    tokens = [c for c in paid if c.task_kind != "tts"]
    speech = sum((c.cost for c in paid if c.task_kind == "tts"), Decimal(0))
    list_price = speech + sum(
        (pricer.list_cost(c.priced_as, usage_of(c)) for c in tokens), Decimal(0)
    )
    spent = sum((c.cost for c in paid), Decimal(0))
    cache = sum((pricer.cache_savings(c.priced_as, usage_of(c)) for c in tokens), Decimal(0))
    modes = [e for e in store.events(record.id) if e.kind == "budget-mode"]
    doubtful = [c for c in paid if c.status == UNRECONCILED]
    return CostReport(
        run_id=record.id,
        shadow=record.offline,
        budget=record.budget or Decimal(0),
        spent=spent,
        list_price=list_price,
        cache_savings=cache,
        batch_savings=list_price - spent,
        peak_reserved=record.peak_reserved,
        mode=record.budget_mode,
        mode_changes=[{**e.data, "at": e.ts} for e in modes],
        refused=sum(1 for c in every if c.status == "refused"),
        by_stage=_group(paid, lambda c: c.stage),
        by_role=_group(paid, lambda c: c.role),
        by_model=_group(paid, lambda c: c.priced_as),
        unreconciled=sum((c.unreconciled for c in doubtful), Decimal(0)),
        rejected=sum(c.rejected_replies for c in paid),
        rejected_cost=sum((c.rejected_cost for c in paid), Decimal(0)),
        unreconciled_calls=[
            {
                "call_id": c.id,
                "step_key": c.step_key,
                "stage": c.stage,
                "model": c.priced_as,
                "counted_at": c.unreconciled,
                "note": c.error or "",
            }
            for c in doubtful
        ],
    )


def usage_of(call: CallRecord) -> Usage:
    """What a journaled call was billed for, as pricing reads it."""
    return Usage(
        input_tokens=call.input_tokens,
        output_tokens=call.output_tokens,
        cache_read_tokens=call.cache_read_tokens,
        cache_write_tokens=call.cache_write_tokens,
        cache_write_1h_tokens=call.cache_write_1h_tokens,
        web_searches=call.web_searches,
    )


def _group(paid: list[CallRecord], key: Callable[[CallRecord], str]) -> list[CostRow]:
    groups: dict[str, list[CallRecord]] = {}
    for call in paid:
        groups.setdefault(key(call), []).append(call)
    return [
        CostRow(
            key=name,
            calls=sum(1 for r in rows if r.status == "ok"),
            input_tokens=sum(r.input_tokens for r in rows),
            cache_write_tokens=sum(r.cache_write_tokens for r in rows),
            cache_read_tokens=sum(r.cache_read_tokens for r in rows),
            output_tokens=sum(r.output_tokens for r in rows),
            cost=sum((r.cost for r in rows), Decimal(0)),
            rejected=sum(r.rejected_replies for r in rows),
            rejected_cost=sum((r.rejected_cost for r in rows), Decimal(0)),
            unreconciled=sum(1 for r in rows if r.status == UNRECONCILED),
            unreconciled_cost=sum((r.unreconciled for r in rows), Decimal(0)),
        )
        for name, rows in groups.items()
    ]

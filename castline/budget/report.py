"""The cost report of a run: where the money went, what caching and batching saved, and how the
budget was held (peak reserved, budget left, mode changes, refusals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from castline.budget.prices import Pricer
from castline.config import Show
from castline.llm.base import Usage
from castline.store import CallRecord, Store


@dataclass(frozen=True)
class CostRow:
    key: str
    calls: int
    input_tokens: int
    cache_write_tokens: int
    cache_read_tokens: int
    output_tokens: int
    cost: Decimal


@dataclass(frozen=True)
class CostReport:
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

    @property
    def budget_left(self) -> Decimal:
        return self.budget - self.spent

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["budget_left"] = self.budget_left
        data["label"] = "shadow cost (offline)" if self.shadow else "cost"
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
    made = [c for c in store.calls(record.id) if c.status == "ok"]
    # speech is billed per character: its list price is what was paid, and it has no cache
    tokens = [c for c in made if c.task_kind != "tts"]
    speech = sum((c.cost for c in made if c.task_kind == "tts"), Decimal(0))
    list_price = speech + sum(
        (pricer.list_cost(c.priced_as, _usage(c)) for c in tokens), Decimal(0)
    )
    spent = sum((c.cost for c in made), Decimal(0))
    cache = sum((pricer.cache_savings(c.priced_as, _usage(c)) for c in tokens), Decimal(0))
    modes = [e for e in store.events(record.id) if e.kind == "budget-mode"]
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
        refused=sum(1 for c in store.calls(record.id) if c.status == "refused"),
        by_stage=_group(made, lambda c: c.stage),
        by_role=_group(made, lambda c: c.role),
        by_model=_group(made, lambda c: c.priced_as),
    )


def _usage(call: CallRecord) -> Usage:
    return Usage(
        input_tokens=call.input_tokens,
        output_tokens=call.output_tokens,
        cache_read_tokens=call.cache_read_tokens,
        cache_write_tokens=call.cache_write_tokens,
        cache_write_1h_tokens=call.cache_write_1h_tokens,
    )


def _group(made: list[CallRecord], key: Callable[[CallRecord], str]) -> list[CostRow]:
    groups: dict[str, list[CallRecord]] = {}
    for call in made:
        groups.setdefault(key(call), []).append(call)
    return [
        CostRow(
            key=name,
            calls=len(rows),
            input_tokens=sum(r.input_tokens for r in rows),
            cache_write_tokens=sum(r.cache_write_tokens for r in rows),
            cache_read_tokens=sum(r.cache_read_tokens for r in rows),
            output_tokens=sum(r.output_tokens for r in rows),
            cost=sum((r.cost for r in rows), Decimal(0)),
        )
        for name, rows in groups.items()
    ]

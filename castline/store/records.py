"""What the store hands out: frozen records of its rows, with money as `Decimal`.

Money is stored as integer nano-dollars so that sums in SQL are exact; the converters here turn
stored rows (nanos, JSON text) into the records the rest of castline reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

NANOS = Decimal(1_000_000_000)
# The status of a call that was in flight when its process died: it may have been billed, so it
# keeps counting at its reservation (see `castline.budget.ledger`).
UNRECONCILED = "unreconciled"


@dataclass(frozen=True)
class RunRecord:
    id: str
    show_title: str
    show_path: str
    topic: str
    episode_title: str | None
    status: str
    stage: str | None
    offline: bool
    routing_reason: str
    spec: dict[str, Any]
    workflow_id: str | None
    output_dir: str
    pid: int | None
    host: str | None
    error: str | None
    created_at: float
    updated_at: float
    finished_at: float | None
    budget: Decimal | None
    budget_mode: str
    peak_reserved: Decimal
    group_id: str | None = None  # the batch it was produced in (`castline batch`)

    @property
    def number(self) -> int | None:
        """The episode number fixed when the run was created; None for a run made before
        castline numbered episodes."""
        value = self.spec.get("number")
        return value if isinstance(value, int) else None


@dataclass(frozen=True)
class NumberedRun:
    """One of a show's runs and the episode number it holds, as numbering sees it."""

    id: str
    status: str
    number: int


@dataclass(frozen=True)
class CallRecord:
    id: int
    run_id: str
    step_key: str
    stage: str
    role: str
    task_kind: str
    provider: str
    model: str
    priced_as: str
    status: str
    prompt: str
    response: str | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost: Decimal
    shadow: bool
    compute_ms: float | None
    error: str | None
    started_at: float
    finished_at: float | None
    reserved: Decimal
    cache_write_1h_tokens: int
    batch: bool
    max_tokens: int | None
    budget_note: str | None
    rejected_replies: int  # replies paid for that did not validate (their cost is in `cost`)
    rejected_cost: Decimal
    web_searches: int  # the provider's server-side searches, priced apart from tokens

    @property
    def unreconciled(self) -> Decimal:
        """What a call in flight at a crash still counts at: its reservation, until a reply
        proves otherwise (zero for every other call)."""
        return self.reserved if self.status == UNRECONCILED else Decimal(0)


@dataclass(frozen=True)
class EventRecord:
    id: int
    run_id: str
    ts: float
    kind: str
    stage: str | None
    message: str
    data: dict[str, Any]


@dataclass(frozen=True)
class ArtifactRecord:
    name: str
    path: str
    sha256: str
    bytes: int


def to_nanos(amount: Decimal) -> int:
    return int((amount * NANOS).to_integral_value())


def from_nanos(nanos: int) -> Decimal:
    return Decimal(nanos) / NANOS


def run_record(row: Any) -> RunRecord:
    values = dict(row)
    values["spec"] = json.loads(values["spec"])
    budget = values.pop("budget_nanos")
    values["budget"] = from_nanos(budget) if budget is not None else None
    values["peak_reserved"] = from_nanos(values.pop("peak_reserved_nanos"))
    return RunRecord(**values)


def call_record(row: Any) -> CallRecord:
    values = dict(row)
    values["cost"] = from_nanos(values.pop("cost_nanos"))
    values["reserved"] = from_nanos(values.pop("reserved_nanos"))
    values["rejected_cost"] = from_nanos(values.pop("rejected_nanos"))
    return CallRecord(**values)

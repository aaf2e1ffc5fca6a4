"""Runs written straight into a store for the insights tests: call rows as the ledger leaves
them, events as the workflow records them, and a price table with round numbers so that every
expected saving is worked out by hand."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from castline.budget.prices import Pricer
from castline.config import ModelPrice
from castline.insights import RunFacts
from castline.store import Store, calls, to_nanos
from tests.runs import add_run

MODEL = "test:model"
# USD per million tokens: input 2, output 10, cache write 2.5, cache read 0.2, batch half off
PRICES = {
    MODEL: ModelPrice(
        input=Decimal(2),
        output=Decimal(10),
        cache_write=Decimal("2.5"),
        cache_read=Decimal("0.2"),
        batch_discount=Decimal("0.5"),
    ),
    "cheap:tts": ModelPrice(per_million_characters=Decimal(10)),
    "dear:tts": ModelPrice(per_million_characters=Decimal(12)),
    "luxury:tts": ModelPrice(per_million_characters=Decimal(50)),
}
PRICER = Pricer(PRICES)
_keys = iter(range(1_000_000))


def add_call(
    store: Store,
    run_id: str,
    *,
    stage: str = "research",
    role: str = "researcher",
    task_kind: str = "research",
    priced_as: str = MODEL,
    cost: Decimal | None = None,
    step_key: str | None = None,
    seconds: float = 2.0,
    **columns: Any,
) -> str:
    """A settled call; its cost is priced from its tokens unless given. Returns its step key."""
    key = step_key or f"{stage}.{next(_keys)}"
    tokens = {
        name: columns.pop(name, 0)
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
    }
    if cost is None:
        from castline.llm.base import Usage

        cost = PRICER.cost(priced_as, Usage(**tokens), batch=bool(columns.get("batch")))
    now = time.time()
    values = {
        "run_id": run_id,
        "step_key": key,
        "stage": stage,
        "role": role,
        "task_kind": task_kind,
        "provider": priced_as.partition(":")[0],
        "model": priced_as.partition(":")[2],
        "priced_as": priced_as,
        "status": "ok",
        "prompt": "",
        "shadow": False,
        "started_at": now - seconds,
        "finished_at": now,
        "cost_nanos": to_nanos(cost),
        **tokens,
        **columns,
    }
    if "rejected_cost" in values:
        values["rejected_nanos"] = to_nanos(values.pop("rejected_cost"))
    with store.engine.begin() as connection:
        connection.execute(calls.insert().values(**values))
    return key


def new_run(store: Store, run_id: str = "r1", **columns: Any) -> str:
    return add_run(store, run_id, offline=False, **columns)


def facts(store: Store, run_id: str = "r1") -> RunFacts:
    record = store.get_run(run_id)
    return RunFacts(record, store.calls(run_id), store.events(run_id), PRICER)

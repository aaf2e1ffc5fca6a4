"""The run store: migrations from blank, money kept exact, and episode numbers given once.

The tests that take `database_url_param` run on SQLite and on PostgreSQL
(tests/postgres_server.py).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from castline import store as store_module
from castline.budget.ledger import Ledger, Reservation
from castline.budget.policy import BudgetPolicy, Candidate
from castline.budget.prices import Pricer
from castline.config import Budget
from castline.llm.registry import Route
from castline.store import NumberedRun, Store, from_nanos, to_nanos
from tests.runs import add_run


def test_migrate_blank_builds_the_current_schema(database_url_param: str) -> None:
    store = Store(database_url_param)
    inspector = sa.inspect(store.engine)
    for table in store_module.metadata.sorted_tables:
        columns = {column["name"] for column in inspector.get_columns(table.name)}
        assert columns == set(table.columns.keys()), table.name
    with store.engine.connect() as connection:
        names = connection.execute(sa.select(store_module.schema_migrations.c.name)).scalars()
        assert list(names) == [name for name, _ in store_module.MIGRATIONS]
    assert store.migrate() == []  # applying again does nothing


def test_sqlite_store_uses_write_ahead_logging(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'wal.db'}")
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_money_round_trips_through_nanodollars() -> None:
    amount = Decimal("0.000000375")  # 1.25 tokens' worth at $0.30 per million
    assert to_nanos(amount) == 375
    assert from_nanos(to_nanos(Decimal("33.25"))) == Decimal("33.25")


def test_run_cost_sums_only_successful_calls(database_url_param: str) -> None:
    store = Store(database_url_param)
    add_run(store, budget=Decimal(10))
    ledger = Ledger(store)
    policy = BudgetPolicy(Budget(per_episode=Decimal(10)), Pricer())
    route = Route("offline", "m", "anthropic:claude-haiku-4-5")

    def reserve(key: str) -> int:
        reservation = ledger.reserve(
            "r1",
            policy,
            lambda mode: [Candidate(route, 10, False, Decimal("0.5"))],
            step_key=key,
            stage="write",
            role="writer",
            task_kind="write",
            prompt="p",
            shadow=True,
        )
        assert isinstance(reservation, Reservation)
        return reservation.call_id

    store.finish_call(reserve("a"), cost=Decimal("0.125"), response="{}", input_tokens=1)
    store.fail_call(reserve("b"), "boom")
    reserve("c")  # still in flight: reserved, not spent

    assert store.run_cost("r1") == Decimal("0.125")
    assert store.costs() == {"r1": Decimal("0.125")}
    assert store.completed_call("r1", "a") is not None
    assert store.completed_call("r1", "b") is None
    assert ledger.totals("r1").committed == Decimal("0.625")  # 0.125 spent + 0.5 reserved


def _run_values(run_id: str, show_title: str) -> dict[str, Any]:
    return {
        "id": run_id,
        "show_title": show_title,
        "show_path": "s.yaml",
        "topic": "t",
        "status": "running",
        "offline": True,
        "routing_reason": "test",
        "spec": {"provider": None},
        "output_dir": "out",
    }


def _next(numbered: list[NumberedRun]) -> int:
    return 1 + max((run.number for run in numbered), default=0)


def test_a_run_is_numbered_among_the_runs_of_its_own_show(database_url_param: str) -> None:
    store = Store(database_url_param)
    store.create_run(**_run_values("old", "Heat Check"))  # made before episodes had numbers
    seen: list[list[NumberedRun]] = []

    def choose(numbered: list[NumberedRun]) -> int:
        seen.append(numbered)
        return _next(numbered)

    first = store.create_numbered_run("heat check", choose, **_run_values("a1", "Heat Check"))
    other = store.create_numbered_run("other", choose, **_run_values("b1", "Other"))
    store.update_run("a1", status="failed")
    second = store.create_numbered_run("heat check", choose, **_run_values("a2", " HEAT  check"))

    assert (first, other, second) == (1, 1, 2)
    assert seen[-1] == [NumberedRun("a1", "failed", 1)]  # same show, any spelling; not "old"
    assert [store.get_run(i).number for i in ("old", "a1", "b1", "a2")] == [None, 1, 1, 2]
    assert store.get_run("a2").spec == {"provider": None, "number": 2}


def test_a_refused_number_records_no_run(database_url_param: str) -> None:
    store = Store(database_url_param)

    def refuse(numbered: list[NumberedRun]) -> int:
        raise ValueError("taken")

    with pytest.raises(ValueError, match="taken"):
        store.create_numbered_run("s", refuse, **_run_values("r1", "S"))
    assert store.list_runs() == []


def test_runs_created_at_once_never_share_a_number(database_url_param: str) -> None:
    store = Store(database_url_param)
    barrier = threading.Barrier(8)

    def create(index: int) -> int:
        barrier.wait()
        return store.create_numbered_run("s", _next, **_run_values(f"r{index}", "S"))

    with ThreadPoolExecutor(max_workers=8) as pool:
        numbers = list(pool.map(create, range(8)))

    assert sorted(numbers) == list(range(1, 9))

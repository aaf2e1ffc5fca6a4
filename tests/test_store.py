"""The run store: migrations from blank, and money kept exact."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from castline import store as store_module
from castline.budget.ledger import Ledger, Reservation
from castline.budget.policy import BudgetPolicy, Candidate
from castline.budget.prices import Pricer
from castline.config import Budget
from castline.llm.registry import Route
from castline.store import Store, from_nanos, to_nanos


def test_migrate_blank_builds_the_current_schema(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'blank.db'}")
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


def test_run_cost_sums_only_successful_calls(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'cost.db'}")
    store.create_run(
        id="r1",
        show_title="S",
        show_path="s.yaml",
        topic="t",
        status="running",
        offline=True,
        routing_reason="test",
        spec={},
        output_dir="out",
        budget_nanos=to_nanos(Decimal(10)),
    )
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

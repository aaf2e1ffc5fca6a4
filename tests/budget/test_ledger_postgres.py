"""The store and the budget ledger on a real PostgreSQL server.

Each test gets a fresh database (`postgres_url`) on the session's throwaway server, or on the
server that CASTLINE_TEST_POSTGRES_URL names (see tests/postgres_server.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from castline.budget.ledger import Ledger, Refusal, Reservation
from castline.budget.policy import BudgetPolicy, Candidate
from castline.budget.prices import Pricer
from castline.config import Budget
from castline.llm.registry import Route
from castline.store import MIGRATIONS, Store, metadata
from tests.runs import add_run

ROUTE = Route("offline", "claude-haiku-4-5", "anthropic:claude-haiku-4-5")
REFERENCE_SCHEMA = "castline_schema_reference"


@pytest.fixture
def url(postgres_url: str) -> str:
    return postgres_url


@pytest.fixture
def engine(url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(url)
    yield engine
    engine.dispose()


def _run_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _create_run(store: Store, run_id: str, limit: Decimal) -> None:
    add_run(store, run_id, budget=limit, spec={"k": [1, 2]})


def _budget(limit: Decimal) -> Budget:
    # One allocation takes (nearly) everything, so only the overall budget binds.
    zero = {stage: Decimal(0) for stage in ("research", "plan", "review", "polish", "voice")}
    return Budget(
        per_episode=limit,
        orchestration_share=Decimal("0.01"),
        allocations={**zero, "write": Decimal("0.99")},
    )


def _reserve(
    ledger: Ledger, policy: BudgetPolicy, run_id: str, key: str, amount: Decimal
) -> Reservation | Refusal:
    return ledger.reserve(
        run_id,
        policy,
        lambda mode: [Candidate(ROUTE, 100, False, amount)],
        step_key=key,
        stage="write",
        role="writer",
        task_kind="write",
        prompt="p",
        shadow=True,
    )


# -- (a) migrations from blank ------------------------------------------------------------------


def _shape(inspector: Any, table: str, schema: str | None) -> dict[str, Any]:
    """What a reflected table looks like, with the schema name taken out."""
    columns = [
        (
            column["name"],
            str(column["type"]),
            column["nullable"],
            (column.get("default") or "").replace(f"{REFERENCE_SCHEMA}.", ""),
        )
        for column in inspector.get_columns(table, schema=schema)
    ]
    foreign_keys = sorted(
        (tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
        for fk in inspector.get_foreign_keys(table, schema=schema)
    )
    indexes = sorted(
        (tuple(index["column_names"]), bool(index["unique"]))
        for index in inspector.get_indexes(table, schema=schema)
    )
    primary_key = inspector.get_pk_constraint(table, schema=schema)["constrained_columns"]
    return {
        "columns": columns,
        "primary_key": primary_key,
        "foreign_keys": foreign_keys,
        "indexes": indexes,
    }


def _generic(type_: sa.types.TypeEngine[Any]) -> str:
    generic = type_.as_generic()
    # Postgres stores an unqualified FLOAT as DOUBLE PRECISION.
    return "Double" if isinstance(generic, sa.Float) else repr(generic)


def test_migrations_from_blank_build_the_schema_of_the_metadata(
    url: str, engine: sa.Engine
) -> None:
    castline_tables = set(metadata.tables)
    assert castline_tables.isdisjoint(sa.inspect(engine).get_table_names())  # a blank database

    store = Store(url)  # migrates

    with store.engine.connect() as connection:
        applied = connection.execute(
            sa.text("SELECT name FROM schema_migrations ORDER BY name")
        ).scalars()
        assert list(applied) == [name for name, _ in MIGRATIONS]
    assert store.migrate() == []  # idempotent

    # The reference: the current metadata created directly, in a schema of its own.
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA {REFERENCE_SCHEMA}")
            metadata.create_all(
                connection.execution_options(schema_translate_map={None: REFERENCE_SCHEMA})
            )
        inspector = sa.inspect(engine)
        assert castline_tables <= set(inspector.get_table_names())
        assert set(inspector.get_table_names(schema=REFERENCE_SCHEMA)) == castline_tables
        for name, table in metadata.tables.items():
            migrated = _shape(inspector, name, None)
            assert migrated == _shape(inspector, name, REFERENCE_SCHEMA), name
            # and against the Table object itself, column by column
            reflected = inspector.get_columns(name)
            assert [c["name"] for c in reflected] == [c.name for c in table.columns]
            for found, column in zip(reflected, table.columns, strict=True):
                where = (name, column.name)
                assert _generic(found["type"]) == _generic(column.type), where
                assert found["nullable"] == column.nullable, where
                serial = column is table.autoincrement_column  # nextval() of its sequence
                has_default = column.server_default is not None or serial
                assert (found["default"] is not None) == has_default, where
            assert migrated["primary_key"] == [c.name for c in table.primary_key.columns]
            assert {fk[0] for fk in migrated["foreign_keys"]} == {
                (fk.parent.name,) for fk in table.foreign_keys
            }
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {REFERENCE_SCHEMA} CASCADE")


# -- the store's own reads and writes -----------------------------------------------------------


def test_the_store_round_trips_runs_calls_events_and_artifacts(url: str) -> None:
    store = Store(url)
    run_id = _run_id("roundtrip")
    _create_run(store, run_id, Decimal("2.5"))

    run = store.get_run(run_id)
    assert run.offline is True and run.spec == {"k": [1, 2]}
    assert run.budget == Decimal("2.5") and run.budget_mode == "normal"
    assert run.peak_reserved == 0  # server defaults of migration 0002
    assert store.get_run(run_id[: len("roundtrip-") + 10]).id == run_id  # unique prefix

    ledger = Ledger(store)
    policy = BudgetPolicy(_budget(Decimal("2.5")), Pricer())
    first = _reserve(ledger, policy, run_id, "a", Decimal("1.5"))
    assert isinstance(first, Reservation)
    assert isinstance(_reserve(ledger, policy, run_id, "b", Decimal("1.5")), Refusal)
    store.finish_call(first.call_id, cost=Decimal("1.25"), response="{}", input_tokens=3)
    [call, refused] = store.calls(run_id)
    assert call.status == "ok" and call.cost == Decimal("1.25") and call.reserved == 0
    assert call.batch is False and call.shadow is True and call.cache_write_1h_tokens == 0
    assert refused.status == "refused" and refused.reserved == 0
    assert store.completed_call(run_id, "a") == call
    assert store.run_cost(run_id) == Decimal("1.25") == store.costs()[run_id]
    assert store.get_run(run_id).peak_reserved == Decimal("1.5")

    stale = _reserve(ledger, policy, run_id, "c", Decimal("1"))
    assert isinstance(stale, Reservation)
    assert ledger.mark_unreconciled(run_id) == 1  # 'unreconciled' fits the widened column
    assert ledger.totals(run_id).committed == Decimal("2.25")  # still counted: it may be billed
    assert store.run_cost(run_id) == Decimal("2.25") == store.costs()[run_id]

    store.add_artifact(run_id, "script.md", "out/script.md", "0" * 64, 10)
    store.add_artifact(run_id, "script.md", "out/script.md", "1" * 64, 11)
    assert [(a.name, a.bytes) for a in store.artifacts(run_id)] == [("script.md", 11)]
    kinds = [event.kind for event in store.events(run_id)]
    assert kinds.count("budget-refused") == 1


# (b), fifty concurrent calls from five processes: test_ledger.py runs it on both backends.

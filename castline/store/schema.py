"""The schema: castline's tables and the named, append-only migrations that build them.

Every database starts from migration 0001 and gains the later ones in order, each recorded in
`schema_migrations`, so an old database and a new one end up with the same tables.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

metadata = sa.MetaData()

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("applied_at", sa.Float, nullable=False),
)


def _runs_table(md: sa.MetaData) -> sa.Table:
    return sa.Table(
        "runs",
        md,
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("show_title", sa.Text, nullable=False),
        sa.Column("show_path", sa.Text, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("episode_title", sa.Text),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("stage", sa.String(20)),
        sa.Column("offline", sa.Boolean, nullable=False),
        sa.Column("routing_reason", sa.Text, nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("workflow_id", sa.String(80)),
        sa.Column("output_dir", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer),
        sa.Column("host", sa.String(255)),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float),
    )


def _sources_table(md: sa.MetaData) -> sa.Table:
    return sa.Table(
        "sources",
        md,
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("source_id", sa.String(200), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )


def _calls_table(md: sa.MetaData) -> sa.Table:
    return sa.Table(
        "calls",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id"), nullable=False, index=True),
        sa.Column("step_key", sa.String(200), nullable=False),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("task_kind", sa.String(40), nullable=False),
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("priced_as", sa.String(240), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("response", sa.Text),
        sa.Column("input_tokens", sa.Integer, nullable=False, default=0),
        sa.Column("output_tokens", sa.Integer, nullable=False, default=0),
        sa.Column("cache_read_tokens", sa.Integer, nullable=False, default=0),
        sa.Column("cache_write_tokens", sa.Integer, nullable=False, default=0),
        sa.Column("cost_nanos", sa.BigInteger, nullable=False, default=0),
        sa.Column("shadow", sa.Boolean, nullable=False),
        sa.Column("compute_ms", sa.Float),
        sa.Column("error", sa.Text),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float),
    )


def _events_table(md: sa.MetaData) -> sa.Table:
    return sa.Table(
        "events",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id"), nullable=False, index=True),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("stage", sa.String(20)),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("data", sa.Text),
    )


def _artifacts_table(md: sa.MetaData) -> sa.Table:
    return sa.Table(
        "artifacts",
        md,
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def _batches_table(md: sa.MetaData) -> sa.Table:
    return sa.Table(
        "batches",
        md,
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("batch_id", sa.String(200), nullable=False),
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("items", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def _scripts_table(md: sa.MetaData) -> sa.Table:
    return sa.Table(
        "scripts",
        md,
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("show_key", sa.String(300), nullable=False, index=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("hosts", sa.Text, nullable=False),
        sa.Column("script", sa.Text, nullable=False),
        sa.Column("accepted", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def _reviews_table(md: sa.MetaData) -> sa.Table:
    return sa.Table(
        "reviews",
        md,
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("round", sa.Integer, primary_key=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("requested_at", sa.Float, nullable=False),
        sa.Column("decided_at", sa.Float),
        sa.Column("note", sa.Text),
        sa.Column("script", sa.Text),
    )


def _executors_table(md: sa.MetaData) -> sa.Table:
    return sa.Table(
        "executors",
        md,
        sa.Column("id", sa.String(120), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
        sa.Column("stopped_at", sa.Float),
        sa.Column("recovered_at", sa.Float),
        sa.Column("recovered_by", sa.String(120)),
    )


def _groups_table(md: sa.MetaData) -> sa.Table:
    """Runs produced as one batch, under one total cap (`castline batch`)."""
    return sa.Table(
        "run_groups",
        md,
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("cap_nanos", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def _provider_slots_table(md: sa.MetaData) -> sa.Table:
    """Requests in flight to each provider, shared by every process (`engine.paid.limits`)."""
    return sa.Table(
        "provider_slots",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("holder", sa.String(120)),
        sa.Column("acquired_at", sa.Float, nullable=False),
        sa.Column("released_at", sa.Float),
        sa.Index("ix_provider_slots_provider_acquired_at", "provider", "acquired_at"),
    )


# A run's group, added by migration 0007.
V7_RUN_COLUMNS: list[sa.Column[Any]] = [sa.Column("group_id", sa.String(40))]


# Columns added after the first version, by table. Migration 0002 adds them to an existing
# database; the current table objects get them appended.
V2_COLUMNS: dict[str, list[sa.Column[Any]]] = {
    "runs": [
        sa.Column("budget_nanos", sa.BigInteger),
        sa.Column("budget_mode", sa.String(12), nullable=False, server_default="normal"),
        sa.Column("peak_reserved_nanos", sa.BigInteger, nullable=False, server_default="0"),
    ],
    "calls": [
        sa.Column("reserved_nanos", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("cache_write_1h_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("batch", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("max_tokens", sa.Integer),
        sa.Column("budget_note", sa.Text),
    ],
}

runs = _runs_table(metadata)
sources = _sources_table(metadata)
calls = _calls_table(metadata)
events = _events_table(metadata)
artifacts = _artifacts_table(metadata)
batches = _batches_table(metadata)
scripts = _scripts_table(metadata)
reviews = _reviews_table(metadata)
executors = _executors_table(metadata)
groups = _groups_table(metadata)
provider_slots = _provider_slots_table(metadata)
for _table in (runs, calls):
    for _column in V2_COLUMNS[_table.name]:
        _table.append_column(_column)

# Migration 0006: a call in flight at a crash is kept as 'unreconciled' (longer than the first
# version's status column allowed), and the replies a call paid for but rejected (invalid JSON)
# are counted on its row.
CALL_STATUS_LENGTH = 20
V6_CALL_COLUMNS: list[sa.Column[Any]] = [
    sa.Column("rejected_replies", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rejected_nanos", sa.BigInteger, nullable=False, server_default="0"),
]
calls.c.status.type = sa.String(CALL_STATUS_LENGTH)
for _column in V6_CALL_COLUMNS:
    calls.append_column(_column)
for _column in V7_RUN_COLUMNS:
    runs.append_column(_column)
    sa.Index(f"ix_runs_{_column.name}", _column)
# Migration 0009: a call's server-side web searches, billed per search beside its tokens.
V9_CALL_COLUMNS: list[sa.Column[Any]] = [
    sa.Column("web_searches", sa.Integer, nullable=False, server_default="0"),
]
for _column in V9_CALL_COLUMNS:
    calls.append_column(_column)
# Migration 0010: what a run's cost sums, covered (see `_migration_0010_cost_index`).
COST_INDEX = sa.Index(
    "ix_calls_costs", calls.c.run_id, calls.c.status, calls.c.cost_nanos, calls.c.reserved_nanos
)


def _migration_0001_initial(connection: Connection) -> None:
    # Tables are defined by functions so that this migration keeps creating version-1 tables
    # even after later migrations alter them.
    md = sa.MetaData()
    for build in (_runs_table, _sources_table, _calls_table, _events_table, _artifacts_table):
        build(md)
    md.create_all(connection)


def _migration_0003_batches(connection: Connection) -> None:
    md = sa.MetaData()
    sa.Table("runs", md, sa.Column("id", sa.String(40), primary_key=True))
    _batches_table(md).create(connection)


def _migration_0004_quality(connection: Connection) -> None:
    md = sa.MetaData()
    sa.Table("runs", md, sa.Column("id", sa.String(40), primary_key=True))
    _scripts_table(md).create(connection)
    _reviews_table(md).create(connection)


def _migration_0005_executors(connection: Connection) -> None:
    _executors_table(sa.MetaData()).create(connection)


def _migration_0002_budget_ledger(connection: Connection) -> None:
    for table, columns in V2_COLUMNS.items():
        for column in columns:
            ddl = sa.schema.CreateColumn(column).compile(dialect=connection.dialect)
            connection.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {ddl}")


def _migration_0006_unreconciled_calls(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":  # SQLite does not enforce a VARCHAR's length
        connection.exec_driver_sql(
            f"ALTER TABLE calls ALTER COLUMN status TYPE VARCHAR({CALL_STATUS_LENGTH})"
        )
    for column in V6_CALL_COLUMNS:
        ddl = sa.schema.CreateColumn(column).compile(dialect=connection.dialect)
        connection.exec_driver_sql(f"ALTER TABLE calls ADD COLUMN {ddl}")


def _migration_0007_groups(connection: Connection) -> None:
    _groups_table(sa.MetaData()).create(connection)
    for column in V7_RUN_COLUMNS:
        ddl = sa.schema.CreateColumn(column).compile(dialect=connection.dialect)
        connection.exec_driver_sql(f"ALTER TABLE runs ADD COLUMN {ddl}")
        connection.exec_driver_sql(f"CREATE INDEX ix_runs_{column.name} ON runs ({column.name})")


def _migration_0008_provider_slots(connection: Connection) -> None:
    _provider_slots_table(sa.MetaData()).create(connection)


def _migration_0009_web_searches(connection: Connection) -> None:
    for column in V9_CALL_COLUMNS:
        ddl = sa.schema.CreateColumn(column).compile(dialect=connection.dialect)
        connection.exec_driver_sql(f"ALTER TABLE calls ADD COLUMN {ddl}")


def _migration_0010_cost_index(connection: Connection) -> None:
    # what a run's cost sums, covered: the runs list reads it for every run without touching
    # the rows' prompts and replies (1,000 episodes: about 400 ms to 5 ms)
    COST_INDEX.create(connection)


MIGRATIONS: list[tuple[str, Callable[[Connection], None]]] = [
    ("0001_initial", _migration_0001_initial),
    ("0002_budget_ledger", _migration_0002_budget_ledger),
    ("0003_batches", _migration_0003_batches),
    ("0004_quality", _migration_0004_quality),
    ("0005_executors", _migration_0005_executors),
    ("0006_unreconciled_calls", _migration_0006_unreconciled_calls),
    ("0007_groups", _migration_0007_groups),
    ("0008_provider_slots", _migration_0008_provider_slots),
    ("0009_web_searches", _migration_0009_web_searches),
    ("0010_cost_index", _migration_0010_cost_index),
]


def apply_migrations(connection: Connection) -> list[str]:
    """Apply the migrations not yet recorded; return their names.

    The connection must already hold the database's write lock (`Store.exclusive`).
    """
    applied: list[str] = []
    # One migrator at a time: SQLite's write lock, or a Postgres advisory lock (DDL is
    # transactional there, so each migration commits or vanishes with its record).
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": 7_431_003})
    schema_migrations.create(connection, checkfirst=True)
    done = set(connection.execute(sa.select(schema_migrations.c.name)).scalars())
    for name, migration in MIGRATIONS:
        if name not in done:
            migration(connection)
            connection.execute(schema_migrations.insert().values(name=name, applied_at=time.time()))
            applied.append(name)
    return applied

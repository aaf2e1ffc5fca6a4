"""The run store: runs, their sources, every model call, the audit trail and the artifacts.

SQLAlchemy Core on SQLite (WAL) by default or Postgres by URL. The schema is built by named,
append-only migrations recorded in `schema_migrations`, from the first version on. Money is stored
as integer nano-dollars so that sums in SQL are exact; the API speaks `Decimal`.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from castline.errors import RunNotFound

NANOS = Decimal(1_000_000_000)
IMMEDIATE = "castline_immediate"
NUMBERING_LOCK = 7_431_004  # Postgres advisory lock taken while a run's episode number is chosen

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
for _table in (runs, calls):
    for _column in V2_COLUMNS[_table.name]:
        _table.append_column(_column)


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


def _migration_0002_budget_ledger(connection: Connection) -> None:
    for table, columns in V2_COLUMNS.items():
        for column in columns:
            ddl = sa.schema.CreateColumn(column).compile(dialect=connection.dialect)
            connection.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {ddl}")


MIGRATIONS: list[tuple[str, Callable[[Connection], None]]] = [
    ("0001_initial", _migration_0001_initial),
    ("0002_budget_ledger", _migration_0002_budget_ledger),
    ("0003_batches", _migration_0003_batches),
    ("0004_quality", _migration_0004_quality),
]


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


def _numbered(connection: sa.Connection, show_key: str) -> list[NumberedRun]:
    query = sa.select(runs.c.id, runs.c.status, runs.c.show_title, runs.c.spec)
    numbered = []
    for row in connection.execute(query.order_by(runs.c.created_at)).mappings():
        held = json.loads(row["spec"]).get("number")
        if _title_key(row["show_title"]) == show_key and isinstance(held, int):
            numbered.append(NumberedRun(row["id"], row["status"], held))
    return numbered


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


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def _engine(url: str) -> Engine:
    with _engines_lock:
        if url not in _engines:
            if url.startswith("sqlite:///"):
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
                engine = sa.create_engine(url, connect_args={"timeout": 30})

                @sa.event.listens_for(engine, "connect")
                def _pragmas(dbapi_connection: Any, _record: Any) -> None:
                    # Let SQLAlchemy's "begin" below decide how transactions start.
                    dbapi_connection.isolation_level = None
                    cursor = dbapi_connection.cursor()
                    cursor.execute("PRAGMA journal_mode=WAL")
                    cursor.execute("PRAGMA synchronous=NORMAL")
                    cursor.execute("PRAGMA foreign_keys=ON")
                    cursor.close()

                @sa.event.listens_for(engine, "begin")
                def _begin(connection: Connection) -> None:
                    # A reservation takes the write lock before it reads the totals it checks,
                    # so no other thread or process can reserve in between.
                    immediate = connection.get_execution_options().get(IMMEDIATE, False)
                    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

            else:
                engine = sa.create_engine(url, pool_pre_ping=True)
            _engines[url] = engine
        return _engines[url]


def to_nanos(amount: Decimal) -> int:
    return int((amount * NANOS).to_integral_value())


def from_nanos(nanos: int) -> Decimal:
    return Decimal(nanos) / NANOS


class Store:
    """All reads and writes of castline's own tables."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _engine(url)
        self.migrate()

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        with self.engine.begin() as connection:
            yield connection

    @contextmanager
    def exclusive(self) -> Iterator[Connection]:
        """A transaction that holds the database's write lock from its first statement
        (SQLite `BEGIN IMMEDIATE`; on Postgres, callers lock the rows they read with
        `SELECT ... FOR UPDATE`)."""
        with self.engine.connect() as connection:
            connection.execution_options(**{IMMEDIATE: True})
            with connection.begin():
                yield connection

    def migrate(self) -> list[str]:
        """Apply the migrations not yet recorded; return their names."""
        applied: list[str] = []
        # One migrator at a time: SQLite's write lock, or a Postgres advisory lock (DDL is
        # transactional there, so each migration commits or vanishes with its record).
        with self.exclusive() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": 7_431_003}
                )
            schema_migrations.create(connection, checkfirst=True)
            done = set(connection.execute(sa.select(schema_migrations.c.name)).scalars())
            for name, migration in MIGRATIONS:
                if name not in done:
                    migration(connection)
                    connection.execute(
                        schema_migrations.insert().values(name=name, applied_at=time.time())
                    )
                    applied.append(name)
        return applied

    # runs

    def create_run(self, **values: Any) -> None:
        with self._begin() as connection:
            _insert_run(connection, values)

    def create_numbered_run(
        self, show_key: str, choose: Callable[[list[NumberedRun]], int], **values: Any
    ) -> int:
        """Create a run whose spec holds the episode number `choose` picks from the numbers the
        show's runs already have; return it.

        Reading the numbers and inserting the run happen under the database's write lock, so two
        runs of a show created at the same moment never both take the same next number.
        """
        with self.exclusive() as connection:
            if connection.dialect.name == "postgresql":
                # no row to lock before the run exists: serialise numbering itself
                connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": NUMBERING_LOCK}
                )
            number = choose(_numbered(connection, show_key))
            _insert_run(connection, {**values, "spec": {**values["spec"], "number": number}})
        return number

    def numbered_runs(self, show_key: str) -> list[NumberedRun]:
        """The show's runs that hold an episode number, oldest first."""
        with self._begin() as connection:
            return _numbered(connection, show_key)

    def update_run(self, run_id: str, **values: Any) -> None:
        if "spec" in values:
            values["spec"] = json.dumps(values["spec"])
        with self._begin() as connection:
            connection.execute(
                runs.update().where(runs.c.id == run_id).values(**values, updated_at=time.time())
            )

    def claim_run(self, run_id: str) -> None:
        """Record that this process now owns the run."""
        self.update_run(run_id, pid=os.getpid(), host=_host())

    def get_run(self, run_id: str) -> RunRecord:
        with self._begin() as connection:
            row = connection.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
            if row is None:
                matches = (
                    connection.execute(sa.select(runs).where(runs.c.id.startswith(run_id)))
                    .mappings()
                    .all()
                )
                if len(matches) != 1:
                    raise RunNotFound(run_id)
                row = matches[0]
        return _run_record(row)

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        query = sa.select(runs).order_by(runs.c.created_at.desc()).limit(limit)
        with self._begin() as connection:
            return [_run_record(row) for row in connection.execute(query).mappings()]

    # sources

    def save_sources(self, run_id: str, documents: list[dict[str, Any]]) -> None:
        with self._begin() as connection:
            for position, document in enumerate(documents):
                connection.execute(
                    sources.insert().values(
                        run_id=run_id,
                        position=position,
                        source_id=document["id"],
                        data=json.dumps(document),
                    )
                )

    def load_sources(self, run_id: str) -> list[dict[str, Any]]:
        query = sa.select(sources.c.data).where(sources.c.run_id == run_id)
        with self._begin() as connection:
            rows = connection.execute(query.order_by(sources.c.position)).scalars()
            return [json.loads(row) for row in rows]

    # calls: the journal of every model call

    def completed_call(self, run_id: str, step_key: str) -> CallRecord | None:
        """The successful call recorded for this step, if a previous attempt got that far."""
        query = sa.select(calls).where(
            calls.c.run_id == run_id, calls.c.step_key == step_key, calls.c.status == "ok"
        )
        with self._begin() as connection:
            row = connection.execute(query).mappings().first()
        return _call_record(row) if row else None

    def finish_call(self, call_id: int, *, cost: Decimal, **values: Any) -> None:
        with self._begin() as connection:
            connection.execute(
                calls.update()
                .where(calls.c.id == call_id)
                .values(
                    **values,
                    cost_nanos=calls.c.cost_nanos + to_nanos(cost),
                    reserved_nanos=0,
                    status="ok",
                    finished_at=time.time(),
                )
            )

    def fail_call(self, call_id: int, error: str, *, spent: Decimal | None = None) -> None:
        """Release the call's reservation; `spent` adds what a billed but failed attempt cost."""
        extra = to_nanos(spent) if spent else 0
        with self._begin() as connection:
            connection.execute(
                calls.update()
                .where(calls.c.id == call_id)
                .values(
                    status="failed",
                    error=error,
                    reserved_nanos=0,
                    cost_nanos=calls.c.cost_nanos + extra,
                    finished_at=time.time(),
                )
            )

    def calls(self, run_id: str) -> list[CallRecord]:
        query = sa.select(calls).where(calls.c.run_id == run_id).order_by(calls.c.id)
        with self._begin() as connection:
            return [_call_record(row) for row in connection.execute(query).mappings()]

    def run_cost(self, run_id: str) -> Decimal:
        # every row counts: a billed attempt that failed (an invalid reply) was still paid for
        query = sa.select(sa.func.coalesce(sa.func.sum(calls.c.cost_nanos), 0)).where(
            calls.c.run_id == run_id
        )
        with self._begin() as connection:
            return from_nanos(int(connection.execute(query).scalar_one()))

    def costs(self) -> dict[str, Decimal]:
        """Settled cost of every run, in one query (for the runs table)."""
        query = sa.select(calls.c.run_id, sa.func.sum(calls.c.cost_nanos)).group_by(calls.c.run_id)
        with self._begin() as connection:
            return {run_id: from_nanos(int(total)) for run_id, total in connection.execute(query)}

    # events: the audit trail

    def add_event(
        self,
        run_id: str,
        kind: str,
        message: str,
        *,
        stage: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        with self._begin() as connection:
            connection.execute(
                events.insert().values(
                    run_id=run_id,
                    ts=time.time(),
                    kind=kind,
                    stage=stage,
                    message=message,
                    data=json.dumps(data or {}),
                )
            )

    def events(self, run_id: str, after: int = 0) -> list[EventRecord]:
        query = (
            sa.select(events)
            .where(events.c.run_id == run_id, events.c.id > after)
            .order_by(events.c.id)
        )
        with self._begin() as connection:
            return [
                EventRecord(
                    id=row["id"],
                    run_id=row["run_id"],
                    ts=row["ts"],
                    kind=row["kind"],
                    stage=row["stage"],
                    message=row["message"],
                    data=json.loads(row["data"] or "{}"),
                )
                for row in connection.execute(query).mappings()
            ]

    # batches: recorded the moment a provider accepts one, so a crash reconnects to it

    def save_batch(
        self, run_id: str, key: str, batch_id: str, provider: str, model: str, items: Any
    ) -> None:
        with self._begin() as connection:
            connection.execute(
                batches.insert().values(
                    run_id=run_id,
                    key=key,
                    batch_id=batch_id,
                    provider=provider,
                    model=model,
                    items=json.dumps(items),
                    created_at=time.time(),
                )
            )

    def find_batch(self, run_id: str, key: str) -> dict[str, Any] | None:
        query = sa.select(batches).where(batches.c.run_id == run_id, batches.c.key == key)
        with self._begin() as connection:
            row = connection.execute(query).mappings().first()
        if row is None:
            return None
        return {**dict(row), "items": json.loads(row["items"])}

    # scripts of published episodes: what later episodes of the show must not repeat

    def save_script(
        self,
        run_id: str,
        show_key: str,
        title: str,
        hosts: list[str],
        script: dict[str, Any],
        accepted: bool,
    ) -> None:
        with self._begin() as connection:
            connection.execute(scripts.delete().where(scripts.c.run_id == run_id))
            connection.execute(
                scripts.insert().values(
                    run_id=run_id,
                    show_key=show_key,
                    title=title,
                    hosts=json.dumps(hosts),
                    script=json.dumps(script),
                    accepted=accepted,
                    created_at=time.time(),
                )
            )

    def earlier_scripts(self, show_key: str, before_run: str) -> list[dict[str, Any]]:
        """Accepted scripts of the show's other episodes, newest first."""
        query = (
            sa.select(scripts)
            .where(
                scripts.c.show_key == show_key,
                scripts.c.run_id != before_run,
                scripts.c.accepted.is_(True),
            )
            .order_by(scripts.c.created_at.desc())
        )
        with self._begin() as connection:
            return [
                {
                    **dict(row),
                    "hosts": json.loads(row["hosts"]),
                    "script": json.loads(row["script"]),
                }
                for row in connection.execute(query).mappings()
            ]

    # human reviews: the durable queue of episodes waiting for a person

    def request_review(self, run_id: str, round_: int, summary: dict[str, Any]) -> None:
        with self._begin() as connection:
            exists = connection.execute(
                sa.select(reviews.c.status).where(
                    reviews.c.run_id == run_id, reviews.c.round == round_
                )
            ).first()
            if exists is None:
                connection.execute(
                    reviews.insert().values(
                        run_id=run_id,
                        round=round_,
                        status="pending",
                        summary=json.dumps(summary),
                        requested_at=time.time(),
                    )
                )

    def review(self, run_id: str, round_: int | None = None) -> dict[str, Any] | None:
        query = sa.select(reviews).where(reviews.c.run_id == run_id)
        if round_ is not None:
            query = query.where(reviews.c.round == round_)
        with self._begin() as connection:
            row = connection.execute(query.order_by(reviews.c.round.desc())).mappings().first()
        if row is None:
            return None
        return {
            **dict(row),
            "summary": json.loads(row["summary"]),
            "script": json.loads(row["script"]) if row["script"] else None,
        }

    def decide_review(
        self,
        run_id: str,
        round_: int,
        status: str,
        *,
        note: str | None = None,
        script: dict[str, Any] | None = None,
    ) -> None:
        with self._begin() as connection:
            connection.execute(
                reviews.update()
                .where(reviews.c.run_id == run_id, reviews.c.round == round_)
                .values(
                    status=status,
                    note=note,
                    script=json.dumps(script) if script is not None else None,
                    decided_at=time.time(),
                )
            )

    def pending_reviews(self) -> list[dict[str, Any]]:
        query = sa.select(reviews).where(reviews.c.status == "pending")
        with self._begin() as connection:
            rows = connection.execute(query.order_by(reviews.c.requested_at)).mappings().all()
        return [{**dict(r), "summary": json.loads(r["summary"])} for r in rows]

    # artifacts

    def add_artifact(self, run_id: str, name: str, path: str, sha256: str, size: int) -> None:
        with self._begin() as connection:
            connection.execute(
                artifacts.delete().where(artifacts.c.run_id == run_id, artifacts.c.name == name)
            )
            connection.execute(
                artifacts.insert().values(
                    run_id=run_id,
                    name=name,
                    path=path,
                    sha256=sha256,
                    bytes=size,
                    created_at=time.time(),
                )
            )

    def artifacts(self, run_id: str) -> list[ArtifactRecord]:
        query = sa.select(artifacts).where(artifacts.c.run_id == run_id).order_by(artifacts.c.name)
        with self._begin() as connection:
            return [
                ArtifactRecord(row["name"], row["path"], row["sha256"], row["bytes"])
                for row in connection.execute(query).mappings()
            ]


def _host() -> str:
    return socket.gethostname()


def _insert_run(connection: Connection, values: dict[str, Any]) -> None:
    now = time.time()
    connection.execute(
        runs.insert().values(
            **{**values, "spec": json.dumps(values["spec"])},
            created_at=now,
            updated_at=now,
            pid=os.getpid(),
            host=_host(),
        )
    )


def _title_key(title: str) -> str:
    # the same key as castline.config.show_key, from the title stored with the run
    return " ".join(title.casefold().split())


def _run_record(row: Any) -> RunRecord:
    values = dict(row)
    values["spec"] = json.loads(values["spec"])
    budget = values.pop("budget_nanos")
    values["budget"] = from_nanos(budget) if budget is not None else None
    values["peak_reserved"] = from_nanos(values.pop("peak_reserved_nanos"))
    return RunRecord(**values)


def _call_record(row: Any) -> CallRecord:
    values = dict(row)
    values["cost"] = from_nanos(values.pop("cost_nanos"))
    values["reserved"] = from_nanos(values.pop("reserved_nanos"))
    return CallRecord(**values)

"""The `Store`: every read and write of castline's own tables, one short transaction each."""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from castline.config import title_key
from castline.errors import RunNotFound
from castline.store.engine import IMMEDIATE, shared_engine
from castline.store.records import (
    UNRECONCILED,
    ArtifactRecord,
    CallRecord,
    EventRecord,
    NumberedRun,
    RunRecord,
    call_record,
    from_nanos,
    run_record,
    to_nanos,
)
from castline.store.schema import (
    apply_migrations,
    artifacts,
    batches,
    calls,
    events,
    groups,
    reviews,
    runs,
    scripts,
    sources,
)

if TYPE_CHECKING:
    from castline.llm.base import Usage

NUMBERING_LOCK = 7_431_004  # Postgres advisory lock taken while a run's episode number is chosen
TOKENS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "web_searches",
)
# Calls whose reservation is still held: made now, or unreconciled after a crash.
IN_FLIGHT = ("started", UNRECONCILED)
# What a reply may settle: a call in flight, or one an older castline released as abandoned.
SETTLEABLE = (*IN_FLIGHT, "abandoned")
# A call's cost, plus its reservation while it is unreconciled (it may have been billed).
_CHARGED = calls.c.cost_nanos + sa.case(
    (calls.c.status == UNRECONCILED, calls.c.reserved_nanos), else_=0
)


def billed(usage: Usage | None, rejected_nanos: int | None) -> dict[str, Any]:
    """The `calls` column updates that add a billed attempt's tokens and, for a reply that was
    rejected, one more rejected reply and its cost."""
    values: dict[str, Any] = {}
    if usage is not None:
        values = {name: calls.c[name] + getattr(usage, name) for name in TOKENS}
    if rejected_nanos is not None:
        values["rejected_replies"] = calls.c.rejected_replies + 1
        values["rejected_nanos"] = calls.c.rejected_nanos + rejected_nanos
    return values


class Store:
    """All reads and writes of castline's own tables."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = shared_engine(url)
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
        with self.exclusive() as connection:
            applied = apply_migrations(connection)
        return applied

    # runs

    def create_run(self, **values: Any) -> None:
        with self._begin() as connection:
            _insert_run(connection, values)

    @contextmanager
    def _numbering(self) -> Iterator[Connection]:
        """The database's write lock, under which episode numbers are read and taken."""
        with self.exclusive() as connection:
            if connection.dialect.name == "postgresql":
                # no row to lock before the run exists: serialise numbering itself
                connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": NUMBERING_LOCK}
                )
            yield connection

    def create_numbered_run(
        self, show_key: str, choose: Callable[[list[NumberedRun]], int], **values: Any
    ) -> int:
        """Create a run whose spec holds the episode number `choose` picks from the numbers the
        show's runs already have; return it.

        Reading the numbers and inserting the run happen under the database's write lock, so two
        runs of a show created at the same moment never both take the same next number.
        """
        with self._numbering() as connection:
            number = choose(_numbered(connection, show_key))
            _insert_run(connection, {**values, "spec": {**values["spec"], "number": number}})
        return number

    def reopen_numbered_run(
        self, run_id: str, show_key: str, number: int, released: frozenset[str]
    ) -> NumberedRun | None:
        """Mark a run that failed as running again, unless another run of the show holds its
        number and may still publish (returned then). Checked and marked under the same lock
        that numbering takes, so no new run can take the number in between."""
        with self._numbering() as connection:
            for other in _numbered(connection, show_key):
                if other.id != run_id and other.number == number and other.status not in released:
                    return other
            connection.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(status="running", pid=os.getpid(), host=_host(), updated_at=time.time())
            )
        return None

    def update_run(self, run_id: str, **values: Any) -> None:
        if "spec" in values:
            values["spec"] = json.dumps(values["spec"])
        with self._begin() as connection:
            connection.execute(
                runs.update().where(runs.c.id == run_id).values(**values, updated_at=time.time())
            )

    def create_group(self, name: str, cap: Decimal) -> str:
        """Record a batch of runs sharing one total cap; return its id."""
        group_id = uuid.uuid4().hex[:12]
        with self._begin() as connection:
            connection.execute(
                groups.insert().values(
                    id=group_id, name=name, cap_nanos=to_nanos(cap), created_at=time.time()
                )
            )
        return group_id

    def end_run(self, run_id: str, **values: Any) -> bool:
        """Record how a run ended unless it has ended already (two processes running one
        workflow, after `resume --force`, must not end it twice); True when this call did."""
        with self._begin() as connection:
            ended = connection.execute(
                runs.update()
                .where(runs.c.id == run_id, runs.c.status.in_(("running", "queued")))
                .values(**values, updated_at=time.time())
            )
        return ended.rowcount == 1

    def take_over(self, run: RunRecord) -> bool:
        """Claim `run` for this process, unless another process changed it since it was read
        (two `castline resume` of one run at once: only one may go on)."""
        with self._begin() as connection:
            claimed = connection.execute(
                runs.update()
                .where(runs.c.id == run.id, runs.c.updated_at == run.updated_at)
                .values(pid=os.getpid(), host=_host(), updated_at=time.time())
            )
        return claimed.rowcount == 1

    def claim_run(self, run_id: str) -> None:
        """Record that this process now owns the run; a queued run is now running."""
        self.update_run(run_id, pid=os.getpid(), host=_host())
        with self._begin() as connection:
            connection.execute(
                runs.update()
                .where(runs.c.id == run_id, runs.c.status == "queued")
                .values(status="running", updated_at=time.time())
            )

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
        return run_record(row)

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        query = sa.select(runs).order_by(runs.c.created_at.desc()).limit(limit)
        with self._begin() as connection:
            return [run_record(row) for row in connection.execute(query).mappings()]

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

    def add_source(self, run_id: str, document: dict[str, Any]) -> None:
        """Keep one more source with the run (a page research found), once: adding a source id
        the run already has changes nothing, so a replayed step adds it once."""
        with self._begin() as connection:
            present = connection.execute(
                sa.select(sources.c.source_id).where(sources.c.run_id == run_id)
            ).scalars()
            known = set(present)
            if document["id"] in known:
                return
            connection.execute(
                sources.insert().values(
                    run_id=run_id,
                    position=len(known),
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
        return call_record(row) if row else None

    def finish_call(self, call_id: int, *, cost: Decimal, **values: Any) -> bool:
        """Settle the call: add `cost` and the token counts in `values` to what its earlier,
        rejected attempts already recorded, and drop its reservation (an unreconciled call is
        reconciled by its reply). Only a call still open is settled, so a step run twice never
        adds its cost twice; returns whether this one was. The lifecycle around it is the
        ledger's (`Ledger.settle`)."""
        tokens = {name: calls.c[name] + values.pop(name) for name in TOKENS if name in values}
        values.setdefault("error", None)
        with self._begin() as connection:
            result = connection.execute(
                calls.update()
                .where(calls.c.id == call_id, calls.c.status.in_(SETTLEABLE))
                .values(
                    **values,
                    **tokens,
                    cost_nanos=calls.c.cost_nanos + to_nanos(cost),
                    reserved_nanos=0,
                    status="ok",
                    finished_at=time.time(),
                )
            )
        return bool(result.rowcount)

    def fail_call(
        self,
        call_id: int,
        error: str,
        *,
        spent: Decimal | None = None,
        usage: Usage | None = None,
        rejected: bool = False,
    ) -> bool:
        """Release the call's reservation; `spent` and `usage` add what a billed but failed
        attempt cost and consumed, counted as a rejected reply when `rejected`. Only a call in
        flight (started or unreconciled) is released; returns whether this one was."""
        extra = to_nanos(spent) if spent else 0
        with self._begin() as connection:
            result = connection.execute(
                calls.update()
                .where(calls.c.id == call_id, calls.c.status.in_(IN_FLIGHT))
                .values(
                    status="failed",
                    error=error,
                    reserved_nanos=0,
                    cost_nanos=calls.c.cost_nanos + extra,
                    finished_at=time.time(),
                    **billed(usage, extra if rejected else None),
                )
            )
        return bool(result.rowcount)

    def calls(self, run_id: str) -> list[CallRecord]:
        query = sa.select(calls).where(calls.c.run_id == run_id).order_by(calls.c.id)
        with self._begin() as connection:
            return [call_record(row) for row in connection.execute(query).mappings()]

    def run_cost(self, run_id: str) -> Decimal:
        """What the run may have been billed: every settled amount (a billed attempt that failed,
        such as an invalid reply, was still paid for) plus every unreconciled call at its
        reservation. Reservations of calls still in flight are not cost."""
        query = sa.select(sa.func.coalesce(sa.func.sum(_CHARGED), 0)).where(
            calls.c.run_id == run_id
        )
        with self._begin() as connection:
            return from_nanos(int(connection.execute(query).scalar_one()))

    def costs(self) -> dict[str, Decimal]:
        """`run_cost` of every run, in one query (for the runs table)."""
        query = sa.select(calls.c.run_id, sa.func.sum(_CHARGED)).group_by(calls.c.run_id)
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
        # It reads, then writes: on SQLite a deferred transaction would fail with "database is
        # locked" (no waiting) if another writer committed in between.
        with self.exclusive() as connection:
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


def _numbered(connection: sa.Connection, show_key: str) -> list[NumberedRun]:
    query = sa.select(runs.c.id, runs.c.status, runs.c.show_title, runs.c.spec)
    numbered = []
    for row in connection.execute(query.order_by(runs.c.created_at)).mappings():
        held = json.loads(row["spec"]).get("number")
        if title_key(row["show_title"]) == show_key and isinstance(held, int):
            numbered.append(NumberedRun(row["id"], row["status"], held))
    return numbered


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

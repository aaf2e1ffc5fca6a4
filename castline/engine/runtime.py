"""The process's runtime: DBOS launched once, the run store, and each run's fixed inputs.

Nothing else launches DBOS or opens the store, so every command, worker and test shares one
way of reaching them.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from castline import __version__
from castline.audio.tts import Voicing
from castline.config import Show, database_url, show_key, state_dir
from castline.domain import Script, Source
from castline.engine import executors
from castline.errors import StoreUnavailable
from castline.llm.registry import Route, Routing
from castline.quality.integration import EarlierEpisode
from castline.stages import RunContext
from castline.store import Store

if TYPE_CHECKING:
    from dbos import DBOSConfig

SYSTEM_DATABASE_ENV = "CASTLINE_SYSTEM_DATABASE_URL"
_lock = threading.Lock()
_launched_url: str | None = None
_executor_id: str | None = None
_heartbeat: executors.Heartbeat | None = None
_listening: frozenset[str] = frozenset()
_stores: dict[str, Store] = {}
_contexts: dict[str, RunContext] = {}


def system_database_url() -> str:
    """DBOS's own database: `$CASTLINE_SYSTEM_DATABASE_URL`; else the run store's database when
    that is a server (so machines sharing one Postgres share their workflows too); else SQLite
    in the state directory."""
    configured = os.environ.get(SYSTEM_DATABASE_ENV)
    if configured:
        return configured
    store_url = database_url()
    if not store_url.startswith("sqlite"):
        return store_url
    return f"sqlite:///{state_dir() / 'dbos.sqlite'}"


def store() -> Store:
    with _lock:
        return _store_locked()


def _store_locked() -> Store:
    url = database_url()
    if url not in _stores:
        with store_errors(url):
            _stores[url] = Store(url)
    return _stores[url]


@contextmanager
def store_errors(url: str) -> Iterator[None]:
    """Report a state directory or database that cannot be created, opened or written as the
    configuration problem it is (never with the database password)."""
    try:
        yield
    except OSError as exc:
        where = exc.filename or str(state_dir())
        raise StoreUnavailable(f"in {where}", exc.strerror or str(exc)) from None
    except sa.exc.SQLAlchemyError as exc:
        try:
            shown = sa.engine.make_url(url).render_as_string(hide_password=True)
        except sa.exc.ArgumentError:
            shown = "(a URL that is not a database URL, e.g. sqlite:///path or postgresql://...)"
        cause = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise StoreUnavailable(f"at {shown}", cause) from None


def launch(kind: str = "cli", *, listen: Sequence[str] = ()) -> str:
    """Start DBOS for this process (once per system database) and return its executor id.

    The process registers as an executor (with a heartbeat) before DBOS starts, so that any
    other process can tell when it is gone and take over its workflows. It dequeues from the
    queues in `listen` only (a worker listens to the episode queue; every other command runs
    just its own episode), plus DBOS's internal queue, where recovered workflows wait.
    """
    global _launched_url, _executor_id, _heartbeat, _listening
    from dbos import DBOS  # here, so that commands that only read the store start fast

    url = system_database_url()
    with _lock:
        if _launched_url == url and _executor_id is not None:
            if set(listen) - _listening:
                raise RuntimeError(
                    f"this process was launched listening to {sorted(_listening)}; launch it "
                    f"as a worker first to listen to {sorted(listen)}"
                )
            return _executor_id
        if _launched_url is not None:
            _stop_locked()
        with store_errors(url):
            state_dir().mkdir(parents=True, exist_ok=True)
        executor_id = executors.new_id(kind)
        registry = executors.Executors(_store_locked())
        registry.register(executor_id, kind)
        config: DBOSConfig = {
            "name": "castline",
            "system_database_url": url,
            "application_version": __version__,
            "executor_id": executor_id,
            "log_level": "WARNING",
            "notification_listener_polling_interval_sec": 0.05,
        }
        engine = _sqlite_engine(url)
        if engine is not None:
            config["system_database_engine"] = engine
        DBOS(config=config)
        DBOS.listen_queues(list(listen))
        with store_errors(url):
            DBOS.launch()
        # castline records workflow failures in its own store and reports them; DBOS's console
        # tracebacks would only duplicate that.
        logging.getLogger("dbos").setLevel(logging.CRITICAL)
        _heartbeat = executors.Heartbeat(registry, executor_id)
        _heartbeat.start()
        _launched_url, _executor_id, _listening = url, executor_id, frozenset(listen)
        _contexts.clear()
        return executor_id


def executor_id() -> str:
    """This process's executor id (DBOS must be launched)."""
    if _executor_id is None:
        raise RuntimeError("castline's runtime is not launched in this process")
    return _executor_id


def current_executor() -> str | None:
    """This process's executor id, or None where DBOS is not launched (a forecast)."""
    return _executor_id


def _sqlite_engine(url: str) -> sa.Engine | None:
    """For a SQLite system database, an engine in WAL mode with synchronous=NORMAL.

    DBOS's own SQLite engine keeps SQLite's defaults (a rollback journal, a full sync on every
    commit), which made checkpoints most of an offline run's time. WAL with NORMAL sync survives
    any process crash, SIGKILL included; only a power cut can lose the newest commits, and then
    the call journal in the run store still prevents a second payment for a recorded reply.
    Writers stay serialised with IMMEDIATE transactions, as DBOS requires.
    """
    if not url.startswith("sqlite:///"):
        return None
    Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")
        dbapi_connection.execute("PRAGMA busy_timeout=30000")
        dbapi_connection.execute("PRAGMA foreign_keys=ON")
        dbapi_connection.isolation_level = "IMMEDIATE"

    return engine


def shutdown() -> None:
    with _lock:
        _stop_locked()


def _stop_locked() -> None:
    global _launched_url, _executor_id, _heartbeat
    if _launched_url is not None:
        from dbos import DBOS

        DBOS.destroy(destroy_registry=False)
        _launched_url = None
    if _heartbeat is not None:
        _heartbeat.stop()
        _heartbeat = None
    _executor_id = None


def forget(run_id: str) -> None:
    """Drop the run's cached context, after its inputs were changed (a re-voicing)."""
    with _lock:
        _contexts.pop(run_id, None)


def context(run_id: str) -> RunContext:
    """The run's fixed inputs, read from the store (once per process)."""
    with _lock:
        if run_id in _contexts:
            return _contexts[run_id]
    record = store().get_run(run_id)
    spec = record.spec
    routing = Routing(
        routes={
            role: [Route(**route) for route in chain] for role, chain in spec["routing"].items()
        },
        offline=record.offline,
        reason=record.routing_reason,
    )
    show = Show.model_validate(spec["show"])
    earlier_ids = set(spec.get("earlier", []))
    ctx = RunContext(
        run_id=record.id,
        show=show,
        topic=record.topic,
        sources=[Source.model_validate(s) for s in store().load_sources(run_id)],
        routing=routing,
        output_dir=record.output_dir,
        show_dir=str(Path(record.show_path).parent),
        number=record.number,
        planned_voicing=Voicing(**spec["voicing"]) if spec.get("voicing") else None,
        earlier=[
            EarlierEpisode(
                run_id=row["run_id"],
                title=row["title"],
                hosts=row["hosts"],
                script=Script.model_validate(row["script"]),
            )
            for row in store().earlier_scripts(show_key(show), record.id)
            if row["run_id"] in earlier_ids
        ],
    )
    with _lock:
        _contexts[run_id] = ctx
    return ctx

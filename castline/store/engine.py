"""Database engines: one per URL, shared by every `Store` of the process.

SQLAlchemy Core on SQLite (WAL) by default or Postgres by URL. On SQLite a transaction can ask to
take the write lock from its first statement (`BEGIN IMMEDIATE`) through the `IMMEDIATE`
execution option.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

IMMEDIATE = "castline_immediate"

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def shared_engine(url: str) -> Engine:
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

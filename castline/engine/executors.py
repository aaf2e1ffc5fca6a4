"""The castline processes that run workflows, and whether each is still alive.

DBOS tags every workflow with the executor id of the process running it and, on launch,
recovers only its own. So that any process can take over the work of one that died, each
process registers here before it launches DBOS and then beats every `HEARTBEAT_S` seconds. An
executor is gone when it stopped, when its process no longer exists on this host, or, on
another host, when its heartbeat is older than `STALE_S`. On this host the process table is
trusted over the heartbeat: a process busy in C code may beat late, and taking over the work
of a live process would run its steps twice.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa

from castline.store import Store, executors

HEARTBEAT_S = 2.0
STALE_S = 30.0


@dataclass(frozen=True)
class Executor:
    id: str
    host: str
    pid: int
    kind: str
    started_at: float
    heartbeat_at: float
    stopped_at: float | None
    recovered_at: float | None
    recovered_by: str | None

    def alive(self, now: float | None = None) -> bool:
        if self.stopped_at is not None:
            return False
        if self.host == socket.gethostname():
            return pid_alive(self.pid)
        return (time.time() if now is None else now) - self.heartbeat_at < STALE_S

    def describe(self) -> str:
        return f"{self.kind} process {self.pid} on {self.host}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def new_id(kind: str) -> str:
    return f"castline-{kind}-{socket.gethostname()}-{os.getpid()}-{os.urandom(4).hex()}"


class Executors:
    """The executors table of the run store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def register(self, executor_id: str, kind: str) -> None:
        now = time.time()
        with self.store.engine.begin() as connection:
            connection.execute(
                executors.insert().values(
                    id=executor_id,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    kind=kind,
                    started_at=now,
                    heartbeat_at=now,
                )
            )

    def beat(self, executor_id: str) -> None:
        with self.store.engine.begin() as connection:
            connection.execute(
                executors.update()
                .where(executors.c.id == executor_id)
                .values(heartbeat_at=time.time())
            )

    def stop(self, executor_id: str) -> None:
        with self.store.engine.begin() as connection:
            connection.execute(
                executors.update()
                .where(executors.c.id == executor_id)
                .values(stopped_at=time.time())
            )

    def mark_recovered(self, executor_id: str, by: str) -> None:
        with self.store.engine.begin() as connection:
            connection.execute(
                executors.update()
                .where(executors.c.id == executor_id, executors.c.recovered_at.is_(None))
                .values(recovered_at=time.time(), recovered_by=by)
            )

    def get(self, executor_id: str) -> Executor | None:
        with self.store.engine.begin() as connection:
            row = (
                connection.execute(sa.select(executors).where(executors.c.id == executor_id))
                .mappings()
                .first()
            )
        return Executor(**row) if row is not None else None

    def all(self) -> list[Executor]:
        with self.store.engine.begin() as connection:
            rows = connection.execute(sa.select(executors)).mappings().all()
        return [Executor(**row) for row in rows]

    def alive(self, executor_id: str) -> bool:
        """Whether the executor may still be running its workflows. One that never registered
        (DBOS's default "local", or a castline from before registration) counts as gone."""
        found = self.get(executor_id)
        return found is not None and found.alive()


class Heartbeat:
    """Beats for one executor from a daemon thread until stopped."""

    def __init__(self, registry: Executors, executor_id: str) -> None:
        self.registry = registry
        self.executor_id = executor_id
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="castline-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(HEARTBEAT_S):
            try:
                self.registry.beat(self.executor_id)
            except sa.exc.SQLAlchemyError:  # a busy database: the next beat will do
                continue

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        self.registry.stop(self.executor_id)

"""What the store knows about runs, for `castline runs`: status, detail, the audit trail."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import asdict, dataclass
from typing import Any

from castline.budget.report import CostReport, cost_report
from castline.engine import runtime
from castline.engine.executors import STALE_S, Executor, Executors, pid_alive
from castline.store import ArtifactRecord, CallRecord, RunRecord


def owner_alive(record: RunRecord) -> bool:
    """Whether the process that last claimed the run (another one than this) is still alive:
    on this host by its pid, on another by its executor's heartbeat."""
    if record.pid is None or record.host is None:
        return False
    if record.host == socket.gethostname():
        return record.pid != os.getpid() and pid_alive(record.pid)
    return any(
        executor.alive()
        for executor in Executors(runtime.store()).all()
        if executor.host == record.host and executor.pid == record.pid
    )


def owner_beating(record: RunRecord) -> Executor | None:
    """The executor of the process that claimed the run when it is certainly alive: not only
    is its pid taken, it is beating (a pid can be reused; a heartbeat cannot)."""
    if record.pid is None or (record.pid == os.getpid() and record.host == socket.gethostname()):
        return None
    now = time.time()
    for executor in Executors(runtime.store()).all():
        if (executor.host, executor.pid) != (record.host, record.pid):
            continue
        if executor.stopped_at is not None or now - executor.heartbeat_at >= STALE_S:
            continue
        if executor.host != socket.gethostname() or pid_alive(executor.pid):
            return executor
    return None


def display_status(record: RunRecord) -> str:
    """The stored status, except that a 'running' run whose process is gone is 'interrupted'."""
    if record.status != "running" or record.pid is None:
        return record.status
    if record.pid == os.getpid() and record.host == socket.gethostname():
        return "running"
    return "running" if owner_alive(record) else "interrupted"


@dataclass(frozen=True)
class RunDetail:
    record: RunRecord
    calls: list[CallRecord]
    cost: CostReport
    verdicts: list[dict[str, Any]]
    artifacts: list[ArtifactRecord]

    def as_json(self) -> dict[str, Any]:
        return {
            "run": {
                **asdict(self.record),
                "status": display_status(self.record),
                "number": self.record.number,
            },
            "cost": self.cost.as_json(),
            "calls": [
                {k: v for k, v in asdict(call).items() if k not in {"prompt", "response"}}
                for call in self.calls
            ],
            "verdicts": self.verdicts,
            "artifacts": [asdict(artifact) for artifact in self.artifacts],
        }


def describe(run_id: str) -> RunDetail:
    """Everything the store knows about one run, summarised for `castline runs show`."""
    store = runtime.store()
    record = store.get_run(run_id)
    reviews = [e for e in store.events(record.id) if e.kind == "verdicts"]
    return RunDetail(
        record=record,
        calls=store.calls(record.id),
        cost=cost_report(store, record.id),
        verdicts=reviews[-1].data.get("verdicts", []) if reviews else [],
        artifacts=store.artifacts(record.id),
    )


def audit_trail(run_id: str) -> list[dict[str, Any]]:
    """The run's events, oldest first, as plain dictionaries."""
    store = runtime.store()
    record = store.get_run(run_id)
    return [asdict(event) for event in store.events(record.id)]

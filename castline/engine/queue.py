"""Episodes on a queue, run by `castline worker` processes on one machine or many.

The queue is a DBOS queue in the system database (SQLite for one machine, Postgres shared by
many), so an enqueued episode is durable before any worker exists, and each worker takes at
most its concurrency of episodes at a time. Workers also sweep for the work of processes that
died (a worker, or a `castline produce` killed mid-run): its workflows go back to a queue and a
live worker finishes them, with no completed step repeated.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from dbos import DBOS, SetWorkflowID

from castline.engine import recovery, runtime
from castline.engine.workflows import episode_workflow

EPISODES = "castline-episodes"
SWEEP_S = 1.0  # how often a worker looks for work left by a process that is gone
POLL_S = 0.5  # how often a worker looks for a queued episode


def enqueue_run(run_id: str) -> None:
    """Put a recorded run on the episode queue (once: its workflow id is the run id)."""
    runtime.launch()
    queue = DBOS.retrieve_queue(EPISODES) or DBOS.register_queue(
        EPISODES, polling_interval_sec=POLL_S, on_conflict="never_update"
    )
    with SetWorkflowID(run_id):
        queue.enqueue(episode_workflow, run_id)


@dataclass(frozen=True)
class Recovered:
    """A sweep's catch: workflows of a process that is gone, now queued again."""

    executors: list[str]
    workflows: list[str]
    runs: list[str]


def sweep() -> Recovered | None:
    """Recover the work of every castline process that is gone."""
    found = recovery.orphans_everywhere()
    dead = sorted(found.dead_executors)
    if not dead:
        return None
    recovered = recovery.recover(dead)
    if not recovered:
        return None
    run_ids = sorted({run for w in recovered if (run := recovery.run_of(w)) is not None})
    store = runtime.store()
    for run_id in run_ids:
        store.add_event(
            run_id,
            "recovered",
            f"taken over by worker {runtime.executor_id()} from {', '.join(dead)}, which is gone",
            data={"executors": dead, "workflows": recovered},
        )
    return Recovered(dead, recovered, run_ids)


def work(
    concurrency: int,
    stop: threading.Event,
    *,
    on_recovered: Callable[[Recovered], None] | None = None,
) -> str:
    """Run queued episodes, `concurrency` at a time, until `stop` is set; return this worker's
    executor id. The per-worker concurrency is the queue's: the latest worker sets it for all."""
    executor_id = runtime.launch("worker", listen=[EPISODES])
    DBOS.register_queue(
        EPISODES,
        worker_concurrency=concurrency,
        polling_interval_sec=POLL_S,
        on_conflict="always_update",
    )
    while True:
        found = sweep()
        if found is not None and on_recovered is not None:
            on_recovered(found)
        if stop.wait(SWEEP_S):
            return executor_id

"""Taking over the workflows of processes that are gone.

A run is a tree of DBOS workflows: the episode and its fan-outs (research questions, judges,
clip shares), each tagged with the executor that ran it. When that process dies, its PENDING
workflows wait for an executor that will never come back; a resumed parent would wait on them
forever. Recovery hands them back to a queue (DBOS's own recovery, which re-enqueues only
workflows still owned by the dead executor, so two processes recovering the same one cannot
both run it), where any live castline process picks them up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dbos import DBOS, WorkflowStatus

from castline.engine import runtime
from castline.engine.executors import Executor, Executors
from castline.engine.paid.limits import release_held_by


@dataclass(frozen=True)
class Stuck:
    """Workflows of a run that cannot progress by themselves."""

    orphaned: list[WorkflowStatus]  # PENDING under an executor that is gone
    elsewhere: dict[str, Executor | None]  # live executors still running part of the run

    @property
    def dead_executors(self) -> set[str]:
        return {w.executor_id for w in self.orphaned if w.executor_id is not None}


def tree(root_id: str) -> list[WorkflowStatus]:
    """The workflow and all its descendants."""
    found = DBOS.list_workflows(workflow_ids=[root_id], load_input=False, load_output=False)
    frontier = [root_id]
    while frontier:
        children = DBOS.list_workflows(
            parent_workflow_id=frontier, load_input=False, load_output=False
        )
        found += children
        frontier = [child.workflow_id for child in children]
    return found


def stuck(workflows: Iterable[WorkflowStatus]) -> Stuck:
    """Which of these PENDING workflows belong to a process that is gone, and which to another
    live one."""
    me = runtime.executor_id()
    registry = Executors(runtime.store())
    orphaned: list[WorkflowStatus] = []
    elsewhere: dict[str, Executor | None] = {}
    alive: dict[str, bool] = {}
    for workflow in workflows:
        owner = workflow.executor_id
        if workflow.status != "PENDING" or owner is None or owner == me:
            continue
        if owner not in alive:
            alive[owner] = registry.alive(owner)
        if alive[owner]:
            elsewhere[owner] = registry.get(owner)
        else:
            orphaned.append(workflow)
    return Stuck(orphaned, elsewhere)


def recover(executor_ids: Iterable[str]) -> list[str]:
    """Re-enqueue every PENDING workflow of these (gone) executors; return their ids."""
    ids = sorted(set(executor_ids))
    if not ids:
        return []
    handles = DBOS._recover_pending_workflows(ids)
    release_held_by(runtime.store(), ids)  # their requests in flight died with them
    registry = Executors(runtime.store())
    for executor_id in ids:
        registry.mark_recovered(executor_id, runtime.executor_id())
    return [handle.workflow_id for handle in handles]


def orphans_everywhere() -> Stuck:
    """Every PENDING workflow of the application whose executor is gone (a worker's sweep)."""
    pending = DBOS.list_workflows(status="PENDING", load_input=False, load_output=False)
    return stuck(pending)


def run_of(workflow_id: str) -> str | None:
    """The run a workflow belongs to: every castline workflow takes the run id first."""
    found = DBOS.list_workflows(workflow_ids=[workflow_id], load_output=False)
    inputs = found[0].input if found else None
    if not inputs or not inputs.get("args"):
        return None
    first = inputs["args"][0]
    return first if isinstance(first, str) else None

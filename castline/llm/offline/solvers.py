"""The offline provider's solvers: one per task type, registered where each is defined, so that
a new task cannot be forgotten here (a test checks every task kind has one)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from castline.llm.base import Task

Solver = Callable[[Any], BaseModel]
SolverT = TypeVar("SolverT", bound=Solver)
SOLVERS: dict[type[Task[Any]], Solver] = {}


def solves(task_type: type[Task[Any]]) -> Callable[[SolverT], SolverT]:
    """Register the decorated function as the offline answer to `task_type`."""

    def register(solver: SolverT) -> SolverT:
        if task_type in SOLVERS and SOLVERS[task_type] is not solver:
            raise TypeError(f"{task_type.__name__} has two offline solvers")
        SOLVERS[task_type] = solver
        return solver

    return register

"""The offline provider answers every task from its inputs, and reports the tokens a real model
would have been sent and would have returned, so an offline run is also a cost forecast."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel

from castline.llm import prompts
from castline.llm.base import OutT, Provider, Result, Task, Usage
from castline.llm.offline import decisions, research, writing
from castline.llm.tasks import (
    FanoutTask,
    PlanTask,
    PolishTask,
    QuestionsTask,
    ResearchTask,
    ReviewDecisionTask,
    SynthesisTask,
    WriteSegmentTask,
)
from castline.text import estimate_tokens

LATENCY_ENV = "CASTLINE_OFFLINE_LATENCY_MS"

_SOLVERS: dict[type[Task[Any]], Callable[[Any], BaseModel]] = {
    QuestionsTask: research.questions,
    FanoutTask: research.fanout,
    ResearchTask: research.research,
    SynthesisTask: research.synthesis,
    PlanTask: writing.plan,
    WriteSegmentTask: writing.write,
    PolishTask: writing.polish,
    ReviewDecisionTask: decisions.review,
}


class OfflineProvider(Provider):
    """Solves tasks directly. `CASTLINE_OFFLINE_LATENCY_MS` simulates a model's response time."""

    name: ClassVar[str] = "offline"
    offline: ClassVar[bool] = True

    def complete(self, task: Task[OutT], model: str) -> Result[OutT]:
        solver = _SOLVERS.get(type(task))
        if solver is None:
            raise TypeError(f"the offline provider has no solver for {type(task).__name__}")
        latency_ms = float(os.environ.get(LATENCY_ENV, "0") or 0)
        if latency_ms > 0:
            time.sleep(latency_ms / 1000)
        output = task.parse_output(solver(task).model_dump())
        usage = Usage(
            input_tokens=estimate_tokens(prompts.render(task).text),
            output_tokens=estimate_tokens(output.model_dump_json()),
        )
        return Result(output=output, usage=usage, model=model)

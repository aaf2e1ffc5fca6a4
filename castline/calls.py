"""One model call, journaled: the unit that a durable step wraps.

Before calling, the journal is consulted: if an earlier attempt of this step already got a reply
(and the process died before the step's checkpoint was written), that reply is returned instead
of paying for it again. Each attempt along the role's fallback chain is a row in `calls` with its
prompt, response, usage and cost.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from castline.budget import prices
from castline.errors import ProviderError
from castline.llm import prompts, registry
from castline.llm.base import Result, Task, Usage
from castline.llm.registry import Route
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
from castline.store import Store

TASK_TYPES: dict[str, type[Task[Any]]] = {
    cls.kind: cls
    for cls in (
        QuestionsTask,
        FanoutTask,
        ResearchTask,
        SynthesisTask,
        PlanTask,
        WriteSegmentTask,
        PolishTask,
        ReviewDecisionTask,
    )
}


@dataclass(frozen=True)
class CallOutcome:
    """What a step returns and checkpoints: plain JSON, so a replay needs no provider."""

    output: dict[str, Any]
    route: str
    usage: dict[str, int]
    cost: str

    def as_dict(self) -> dict[str, Any]:
        return {"output": self.output, "route": self.route, "usage": self.usage, "cost": self.cost}


def execute(
    store: Store,
    *,
    run_id: str,
    step_key: str,
    stage: str,
    role: str,
    task: Task[Any],
    chain: list[Route],
) -> CallOutcome:
    recorded = store.completed_call(run_id, step_key)
    if recorded is not None and recorded.response is not None:
        store.add_event(
            run_id,
            "call-reused",
            f"{step_key}: reply recorded before a crash reused, not paid again",
            stage=stage,
        )
        return CallOutcome(
            output=json.loads(recorded.response),
            route=recorded.priced_as,
            usage=_usage_dict(recorded),
            cost=str(recorded.cost),
        )
    prompt = prompts.render(task).text
    failures: list[str] = []
    for route in chain:
        provider = registry.get(route.provider)
        call_id = store.start_call(
            run_id=run_id,
            step_key=step_key,
            stage=stage,
            role=role,
            task_kind=task.kind,
            provider=route.provider,
            model=route.model,
            priced_as=route.priced_as,
            prompt=prompt,
            shadow=provider.offline,
        )
        started = time.perf_counter()
        try:
            result: Result[Any] = provider.complete(task, route.model)
        except ProviderError as exc:
            store.fail_call(call_id, f"{type(exc).__name__}: {exc}")
            store.add_event(
                run_id,
                "call-failed",
                f"{step_key} on {route.label} failed: {exc}",
                stage=stage,
                data={"route": route.priced_as, "error": str(exc)},
            )
            failures.append(f"{route.label}: {exc}")
            continue
        compute_ms = (time.perf_counter() - started) * 1000
        cost = prices.cost(route.priced_as, result.usage)
        response = result.output.model_dump_json()
        store.finish_call(
            call_id,
            cost=cost,
            response=response,
            input_tokens=result.usage.input_tokens,
            output_tokens=result.usage.output_tokens,
            cache_read_tokens=result.usage.cache_read_tokens,
            cache_write_tokens=result.usage.cache_write_tokens,
            compute_ms=compute_ms,
        )
        return CallOutcome(
            output=json.loads(response),
            route=route.priced_as,
            usage=_usage_dict(result.usage),
            cost=str(cost),
        )
    raise ProviderError(f"{step_key}: every route failed ({'; '.join(failures)})")


def _usage_dict(usage: Usage | Any) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
    }

"""One model call, journaled: the unit that a durable step wraps.

Before calling, the journal is consulted: if an earlier attempt of this step already got a reply
(and the process died before the step's checkpoint was written), that reply is returned instead
of paying for it again. Each attempt along the role's fallback chain is a row in `calls` with its
prompt, response, usage and cost.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

from castline.budget.ledger import Ledger, Refusal
from castline.budget.policy import BudgetPolicy, Candidate, Mode
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
from castline.stages import RunContext
from castline.store import Store
from castline.text import estimate_tokens

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


# A prompt's tokens are estimated (about four characters each) unless the provider counts them;
# the estimate gets this margin, so that a reservation is never below the real input.
INPUT_MARGIN = 1.1


@dataclass(frozen=True)
class CallOutcome:
    """What a step returns and checkpoints: plain JSON, so a replay needs no provider.

    `output` is None when the budget refused the call (`refusal` then says why).
    """

    output: dict[str, Any] | None
    route: str
    usage: dict[str, int]
    cost: str
    mode: str
    note: str = ""
    refusal: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "route": self.route,
            "usage": self.usage,
            "cost": self.cost,
            "mode": self.mode,
            "note": self.note,
            "refusal": self.refusal,
        }


@dataclass(frozen=True)
class CallSpec:
    """Who makes a call and under which budget."""

    run_id: str
    step_key: str
    stage: str
    role: str
    chain: list[Route]
    fallback: list[Route]
    shadow: bool

    @classmethod
    def of(cls, ctx: RunContext, step_key: str, stage: str, role: str) -> CallSpec:
        return cls(
            run_id=ctx.run_id,
            step_key=step_key,
            stage=stage,
            role=role,
            chain=ctx.routing.chain(role),
            fallback=ctx.routing.chain("fallback"),
            shadow=ctx.routing.offline,
        )


def execute(store: Store, spec: CallSpec, task: Task[Any], policy: BudgetPolicy) -> CallOutcome:
    """Make one call: reuse a recorded reply, else reserve, call, settle (or release and try
    the next route). A call the budget cannot fit comes back refused, not raised, so that the
    workflow decides what to do without it."""
    recorded = store.completed_call(spec.run_id, spec.step_key)
    if recorded is not None and recorded.response is not None:
        store.add_event(
            spec.run_id,
            "call-reused",
            f"{spec.step_key}: reply recorded before a crash reused, not paid again",
            stage=spec.stage,
        )
        return CallOutcome(
            output=json.loads(recorded.response),
            route=recorded.priced_as,
            usage=_usage_dict(recorded),
            cost=str(recorded.cost),
            mode=store.get_run(spec.run_id).budget_mode,
            note=recorded.budget_note or "",
        )
    prompt = prompts.render(task).text
    ledger = Ledger(store)
    failed: list[Route] = []
    failures: list[str] = []
    while True:
        chain = [r for r in spec.chain if r not in failed]
        fallback = [r for r in spec.fallback if r not in failed]
        if not chain and not fallback:
            raise ProviderError(f"{spec.step_key}: every route failed ({'; '.join(failures)})")
        counted = registry.get((chain or fallback)[0].provider).count_tokens(
            task, (chain or fallback)[0].model
        )
        input_tokens = counted or math.ceil(estimate_tokens(prompt) * INPUT_MARGIN) + 16

        def ladder(
            mode: Mode,
            chain: list[Route] = chain,
            fallback: list[Route] = fallback,
            input_tokens: int = input_tokens,
        ) -> list[Candidate]:
            return policy.candidates(
                mode=mode,
                role=spec.role,
                kind=task.kind,
                chain=chain,
                fallback=fallback,
                input_tokens=input_tokens,
                max_tokens=task.max_output_tokens,
            )

        reservation = ledger.reserve(
            spec.run_id,
            policy,
            ladder,
            step_key=spec.step_key,
            stage=spec.stage,
            role=spec.role,
            task_kind=task.kind,
            prompt=prompt,
            shadow=spec.shadow,
        )
        if isinstance(reservation, Refusal):
            return CallOutcome(
                output=None,
                route="",
                usage={},
                cost="0",
                mode=reservation.mode,
                refusal=reservation.message,
            )
        candidate = reservation.candidate
        route = candidate.route
        started = time.perf_counter()
        try:
            result: Result[Any] = registry.get(route.provider).complete(
                task, route.model, max_tokens=candidate.max_tokens
            )
        except ProviderError as exc:
            store.fail_call(reservation.call_id, f"{type(exc).__name__}: {exc}")
            store.add_event(
                spec.run_id,
                "call-failed",
                f"{spec.step_key} on {route.label} failed: {exc}",
                stage=spec.stage,
                data={"route": route.priced_as, "error": str(exc)},
            )
            failed.append(route)
            failures.append(f"{route.label}: {exc}")
            continue
        compute_ms = (time.perf_counter() - started) * 1000
        cost = policy.pricer.cost(route.priced_as, result.usage, batch=candidate.batch)
        response = result.output.model_dump_json()
        store.finish_call(
            reservation.call_id,
            cost=cost,
            response=response,
            input_tokens=result.usage.input_tokens,
            output_tokens=result.usage.output_tokens,
            cache_read_tokens=result.usage.cache_read_tokens,
            cache_write_tokens=result.usage.cache_write_tokens,
            cache_write_1h_tokens=result.usage.cache_write_1h_tokens,
            compute_ms=compute_ms,
        )
        return CallOutcome(
            output=json.loads(response),
            route=route.priced_as,
            usage=_usage_dict(result.usage),
            cost=str(cost),
            mode=reservation.mode,
            note=candidate.note,
        )


def _usage_dict(usage: Usage | Any) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
    }

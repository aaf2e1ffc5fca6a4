"""One model call, journaled, budgeted and resilient: the unit that a durable step wraps.

Before calling, the journal is consulted: if an earlier attempt of this step already got a reply
(and the process died before the step's checkpoint was written), that reply is returned instead
of paying for it again. Then, route by route along the role's chain and the fallback chain:
reserve the worst case (a `Spend`), call (`Attempts`, with `MOVE_ON` patience: a route whose
breaker is open is skipped), and settle or release; a rate limit is retried on the same route
(honouring retry-after, unless it asks to wait longer than `retries.max_wait_s`: then the call
falls back instead of waiting it out); an overload, server error or timeout is retried once,
then falls back; an unknown model falls back at once with a warning; a spend limit or a bad
key takes the whole provider out; an invalid request is never retried. Any other exception a
provider's SDK raises is classified once (`resilience.as_provider_error`: a transient server
error) and handled like one. A reply that does not validate was paid for: its cost and tokens
are recorded as a rejected reply, and the model is asked once to repair it. Every attempt, retry
and fallback is an audit event with its reason.

The reservation's input tokens come from a local bound (`prompts.token_bound`: the request's
UTF-8 bytes, at least one per token for every tokenizer in use), so no request is made before the
call; only when that bound's worst case would not fit the budget (or would move the run to a later
budget mode) is the provider asked to count the prompt exactly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict

from castline.budget.ledger import Ledger, Refusal
from castline.budget.policy import BudgetPolicy, Candidate, CandidateFactory, Mode
from castline.config import Show
from castline.domain import Source
from castline.engine.paid.attempts import MOVE_ON, Attempts
from castline.engine.paid.spend import Spend
from castline.errors import MalformedOutput, ProviderError
from castline.llm import prompts, registry, resilience
from castline.llm.base import Repair, Result, Task, Usage
from castline.llm.registry import Route
from castline.stages import RunContext
from castline.store import Store


class CallOutcome(BaseModel):
    """What a call's step returns and checkpoints: the reply as plain JSON, so a replay needs no
    provider. `output` is None when the budget refused the call (`refusal` then says why)."""

    model_config = ConfigDict(frozen=True)

    output: dict[str, Any] | None
    mode: str
    route: str = ""
    usage: dict[str, int] = {}
    cost: str = "0"
    note: str = ""
    refusal: str = ""


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
    show: Show
    # the sources the run keeps, by id: a prompt that sends one whole journals a reference
    kept_sources: Mapping[str, Source] = field(default_factory=dict)

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
            show=ctx.show,
            kept_sources={source.id: source for source in ctx.sources},
        )


class _Call:
    """One call's journey: routes tried in order, each with its retries, under one budget."""

    def __init__(self, store: Store, spec: CallSpec, task: Task[Any], policy: BudgetPolicy) -> None:
        self.store = store
        self.spec = spec
        self.task = task
        self.policy = policy
        self.ledger = Ledger(store)
        self.prompt = prompts.recorded(task, spec.kept_sources)
        self.excluded: list[Route] = []
        self.failures: list[str] = []

    def event(self, name: str, message: str, **data: Any) -> None:
        text = f"{self.spec.step_key}: {message}"
        self.store.add_event(self.spec.run_id, name, text, stage=self.spec.stage, data=data)

    def attempts(self, route: Route) -> Attempts:
        return Attempts.of(
            self.store,
            self.spec.show,
            run_id=self.spec.run_id,
            step_key=self.spec.step_key,
            stage=self.spec.stage,
            provider=route.provider,
            label=route.label,
            route=route.priced_as,
            patience=MOVE_ON,
        )

    def usable(self, routes: list[Route]) -> list[Route]:
        usable = []
        for route in routes:
            if route in self.excluded:
                continue
            attempts = self.attempts(route)
            closed = attempts.closed()
            if closed is not None:
                self.exclude(route, str(attempts.skipped(closed)))
                continue
            usable.append(route)
        return usable

    def exclude(self, route: Route, reason: str) -> None:
        self.excluded.append(route)
        self.failures.append(reason)

    def run(self) -> CallOutcome:
        while True:
            chain, fallback = self.usable(self.spec.chain), self.usable(self.spec.fallback)
            if not chain and not fallback:
                tried = "; ".join(self.failures)
                raise ProviderError(f"{self.spec.step_key}: every route failed ({tried})")
            input_tokens, bounded = self._input_tokens(chain, fallback)
            spend = self._reserve(chain, fallback, input_tokens, tentative=bounded)
            if isinstance(spend, Refusal) and bounded:
                # the bound fitted a moment ago, but calls made at the same time took the room:
                # the provider's count is tighter, and the ladder's cheaper ways or a refusal
                # are decided on it
                input_tokens = min(input_tokens, self._counted(chain, fallback) or input_tokens)
                spend = self._reserve(chain, fallback, input_tokens, tentative=False)
            if isinstance(spend, Refusal):
                return CallOutcome(output=None, mode=spend.mode, refusal=spend.message)
            try:
                with spend:  # a failure that escapes releases the reservation
                    return self._on_route(spend, input_tokens)
            except ProviderError as exc:
                route = spend.candidate.route
                if exc.kind == "invalid_request":
                    raise  # never retried: the request itself must change
                if exc.kind in resilience.FATAL_FOR_PROVIDER:
                    for other in self.spec.chain + self.spec.fallback:
                        if other.provider == route.provider and other not in self.excluded:
                            self.exclude(other, f"{other.label}: {exc.kind}")
                else:
                    self.exclude(route, f"{route.label}: {exc}")
                if exc.kind == "not_found":
                    self.event(
                        "model-not-found",
                        f"{route.priced_as} does not exist (retired?); falling back. Update the "
                        "show's routing.",
                        route=route.priced_as,
                    )
                self.event(
                    "fallback",
                    f"giving up on {route.label} ({exc.kind}): {exc}",
                    route=route.priced_as,
                    kind=exc.kind,
                )

    def _reserve(
        self, chain: list[Route], fallback: list[Route], input_tokens: int, *, tentative: bool
    ) -> Spend | Refusal:
        return Spend.reserve(
            self.store,
            self.spec.run_id,
            self.policy,
            # from the bound, only the preferred way: a cheaper one is chosen on the exact count
            self._ladder(chain, fallback, input_tokens, best=tentative),
            tentative=tentative,
            step_key=self.spec.step_key,
            stage=self.spec.stage,
            role=self.spec.role,
            task_kind=self.task.kind,
            prompt=self.prompt,
            shadow=self.spec.shadow,
        )

    def _input_tokens(self, chain: list[Route], fallback: list[Route]) -> tuple[int, bool]:
        """The prompt's input tokens to reserve for: the local bound, unless its worst case does
        not fit what the call may spend (or would move the run to a later budget mode); then the
        preferred route's provider counts them, where it can. And whether it is the bound."""
        bound = prompts.token_bound(self.task)
        if self.ledger.fits(
            self.spec.run_id,
            self.policy,
            [self._ladder(chain, fallback, bound)],
            stage=self.spec.stage,
            role=self.spec.role,
        ):
            return bound, True
        counted = self._counted(chain, fallback)
        return (counted, False) if counted else (bound, True)

    def _counted(self, chain: list[Route], fallback: list[Route]) -> int | None:
        """The prompt's tokens as the preferred route's provider counts them, if it can."""
        first = (chain or fallback)[0]
        try:
            return registry.get(first.provider, self.spec.show).count_tokens(self.task, first.model)
        except Exception:  # counting is an optimisation: the bound still holds
            return None

    def _ladder(
        self, chain: list[Route], fallback: list[Route], input_tokens: int, *, best: bool = False
    ) -> CandidateFactory:
        """The ways to make the call, most preferred first (only that one when `best`)."""

        def ladder(mode: Mode) -> list[Candidate]:
            candidates = self.policy.candidates(
                mode=mode,
                role=self.spec.role,
                kind=self.task.kind,
                chain=chain,
                fallback=fallback,
                input_tokens=input_tokens,
                max_tokens=self.task.max_output_tokens,
                searches=self.task.search_limit,
            )
            return candidates[:1] if best else candidates

        return ladder

    def _on_route(self, spend: Spend, input_tokens: int) -> CallOutcome:
        """Call one route until it answers (`Attempts`: breaker, slot, retries), repairing one
        invalid reply; raise to move on to the next route."""
        candidate = spend.candidate
        route = candidate.route
        provider = registry.get(route.provider, self.spec.show)
        attempts = self.attempts(route)
        repair: Repair | None = None
        while True:
            request = partial(
                provider.complete,
                self.task,
                route.model,
                max_tokens=candidate.max_tokens,
                repair=repair,
            )
            try:
                result: Result[Any] = attempts.run(request)
            except MalformedOutput as bad:
                spent = self.policy.pricer.cost(route.priced_as, bad.usage, batch=candidate.batch)
                fixing = Repair(raw=bad.raw, error=str(bad))
                again = self._repair_worst(candidate, input_tokens, fixing)
                if repair is None and spend.recharge(self.policy, spent, again, usage=bad.usage):
                    repair = fixing
                    self.event(
                        "call-repair",
                        f"{route.label} replied with invalid JSON, asking once more: {bad}",
                        route=route.priced_as,
                        cost=str(spent),
                    )
                    continue
                spend.release(str(bad), spent=spent, usage=bad.usage, rejected=True)
                raise
            cost = self.policy.pricer.cost(route.priced_as, result.usage, batch=candidate.batch)
            response = result.output.model_dump_json()
            spend.settle(cost, usage=result.usage, response=response, compute_ms=attempts.last_ms)
            usage, made = result.usage, attempts.requests
            self.event(
                "call",
                f"{route.label}: {usage.prompt_tokens:,} tokens in ({usage.cache_read_tokens:,} "
                f"from cache), {usage.output_tokens:,} out, ${cost:.6f}"
                + (" (shadow)" if self.spec.shadow else "")
                + (f" after {made} attempts" if made > 1 else ""),
                route=route.priced_as,
                cost=str(cost),
                attempts=made,
            )
            for note in result.notes:  # what the provider had to change to answer
                self.event("provider-note", f"{route.label}: {note}", route=route.priced_as)
            return CallOutcome(
                output=json.loads(response),
                route=route.priced_as,
                usage=_usage_dict(result.usage),
                cost=str(cost),
                mode=spend.mode,
                note=candidate.note,
            )

    def _repair_worst(self, candidate: Candidate, input_tokens: int, repair: Repair) -> Decimal:
        """The most the repair attempt can cost: the first request's input plus the invalid
        reply and the instruction sent back, and the same output limit."""
        pricer = self.policy.pricer
        added = prompts.token_bound(self.task, repair) - prompts.token_bound(self.task)
        priced_as = candidate.route.priced_as
        worst = pricer.worst_case(priced_as, input_tokens + added, candidate.max_tokens)
        if candidate.batch:
            worst *= 1 - pricer.batch_discount(priced_as)
        return worst + pricer.search_cost(priced_as, self.task.search_limit)


def execute(store: Store, spec: CallSpec, task: Task[Any], policy: BudgetPolicy) -> CallOutcome:
    """Make one call: reuse a recorded reply, else reserve, call, settle (or release and try
    the next route). A call the budget cannot fit comes back refused, not raised, so that the
    workflow decides what to do without it."""
    ledger = Ledger(store)
    ledger.step_started(spec.run_id, spec.step_key)  # an attempt left in flight stays counted
    recorded = store.completed_call(spec.run_id, spec.step_key)
    if recorded is not None and recorded.response is not None:
        ledger.mark_completed_later(spec.run_id, spec.step_key, recorded.id)
        store.add_event(
            spec.run_id,
            "call-reused",
            f"{spec.step_key}: reply recorded before a crash reused, not paid again",
            stage=spec.stage,
            data={"call_id": recorded.id, "cost": str(recorded.cost)},
        )
        return CallOutcome(
            output=json.loads(recorded.response),
            route=recorded.priced_as,
            usage=_usage_dict(recorded),
            cost=str(recorded.cost),
            mode=store.get_run(spec.run_id).budget_mode,
            note=recorded.budget_note or "",
        )
    return _Call(store, spec, task, policy).run()


def fit_together(
    store: Store, ctx: RunContext, stage: str, wanted: Sequence[tuple[str, str, Task[Any]]]
) -> bool:
    """Whether the (step key, role, task) calls not made yet all fit the budget at once, each
    in its preferred way (they draw on one allocation: none is the orchestrator's). Only then
    may they run concurrently: under a tight budget, which of them get made would otherwise
    depend on which reserves first."""
    ladders = []
    for step_key, role, task in wanted:
        if store.completed_call(ctx.run_id, step_key) is not None:
            continue  # made before a crash: reused, not paid again
        call = _Call(store, CallSpec.of(ctx, step_key, stage, role), task, ctx.policy)
        chain, fallback = call.usable(call.spec.chain), call.usable(call.spec.fallback)
        ladders.append(call._ladder(chain, fallback, prompts.token_bound(task), best=True))
    if not ladders:
        return True
    role = wanted[0][1]
    return Ledger(store).fits(ctx.run_id, ctx.policy, ladders, stage=stage, role=role)


def _usage_dict(usage: Usage | Any) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "web_searches": usage.web_searches,
    }

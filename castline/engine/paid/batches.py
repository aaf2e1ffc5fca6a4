"""Calls sent through a provider's batch API: half the price, answered minutes (or hours) later.

Three durable steps: submit (reserve every item, each a `Spend`; create the batch, record its id
the moment the provider accepts it), poll (until it ends), collect (settle or release every item
by its custom id). A crash at any point reconnects to the recorded batch; it is never created
twice. Between submit and collect the batch holds the items' reservations; a collect run twice
settles each item once.
"""

from __future__ import annotations

import json
import re
from contextlib import ExitStack
from typing import Any

from castline.budget.ledger import Ledger, Refusal
from castline.budget.policy import Candidate, fixed
from castline.engine.paid.calls import CallOutcome
from castline.engine.paid.spend import Spend
from castline.errors import MalformedOutput
from castline.llm import prompts, registry, resilience
from castline.llm.base import Task
from castline.llm.registry import Route
from castline.llm.wire import BatchItem, BatchProvider, BatchState
from castline.stages import RunContext
from castline.store import Store


def batch_provider(ctx: RunContext, role: str) -> BatchProvider | None:
    """The provider of the role's preferred route, if it can take batches."""
    route = ctx.routing.chain(role)[0]
    provider = registry.get(route.provider, ctx.show)
    return provider if isinstance(provider, BatchProvider) else None


def submit(
    store: Store, ctx: RunContext, key: str, role: str, stage: str, tasks: dict[str, Task[Any]]
) -> dict[str, Any]:
    """Reserve every item at the batch price and create the batch (once)."""
    recorded = store.find_batch(ctx.run_id, key)
    if recorded is not None:
        store.add_event(
            ctx.run_id,
            "batch-reconnected",
            f"batch {recorded['batch_id']} reconnected",
            stage=stage,
        )
        return recorded
    provider = batch_provider(ctx, role)
    assert provider is not None, "submit() needs a batch-capable provider"
    route = ctx.routing.chain(role)[0]
    ledger = Ledger(store)
    items: dict[str, Any] = {}
    batch: list[BatchItem] = []
    kept = {source.id: source for source in ctx.sources}
    with ExitStack() as held:  # an exception before the batch exists releases every item
        spends: list[Spend] = []
        for step_key, task in tasks.items():
            # an earlier submit that died before recording its batch may have created it
            ledger.step_started(ctx.run_id, step_key)
            spend = Spend.reserve(
                store,
                ctx.run_id,
                ctx.policy,
                fixed(_candidates(ctx, role, route, task)),
                step_key=step_key,
                stage=stage,
                role=role,
                task_kind=task.kind,
                prompt=prompts.recorded(task, kept),
                shadow=ctx.routing.offline,
            )
            if isinstance(spend, Refusal):
                items[step_key] = {"refusal": spend.message, "mode": spend.mode}
                continue
            spends.append(held.enter_context(spend))
            max_tokens = spend.candidate.max_tokens
            custom_id = _custom_id(step_key)
            items[step_key] = {
                "call_id": spend.call_id,
                "max_tokens": max_tokens,
                "custom_id": custom_id,
            }
            batch.append(BatchItem(custom_id, task, max_tokens))
        if not batch:
            return {"batch_id": None, "items": items}
        try:
            batch_id = provider.submit_batch(route.model, batch)
        except Exception as raised:
            exc = resilience.as_provider_error(raised)
            for spend in spends:
                spend.release(f"batch not created: {exc}")
            if exc is raised:
                raise
            raise exc from raised
        for spend in spends:  # the batch holds them now: its collect settles them
            spend.leave_in_flight()
    store.save_batch(ctx.run_id, key, batch_id, route.provider, route.model, items)
    store.add_event(
        ctx.run_id,
        "batch-created",
        f"batch {batch_id} of {len(batch)} request(s) on {route.priced_as}",
        stage=stage,
        data={"batch_id": batch_id, "items": sorted(items)},
    )
    return {"batch_id": batch_id, "items": items}


def _candidates(ctx: RunContext, role: str, route: Route, task: Task[Any]) -> list[Candidate]:
    """The ways to make an item on the batch's route, at the batch price."""
    return [
        candidate
        for candidate in ctx.policy.candidates(
            mode="economy",
            role=role,
            kind="research",
            chain=[route],
            fallback=[],
            input_tokens=prompts.token_bound(task),
            max_tokens=task.max_output_tokens,
            searches=task.search_limit,
        )
        if candidate.route == route
    ]


def state(ctx: RunContext, role: str, batch_id: str) -> BatchState:
    provider = batch_provider(ctx, role)
    assert provider is not None
    return provider.batch_state(batch_id)


def collect(
    store: Store,
    ctx: RunContext,
    role: str,
    stage: str,
    submitted: dict[str, Any],
    tasks: dict[str, Task[Any]],
) -> dict[str, CallOutcome | None]:
    """Settle every item from the ended batch; return each step's call outcome (None for an
    item that failed: it is made again on its own)."""
    provider = batch_provider(ctx, role)
    assert provider is not None
    route = ctx.routing.chain(role)[0]
    items = submitted["items"]
    sent = [
        BatchItem(entry["custom_id"], tasks[key], entry["max_tokens"])
        for key, entry in items.items()
        if "call_id" in entry
    ]
    try:
        results = provider.batch_results(submitted["batch_id"], sent, route.model)
    except Exception as raised:
        # the batch ran and may have been billed: its items count at their reservations until
        # a later collect (on resume) settles or releases them
        exc = resilience.as_provider_error(raised)
        Ledger(store).mark_unreconciled(
            ctx.run_id,
            [entry["call_id"] for entry in items.values() if "call_id" in entry],
            why=f"the batch's results could not be read ({exc}): counted at its reservation",
        )
        if exc is raised:
            raise
        raise exc from raised
    outcomes: dict[str, CallOutcome | None] = {}
    for key, entry in items.items():
        if "refusal" in entry:
            outcomes[key] = CallOutcome(output=None, mode=entry["mode"], refusal=entry["refusal"])
            continue
        spend = Spend.held(store, ctx.run_id, key, entry["call_id"])
        result = results.get(entry["custom_id"])
        if isinstance(result, MalformedOutput):  # answered and billed, but not valid
            spent = ctx.policy.pricer.cost(route.priced_as, result.usage, batch=True)
            spend.release(
                f"batch item failed: {result}", spent=spent, usage=result.usage, rejected=True
            )
            outcomes[key] = None  # made again on its own
            continue
        if result is None or isinstance(result, Exception):
            spend.release(f"batch item failed: {result or 'no result'}")
            outcomes[key] = None
            continue
        cost = ctx.policy.pricer.cost(route.priced_as, result.usage, batch=True)
        response = result.output.model_dump_json()
        spend.settle(cost, usage=result.usage, response=response)
        outcomes[key] = CallOutcome(
            output=json.loads(response),
            route=route.priced_as,
            usage={"input_tokens": result.usage.input_tokens},
            cost=str(cost),
            mode=store.get_run(ctx.run_id).budget_mode,
            note="batched",
        )
    return outcomes


def _custom_id(step_key: str) -> str:
    """Batch APIs accept letters, digits, '_' and '-' in custom ids (64 at most)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", step_key)[:64]

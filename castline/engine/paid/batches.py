"""Calls sent through a provider's batch API: half the price, answered minutes (or hours) later.

Three durable steps: submit (reserve every item, create the batch, record its id the moment the
provider accepts it), poll (until it ends), collect (settle every item by its custom id). A
crash at any point reconnects to the recorded batch; it is never created twice.
"""

from __future__ import annotations

import json
import re
from typing import Any

from castline.budget.ledger import RESTARTED, Ledger, Refusal
from castline.budget.policy import fixed
from castline.engine.paid.calls import CallOutcome
from castline.errors import MalformedOutput
from castline.llm import prompts, registry, resilience
from castline.llm.base import Task
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
    for step_key, task in tasks.items():
        # an earlier submit that died before recording its batch may have created it
        ledger.mark_unreconciled(ctx.run_id, step_key=step_key, why=RESTARTED)
        prompt = prompts.render(task).text
        input_tokens = prompts.token_bound(task)
        candidates = [
            c
            for c in ctx.policy.candidates(
                mode="economy",
                role=role,
                kind="research",
                chain=[route],
                fallback=[],
                input_tokens=input_tokens,
                max_tokens=task.max_output_tokens,
            )
            if c.route == route
        ]
        reservation = ledger.reserve(
            ctx.run_id,
            ctx.policy,
            fixed(candidates),
            step_key=step_key,
            stage=stage,
            role=role,
            task_kind=task.kind,
            prompt=prompt,
            shadow=ctx.routing.offline,
        )
        if isinstance(reservation, Refusal):
            items[step_key] = {"refusal": reservation.message, "mode": reservation.mode}
            continue
        max_tokens = reservation.candidate.max_tokens
        custom_id = _custom_id(step_key)
        items[step_key] = {
            "call_id": reservation.call_id,
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
        for entry in items.values():
            if "call_id" in entry:
                store.fail_call(entry["call_id"], f"batch not created: {exc}")
        if exc is raised:
            raise
        raise exc from raised
    store.save_batch(ctx.run_id, key, batch_id, route.provider, route.model, items)
    store.add_event(
        ctx.run_id,
        "batch-created",
        f"batch {batch_id} of {len(batch)} request(s) on {route.priced_as}",
        stage=stage,
        data={"batch_id": batch_id, "items": sorted(items)},
    )
    return {"batch_id": batch_id, "items": items}


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
) -> dict[str, dict[str, Any]]:
    """Settle every item from the ended batch; return each step's call outcome."""
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
    outcomes: dict[str, dict[str, Any]] = {}
    for key, entry in items.items():
        if "refusal" in entry:
            outcomes[key] = CallOutcome(
                None, "", {}, "0", entry["mode"], refusal=entry["refusal"]
            ).as_dict()
            continue
        result = results.get(entry["custom_id"])
        if isinstance(result, MalformedOutput):  # answered and billed, but not valid
            spent = ctx.policy.pricer.cost(route.priced_as, result.usage, batch=True)
            store.fail_call(
                entry["call_id"],
                f"batch item failed: {result}",
                spent=spent,
                usage=result.usage,
                rejected=True,
            )
            outcomes[key] = {"error": str(result)}
            continue
        if result is None or isinstance(result, Exception):
            store.fail_call(entry["call_id"], f"batch item failed: {result or 'no result'}")
            outcomes[key] = {"error": str(result)}
            continue
        cost = ctx.policy.pricer.cost(route.priced_as, result.usage, batch=True)
        response = result.output.model_dump_json()
        store.finish_call(
            entry["call_id"],
            cost=cost,
            response=response,
            input_tokens=result.usage.input_tokens,
            output_tokens=result.usage.output_tokens,
            cache_read_tokens=result.usage.cache_read_tokens,
            cache_write_tokens=result.usage.cache_write_tokens,
            cache_write_1h_tokens=result.usage.cache_write_1h_tokens,
        )
        Ledger(store).mark_completed_later(ctx.run_id, key, entry["call_id"])
        outcomes[key] = CallOutcome(
            output=json.loads(response),
            route=route.priced_as,
            usage={"input_tokens": result.usage.input_tokens},
            cost=str(cost),
            mode=store.get_run(ctx.run_id).budget_mode,
            note="batched",
        ).as_dict()
    return outcomes


def _custom_id(step_key: str) -> str:
    """Batch APIs accept letters, digits, '_' and '-' in custom ids (64 at most)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", step_key)[:64]

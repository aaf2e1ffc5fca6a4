"""The paid-call engine's money paths, without DBOS: the journal's reuse of a settled reply, an
SDK's unexpected exceptions, rejected replies in the cost report, unreconciled calls after a
crash, and reservations from a local bound instead of a count_tokens request."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from castline.budget.ledger import Ledger, Reservation
from castline.budget.policy import BudgetPolicy, Candidate, Totals, allocation_key, fixed
from castline.budget.prices import Pricer
from castline.budget.report import cost_report
from castline.config import Retries, Show, load_show
from castline.engine.paid import calls
from castline.errors import ProviderError
from castline.llm import prompts, registry
from castline.llm.base import Task
from castline.llm.registry import Route
from castline.llm.scripted import USAGE, ScriptedProvider
from castline.store import Store
from castline.store import calls as calls_table
from tests.conftest import EXAMPLE
from tests.llm.realistic import realistic_tasks
from tests.runs import add_run

RUN = "paid"
STEP = "write.intro"
HAIKU = "anthropic:claude-haiku-4-5"
ROUTE = Route("counting", "claude-haiku-4-5", HAIKU)
FALLBACK = Route("offline", "claude-sonnet-4-6", "anthropic:claude-sonnet-4-6")


class CountingProvider(ScriptedProvider):
    """Scripted replies (offline ones when nothing is queued) that record every count_tokens
    request and, at each call, the reservation the ledger holds for it."""

    name = "counting"

    def __init__(self, store: Store | None = None) -> None:
        super().__init__()
        self.store = store
        self.counted: list[str] = []
        self.held: list[Decimal] = []

    def count_tokens(self, task: Task[Any], model: str) -> int | None:
        self.counted.append(task.kind)
        return self.fallback.count_tokens(task, model)

    def complete(self, task: Task[Any], model: str, **options: Any) -> Any:
        if self.store is not None:
            self.held += [c.reserved for c in self.store.calls(RUN) if c.status == "started"]
        return super().complete(task, model, **options)


@pytest.fixture(scope="module")
def task() -> Task[Any]:
    return realistic_tasks()["intro"]


def _show(budget: Decimal = Decimal("33.25")) -> Show:
    show = load_show(EXAMPLE / "show.yaml")
    return show.model_copy(
        update={
            "retries": Retries(base_delay_s=0, max_wait_s=0),
            "budget": show.budget.model_copy(update={"per_episode": budget}),
        }
    )


def _setup(
    tmp_path: Path, budget: Decimal = Decimal("33.25")
) -> tuple[Store, CountingProvider, calls.CallSpec, BudgetPolicy]:
    store = Store(f"sqlite:///{tmp_path / 'paid.db'}")
    show = _show(budget)
    add_run(store, RUN, budget=budget, spec={"show": show.model_dump(mode="json")})
    provider = CountingProvider(store=store)
    registry.use(provider)
    spec = calls.CallSpec(
        run_id=RUN,
        step_key=STEP,
        stage="write",
        role="writer",
        chain=[ROUTE],
        fallback=[FALLBACK],
        shadow=True,
        show=show,
    )
    return store, provider, spec, BudgetPolicy(show.budget, Pricer(show.prices))


def _money_in_calls(store: Store) -> Decimal:
    """Every nano-dollar the calls table records, summed by plain SQL."""
    with store.engine.connect() as connection:
        total = connection.execute(sa.select(sa.func.sum(calls_table.c.cost_nanos))).scalar()
    return Decimal(int(total or 0)) / 10**9


# --- (5a) the journal: a settled call whose step was never checkpointed is not paid again -------


def test_a_settled_call_run_again_is_reused_not_called_or_billed_again(
    tmp_path: Path, task: Task[Any]
) -> None:
    store, provider, spec, policy = _setup(tmp_path)
    first = calls.execute(store, spec, task, policy)
    spent = store.run_cost(RUN)

    # the process died after settling, before DBOS checkpointed the step: the step runs again
    again = calls.execute(store, spec, task, policy)

    assert len(provider.calls) == 1  # the provider was asked once
    assert again.output == first.output and again.cost == first.cost
    assert store.run_cost(RUN) == spent > 0
    assert [c.status for c in store.calls(RUN)] == ["ok"]
    reused = [e for e in store.events(RUN) if e.kind == "call-reused"]
    assert len(reused) == 1 and "not paid again" in reused[0].message
    assert reused[0].data["call_id"] == store.calls(RUN)[0].id


# --- (3) an SDK's unexpected exception is a classified, retried provider error -----------------


def test_an_unexpected_sdk_exception_is_retried_as_a_server_error(
    tmp_path: Path, task: Task[Any]
) -> None:
    store, provider, spec, policy = _setup(tmp_path)
    provider.enqueue("write", RuntimeError("connection reset by peer"))

    outcome = calls.execute(store, spec, task, policy)

    assert outcome.output is not None and outcome.route == HAIKU
    assert len(provider.calls) == 2  # retried on the same route
    retry = next(e for e in store.events(RUN) if e.kind == "call-retry")
    assert retry.data["kind"] == "server_error"
    assert "RuntimeError: connection reset by peer" in retry.message
    assert [(c.status, c.reserved) for c in store.calls(RUN)] == [("ok", 0)]


def test_unexpected_exceptions_fall_back_and_release_with_a_message(
    tmp_path: Path, task: Task[Any]
) -> None:
    store, provider, spec, policy = _setup(tmp_path)
    provider.enqueue("write", RuntimeError(), httpx.ReadTimeout(""))

    outcome = calls.execute(store, spec, task, policy)

    assert outcome.route == FALLBACK.priced_as
    failed, made = store.calls(RUN)
    assert (failed.status, failed.reserved, failed.cost) == ("failed", 0, 0)
    assert failed.error == "ProviderError: ReadTimeout: (no message)"
    assert made.status == "ok"
    retry = next(e for e in store.events(RUN) if e.kind == "call-retry")
    assert "RuntimeError: (no message)" in retry.message and retry.data["kind"] == "server_error"
    fallback = next(e for e in store.events(RUN) if e.kind == "fallback")
    assert fallback.data["kind"] == "timeout"
    assert not [c for c in store.calls(RUN) if c.status == "started"]


def test_an_unexpected_exception_on_the_last_route_raises_a_provider_error(
    tmp_path: Path, task: Task[Any]
) -> None:
    store, provider, spec, policy = _setup(tmp_path)
    spec = replace(spec, fallback=[])
    provider.enqueue("write", ValueError("bad frame"), ValueError("bad frame"))

    with pytest.raises(ProviderError, match="ValueError: bad frame"):
        calls.execute(store, spec, task, policy)

    [failed] = store.calls(RUN)
    assert (failed.status, failed.reserved) == ("failed", 0)
    assert failed.error == "ProviderError: ValueError: bad frame"


# --- (2) a rejected reply is paid for, and the cost report counts it --------------------------


def test_a_reply_rejected_once_is_in_the_cost_report(tmp_path: Path, task: Task[Any]) -> None:
    store, provider, spec, policy = _setup(tmp_path)
    provider.enqueue("write", "this is not JSON")

    outcome = calls.execute(store, spec, task, policy)

    assert outcome.output is not None and len(provider.calls) == 2  # repaired on its route
    [call] = store.calls(RUN)
    rejected = policy.pricer.cost(HAIKU, USAGE)
    assert call.status == "ok" and call.rejected_replies == 1 and call.rejected_cost == rejected
    assert call.cost == rejected + Decimal(outcome.cost)
    assert call.input_tokens == USAGE.input_tokens + outcome.usage["input_tokens"]
    report = cost_report(store, RUN)
    assert report.total == report.spent == _money_in_calls(store) == call.cost
    [stage] = report.by_stage
    assert (stage.key, stage.calls, stage.rejected, stage.rejected_cost) == (
        "write",
        1,
        1,
        rejected,
    )
    assert report.rejected == 1 and report.rejected_cost == rejected
    assert report.list_price == report.spent  # no batching: list price is what was paid
    data = report.as_json()
    assert Decimal(data["total"]) == _money_in_calls(store)
    assert data["by_stage"][0]["rejected"] == 1


def test_a_call_that_fails_after_rejected_replies_is_still_in_the_report(
    tmp_path: Path, task: Task[Any]
) -> None:
    store, provider, spec, policy = _setup(tmp_path)
    provider.enqueue("write", "{", '{"turns": "no"}')  # invalid, and invalid again after repair

    outcome = calls.execute(store, spec, task, policy)

    assert outcome.route == FALLBACK.priced_as
    failed, made = store.calls(RUN)
    assert failed.status == "failed" and failed.rejected_replies == 2
    assert failed.cost == 2 * policy.pricer.cost(HAIKU, USAGE) == failed.rejected_cost
    assert (failed.input_tokens, failed.output_tokens) == (200, 100)
    report = cost_report(store, RUN)
    assert report.total == report.spent == _money_in_calls(store) == failed.cost + made.cost
    haiku = next(row for row in report.by_model if row.key == HAIKU)
    assert (haiku.calls, haiku.rejected, haiku.input_tokens) == (0, 2, 200)
    assert sum((row.cost for row in report.by_stage), Decimal(0)) == report.total


# --- (1) a call in flight at a crash is counted at its reservation -----------------------------


def _in_flight(ledger: Ledger, policy: BudgetPolicy) -> Reservation:
    """A reservation for the step, as a process that died during the call left it."""
    crashed = ledger.reserve(
        RUN,
        policy,
        fixed([Candidate(ROUTE, 4096, False, Decimal("0.25"))]),
        step_key=STEP,
        stage="write",
        role="writer",
        task_kind="write",
        prompt="p",
        shadow=True,
    )
    assert isinstance(crashed, Reservation)
    return crashed


def test_an_unreconciled_call_stays_counted_when_its_step_completes_later(
    tmp_path: Path, task: Task[Any]
) -> None:
    store, _, spec, policy = _setup(tmp_path)
    ledger = Ledger(store)
    crashed = _in_flight(ledger, policy)
    held = crashed.candidate.worst_case
    assert ledger.mark_unreconciled(RUN) == 1  # what resume does

    outcome = calls.execute(store, spec, task, policy)  # the resumed run makes the call again

    assert outcome.output is not None
    old, new = store.calls(RUN)
    assert (old.status, old.reserved, old.unreconciled) == ("unreconciled", held, held)
    assert old.error is not None and f"completed later by call {new.id}" in old.error
    assert new.status == "ok" and new.reserved == 0
    totals = ledger.totals(RUN)
    assert (totals.settled, totals.unreconciled, totals.reserved) == (new.cost, held, 0)
    assert totals.committed == new.cost + held == store.run_cost(RUN) == store.costs()[RUN]
    report = cost_report(store, RUN)
    assert (report.spent, report.unreconciled, report.total) == (new.cost, held, new.cost + held)
    assert report.budget_left == report.budget - report.total
    [stage] = report.by_stage
    assert (stage.calls, stage.unreconciled, stage.unreconciled_cost) == (1, 1, held)
    assert stage.total == report.total
    [listed] = report.unreconciled_calls
    assert listed["call_id"] == old.id and listed["counted_at"] == held
    data = json.loads(json.dumps(report.as_json()))
    assert Decimal(data["unreconciled"]) == held and Decimal(data["total"]) == report.total

    # a reply found for the step later (the journal's reuse) changes nothing more
    calls.execute(store, spec, task, policy)
    assert store.run_cost(RUN) == new.cost + held


def test_a_step_started_again_counts_the_attempt_left_in_flight(
    tmp_path: Path, task: Task[Any]
) -> None:
    store, _, spec, policy = _setup(tmp_path)
    ledger = Ledger(store)
    crashed = _in_flight(ledger, policy)  # a worker took the step over; no resume marked it

    calls.execute(store, spec, task, policy)

    old, new = store.calls(RUN)
    assert (old.id, old.status, old.unreconciled) == (
        crashed.call_id,
        "unreconciled",
        Decimal("0.25"),
    )
    assert old.error is not None and f"completed later by call {new.id}" in old.error
    assert store.run_cost(RUN) == new.cost + Decimal("0.25") == ledger.totals(RUN).committed


def test_a_late_reply_reconciles_an_unreconciled_call(tmp_path: Path, task: Task[Any]) -> None:
    store, _, _, policy = _setup(tmp_path)
    ledger = Ledger(store)
    crashed = _in_flight(ledger, policy)
    ledger.mark_unreconciled(RUN)

    # the process was not dead after all (a zombie): its reply settles the call
    store.finish_call(crashed.call_id, cost=Decimal("0.01"), response="{}", input_tokens=7)

    [call] = store.calls(RUN)
    assert (call.status, call.cost, call.reserved, call.error) == ("ok", Decimal("0.01"), 0, None)
    assert ledger.totals(RUN).committed == Decimal("0.01") == store.run_cost(RUN)


# --- (4) reservations from a local bound; count_tokens only near the limit ----------------------


def test_an_ample_budget_reserves_from_the_local_bound_without_counting(
    tmp_path: Path, task: Task[Any]
) -> None:
    store, provider, spec, policy = _setup(tmp_path)

    outcome = calls.execute(store, spec, task, policy)

    assert provider.counted == []  # no count_tokens round trip
    bound = prompts.token_bound(task)
    assert provider.held == [policy.pricer.worst_case(HAIKU, bound, task.max_output_tokens)]
    assert Decimal(outcome.cost) <= provider.held[0]
    assert outcome.usage["input_tokens"] <= bound


def test_near_the_limit_the_provider_counts_the_prompt(tmp_path: Path, task: Task[Any]) -> None:
    pricer = Pricer(_show().prices)
    exact = CountingProvider().count_tokens(task, ROUTE.model)
    assert exact is not None
    bound = prompts.token_bound(task)
    tight = pricer.worst_case(HAIKU, exact, task.max_output_tokens)
    loose = pricer.worst_case(HAIKU, bound, task.max_output_tokens)
    # a budget whose write headroom lies between the exact and the bound's worst case
    share = BudgetPolicy(_show(Decimal(100)).budget, pricer).headroom(
        allocation_key("write", "writer"), Totals(Decimal(0), Decimal(0))
    ) / Decimal(100)
    budget = ((tight + loose) / 2 / share).quantize(Decimal("0.000001"))
    store, provider, spec, policy = _setup(tmp_path, budget)
    headroom = policy.headroom("write", Totals(Decimal(0), Decimal(0)))
    assert tight <= headroom < loose

    outcome = calls.execute(store, spec, task, policy)

    assert provider.counted == ["write"]  # counted once, exactly
    assert provider.held == [tight] and outcome.route == HAIKU and outcome.note == ""
    assert Decimal(outcome.cost) <= tight


def test_the_local_bound_is_never_below_the_tokens_a_provider_reports() -> None:
    offline = CountingProvider().fallback
    for name, task in realistic_tasks().items():
        counted = offline.count_tokens(task, "m")
        assert counted is not None
        assert prompts.token_bound(task) >= counted, name
        used = offline.complete(task, "m").usage
        assert prompts.token_bound(task) >= used.prompt_tokens, name
        # bytes bound characters, and every tokenizer spends at least one byte on a token
        text = prompts.render(task).text
        assert prompts.token_bound(task) >= len(text.encode()) >= len(text)


def test_a_bound_squeezed_out_by_a_call_made_at_the_same_time_is_counted_not_shortened(
    tmp_path: Path, task: Task[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    pricer = Pricer(_show().prices)
    exact = CountingProvider().count_tokens(task, ROUTE.model)
    assert exact is not None
    tight = pricer.worst_case(HAIKU, exact, task.max_output_tokens)
    loose = pricer.worst_case(HAIKU, prompts.token_bound(task), task.max_output_tokens)
    share = BudgetPolicy(_show(Decimal(100)).budget, pricer).headroom(
        allocation_key("write", "writer"), Totals(Decimal(0), Decimal(0))
    ) / Decimal(100)
    # room for the bound's worst case; once a rival takes some, only the exact count still fits
    budget = ((loose + (loose - tight)) / share).quantize(Decimal("0.000001"))
    store, provider, spec, policy = _setup(tmp_path, budget)
    room = policy.headroom(allocation_key("write", "writer"), Totals(Decimal(0), Decimal(0)))
    assert room >= loose
    rival = room - (tight + loose) / 2
    decided = calls._Call._input_tokens

    def then_a_rival_reserves(self: calls._Call, *args: Any) -> tuple[int, bool]:
        chosen = decided(self, *args)
        Ledger(store).reserve(
            RUN,
            policy,
            fixed([Candidate(ROUTE, 0, False, rival)]),
            step_key="rival",
            stage="write",
            role="writer",
            task_kind="write",
            prompt="",
            shadow=True,
        )
        return chosen

    monkeypatch.setattr(calls._Call, "_input_tokens", then_a_rival_reserves)

    outcome = calls.execute(store, spec, task, policy)

    assert outcome.output is not None  # made, not refused
    assert provider.counted == ["write"] and provider.held[-1] == tight  # full length, exact
    assert [c.status for c in store.calls(RUN) if c.step_key == STEP] == ["ok"]  # no refusal row

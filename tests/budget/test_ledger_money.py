"""The budget's invariant checked from outside the ledger: money committed, summed by plain SQL
over the calls table (every recorded cost, plus the reservations of calls in flight and of
unreconciled ones), never exceeds the budget at any instant an observer sees, while threads
reserve, settle, fail, re-reserve after a rejected reply, and leave calls in flight that a resume
marks unreconciled (and a late reply then reconciles)."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from castline.budget.ledger import Ledger, Refusal
from castline.budget.policy import BudgetPolicy, Candidate, fixed
from castline.budget.prices import Pricer
from castline.config import Budget
from castline.llm.registry import Route
from castline.store import Store, to_nanos
from tests.runs import add_run

ROUTE = Route("offline", "claude-haiku-4-5", "anthropic:claude-haiku-4-5")
RUN = "money"
# Independent of the ledger's own totals: written against the table, not the ledger's queries.
COMMITTED = sa.text(
    "SELECT COALESCE(SUM(cost_nanos), 0)"
    " + COALESCE(SUM(CASE WHEN status IN ('started', 'unreconciled') THEN reserved_nanos"
    " ELSE 0 END), 0) FROM calls WHERE run_id = :run"
)
HELD_ELSEWHERE = sa.text(
    "SELECT COUNT(*) FROM calls WHERE run_id = :run AND reserved_nanos <> 0"
    " AND status NOT IN ('started', 'unreconciled')"
)


def _budget(limit: Decimal) -> Budget:
    zero = {stage: Decimal(0) for stage in ("research", "plan", "review", "polish", "voice")}
    return Budget(
        per_episode=limit,
        orchestration_share=Decimal("0.01"),
        allocations={**zero, "write": Decimal("0.99")},
    )


def _committed(store: Store) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(COMMITTED, {"run": RUN}).scalar_one())


ACTIONS = ("settle", "fail", "billed-fail", "repair", "crash")
operation = st.tuples(
    st.integers(min_value=1, max_value=400),  # reservation, in cents
    st.sampled_from(ACTIONS),
    st.floats(min_value=0, max_value=1),  # what share of the reservation a reply costs
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    limit_cents=st.integers(min_value=100, max_value=3000),
    operations=st.lists(operation, min_size=1, max_size=40),
    threads=st.integers(min_value=1, max_value=6),
    resumes=st.integers(min_value=0, max_value=3),
)
def test_committed_money_by_plain_sql_never_exceeds_the_budget(
    tmp_path_factory: pytest.TempPathFactory,
    limit_cents: int,
    operations: list[tuple[int, str, float]],
    threads: int,
    resumes: int,
) -> None:
    limit = Decimal(limit_cents) / 100
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('money') / 'ledger.db'}")
    add_run(store, RUN, budget=limit)
    ledger = Ledger(store)
    policy = BudgetPolicy(_budget(limit), Pricer())
    observed: list[int] = []
    done = threading.Event()

    def monitor() -> None:
        while not done.is_set():
            observed.append(_committed(store))

    def resumer() -> None:  # a resume while calls are in flight: some replies come later
        for _ in range(resumes):
            ledger.mark_unreconciled(RUN)
            observed.append(_committed(store))

    def worker(index: int) -> None:
        for number, (cents, action, share) in enumerate(operations[index::threads]):
            amount = Decimal(cents) / 100
            reply = (amount * Decimal(str(share))).quantize(Decimal("0.000001"))
            held = ledger.reserve(
                RUN,
                policy,
                fixed([Candidate(ROUTE, 100, False, amount)]),
                step_key=f"t{index}.{number}",
                stage="write",
                role="writer",
                task_kind="write",
                prompt="p",
                shadow=True,
            )
            if isinstance(held, Refusal):
                continue
            observed.append(_committed(store))
            key = f"t{index}.{number}"
            if action == "settle":
                ledger.settle(held.call_id, RUN, key, reply, response="{}")
            elif action == "fail":
                ledger.release(held.call_id, "failed")
            elif action == "billed-fail":
                ledger.release(held.call_id, "invalid reply", spent=reply, rejected=True)
            elif action == "repair":
                if ledger.recharge(held.call_id, RUN, policy, reply, amount):
                    observed.append(_committed(store))
                    ledger.settle(held.call_id, RUN, key, reply, response="{}")
                else:
                    ledger.release(held.call_id, "no room to repair")
            # "crash": the call stays in flight; a resume counts it as unreconciled

    watcher = threading.Thread(target=monitor)
    watcher.start()
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    workers.append(threading.Thread(target=resumer))
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    ledger.mark_unreconciled(RUN)  # the final resume: nothing is left in flight
    observed.append(_committed(store))
    done.set()
    watcher.join()

    budget = to_nanos(limit)
    assert observed and max(observed) <= budget
    totals = ledger.totals(RUN)
    assert to_nanos(totals.committed) == _committed(store) <= budget
    assert to_nanos(totals.settled + totals.unreconciled + totals.reserved) == _committed(store)
    assert totals.reserved == 0  # every call settled, failed or unreconciled
    assert store.run_cost(RUN) == totals.committed  # unreconciled calls are cost, at worst case
    with store.engine.connect() as connection:
        assert connection.execute(HELD_ELSEWHERE, {"run": RUN}).scalar_one() == 0
    made = store.calls(RUN)
    assert not [c for c in made if c.status == "started"]
    crashed = [c for c in made if c.status == "unreconciled"]
    assert sum((c.reserved for c in crashed), Decimal(0)) == totals.unreconciled

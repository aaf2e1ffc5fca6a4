"""The ledger's invariant, settled + reserved <= budget, under threads and processes.

Every test runs on SQLite and on PostgreSQL (`database_url_param`, tests/postgres_server.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from castline.budget.ledger import Ledger, Refusal, Reservation
from castline.budget.policy import BudgetPolicy, Candidate, Mode
from castline.budget.prices import Pricer
from castline.config import Budget
from castline.llm.registry import Route
from castline.store import Store, calls, events
from tests.runs import add_run

ROUTE = Route("offline", "claude-haiku-4-5", "anthropic:claude-haiku-4-5")


def _budget(limit: Decimal) -> Budget:
    # One allocation takes (nearly) everything, so only the overall budget binds.
    zero = {stage: Decimal(0) for stage in ("research", "plan", "review", "polish", "voice")}
    return Budget(
        per_episode=limit,
        orchestration_share=Decimal("0.01"),
        allocations={**zero, "write": Decimal("0.99")},
    )


def _store(url: str, run_id: str, limit: Decimal) -> Store:
    store = Store(url)
    add_run(store, run_id, budget=limit)
    return store


def _fixed(amount: Decimal) -> list[Candidate]:
    return [Candidate(ROUTE, 100, False, amount)]


def _reserve(
    ledger: Ledger, policy: BudgetPolicy, run_id: str, key: str, amount: Decimal
) -> Reservation | Refusal:
    return ledger.reserve(
        run_id,
        policy,
        lambda mode: _fixed(amount),
        step_key=key,
        stage="write",
        role="writer",
        task_kind="write",
        prompt="p",
        shadow=True,
    )


def _committed(store: Store, run_id: str) -> Decimal:
    """Settled plus reserved, read in one consistent snapshot."""
    return Ledger(store).totals(run_id).committed


operation = st.tuples(
    st.integers(min_value=1, max_value=400),  # reservation, in cents
    st.one_of(st.none(), st.floats(min_value=0, max_value=1)),  # None: the call fails
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    limit_cents=st.integers(min_value=100, max_value=3000),
    operations=st.lists(operation, min_size=1, max_size=40),
    threads=st.integers(min_value=1, max_value=6),
)
def test_invariant_holds_under_concurrent_reserve_settle_and_fail(
    database_url_param: str,
    limit_cents: int,
    operations: list[tuple[int, float | None]],
    threads: int,
) -> None:
    limit = Decimal(limit_cents) / 100
    run_id = f"prop-{uuid.uuid4().hex[:12]}"  # a run of its own per example, in one database
    store = _store(database_url_param, run_id, limit)
    ledger = Ledger(store)
    policy = BudgetPolicy(_budget(limit), Pricer())
    settled: list[Decimal] = []
    violations: list[Decimal] = []
    lock = threading.Lock()
    done = threading.Event()

    def monitor() -> None:
        while not done.is_set():
            committed = _committed(store, run_id)
            if committed > limit:
                violations.append(committed)

    def worker(index: int) -> None:
        for number, (cents, outcome) in enumerate(operations[index::threads]):
            amount = Decimal(cents) / 100
            result = _reserve(ledger, policy, run_id, f"t{index}.{number}", amount)
            if isinstance(result, Refusal):
                continue
            if _committed(store, run_id) > limit:
                violations.append(_committed(store, run_id))
            if outcome is None:
                store.fail_call(result.call_id, "failed")
            else:
                cost = (amount * Decimal(str(outcome))).quantize(Decimal("0.000001"))
                store.finish_call(result.call_id, cost=cost, response="{}")
                with lock:
                    settled.append(cost)

    watcher = threading.Thread(target=monitor)
    watcher.start()
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    done.set()
    watcher.join()

    assert violations == []
    assert store.run_cost(run_id) == sum(settled, Decimal(0)) <= limit
    totals = ledger.totals(run_id)
    assert totals.reserved == 0 and totals.committed == sum(settled, Decimal(0))


WORKER = """
import json, random, sys, threading
from decimal import Decimal
from castline.budget.ledger import Ledger, Refusal
from castline.budget.policy import BudgetPolicy, Candidate
from castline.budget.prices import Pricer
from castline.config import Budget
from castline.llm.registry import Route
from castline.store import Store

url, run_id, worker, calls_each = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
store = Store(url)
ledger = Ledger(store)
zero = {s: Decimal(0) for s in ("research", "plan", "review", "polish", "voice")}
budget = Budget(per_episode=Decimal(30), orchestration_share=Decimal("0.01"),
                allocations={**zero, "write": Decimal("0.99")})
policy = BudgetPolicy(budget, Pricer())
route = Route("offline", "m", "anthropic:claude-haiku-4-5")
accepted = []

def call(n):
    key = f"w{worker}.{n}"
    result = ledger.reserve(run_id, policy, lambda mode: [Candidate(route, 100, False, Decimal(1))],
                            step_key=key, stage="write", role="writer", task_kind="write",
                            prompt="p", shadow=True)
    if isinstance(result, Refusal):
        return
    cost = Decimal(random.randint(80, 100)) / 100
    store.finish_call(result.call_id, cost=cost, response="{}")
    accepted.append((key, str(cost)))

threads = [threading.Thread(target=call, args=(n,)) for n in range(calls_each)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(accepted))
"""


@pytest.mark.slow
def test_fifty_concurrent_calls_from_five_processes_never_exceed_the_budget(
    database_url_param: str,
) -> None:
    run_id = "stress"
    limit = Decimal(30)  # room for ~30 calls reserving $1 each
    store = _store(database_url_param, run_id, limit)
    ledger = Ledger(store)

    # Watch the invariant from outside while the workers run.
    violations: list[Decimal] = []
    done = threading.Event()

    def monitor() -> None:
        while not done.is_set():
            committed = ledger.totals(run_id).committed
            if committed > limit:
                violations.append(committed)
            time.sleep(0.005)

    watcher = threading.Thread(target=monitor)
    watcher.start()
    try:
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, store.url, run_id, str(worker), "10"],
                stdout=subprocess.PIPE,
                text=True,
            )
            for worker in range(5)
        ]
        accepted: list[tuple[str, str]] = []
        for process in processes:
            out, _ = process.communicate(timeout=120)
            assert process.returncode == 0
            accepted += [tuple(item) for item in json.loads(out)]
    finally:
        done.set()
        watcher.join()

    assert violations == []
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(calls.c.step_key, calls.c.status, calls.c.cost_nanos, calls.c.reserved_nanos)
        ).all()
        refusal_events = connection.execute(
            sa.select(sa.func.count()).select_from(events).where(events.c.kind == "budget-refused")
        ).scalar_one()
    statuses = Counter(status for _, status, _, _ in rows)
    assert statuses["ok"] == len(accepted)
    assert statuses["refused"] == 50 - len(accepted) == refusal_events  # every refusal recorded
    assert len(rows) == 50 and all(reserved == 0 for *_, reserved in rows)
    assert len({key for key, *_ in rows}) == 50
    assert 28 <= len(accepted) <= 37  # $30 of $1 reservations settling at $0.80 to $1.00
    spend = store.run_cost(run_id)
    assert spend <= limit
    assert spend == sum((Decimal(cost) for _, cost in accepted), Decimal(0))
    assert max(Counter(key for key, status, *_ in rows if status == "ok").values()) == 1
    totals = ledger.totals(run_id)
    assert totals.reserved == 0 and totals.committed == spend
    assert store.get_run(run_id).peak_reserved <= limit


def test_a_mode_change_is_an_audit_event_with_the_numbers(database_url_param: str) -> None:
    run_id = "modes"
    store = _store(database_url_param, run_id, Decimal(10))
    ledger = Ledger(store)
    policy = BudgetPolicy(_budget(Decimal(10)), Pricer())
    seen: list[Mode] = []
    for number, amount in enumerate(("7.9", "0.2", "1.5", "0.3")):
        result = _reserve(ledger, policy, run_id, f"c{number}", Decimal(amount))
        assert isinstance(result, Reservation)
        seen.append(result.mode)
        store.finish_call(result.call_id, cost=Decimal(amount), response="{}")

    assert seen == ["normal", "normal", "economy", "degraded"]
    changes = [e for e in store.events(run_id) if e.kind == "budget-mode"]
    assert [(e.data["from"], e.data["to"]) for e in changes] == [
        ("normal", "economy"),
        ("economy", "degraded"),
    ]
    assert changes[0].data["committed"] == "8.1" and changes[0].data["budget"] == "10"
    assert "81.0%" in changes[0].message
    assert changes[1].data["committed"] == "9.6"
    # the write allocation (99 % of the budget, no shared reserve left) is now spent
    refused = _reserve(ledger, policy, run_id, "c4", Decimal("0.01"))
    assert isinstance(refused, Refusal) and refused.mode == "degraded"
    assert refused.committed == Decimal("9.9") and refused.headroom == 0
    event = next(e for e in store.events(run_id) if e.kind == "budget-refused")
    assert event.data["headroom"] == str(refused.headroom)


def test_stale_reservations_stay_counted_as_unreconciled(database_url_param: str) -> None:
    store = _store(database_url_param, "stale", Decimal(5))
    ledger = Ledger(store)
    policy = BudgetPolicy(_budget(Decimal(5)), Pricer())
    held = _reserve(ledger, policy, "stale", "a", Decimal(3))
    assert isinstance(held, Reservation)
    assert isinstance(_reserve(ledger, policy, "stale", "b", Decimal(3)), Refusal)

    assert ledger.mark_unreconciled("stale") == 1

    totals = ledger.totals("stale")  # the crashed call may have been billed: still counted
    assert (totals.committed, totals.unreconciled, totals.reserved) == (3, 3, 0)
    refused = _reserve(ledger, policy, "stale", "c", Decimal(3))
    assert isinstance(refused, Refusal) and refused.unreconciled == 3
    assert "$3.000000 unreconciled" in refused.message
    assert isinstance(_reserve(ledger, policy, "stale", "d", Decimal("1.9")), Reservation)

"""One reservation's lifecycle (`Spend`): an exception escaping releases it with its message, an
interrupt or a batch leaves it in flight, it ends once; and money checked by plain SQL over the
calls table catches a settlement that forgets to drop its reservation."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from castline.budget.ledger import Ledger, Refusal
from castline.budget.policy import BudgetPolicy, Candidate, fixed
from castline.budget.prices import Pricer
from castline.config import Budget
from castline.engine.paid.spend import Spend
from castline.llm.base import Usage
from castline.llm.registry import Route
from castline.store import Store, calls, to_nanos
from tests.runs import add_run

RUN = "spend"
ROUTE = Route("offline", "claude-haiku-4-5", "anthropic:claude-haiku-4-5")
POLICY = BudgetPolicy(Budget(per_episode=Decimal(10)), Pricer())
HELD = Decimal("0.5")  # every reservation here


def _store(tmp_path: Path) -> Store:
    tmp_path.mkdir(parents=True, exist_ok=True)
    store = Store(f"sqlite:///{tmp_path / 'spend.db'}")
    add_run(store, RUN, budget=Decimal(10))
    return store


def _reserve(store: Store, step_key: str = "write.intro", worst: Decimal = HELD) -> Spend:
    spend = Spend.reserve(
        store,
        RUN,
        POLICY,
        fixed([Candidate(ROUTE, 100, False, worst)]),
        step_key=step_key,
        stage="write",
        role="writer",
        task_kind="write",
        prompt="p",
        shadow=True,
    )
    assert not isinstance(spend, Refusal)
    return spend


def test_an_exception_escaping_releases_the_reservation_with_its_message(tmp_path: Path) -> None:
    store = _store(tmp_path)
    spend = _reserve(store)
    [held] = store.calls(RUN)
    assert (held.status, held.reserved) == ("started", HELD)

    with pytest.raises(RuntimeError, match="connection reset"), spend:
        raise RuntimeError("connection reset")

    [call] = store.calls(RUN)
    assert (call.status, call.reserved, call.cost) == ("failed", 0, 0)
    assert call.error == "RuntimeError: connection reset"
    assert Ledger(store).totals(RUN).committed == 0


def test_an_interrupt_leaves_the_call_in_flight_for_the_resume_to_count(tmp_path: Path) -> None:
    store = _store(tmp_path)

    with pytest.raises(KeyboardInterrupt), _reserve(store):
        raise KeyboardInterrupt  # the process is going away: the call may have been billed

    [call] = store.calls(RUN)
    assert (call.status, call.reserved) == ("started", HELD)
    assert Ledger(store).mark_unreconciled(RUN) == 1  # what the resume does
    assert store.run_cost(RUN) == HELD


def test_a_spend_that_ended_is_not_released_by_a_later_exception(tmp_path: Path) -> None:
    store = _store(tmp_path)
    settled, batched = _reserve(store, "a"), _reserve(store, "b")

    with pytest.raises(ValueError), settled:
        settled.settle(Decimal("0.2"), usage=Usage(10, 5), response="{}")
        raise ValueError("after the settlement")
    with pytest.raises(ValueError), batched:
        batched.leave_in_flight()  # a provider batch holds it now
        raise ValueError("before the batch was recorded")

    a, b = store.calls(RUN)
    assert (a.status, a.cost, a.reserved, a.input_tokens, a.error) == (
        "ok",
        Decimal("0.2"),
        0,
        10,
        None,
    )
    assert (b.status, b.reserved) == ("started", HELD)


def test_a_call_settled_twice_is_paid_once(tmp_path: Path) -> None:
    """A collect step run again after a crash settles its items again: the ledger settles a
    call only while it is in flight."""
    store = _store(tmp_path)
    first = _reserve(store)
    first.settle(Decimal("0.2"), response="{}")

    again = Spend.held(store, RUN, "write.intro", first.call_id)
    again.settle(Decimal("0.2"), response="{}")
    again.release("late failure", spent=Decimal("0.1"))

    assert _spent(store) == Decimal("0.2")
    [call] = store.calls(RUN)
    assert (call.status, call.error) == ("ok", None)


# --- money by plain SQL: written against the table, not the ledger's queries ------------------

SPENT = sa.text("SELECT COALESCE(SUM(cost_nanos), 0) FROM calls WHERE run_id = :run")
IN_FLIGHT = sa.text(
    "SELECT COALESCE(SUM(reserved_nanos), 0) FROM calls"
    " WHERE run_id = :run AND status IN ('started', 'unreconciled')"
)
HELD_AFTER_THE_END = sa.text(
    "SELECT id, status, reserved_nanos FROM calls"
    " WHERE run_id = :run AND reserved_nanos <> 0 AND status NOT IN ('started', 'unreconciled')"
)


def _spent(store: Store) -> Decimal:
    with store.engine.connect() as connection:
        return Decimal(connection.execute(SPENT, {"run": RUN}).scalar_one()) / 10**9


def _money_problems(store: Store, spent: Decimal, in_flight: Decimal) -> list[str]:
    """What is wrong with the calls table's money, summed by plain SQL: an ended call still
    holding a reservation, spend or in-flight money other than expected."""
    with store.engine.connect() as connection:
        held = connection.execute(HELD_AFTER_THE_END, {"run": RUN}).all()
        flying = Decimal(connection.execute(IN_FLIGHT, {"run": RUN}).scalar_one()) / 10**9
    problems = [f"call {i} is {status} but holds {nanos} nanos" for i, status, nanos in held]
    if _spent(store) != spent:
        problems.append(f"spent {_spent(store)}, expected {spent}")
    if flying != in_flight:
        problems.append(f"{flying} in flight, expected {in_flight}")
    return problems


def _every_ending(store: Store) -> None:
    """One reservation ended each way the engine ends them."""
    _reserve(store, "settled").settle(Decimal("0.25"), response="{}")
    _reserve(store, "rejected").release(
        "invalid JSON", spent=Decimal("0.05"), usage=Usage(100, 50), rejected=True
    )
    repaired = _reserve(store, "repaired")
    assert repaired.recharge(POLICY, Decimal("0.05"), HELD, usage=Usage(100, 50))
    repaired.settle(Decimal("0.1"), response="{}")
    with pytest.raises(TimeoutError), _reserve(store, "raised"):
        raise TimeoutError
    _reserve(store, "batched").leave_in_flight()


def test_money_by_plain_sql_catches_a_settlement_that_keeps_its_reservation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sound = _store(tmp_path / "sound")
    _every_ending(sound)
    assert _money_problems(sound, spent=Decimal("0.45"), in_flight=HELD) == []

    def settle_keeping_the_reservation(
        self: Store, call_id: int, *, cost: Decimal, **values: Any
    ) -> bool:
        with self.engine.begin() as connection:  # the bug: reserved_nanos is left as it was
            connection.execute(
                calls.update()
                .where(calls.c.id == call_id)
                .values(status="ok", cost_nanos=calls.c.cost_nanos + to_nanos(cost))
            )
        return True

    monkeypatch.setattr(Store, "finish_call", settle_keeping_the_reservation)
    buggy = _store(tmp_path / "buggy")
    _every_ending(buggy)

    problems = _money_problems(buggy, spent=Decimal("0.45"), in_flight=HELD)
    assert len(problems) == 2 and all("is ok but holds 500000000 nanos" in p for p in problems)


def _try(store: Store, step_key: str, worst: Decimal) -> Spend | Refusal:
    return Spend.reserve(
        store, RUN, POLICY, fixed([Candidate(ROUTE, 100, False, worst)]), step_key=step_key,
        stage="write", role="writer", task_kind="write", prompt="p", shadow=True,
    )  # fmt: skip


def test_a_call_that_fits_once_a_call_in_flight_settles_waits_instead_of_being_refused(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    room = POLICY.headroom("write", Ledger(store).totals(RUN))
    first = _reserve(store, "write.one", worst=room)  # all the room, as a worst case
    outcome: list[Spend | Refusal] = []
    waiting = threading.Thread(target=lambda: outcome.append(_try(store, "write.two", HELD)))
    waiting.start()
    time.sleep(0.3)  # the second call finds no room yet
    assert waiting.is_alive() and not outcome

    first.settle(Decimal("0.10"))  # the first cost far less than it held
    waiting.join(timeout=30)

    [second] = outcome
    assert isinstance(second, Spend)
    assert [c.status for c in store.calls(RUN)] == ["ok", "started"]  # no refusal recorded


def test_with_nothing_in_flight_a_call_that_cannot_fit_is_refused_at_once(tmp_path: Path) -> None:
    store = _store(tmp_path)
    room = POLICY.headroom("write", Ledger(store).totals(RUN))

    refused = _try(store, "write.big", room + Decimal(1))

    assert isinstance(refused, Refusal)
    assert [c.status for c in store.calls(RUN)] == ["refused"]

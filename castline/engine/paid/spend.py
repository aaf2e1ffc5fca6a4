"""One reservation, from the ledger's reserve to its end: the money side of every paid thing.

A `Spend` is made by reserving a call's worst case (or comes back as the ledger's `Refusal`), and
ends exactly once: settled at its real cost, or released (keeping what billed attempts cost).
A repair re-reserves it for one more attempt. Used as a context manager, it guarantees that an
exception escaping before it ended releases the reservation with the exception's message, so a
reservation is left `started` only when its process dies or is interrupted (a resume then counts
it as unreconciled) or when a batch deliberately holds it (`leave_in_flight`). The ledger does the
writes; this object only remembers which call it holds and whether it has ended.
"""

from __future__ import annotations

import time
from decimal import Decimal
from types import TracebackType
from typing import Any

from castline.budget.ledger import Ledger, Refusal, Reservation
from castline.budget.policy import BudgetPolicy, Candidate, CandidateFactory, Mode
from castline.llm.base import Usage
from castline.store import Store

# How a call the budget cannot fit yet waits for the run's other calls in flight to settle: it
# looks again less and less often, and gives up when what they hold has not changed for
# WAIT_STALL_S (a call left in flight by a process that died never settles).
WAIT_FIRST_S = 0.02
WAIT_LONGEST_S = 0.5
WAIT_STALL_S = 30.0


def describe(exc: BaseException) -> str:
    """How a failure is recorded on its call: the exception's type and message."""
    return f"{type(exc).__name__}: {exc}"


class Spend:
    """One call's reservation, held until it is settled or released."""

    def __init__(self, ledger: Ledger, run_id: str, step_key: str, call_id: int) -> None:
        self.ledger = ledger
        self.run_id = run_id
        self.step_key = step_key
        self.call_id = call_id
        self.reservation: Reservation | None = None
        self.ended = False

    @classmethod
    def reserve(
        cls,
        store: Store,
        run_id: str,
        policy: BudgetPolicy,
        candidates: CandidateFactory,
        *,
        step_key: str,
        tentative: bool = False,
        **call: Any,
    ) -> Spend | Refusal:
        """Reserve the first candidate that fits (`call`: the other `calls` columns that
        describe it: stage, role, task_kind, prompt, shadow), or say why none does (recorded
        unless `tentative`)."""
        ledger = Ledger(store)
        pause, held, changed = WAIT_FIRST_S, None, time.monotonic()
        while True:
            reserved = ledger.reserve(
                run_id, policy, candidates, tentative=True, step_key=step_key, **call
            )
            if not isinstance(reserved, Refusal):
                break
            if tentative:
                return reserved
            # calls of the run in flight hold room they may not need (a reservation is a worst
            # case): wait for them to settle before refusing, so that a fan-out of calls that
            # fit one by one is not refused for being made at the same moment
            if reserved.reserved != held:
                held, changed = reserved.reserved, time.monotonic()
            if reserved.reserved > 0 and time.monotonic() - changed < WAIT_STALL_S:
                time.sleep(pause)
                pause = min(pause * 2, WAIT_LONGEST_S)
                continue
            reserved = ledger.reserve(run_id, policy, candidates, step_key=step_key, **call)
            if isinstance(reserved, Refusal):
                return reserved
            break
        spend = cls(ledger, run_id, step_key, reserved.call_id)
        spend.reservation = reserved
        return spend

    @classmethod
    def held(cls, store: Store, run_id: str, step_key: str, call_id: int) -> Spend:
        """A reservation made earlier, perhaps by another process (a batch's item)."""
        return cls(Ledger(store), run_id, step_key, call_id)

    @property
    def candidate(self) -> Candidate:
        assert self.reservation is not None, "only a reservation made here knows its candidate"
        return self.reservation.candidate

    @property
    def mode(self) -> Mode:
        assert self.reservation is not None, "only a reservation made here knows its mode"
        return self.reservation.mode

    def settle(self, cost: Decimal, *, usage: Usage | None = None, **values: Any) -> None:
        """The reply came: record its `cost`, `usage` and `values` (response, compute_ms,
        budget_note) and drop the reservation."""
        self.ended = True  # first: a settle whose write fails leaves the call counted, in flight
        self.ledger.settle(self.call_id, self.run_id, self.step_key, cost, usage=usage, **values)

    def release(
        self,
        error: str,
        *,
        spent: Decimal | None = None,
        usage: Usage | None = None,
        rejected: bool = False,
    ) -> None:
        """The call failed: release the reservation, keeping what billed attempts `spent`."""
        self.ended = True
        self.ledger.release(self.call_id, error, spent=spent, usage=usage, rejected=rejected)

    def recharge(
        self, policy: BudgetPolicy, spent: Decimal, again: Decimal, *, usage: Usage
    ) -> bool:
        """Record a rejected reply's cost and reserve `again` for one more attempt, if that
        fits; the spend stays open either way (the caller settles or releases it)."""
        return self.ledger.recharge(self.call_id, self.run_id, policy, spent, again, usage=usage)

    def leave_in_flight(self) -> None:
        """Something durable outside this process now holds the reservation (a provider batch,
        settled by its collect step): an exception from here on must not release it."""
        self.ended = True

    def __enter__(self) -> Spend:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # an interrupt or exit is the process going away, as a death is: the call may have been
        # billed, so it stays in flight for the resume to count as unreconciled
        if isinstance(exc, Exception) and not self.ended:
            self.release(describe(exc))

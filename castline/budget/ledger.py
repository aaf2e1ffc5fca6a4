"""The budget ledger: every call reserves its worst case before it is made, atomically.

A reservation is a row of `calls` in status `started` carrying `reserved_nanos`; settling turns
it into status `ok` with its real cost and no reservation; a failure releases it. The ledger owns
these transitions (`castline.engine.paid.spend` carries one reservation through them). A call
that was in flight when its process died may have been billed, so on resume it becomes
`unreconciled` and keeps its reservation: it counts at its worst case until a reply settles or
releases it. Spend is the sum of recorded costs, so it is derived from recorded step results and
a replay cannot count anything twice. The check and the insert happen in one transaction that
holds the write lock (SQLite `BEGIN IMMEDIATE`, Postgres `SELECT ... FOR UPDATE` on the run's
row), so at every instant, across threads and processes:

    settled + unreconciled + reserved <= budget
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from castline.budget.policy import (
    BudgetPolicy,
    Candidate,
    CandidateFactory,
    Mode,
    Totals,
    allocation_key,
    later,
    mode_for,
)
from castline.store import UNRECONCILED, Store, calls, events, from_nanos, groups, runs, to_nanos
from castline.store.store import TOKENS, billed

if TYPE_CHECKING:
    from castline.llm.base import Usage


# What an unreconciled call's `error` says, before and after its step completed.
CRASHED = "in flight when its process died: counted at its reservation until a reply settles it"
RESTARTED = (
    "in flight when its step was started again (its process died or lost the step): counted at "
    "its reservation until a reply settles it"
)
COMPLETED_LATER = "unreconciled; the step completed later"


@dataclass(frozen=True)
class Reservation:
    call_id: int
    candidate: Candidate
    mode: Mode


@dataclass(frozen=True)
class Refusal:
    """No acceptable way to make the call fits; the numbers say why. `committed` is settled +
    unreconciled + reserved."""

    mode: Mode
    budget: Decimal
    committed: Decimal
    headroom: Decimal
    cheapest: Decimal | None
    unreconciled: Decimal = Decimal(0)
    reserved: Decimal = Decimal(0)
    group: GroupHeadroom | None = None  # the batch's cap, when the run is part of one

    @property
    def message(self) -> str:
        need = f"at least ${self.cheapest:.6f}" if self.cheapest is not None else "a call"
        settled = self.committed - self.unreconciled - self.reserved
        batch = ""
        if self.group is not None and self.group.headroom <= self.headroom:
            batch = (
                f"; the batch's budget ${self.group.cap:.2f} has ${self.group.committed:.6f} "
                "committed across its episodes"
            )
        return (
            f"budget ${self.budget:.2f}: ${self.committed:.6f} committed (${settled:.6f} "
            f"settled, ${self.unreconciled:.6f} unreconciled, ${self.reserved:.6f} reserved), "
            f"${self.headroom:.6f} available to this stage{batch}, this call needs {need}"
        )


@dataclass(frozen=True)
class GroupHeadroom:
    """A batch's cap across its runs and what its runs have committed against it."""

    cap: Decimal
    committed: Decimal

    @property
    def headroom(self) -> Decimal:
        return self.cap - self.committed


class Ledger:
    def __init__(self, store: Store) -> None:
        self.store = store

    def reserve(
        self,
        run_id: str,
        policy: BudgetPolicy,
        candidates: CandidateFactory,
        *,
        tentative: bool = False,
        **call: Any,
    ) -> Reservation | Refusal:
        """Reserve the first candidate that fits, or record the call as refused.

        `call` holds the `calls` columns that describe the call (step_key, stage, role, ...). A
        `tentative` refusal is not recorded: the caller will try again with tighter figures.
        """
        key = allocation_key(call["stage"], call["role"])
        with self.store.exclusive() as connection:
            budget, recorded_mode, peak, group_id = connection.execute(
                sa.select(
                    runs.c.budget_nanos,
                    runs.c.budget_mode,
                    runs.c.peak_reserved_nanos,
                    runs.c.group_id,
                )
                .where(runs.c.id == run_id)
                .with_for_update()
            ).one()
            totals = _totals(connection, run_id)
            limit = from_nanos(budget)
            mode = later(recorded_mode, mode_for(totals.committed, policy.budget))
            self._record_mode(connection, run_id, recorded_mode, mode, totals, limit)
            headroom = policy.headroom(key, totals)
            group = _group_headroom(connection, group_id) if group_id is not None else None
            if group is not None and group.headroom < headroom:
                headroom = group.headroom
            ladder = candidates(mode)
            chosen = next((c for c in ladder if c.worst_case <= headroom), None)
            now = time.time()
            if chosen is None and tentative:
                return Refusal(
                    mode,
                    limit,
                    totals.committed,
                    headroom,
                    ladder[-1].worst_case if ladder else None,
                    unreconciled=totals.unreconciled,
                    reserved=totals.reserved,
                    group=group,
                )
            if chosen is None:
                connection.execute(
                    calls.insert().values(
                        **call,
                        run_id=run_id,
                        provider=ladder[0].route.provider if ladder else "none",
                        model=ladder[0].route.model if ladder else "none",
                        priced_as=ladder[0].route.priced_as if ladder else "none",
                        status="refused",
                        started_at=now,
                        finished_at=now,
                        error="budget",
                    )
                )
                refusal = Refusal(
                    mode=mode,
                    budget=limit,
                    committed=totals.committed,
                    headroom=headroom,
                    cheapest=ladder[-1].worst_case if ladder else None,
                    unreconciled=totals.unreconciled,
                    reserved=totals.reserved,
                    group=group,
                )
                _event(
                    connection,
                    run_id,
                    "budget-refused",
                    f"{call['step_key']} refused: {refusal.message}",
                    call["stage"],
                    {
                        "budget": str(limit),
                        "committed": str(totals.committed),
                        "unreconciled": str(totals.unreconciled),
                        "reserved": str(totals.reserved),
                        "headroom": str(headroom),
                        "cheapest": str(refusal.cheapest),
                        "allocation": key,
                    },
                )
                return refusal
            result = connection.execute(
                calls.insert().values(
                    **call,
                    run_id=run_id,
                    provider=chosen.route.provider,
                    model=chosen.route.model,
                    priced_as=chosen.route.priced_as,
                    status="started",
                    started_at=now,
                    reserved_nanos=to_nanos(chosen.worst_case),
                    batch=chosen.batch,
                    max_tokens=chosen.max_tokens,
                    budget_note=chosen.note or None,
                )
            )
            reserved_now = to_nanos(totals.reserved + chosen.worst_case)
            if reserved_now > peak:
                connection.execute(
                    runs.update()
                    .where(runs.c.id == run_id)
                    .values(peak_reserved_nanos=reserved_now)
                )
            if chosen.note:
                _event(
                    connection,
                    run_id,
                    "budget-degraded",
                    f"{call['step_key']}: {chosen.note} to fit the budget "
                    f"(worst case ${chosen.worst_case:.6f}, ${headroom:.6f} available)",
                    call["stage"],
                    {"worst_case": str(chosen.worst_case), "headroom": str(headroom)},
                )
            key_id = result.inserted_primary_key
            assert key_id is not None
            return Reservation(int(key_id[0]), chosen, mode)

    def _record_mode(
        self,
        connection: Connection,
        run_id: str,
        before: Mode,
        after: Mode,
        totals: Totals,
        limit: Decimal,
    ) -> None:
        if after == before:
            return
        connection.execute(runs.update().where(runs.c.id == run_id).values(budget_mode=after))
        share = totals.committed / limit
        _event(
            connection,
            run_id,
            "budget-mode",
            f"budget mode {before} -> {after}: ${totals.committed:.6f} of ${limit:.2f} "
            f"committed ({share:.1%})",
            None,
            {"from": before, "to": after, "committed": str(totals.committed), "budget": str(limit)},
        )

    def step_started(self, run_id: str, step_key: str) -> int:
        """A paid step starts (perhaps again): an attempt of it left in flight by a process that
        died, or that lost the step to a recovery, may have been billed, so it becomes
        unreconciled and stays counted at its reservation. Returns how many."""
        return self.mark_unreconciled(run_id, step_key=step_key, why=RESTARTED)

    def settle(
        self,
        call_id: int,
        run_id: str,
        step_key: str,
        cost: Decimal,
        *,
        usage: Usage | None = None,
        **values: Any,
    ) -> bool:
        """The call answered: its real `cost` and `usage` are added to what its rejected replies
        recorded and its reservation is dropped (`values`: response, compute_ms, budget_note);
        attempts of the step left unreconciled are marked as completed later, still counted.
        Returns False for a call already ended: a step run twice settles once."""
        tokens = {name: getattr(usage, name) for name in TOKENS} if usage is not None else {}
        settled = self.store.finish_call(call_id, cost=cost, **tokens, **values)
        self.mark_completed_later(run_id, step_key, call_id)
        return settled

    def release(
        self,
        call_id: int,
        error: str,
        *,
        spent: Decimal | None = None,
        usage: Usage | None = None,
        rejected: bool = False,
    ) -> bool:
        """The call failed: its reservation is released, keeping what billed attempts `spent`
        (with their `usage`; a rejected reply when `rejected`). Returns False for a call no
        longer in flight."""
        return self.store.fail_call(call_id, error, spent=spent, usage=usage, rejected=rejected)

    def recharge(
        self,
        call_id: int,
        run_id: str,
        policy: BudgetPolicy,
        spent: Decimal,
        again: Decimal,
        *,
        usage: Usage | None = None,
    ) -> bool:
        """Record what a billed attempt whose reply was rejected cost (and its `usage`), and
        reserve `again` for one more attempt of the same call, if that fits; otherwise leave the
        call with its spend and no reservation."""
        with self.store.exclusive() as connection:
            connection.execute(
                sa.select(runs.c.id).where(runs.c.id == run_id).with_for_update()
            ).one()
            row = connection.execute(
                sa.select(calls.c.stage, calls.c.role, calls.c.reserved_nanos).where(
                    calls.c.id == call_id
                )
            ).one()
            connection.execute(
                calls.update()
                .where(calls.c.id == call_id)
                .values(
                    cost_nanos=calls.c.cost_nanos + to_nanos(spent),
                    reserved_nanos=0,
                    **billed(usage, to_nanos(spent)),
                )
            )
            totals = _totals(connection, run_id)
            fits = again <= policy.headroom(allocation_key(row.stage, row.role), totals)
            if fits:
                connection.execute(
                    calls.update()
                    .where(calls.c.id == call_id)
                    .values(reserved_nanos=to_nanos(again))
                )
            return fits

    def mark_unreconciled(
        self,
        run_id: str,
        call_ids: Collection[int] | None = None,
        *,
        step_key: str | None = None,
        why: str = CRASHED,
    ) -> int:
        """Mark calls still in flight (all of the run's, or those of `call_ids` or of one step)
        unreconciled: the provider may have billed them, so they keep counting at their
        reservation until a reply settles or releases them; `why` goes into their `error`.
        Returns how many."""
        which = sa.and_(calls.c.run_id == run_id, calls.c.status == "started")
        if call_ids is not None:
            which = sa.and_(which, calls.c.id.in_(list(call_ids)))
        if step_key is not None:
            which = sa.and_(which, calls.c.step_key == step_key)
        with self.store.engine.connect() as connection:  # a read first: usually none
            if connection.execute(sa.select(calls.c.id).where(which).limit(1)).first() is None:
                return 0
        with self.store.exclusive() as connection:
            result = connection.execute(
                calls.update()
                .where(which)
                .values(status=UNRECONCILED, finished_at=time.time(), error=why)
            )
            return int(result.rowcount or 0)

    def mark_completed_later(self, run_id: str, step_key: str, by_call: int | None) -> int:
        """Say on the step's unreconciled calls (in their `error`) that the step completed later
        (by call `by_call`, or with a reply found), while they stay counted at their reservation:
        the provider may have billed the attempt that was in flight. Returns how many."""
        by = f"by call {by_call}" if by_call is not None else "from a recorded reply"
        note = f"{COMPLETED_LATER} {by}; still counted at its reservation"
        unmarked = sa.and_(
            calls.c.run_id == run_id,
            calls.c.step_key == step_key,
            calls.c.status == UNRECONCILED,
            sa.or_(calls.c.error.is_(None), sa.not_(calls.c.error.startswith(COMPLETED_LATER))),
        )
        with self.store.engine.connect() as connection:  # a read first: almost always none
            if connection.execute(sa.select(calls.c.id).where(unmarked).limit(1)).first() is None:
                return 0
        with self.store.engine.begin() as connection:
            result = connection.execute(calls.update().where(unmarked).values(error=note))
            return int(result.rowcount or 0)

    def fits(
        self,
        run_id: str,
        policy: BudgetPolicy,
        ladders: list[CandidateFactory],
        *,
        stage: str,
        role: str,
    ) -> bool:
        """Whether the preferred candidate of every ladder would be reserved now as it is, all
        at once, without moving the run to a later budget mode. A read without the lock: advice
        (on how precisely to count a prompt, on whether calls may run concurrently), never the
        reservation's check."""
        with self.store.engine.connect() as connection:
            recorded = connection.execute(
                sa.select(runs.c.budget_mode).where(runs.c.id == run_id)
            ).scalar_one()
            totals = _totals(connection, run_id)
        mode = later(recorded, mode_for(totals.committed, policy.budget))
        preferred = [ladder[0].worst_case for ladder in (each(mode) for each in ladders) if ladder]
        worst = sum(preferred, Decimal(0))
        moves = later(mode, mode_for(totals.committed + worst, policy.budget)) != mode
        return worst <= policy.headroom(allocation_key(stage, role), totals) and not moves

    def totals(self, run_id: str) -> Totals:
        with self.store.engine.connect() as connection:
            return _totals(connection, run_id)


def _group_headroom(connection: Connection, group_id: str) -> GroupHeadroom:
    """The batch's cap (its row locked, so that reservations across its runs are serialised on
    Postgres too) and the settled, unreconciled and reserved money of all its runs."""
    cap = connection.execute(
        sa.select(groups.c.cap_nanos).where(groups.c.id == group_id).with_for_update()
    ).scalar_one()
    committed = connection.execute(
        sa.select(sa.func.sum(calls.c.cost_nanos + calls.c.reserved_nanos))
        .select_from(calls.join(runs, calls.c.run_id == runs.c.id))
        .where(runs.c.group_id == group_id)
    ).scalar_one()
    return GroupHeadroom(from_nanos(cap), from_nanos(int(committed or 0)))


def _totals(connection: Connection, run_id: str) -> Totals:
    unreconciled = calls.c.status == UNRECONCILED
    rows = connection.execute(
        sa.select(
            calls.c.stage,
            calls.c.role,
            sa.func.sum(calls.c.cost_nanos),
            sa.func.sum(sa.case((unreconciled, calls.c.reserved_nanos), else_=0)),
            sa.func.sum(sa.case((unreconciled, 0), else_=calls.c.reserved_nanos)),
        )
        .where(calls.c.run_id == run_id)
        .group_by(calls.c.stage, calls.c.role)
    ).all()
    by_key: dict[str, Decimal] = {}
    settled = unsettled = reserved = 0
    for stage, role, cost, doubt, held in rows:
        amount = int(cost or 0) + int(doubt or 0) + int(held or 0)
        key = allocation_key(stage, role)
        by_key[key] = by_key.get(key, Decimal(0)) + from_nanos(amount)
        settled += int(cost or 0)
        unsettled += int(doubt or 0)
        reserved += int(held or 0)
    return Totals(
        committed=from_nanos(settled + unsettled + reserved),
        reserved=from_nanos(reserved),
        by_key=by_key,
        settled=from_nanos(settled),
        unreconciled=from_nanos(unsettled),
    )


def _event(
    connection: Connection,
    run_id: str,
    kind: str,
    message: str,
    stage: str | None,
    data: dict[str, Any],
) -> None:
    connection.execute(
        events.insert().values(
            run_id=run_id,
            ts=time.time(),
            kind=kind,
            stage=stage,
            message=message,
            data=json.dumps(data),
        )
    )

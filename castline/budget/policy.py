"""The budget policy: modes by share of the budget committed, per-stage allocations with a shared
reserve, and the ladder of ever cheaper ways to make a call before it is refused.

Modes follow the seed's thresholds of the episode budget: from 80 % committed the run is in
*economy* (batch-eligible work batched, cheaper routes for the non-creative roles), from 95 %
*degraded* (fallback models, shorter outputs, non-essential calls replaced by code), and at 100 %
*halted* (nothing more fits; the run finishes with what exists). A run never returns to a lower
mode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from castline.budget.prices import Pricer
from castline.config import Budget
from castline.llm.registry import Route

Mode = Literal["normal", "economy", "degraded", "halted"]
MODES: tuple[Mode, ...] = ("normal", "economy", "degraded", "halted")
ORCHESTRATION = "orchestration"

# Roles whose output is the show's voice: economy mode keeps their preferred model.
CREATIVE_ROLES = frozenset({"writer", "polisher"})
# Task kinds nobody waits on interactively, so economy mode may send them to a batch API.
BATCH_ELIGIBLE = frozenset({"questions", "research"})
# Calls code can stand in for (a deterministic rule) once the run is degraded.
NON_ESSENTIAL = frozenset({"fanout", "review-decision", "judge"})
# Output budgets tried, as fractions of the task's max_tokens, when a call does not fit.
_SHORTER = (Decimal(1), Decimal("0.5"), Decimal("0.25"))


def mode_for(committed: Decimal, budget: Budget) -> Mode:
    share = committed / budget.per_episode
    if share >= 1:
        return "halted"
    if share >= budget.degrade_at:
        return "degraded"
    if share >= budget.warn_at:
        return "economy"
    return "normal"


def later(first: Mode, second: Mode) -> Mode:
    """The more restrictive of two modes: a run's mode only ever moves forward."""
    return max(first, second, key=MODES.index)


def allocation_key(stage: str, role: str) -> str:
    """The allocation a call draws on: orchestrator calls count as orchestration wherever
    they happen."""
    return ORCHESTRATION if role == "orchestrator" else stage


@dataclass(frozen=True)
class Candidate:
    """One way to make a call: which route, how many output tokens, batched or not, and the
    most it can cost."""

    route: Route
    max_tokens: int
    batch: bool
    worst_case: Decimal
    note: str = ""


@dataclass(frozen=True)
class Totals:
    """Committed money (settled + unreconciled + reserved), in total and per allocation key.

    `reserved` is what calls in flight hold; `unreconciled` what calls in flight at a crash
    still count at (their reservation); `settled` what recorded costs add up to.
    """

    committed: Decimal
    reserved: Decimal
    by_key: dict[str, Decimal] = field(default_factory=dict)
    settled: Decimal = Decimal(0)
    unreconciled: Decimal = Decimal(0)


class BudgetPolicy:
    """The rules of one run's budget; pure functions of the totals, so they can run inside the
    ledger's locked transaction."""

    def __init__(self, budget: Budget, pricer: Pricer) -> None:
        self.budget = budget
        self.pricer = pricer
        limit = budget.per_episode
        self.allocations: dict[str, Decimal] = {
            stage: share * limit for stage, share in budget.allocations.items()
        }
        self.allocations[ORCHESTRATION] = budget.orchestration_share * limit
        self.reserve = budget.reserve_share * limit

    def headroom(self, key: str, totals: Totals) -> Decimal:
        """The most a new call under `key` may reserve now: what is left of its allocation plus
        what is left of the shared reserve, and never more than what is left of the budget."""
        own = self.allocations.get(key, Decimal(0)) - totals.by_key.get(key, Decimal(0))
        overdrawn = sum(
            (
                max(Decimal(0), spent - self.allocations.get(k, Decimal(0)))
                for k, spent in totals.by_key.items()
            ),
            Decimal(0),
        )
        reserve_left = max(Decimal(0), self.reserve - overdrawn)
        left = self.budget.per_episode - totals.committed
        return min(left, max(Decimal(0), own) + reserve_left)

    def candidates(
        self,
        *,
        mode: Mode,
        role: str,
        kind: str,
        chain: Iterable[Route],
        fallback: Iterable[Route],
        input_tokens: int,
        max_tokens: int,
        searches: int = 0,
    ) -> list[Candidate]:
        """Every acceptable way to make this call in this mode, most preferred first; each later
        one costs less at worst than the ones before it. `searches` is the most server-side web
        searches the call may make (billed apart from tokens, never batch-discounted)."""
        chain, fallback = list(chain), [r for r in fallback if r not in chain]
        routes = chain + fallback
        preferred = routes[0]
        if mode == "economy" and role not in CREATIVE_ROLES:
            routes = sorted(routes, key=lambda r: self._worst(r, input_tokens, max_tokens))
        elif mode in ("degraded", "halted"):
            routes = fallback + chain
        batch = mode != "normal" and kind in BATCH_ELIGIBLE
        shares = _SHORTER[1:] if mode in ("degraded", "halted") else _SHORTER
        ladder: list[Candidate] = []
        cheapest = None
        for share in shares:
            tokens = max(1, int(max_tokens * share))
            for route in routes:
                worst = self._worst(route, input_tokens, tokens)
                if batch:
                    worst *= 1 - self.pricer.batch_discount(route.priced_as)
                worst += self.pricer.search_cost(route.priced_as, searches)
                if cheapest is not None and worst >= cheapest:
                    continue
                cheapest = worst
                notes = []
                if route != preferred:
                    notes.append(f"{route.priced_as} instead of {preferred.priced_as}")
                if share != 1:
                    notes.append(f"max_tokens {tokens} instead of {max_tokens}")
                if batch:
                    notes.append("batched")
                ladder.append(Candidate(route, tokens, batch, worst, "; ".join(notes)))
        return ladder

    def _worst(self, route: Route, input_tokens: int, max_tokens: int) -> Decimal:
        return self.pricer.worst_case(route.priced_as, input_tokens, max_tokens)


CandidateFactory = Callable[[Mode], list[Candidate]]


def fixed(candidates: list[Candidate]) -> CandidateFactory:
    """The same candidates whatever the mode: a batch item, a clip of speech."""

    def ladder(mode: Mode) -> list[Candidate]:
        return candidates

    return ladder

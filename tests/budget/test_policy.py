"""Budget modes, allocations with a shared reserve, and the ladder of cheaper ways to call."""

from __future__ import annotations

from decimal import Decimal

import pytest

from castline.budget.policy import BudgetPolicy, Totals, allocation_key, later, mode_for
from castline.budget.prices import Pricer
from castline.config import Budget
from castline.llm.registry import Route

OPUS = Route("offline", "claude-opus-4-6", "anthropic:claude-opus-4-6")
SONNET = Route("offline", "claude-sonnet-4-6", "anthropic:claude-sonnet-4-6")
HAIKU = Route("offline", "claude-haiku-4-5", "anthropic:claude-haiku-4-5")
POLICY = BudgetPolicy(Budget(per_episode=Decimal(100)), Pricer())


@pytest.mark.parametrize(
    ("committed", "mode"),
    [("0", "normal"), ("79.99", "normal"), ("80", "economy"), ("94.99", "economy"),
     ("95", "degraded"), ("99.99", "degraded"), ("100", "halted"), ("140", "halted")],
)  # fmt: skip
def test_modes_follow_the_seed_thresholds(committed: str, mode: str) -> None:
    assert mode_for(Decimal(committed), Budget(per_episode=Decimal(100))) == mode


def test_modes_only_move_forward() -> None:
    assert later("economy", "normal") == "economy"
    assert later("normal", "degraded") == "degraded"
    assert later("halted", "economy") == "halted"


def test_orchestrator_calls_draw_on_orchestration_wherever_they_happen() -> None:
    assert allocation_key("review", "orchestrator") == "orchestration"
    assert allocation_key("review", "evaluator_primary") == "review"


def test_default_allocations_and_shared_reserve() -> None:
    assert POLICY.allocations["orchestration"] == Decimal("8.5")
    assert POLICY.allocations["write"] == Decimal(35)
    assert POLICY.reserve == Decimal("8.5")  # 100 - 8.5 - 15 - 3 - 35 - 12 - 8 - 10


def test_headroom_is_own_allocation_plus_what_is_left_of_the_reserve() -> None:
    fresh = Totals(committed=Decimal(0), reserved=Decimal(0))
    assert POLICY.headroom("plan", fresh) == Decimal("11.5")  # 3 + the whole 8.5 reserve
    # research overdrew its 15 by 4: the reserve has 4.5 left for everyone
    overdrawn = Totals(committed=Decimal(19), reserved=Decimal(0), by_key={"research": Decimal(19)})
    assert POLICY.headroom("plan", overdrawn) == Decimal("7.5")
    assert POLICY.headroom("research", overdrawn) == Decimal("4.5")


def test_headroom_never_exceeds_what_is_left_of_the_budget() -> None:
    almost = Totals(committed=Decimal("99.5"), reserved=Decimal(0), by_key={"x": Decimal("99.5")})
    assert POLICY.headroom("write", almost) == Decimal("0.5")


def _ladder(mode: str, role: str = "writer", kind: str = "write") -> list[tuple[str, int, bool]]:
    ladder = POLICY.candidates(
        mode=mode,  # type: ignore[arg-type]
        role=role,
        kind=kind,
        chain=[OPUS, SONNET],
        fallback=[HAIKU],
        input_tokens=10_000,
        max_tokens=4_000,
    )
    worst = [c.worst_case for c in ladder]
    assert worst == sorted(worst, reverse=True) and len(set(worst)) == len(worst)
    return [(c.route.model, c.max_tokens, c.batch) for c in ladder]


def test_normal_mode_prefers_the_chain_then_cheaper_models_then_shorter_outputs() -> None:
    assert _ladder("normal")[:3] == [
        ("claude-opus-4-6", 4000, False),
        ("claude-sonnet-4-6", 4000, False),
        ("claude-haiku-4-5", 4000, False),
    ]
    assert ("claude-haiku-4-5", 1000, False) in _ladder("normal")


def test_economy_keeps_creative_roles_but_sends_the_rest_to_the_cheapest_model() -> None:
    assert _ladder("economy")[0] == ("claude-opus-4-6", 4000, False)
    assert _ladder("economy", role="researcher", kind="plan")[0] == (
        "claude-haiku-4-5",
        4000,
        False,
    )


def test_economy_batches_batch_eligible_work() -> None:
    assert all(batch for _, _, batch in _ladder("economy", role="researcher", kind="research"))
    assert not any(batch for _, _, batch in _ladder("normal", role="researcher", kind="research"))


def test_degraded_mode_uses_fallback_models_and_shorter_outputs() -> None:
    ladder = _ladder("degraded")
    assert ladder[0] == ("claude-haiku-4-5", 2000, False)
    assert all(tokens <= 2000 for _, tokens, _ in ladder)


def test_candidates_explain_how_they_were_degraded() -> None:
    ladder = POLICY.candidates(
        mode="degraded",
        role="writer",
        kind="write",
        chain=[OPUS],
        fallback=[HAIKU],
        input_tokens=1000,
        max_tokens=1000,
    )
    assert ladder[0].note == (
        "anthropic:claude-haiku-4-5 instead of anthropic:claude-opus-4-6; "
        "max_tokens 500 instead of 1000"
    )
    assert ladder[1].note.endswith("max_tokens 250 instead of 1000")


def test_allocations_that_exceed_the_budget_are_a_config_error() -> None:
    with pytest.raises(ValueError, match="must add up to at most 1"):
        Budget(allocations={"write": Decimal("0.9")})

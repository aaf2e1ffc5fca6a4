"""The guardrails around the orchestrator's decisions: it may choose, never widen its options."""

from __future__ import annotations

from typing import Literal

import pytest

from castline.domain import Finding
from castline.llm.tasks import FanoutDecision, Question, ReviewDecision
from castline.orchestrator import Guarded, ReviewPlan, guard_fanout, guard_review

QUESTIONS = [Question(text=f"Question {i}?", focus=f"Focus {i}") for i in range(6)]
SEGMENTS = ["intro", "s1", "s2", "s3", "outro"]


def fanout(selected: list[int], questions: list[Question] = QUESTIONS, limit: int = 4) -> Guarded:
    return guard_fanout(FanoutDecision(selected=selected, rationale="why"), questions, limit)


def error(segment: str | None, check: str = "forbidden-phrase") -> Finding:
    return Finding(check=check, message=f"{check} in {segment}", segment=segment)


def review(
    action: Literal["accept", "revise"],
    segments: list[str] | None = None,
    blocking: list[Finding] | None = None,
    *,
    round_: int = 0,
    max_rounds: int = 2,
) -> ReviewPlan:
    decision = ReviewDecision(action=action, segments=segments or [], rationale="because")
    return guard_review(
        decision, blocking or [], round_=round_, max_rounds=max_rounds, segments=SEGMENTS
    )


# --- guard_fanout -------------------------------------------------------------------------------


def test_valid_selection_is_kept_as_is() -> None:
    guarded = fanout([3, 0, 5])

    assert guarded == Guarded(selected=[3, 0, 5], rationale="why", overrides=[])


@pytest.mark.parametrize("bad", [6, 99, -1, -6])
def test_out_of_range_indices_are_dropped(bad: int) -> None:
    guarded = fanout([2, bad, 4])

    assert guarded.selected == [2, 4]
    assert guarded.overrides == ["dropped duplicate or out-of-range question indices"]


def test_duplicate_indices_are_dropped_keeping_the_first() -> None:
    guarded = fanout([4, 1, 4, 1, 2])

    assert guarded.selected == [4, 1, 2]
    assert guarded.overrides == ["dropped duplicate or out-of-range question indices"]


def test_selection_is_capped_at_the_limit() -> None:
    guarded = fanout([5, 4, 3, 2, 1, 0], limit=3)

    assert guarded.selected == [5, 4, 3]
    assert guarded.overrides == ["cut the selection from 6 to the limit of 3"]


def test_cap_applies_after_dropping_bad_indices() -> None:
    guarded = fanout([0, 0, 9, 1, 2, 3, 4], limit=4)

    assert guarded.selected == [0, 1, 2, 3]
    assert guarded.overrides == [
        "dropped duplicate or out-of-range question indices",
        "cut the selection from 5 to the limit of 4",
    ]


def test_selection_at_the_limit_is_not_cut() -> None:
    assert fanout([0, 1, 2, 3], limit=4).overrides == []


@pytest.mark.parametrize("selected", [[], [7, 8], [-1]])
def test_empty_selection_falls_back_to_the_first_question(selected: list[int]) -> None:
    guarded = fanout(selected)

    assert guarded.selected == [0]
    assert guarded.overrides[-1] == "the selection was empty; researching the first question"
    assert len(guarded.overrides) == (2 if selected else 1)
    assert guarded.rationale == "why"


def test_no_questions_gives_an_empty_selection() -> None:
    guarded = fanout([], questions=[])

    assert guarded.selected == []
    assert guarded.overrides == []


# --- guard_review -------------------------------------------------------------------------------


def test_accept_without_blocking_findings_is_kept() -> None:
    plan = review("accept")

    assert plan == ReviewPlan(revise=[], rationale="because", overrides=[])


def test_accept_is_refused_while_blocking_findings_and_rounds_remain() -> None:
    plan = review("accept", blocking=[error("s2"), error("intro"), error("s2", "length")])

    assert plan.revise == ["intro", "s2"]  # in outline order
    assert plan.overrides == ["accept refused: 3 blocking finding(s) in intro, s2"]
    assert plan.rationale == "because"


def test_accept_is_refused_on_the_last_remaining_round() -> None:
    plan = review("accept", blocking=[error("s1")], round_=1, max_rounds=2)

    assert plan.revise == ["s1"]
    assert plan.overrides == ["accept refused: 1 blocking finding(s) in s1"]


def test_accept_with_blocking_findings_stands_once_rounds_run_out() -> None:
    plan = review("accept", blocking=[error("s1")], round_=2, max_rounds=2)

    assert plan.revise == []
    assert plan.overrides == []


@pytest.mark.parametrize(("round_", "max_rounds"), [(2, 2), (3, 2), (0, 0)])
def test_revise_beyond_max_rounds_stops(round_: int, max_rounds: int) -> None:
    plan = review("revise", ["s1"], [error("s1")], round_=round_, max_rounds=max_rounds)

    assert plan.revise == []
    assert plan.overrides == [f"no revision rounds left ({max_rounds} allowed)"]


def test_revise_of_flagged_segments_is_kept() -> None:
    plan = review("revise", ["s3", "s1"], [error("s1"), error("s3")])

    assert plan.revise == ["s3", "s1"]
    assert plan.overrides == []


def test_segments_without_findings_are_removed() -> None:
    plan = review("revise", ["s1", "s2", "outro", "nowhere"], [error("s2")])

    assert plan.revise == ["s2"]
    assert plan.overrides == ["kept only segments that have blocking findings"]


def test_flagged_segments_are_added() -> None:
    plan = review("revise", ["s2"], [error("s2"), error("outro", "disclaimer"), error("s1")])

    assert plan.revise == ["s2", "s1", "outro"]
    assert plan.overrides == ["added flagged segment(s) s1, outro"]


def test_removed_and_added_overrides_are_both_listed() -> None:
    plan = review("revise", ["intro", "s3"], [error("s3"), error("s1")])

    assert plan.revise == ["s3", "s1"]
    assert plan.overrides == [
        "kept only segments that have blocking findings",
        "added flagged segment(s) s1",
    ]


def test_warnings_do_not_flag_segments_when_not_passed_as_blocking() -> None:
    # guard_review trusts its caller to pass only blocking findings; findings outside the
    # outline, or tied to no segment, flag nothing
    plan = review("revise", ["s1"], [error(None, "unknown-segment"), error("s9")])

    assert plan.revise == []
    assert plan.overrides == ["kept only segments that have blocking findings"]

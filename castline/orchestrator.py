"""The orchestrator's decisions and the guardrails code holds them to.

The orchestrator model is consulted at two points: which research questions to pursue, and what to
do after review. Its answers are structured and bounded here: it may choose among the options the
code allows, never widen them. Every override is reported with its reason for the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass

from castline.domain import Finding
from castline.llm.tasks import FanoutDecision, Question, ReviewDecision


@dataclass(frozen=True)
class Guarded:
    """A decision after the guardrails, and what (if anything) they changed."""

    selected: list[int]
    rationale: str
    overrides: list[str]


def guard_fanout(decision: FanoutDecision, questions: list[Question], limit: int) -> Guarded:
    overrides: list[str] = []
    valid = [i for i in dict.fromkeys(decision.selected) if 0 <= i < len(questions)]
    if len(valid) != len(decision.selected):
        overrides.append("dropped duplicate or out-of-range question indices")
    if len(valid) > limit:
        overrides.append(f"cut the selection from {len(valid)} to the limit of {limit}")
        valid = valid[:limit]
    if not valid and questions:
        overrides.append("the selection was empty; researching the first question")
        valid = [0]
    return Guarded(valid, decision.rationale, overrides)


@dataclass(frozen=True)
class ReviewPlan:
    revise: list[str]
    rationale: str
    overrides: list[str]


def guard_review(
    decision: ReviewDecision,
    blocking: list[Finding],
    *,
    round_: int,
    max_rounds: int,
    segments: list[str],
    previous: list[Finding] | None = None,
) -> ReviewPlan:
    """Revise only flagged segments, only while rounds remain and the last round made progress;
    never accept blocking findings while a useful round is left to fix them."""
    overrides: list[str] = []
    flagged = [s for s in segments if any(f.segment == s for f in blocking)]
    if round_ >= max_rounds:
        if decision.action == "revise":
            overrides.append(f"no revision rounds left ({max_rounds} allowed)")
        return ReviewPlan([], decision.rationale, overrides)
    if previous is not None and _kinds(previous) == _kinds(blocking):
        if decision.action == "revise":
            overrides.append("stopped: the last revision round resolved none of these findings")
        return ReviewPlan([], decision.rationale, overrides)
    if decision.action == "accept":
        if flagged:
            overrides.append(
                f"accept refused: {len(blocking)} blocking finding(s) in {', '.join(flagged)}"
            )
            return ReviewPlan(flagged, decision.rationale, overrides)
        return ReviewPlan([], decision.rationale, overrides)
    chosen = [s for s in dict.fromkeys(decision.segments) if s in flagged]
    if len(chosen) != len(decision.segments):
        overrides.append("kept only segments that have blocking findings")
    missing = [s for s in flagged if s not in chosen]
    if missing:
        overrides.append(f"added flagged segment(s) {', '.join(missing)}")
        chosen += missing
    return ReviewPlan(chosen, decision.rationale, overrides)


def _kinds(findings: list[Finding]) -> set[tuple[str, str | None]]:
    return {(finding.check, finding.segment) for finding in findings}

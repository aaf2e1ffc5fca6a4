"""Offline orchestrator decisions: the same rules a careful producer would apply."""

from __future__ import annotations

from castline.llm.offline.solvers import solves
from castline.llm.tasks import ReviewDecision, ReviewDecisionTask


@solves(ReviewDecisionTask)
def review(task: ReviewDecisionTask) -> ReviewDecision:
    """Revise the segments that have blocking findings while rounds remain; otherwise accept."""
    blocking = [f for f in task.findings if f.severity == "error"]
    segments = sorted({f.segment for f in blocking if f.segment is not None})
    if not blocking:
        return ReviewDecision(action="accept", rationale="No blocking findings remain.")
    if task.round >= task.max_rounds or not segments:
        reason = "no revision rounds left" if segments else "no finding is tied to a segment"
        return ReviewDecision(
            action="accept",
            rationale=f"{len(blocking)} blocking finding(s) remain but {reason}.",
        )
    checks = sorted({f.check for f in blocking})
    return ReviewDecision(
        action="revise",
        segments=segments,
        rationale=(
            f"Revise {', '.join(segments)} to fix {len(blocking)} blocking finding(s) "
            f"({', '.join(checks)}); round {task.round + 1} of {task.max_rounds}."
        ),
    )

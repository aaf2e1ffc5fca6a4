"""Turning a check's findings into a verdict: a score, a decision and the reasons."""

from __future__ import annotations

from castline.domain import Finding, Verdict

DETERMINISTIC = "deterministic"


def verdict(
    gate: str,
    criterion: str,
    findings: list[Finding],
    scale: int,
    *,
    score: float | None = None,
    note: str = "",
) -> Verdict:
    """A deterministic criterion's verdict: it fails on any blocking finding; its score is the
    share of units (turns, segments) without one unless the check measures its own."""
    errors = [f for f in findings if f.severity == "error"]
    if score is None:
        score = max(0.0, 1.0 - len(errors) / max(scale, 1))
    reason = "; ".join(f.message for f in findings[:5]) or "no problems found"
    if len(findings) > 5:
        reason += f"; and {len(findings) - 5} more"
    if note:
        reason = f"{reason} ({note})"
    return Verdict(
        gate=gate,
        criterion=criterion,
        evaluator=DETERMINISTIC,
        score=round(min(1.0, max(0.0, score)), 4),
        passed=not errors,
        reason=reason,
        findings=findings,
    )


def blocking(verdicts: list[Verdict]) -> list[Finding]:
    return [f for v in verdicts for f in v.findings if f.severity == "error"]

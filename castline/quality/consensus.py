"""Two evaluators' scores of one criterion, combined: pass, fail, or escalate.

Both at or above the threshold: pass. Both below: fail. Apart by more than the tolerance, or on
either side of the threshold: escalate, to a tie-breaker model or to a person, as the show says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from castline.domain import Finding, Verdict
from castline.llm.tasks import ClaimToVerify, Judgment

Decision = Literal["pass", "fail", "escalate"]


def decide(first: float, second: float, threshold: float, tolerance: float) -> Decision:
    if abs(first - second) > tolerance or (first >= threshold) != (second >= threshold):
        return "escalate"
    return "pass" if first >= threshold else "fail"


@dataclass(frozen=True)
class Consensus:
    gate: str
    criterion: str
    scores: dict[str, float]
    decision: Decision
    verdicts: list[Verdict]
    resolved_by: str | None = None  # "tiebreaker" or "human" when it was escalated
    # claims both evaluators found contradicted or not in the notes: exactly what to revise
    claim_findings: tuple[Finding, ...] = ()

    @property
    def passed(self) -> bool:
        return self.decision == "pass"


def verdict_of(
    gate: str, criterion: str, evaluator: str, judgment: Judgment, threshold: float
) -> Verdict:
    """One evaluator's judgment as a verdict; its evidence becomes findings on its segments."""
    passed = judgment.score >= threshold
    findings = [
        Finding(
            check=criterion,
            severity="error",
            segment=evidence.segment,
            subject=evidence.quote,
            message=f"{criterion} ({evaluator}): {evidence.quote[:160]!r}",
        )
        for evidence in judgment.evidence
        if not passed
    ]
    return Verdict(
        gate=gate,
        criterion=criterion,
        evaluator=evaluator,
        score=judgment.score,
        passed=passed,
        reason=judgment.reason,
        findings=findings,
    )


def tie_broken(result: Consensus, judgment: Judgment, threshold: float) -> Consensus:
    """A disputed criterion decided by the tie-breaker's judgment."""
    verdict = verdict_of(result.gate, result.criterion, "tiebreaker", judgment, threshold)
    return Consensus(
        result.gate,
        result.criterion,
        {**result.scores, "tiebreaker": judgment.score},
        "pass" if verdict.passed else "fail",
        [*result.verdicts, verdict],
        "tiebreaker",
        claim_findings=result.claim_findings,
    )


def judged_claims(
    claims: list[ClaimToVerify], judgments: dict[str, Judgment]
) -> tuple[list[Finding], list[str]]:
    """Consensus claim by claim: the claims every evaluator found contradicted or not in the
    notes, as findings on their turns; and the ids of those they disagree on (or left out)."""
    verdicts = {
        evaluator: {c.id: c for c in judgment.claims} for evaluator, judgment in judgments.items()
    }
    flagged: list[Finding] = []
    disputed: list[str] = []
    for claim in claims:
        given = [by_id.get(claim.id) for by_id in verdicts.values()]
        wrong = [g for g in given if g is not None and g.verdict != "supported"]
        if given and len(wrong) == len(given):
            first = wrong[0]
            where = f" ({first.note}: {first.evidence!r})" if first.note else ""
            flagged.append(
                Finding(
                    check="accuracy",
                    segment=claim.segment,
                    turn=claim.turn,
                    subject=claim.text,
                    message=f"accuracy: turn {claim.turn} claims {claim.text!r}, which every "
                    f"evaluator found {first.verdict}{where}",
                )
            )
        elif wrong or any(g is None for g in given):
            disputed.append(claim.id)
    return flagged, disputed


@dataclass(frozen=True)
class Agreement:
    gate: str
    criteria: int
    agreement_rate: float
    mean_absolute_difference: float


def agreement(results: list[Consensus]) -> list[Agreement]:
    """Per gate: how often the two evaluators landed on the same side, and how far apart."""
    stats = []
    for gate in dict.fromkeys(r.gate for r in results):
        pairs = [
            (r.scores["primary"], r.scores["secondary"])
            for r in results
            if r.gate == gate and {"primary", "secondary"} <= set(r.scores)
        ]
        if not pairs:
            continue
        # an escalated criterion (however it was then settled) is one they disagreed on
        same = sum(1 for r in results if r.gate == gate and r.resolved_by is None)
        stats.append(
            Agreement(
                gate=gate,
                criteria=len(pairs),
                agreement_rate=round(same / len(pairs), 4),
                mean_absolute_difference=round(sum(abs(a - b) for a, b in pairs) / len(pairs), 4),
            )
        )
    return stats

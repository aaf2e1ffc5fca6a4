"""Review and revision: the four gates each round, two evaluators per judged criterion (run
concurrently), consensus or escalation, and polishing of the segments that fail, within a
bounded number of rounds that each pay for themselves in the budget first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from castline.config import Quality
from castline.domain import (
    ConsensusRecord,
    Finding,
    GateAgreement,
    KnowledgeBase,
    Outline,
    QualityReport,
    QualityRound,
    Script,
    Verdict,
)
from castline.errors import BudgetRefused
from castline.llm.base import Task
from castline.llm.tasks import (
    ClaimToVerify,
    JudgeTask,
    Judgment,
    ReviewDecision,
    ReviewDecisionTask,
    SegmentDraft,
    ShowBrief,
)
from castline.orchestrator import guard_review
from castline.quality.consensus import (
    Consensus,
    agreement,
    decide,
    judged_claims,
    tie_broken,
    verdict_of,
)
from castline.quality.content import checked_claims, claims_to_verify
from castline.quality.gates import CLAIMS_RUBRIC, JUDGED, Judged, known_names
from castline.quality.verdicts import blocking
from castline.stages import polish, write

if TYPE_CHECKING:
    from castline.engine.runner import Pipeline

EVALUATORS: dict[Literal["primary", "secondary"], str] = {
    "primary": "evaluator_primary",
    "secondary": "evaluator_secondary",
}


@dataclass
class Outcome:
    script: Script
    verdicts: list[Verdict]
    escalated: list[Consensus] = field(default_factory=list)
    round: int = 0


def judge_tasks(
    prefix: str,
    brief: ShowBrief,
    kb: KnowledgeBase,
    outline: Outline,
    script: Script,
    criteria: Sequence[Judged],
    to_verify: list[ClaimToVerify],
) -> list[tuple[str, str, JudgeTask]]:
    """(step key, role, task) for both evaluators of each criterion; accuracy gets the claims
    to verify."""
    return [
        (
            f"{prefix}.{criterion.name}.{evaluator}",
            role,
            JudgeTask(
                show=brief,
                knowledge_base=kb,
                outline=outline,
                script=script,
                gate=criterion.gate,
                criterion=criterion.name,
                rubric=criterion.rubric + (CLAIMS_RUBRIC if claims else ""),
                evaluator=evaluator,
                claims=claims,
            ),
        )
        for criterion in criteria
        for claims in [to_verify if criterion.name == "accuracy" else []]
        for evaluator, role in EVALUATORS.items()
    ]


def settle(
    criterion: Judged,
    judgments: dict[str, Judgment],
    tasks: list[tuple[str, str, JudgeTask]],
    quality: Quality,
) -> tuple[Consensus, list[Finding], list[str]]:
    """Both evaluators' judgments of a criterion as one decision (to escalate when they
    disagree), with the claims both found wrong, which fail it, and those they disputed."""
    threshold = quality.consensus_threshold
    verdicts = [
        verdict_of(criterion.gate, criterion.name, evaluator, judgment, threshold)
        for evaluator, judgment in judgments.items()
    ]
    scores = {e: j.score for e, j in judgments.items()}
    decision = decide(scores["primary"], scores["secondary"], threshold, quality.tolerance)
    claims = next(t.claims for key, _, t in tasks if key.endswith(f".{criterion.name}.primary"))
    flagged, disputed = judged_claims(claims, judgments) if claims else ([], [])
    if flagged:
        decision = "fail"  # both evaluators found these claims wrong: no tie to break
    result = Consensus(
        criterion.gate, criterion.name, scores, decision, verdicts, claim_findings=tuple(flagged)
    )
    return result, flagged, disputed


class ReviewLoop:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.ctx = pipeline.ctx
        self.steps = pipeline.steps
        self.report = QualityReport()
        self.passed: dict[str, Consensus] = {}  # judged criteria settled in an earlier round

    def run(self, outline: Outline, script: Script, kb: KnowledgeBase) -> Outcome:
        quality = self.ctx.show.quality
        round_ = 0
        previous: list[Finding] | None = None
        while True:
            self.steps.event("stage", f"reviewing (round {round_})", "review")
            checks = self.steps.review(round_, outline, script, kb)
            judged = self.judge(round_, outline, script, kb)
            verdicts = checks + [v for c in judged for v in c.verdicts]
            failing = blocking(checks) + [
                f for c in judged if not c.passed and c.resolved_by != "human" for f in _findings(c)
            ]
            escalated = [c for c in judged if c.resolved_by == "human"]
            self._record(round_, verdicts, judged)
            if escalated:
                names = ", ".join(c.criterion for c in escalated)
                self.steps.event(
                    "decision",
                    f"after review round {round_}: the evaluators disagree on {names}; "
                    "asking a person",
                    "review",
                    escalated=[c.criterion for c in escalated],
                )
                return Outcome(script, verdicts, escalated, round_)
            if not failing:
                self.steps.event("decision", "accepted: every gate passes", "review")
                self.report = self.report.model_copy(update={"decision": "accepted"})
                return Outcome(script, verdicts, round=round_)
            if self.pipeline.budget.halted_at is not None:
                return Outcome(script, verdicts, round=round_)
            decision = self._decision(round_, quality.max_revision_rounds, failing)
            plan_ = guard_review(
                decision,
                failing,
                round_=round_,
                max_rounds=quality.max_revision_rounds,
                segments=[s.id for s in outline.segments],
                previous=previous,
            )
            previous = failing
            action = f"revise {', '.join(plan_.revise)}" if plan_.revise else "stop revising"
            self.steps.event(
                "decision",
                f"after review round {round_}: {action}. {plan_.rationale}",
                "review",
                round=round_,
                action=decision.action,
                revise=plan_.revise,
                rationale=plan_.rationale,
                overrides=plan_.overrides,
            )
            if not plan_.revise:
                self.report = self.report.model_copy(update={"decision": "rejected"})
                return Outcome(script, verdicts, round=round_)
            before = {s: _words(script, s) for s in plan_.revise}
            round_ += 1
            self.steps.event(
                "stage", f"polishing {', '.join(plan_.revise)} (round {round_})", "polish"
            )
            for segment_id in plan_.revise:
                try:
                    script = self._revise(outline, script, kb, segment_id, failing, round_)
                except BudgetRefused as refused:
                    self.pipeline.skip(
                        f"polishing {segment_id} (round {round_})", "polish", str(refused)
                    )
                    return Outcome(script, self.steps.review(round_, outline, script, kb))
            self._note_revision(plan_.revise, before, script)

    # judging

    def judge(
        self, round_: int, outline: Outline, script: Script, kb: KnowledgeBase
    ) -> list[Consensus]:
        quality = self.ctx.show.quality
        pending = [j for j in JUDGED if j.name not in self.passed]
        if self.pipeline.by_code("judge"):
            for criterion in pending:
                self.pipeline.skip(
                    f"judging {criterion.name} (round {round_})",
                    "review",
                    f"{self.pipeline.budget.mode} mode",
                )
            return list(self.passed.values())
        known = known_names(self.ctx.show, self.ctx.source_titles.values())
        to_verify = claims_to_verify(checked_claims(script, kb, known))
        tasks = judge_tasks(
            f"review.{round_}", self.ctx.brief, kb, outline, script, pending, to_verify
        )
        outcomes = dict(zip([key for key, _, _ in tasks], self.steps.judge(tasks), strict=True))
        results: list[Consensus] = list(self.passed.values())
        for criterion in pending:
            judgments: dict[str, Judgment] = {}
            for evaluator in EVALUATORS:
                key = f"review.{round_}.{criterion.name}.{evaluator}"
                outcome = outcomes[key]
                self.pipeline.note_mode(outcome.mode)
                if outcome.output is None:
                    self.pipeline.skip(
                        f"judging {criterion.name} ({evaluator})", "review", outcome.refusal
                    )
                    break
                judgments[evaluator] = Judgment.model_validate(outcome.output)
            if len(judgments) < 2:
                continue
            result, flagged, disputed = settle(criterion, judgments, tasks, quality)
            self._claims_judged(round_, criterion.name, tasks, flagged, disputed)
            if result.decision == "escalate":
                result = self._escalate(round_, result, tasks, criterion.name)
            if result.passed:
                self.passed[criterion.name] = result
            results.append(result)
        return results

    def _claims_judged(
        self,
        round_: int,
        criterion: str,
        tasks: list[tuple[str, str, JudgeTask]],
        flagged: list[Finding],
        disputed: list[str],
    ) -> None:
        claims = next(t.claims for key, _, t in tasks if key.endswith(f".{criterion}.primary"))
        if claims:
            self.steps.event(
                "claims-judged",
                f"{criterion}: {len(claims)} claim(s) verified by both evaluators; "
                f"{len(flagged)} found wrong by both, {len(disputed)} disputed",
                "review",
                round=round_,
                flagged=[f.subject for f in flagged],
                disputed=disputed,
            )

    def _escalate(
        self,
        round_: int,
        result: Consensus,
        tasks: list[tuple[str, str, JudgeTask]],
        criterion: str,
    ) -> Consensus:
        if self.ctx.show.quality.escalation == "human":
            return Consensus(
                result.gate, criterion, result.scores, "escalate", result.verdicts, "human"
            )
        task = next(t for key, _, t in tasks if key.endswith(f".{criterion}.primary"))
        tiebreak = task.model_copy(update={"evaluator": "tiebreaker"})
        try:
            judgment: Judgment = self.pipeline.call(
                f"review.{round_}.{criterion}.tiebreaker",
                "review",
                "evaluator_tiebreaker",
                tiebreak,
            )
        except BudgetRefused as refused:
            self.pipeline.skip(f"tie-breaking {criterion}", "review", str(refused))
            return Consensus(result.gate, criterion, result.scores, "fail", result.verdicts)
        decided = tie_broken(result, judgment, self.ctx.show.quality.consensus_threshold)
        self.steps.event(
            "decision",
            f"{criterion}: evaluators disagreed ({result.scores}); the tie-breaker scored "
            f"{judgment.score:.2f}: {decided.decision}",
            "review",
            scores=decided.scores,
        )
        return decided

    # revision

    def _decision(self, round_: int, max_rounds: int, failing: list[Finding]) -> ReviewDecision:
        flagged = sorted({f.segment for f in failing if f.segment is not None})
        by_code = ReviewDecision(
            action="revise" if round_ < max_rounds and flagged else "accept",
            segments=flagged,
            rationale="decided by code: revise every segment with a blocking finding",
        )
        if self.pipeline.by_code("review-decision"):
            self.pipeline.skip(
                f"orchestrator review decision (round {round_})",
                "review",
                self.pipeline.budget.mode,
            )
            return by_code
        task = ReviewDecisionTask(round=round_, max_rounds=max_rounds, findings=failing)
        try:
            decision: ReviewDecision = self.pipeline.call(
                f"orchestrate.review.{round_}", "review", "orchestrator", task
            )
        except BudgetRefused as refused:
            self.pipeline.skip(
                f"orchestrator review decision (round {round_})", "review", str(refused)
            )
            return by_code
        return decision

    def _revise(
        self,
        outline: Outline,
        script: Script,
        kb: KnowledgeBase,
        segment_id: str,
        findings: list[Finding],
        round_: int,
    ) -> Script:
        segment = outline.segment(segment_id)
        task: Task[Any]
        if script.segment_turns(segment_id):
            task = polish.polish_task(self.ctx, outline, script, kb, segment_id, findings)
        else:
            task = write.segment_task(self.ctx, outline, segment, kb)
        draft: SegmentDraft = self.pipeline.call(
            f"polish.{round_}.{segment_id}", "polish", "polisher", task
        )
        turns = [turn.model_copy(update={"segment": segment_id}) for turn in draft.turns]
        return script.replace_segment(segment_id, turns)

    # the quality report

    def _record(self, round_: int, verdicts: list[Verdict], judged: list[Consensus]) -> None:
        record = QualityRound(
            round=round_,
            verdicts=verdicts,
            consensus=[
                ConsensusRecord(
                    gate=c.gate,
                    criterion=c.criterion,
                    scores=c.scores,
                    decision=c.decision,
                    resolved_by=c.resolved_by,
                    passed=c.passed,
                )
                for c in judged
            ],
        )
        stats = [
            GateAgreement(
                gate=a.gate,
                criteria=a.criteria,
                agreement_rate=a.agreement_rate,
                mean_absolute_difference=a.mean_absolute_difference,
            )
            for a in agreement([c for c in judged if c.criterion not in self._carried(round_)])
        ]
        self.report = self.report.model_copy(
            update={
                "rounds": [*self.report.rounds, record],
                "agreement": stats or self.report.agreement,
                "skipped": list(self.pipeline.budget.skipped),
            }
        )

    def _carried(self, round_: int) -> set[str]:
        """Criteria passed in an earlier round and not judged again in this one."""
        if round_ == 0:
            return set()
        earlier = {c.criterion for r in self.report.rounds for c in r.consensus if c.passed}
        return earlier

    def _note_revision(self, segments: list[str], before: dict[str, int], script: Script) -> None:
        last = self.report.rounds[-1].model_copy(
            update={
                "revised": segments,
                "words_before": before,
                "words_after": {s: _words(script, s) for s in segments},
            }
        )
        self.report = self.report.model_copy(update={"rounds": [*self.report.rounds[:-1], last]})


def _findings(result: Consensus) -> list[Finding]:
    """What a failed judged criterion asks to fix: the claims both evaluators found wrong, or
    else the deciding evaluators' evidence."""
    if result.claim_findings:
        return list(result.claim_findings)
    if result.resolved_by == "tiebreaker":
        return [f for v in result.verdicts if v.evaluator == "tiebreaker" for f in v.findings]
    return [f for v in result.verdicts for f in v.findings]


def _words(script: Script, segment_id: str) -> int:
    return sum(len(t.text.split()) for t in script.segment_turns(segment_id))

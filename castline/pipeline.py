"""The episode, stage by stage: what is asked of whom, what is decided, and what happens when the
budget says no. Plain code against a `Steps` interface; `castline.workflow` makes each step
durable.

A call the budget refuses does not fail the run. Where code can stand in (the orchestrator's
decisions, merging research), it does; where it cannot, work that is not essential is skipped and
listed, and when writing itself cannot go on the run finishes with what exists, marked as halted
by budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from castline.budget.policy import MODES, NON_ESSENTIAL, Mode, later
from castline.domain import (
    BudgetOutcome,
    Episode,
    Finding,
    KnowledgeBase,
    Outline,
    Script,
    Turn,
    Verdict,
)
from castline.knowledge import merge_findings
from castline.llm.base import Task
from castline.llm.tasks import (
    FanoutDecision,
    FanoutTask,
    Findings,
    Question,
    Questions,
    ReviewDecision,
    ReviewDecisionTask,
    SegmentDraft,
)
from castline.orchestrator import guard_fanout, guard_review
from castline.stages import RunContext, plan, polish, research, review, write

# The roles this pipeline calls; only these need a key for a live run.
ROLES_USED = frozenset({"orchestrator", "researcher", "planner", "writer", "polisher", "fallback"})


class Steps(Protocol):
    """The durable operations the pipeline needs; each is checkpointed by the workflow."""

    def call(self, step_key: str, stage: str, role: str, task: Task[Any]) -> dict[str, Any]: ...

    def research(self, questions: list[Question], *, batch: bool) -> list[dict[str, Any]]: ...

    def event(self, kind: str, message: str, stage: str | None, **data: Any) -> None: ...

    def review(
        self, round_: int, outline: Outline, script: Script, kb: KnowledgeBase
    ) -> list[Verdict]: ...

    def publish(self, episode: Episode) -> dict[str, Any]: ...


class Refused(Exception):
    """A call the budget could not fit (workflow-internal; never leaves the pipeline)."""


@dataclass
class Budgeting:
    """What the run has had to give up for its budget so far."""

    mode: Mode = "normal"
    skipped: list[str] = field(default_factory=list)
    halted_at: str | None = None

    def outcome(self) -> BudgetOutcome:
        return BudgetOutcome(mode=self.mode, skipped=self.skipped, halted_at=self.halted_at)


class Pipeline:
    def __init__(self, ctx: RunContext, steps: Steps) -> None:
        self.ctx = ctx
        self.steps = steps
        self.budget = Budgeting()
        self.first_skip: str | None = None

    def call(self, step_key: str, stage: str, role: str, task: Task[Any]) -> Any:
        outcome = self.steps.call(step_key, stage, role, task)
        self._note_mode(outcome["mode"])
        if outcome["output"] is None:
            raise Refused(f"{step_key}: {outcome['refusal']}")
        return task.parse_output(outcome["output"])

    def _note_mode(self, mode: str) -> None:
        if mode in MODES:
            self.budget.mode = later(self.budget.mode, MODES[MODES.index(mode)])

    def _skip(self, what: str, stage: str, reason: str) -> None:
        self.first_skip = self.first_skip or stage
        self.budget.skipped.append(f"{what}: {reason}")
        self.steps.event("budget-skipped", f"skipped {what}: {reason}", stage)

    def _by_code(self, kind: str) -> bool:
        """Whether a non-essential call is replaced by its code rule in the current mode."""
        return kind in NON_ESSENTIAL and self.budget.mode in ("degraded", "halted")

    def run(self) -> dict[str, Any]:
        ctx = self.ctx
        kb = self.research()
        if kb is None or not kb.notes:
            return self._halted_without_script("research")
        self.steps.event("stage", "planning the episode", "plan")
        try:
            outline: Outline = self.call("plan.outline", "plan", "planner", plan.plan_task(ctx, kb))
        except Refused as refused:
            self._skip("planning", "plan", str(refused))
            return self._halted_without_script("plan")
        script = self.write(outline, kb)
        script, verdicts = self.review_and_polish(outline, script, kb)
        blocking = review.blocking(verdicts)
        if blocking and self.first_skip is not None and self.budget.halted_at is None:
            # the script fails its checks after work was given up for the budget: the budget,
            # not the writing, stopped this episode
            self.budget.halted_at = self.first_skip
        self.steps.event("stage", "publishing", "publish")
        episode = Episode(
            run_id=ctx.run_id,
            show_title=ctx.show.show.title,
            topic=ctx.topic,
            offline=ctx.routing.offline,
            outline=outline,
            script=script,
            knowledge_base=kb,
            sources=ctx.sources,
            verdicts=verdicts,
            accepted=not blocking and self.budget.halted_at is None,
            budget=self.budget.outcome(),
        )
        published = self.steps.publish(episode)
        return {
            "accepted": episode.accepted,
            "halted_at": self.budget.halted_at,
            "blocking": [f.message for f in blocking],
            "skipped": self.budget.skipped,
            "output_dir": published["output_dir"],
            "words": script.word_count,
        }

    def _halted_without_script(self, stage: str) -> dict[str, Any]:
        self.budget.halted_at = stage
        self.steps.event(
            "budget-halted", f"halted by budget in {stage}: no script could be written", stage
        )
        return {
            "accepted": False,
            "halted_at": stage,
            "blocking": [],
            "skipped": self.budget.skipped,
            "output_dir": None,
            "words": 0,
        }

    # research

    def research(self) -> KnowledgeBase | None:
        ctx = self.ctx
        self.steps.event("stage", "generating research questions", "research")
        try:
            proposed: Questions = self.call(
                "research.questions", "research", "researcher", research.questions_task(ctx)
            )
        except Refused as refused:
            self._skip("research questions", "research", str(refused))
            return None
        chosen = self._fan_out(proposed.questions)
        findings: list[Findings] = []
        answered: list[Question] = []
        # Batched at half price when the show asks for it, or once the budget is tight.
        batch = ctx.show.research.batch or self.budget.mode != "normal"
        outcomes = self.steps.research(chosen, batch=batch)
        for question, outcome in zip(chosen, outcomes, strict=True):
            self._note_mode(outcome["mode"])
            if outcome["output"] is None:
                self._skip(f"research question {question.focus!r}", "research", outcome["refusal"])
                continue
            answered.append(question)
            findings.append(Findings.model_validate(outcome["output"]))
        if not answered:
            return None
        task = research.synthesis_task(ctx, answered, findings)
        try:
            kb: KnowledgeBase = self.call("research.synthesis", "research", "researcher", task)
        except Refused as refused:
            self._skip("model synthesis (merged by code instead)", "research", str(refused))
            kb = merge_findings(task)
        self.steps.event(
            "knowledge-base",
            f"{len(kb.notes)} notes in {len(kb.themes)} themes",
            "research",
            notes=len(kb.notes),
            themes=[theme.title for theme in kb.themes],
        )
        return kb

    def _fan_out(self, questions: list[Question]) -> list[Question]:
        limit = self.ctx.show.research.max_questions
        by_code = FanoutDecision(
            selected=list(range(min(limit, len(questions)))),
            rationale=f"decided by code: the first {limit} questions, most relevant first",
        )
        decision = by_code
        if self._by_code("fanout"):
            self._skip("orchestrator fan-out decision", "research", f"{self.budget.mode} mode")
        else:
            task = FanoutTask(topic=self.ctx.topic, questions=questions, max_questions=limit)
            try:
                decision = self.call("orchestrate.fanout", "research", "orchestrator", task)
            except Refused as refused:
                self._skip("orchestrator fan-out decision", "research", str(refused))
        guarded = guard_fanout(decision, questions, limit)
        chosen = [questions[i] for i in guarded.selected]
        self.steps.event(
            "decision",
            f"research fan-out: {len(chosen)} of {len(questions)} questions. {guarded.rationale}",
            "research",
            selected=guarded.selected,
            rationale=guarded.rationale,
            overrides=guarded.overrides,
        )
        return chosen

    # writing

    def write(self, outline: Outline, kb: KnowledgeBase) -> Script:
        self.steps.event("stage", f"writing {len(outline.segments)} segments", "write")
        drafts: dict[str, list[Turn]] = {}
        for segment in outline.segments:
            task = write.segment_task(self.ctx, outline, segment, kb)
            try:
                draft: SegmentDraft = self.call(f"write.{segment.id}", "write", "writer", task)
            except Refused as refused:
                unwritten = [s.id for s in outline.segments if s.id not in drafts]
                self._skip(f"writing segments {', '.join(unwritten)}", "write", str(refused))
                self.budget.halted_at = "write"
                self.steps.event(
                    "budget-halted",
                    f"halted by budget while writing: publishing the {len(drafts)} segment(s) "
                    "written so far",
                    "write",
                )
                break
            drafts[segment.id] = draft.turns
        return write.assemble(outline, drafts)

    # review and polish

    def review_and_polish(
        self, outline: Outline, script: Script, kb: KnowledgeBase
    ) -> tuple[Script, list[Verdict]]:
        max_rounds = self.ctx.show.quality.max_revision_rounds
        round_ = 0
        previous: list[Finding] | None = None
        while True:
            self.steps.event("stage", f"reviewing (round {round_})", "review")
            verdicts = self.steps.review(round_, outline, script, kb)
            blocking = review.blocking(verdicts)
            if not blocking:
                self.steps.event("decision", "accepted: no blocking findings", "review")
                return script, verdicts
            if self.budget.halted_at is not None:
                return script, verdicts
            decision = self._review_decision(round_, max_rounds, blocking)
            plan_ = guard_review(
                decision,
                blocking,
                round_=round_,
                max_rounds=max_rounds,
                segments=[s.id for s in outline.segments],
                previous=previous,
            )
            previous = blocking
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
                return script, verdicts
            round_ += 1
            self.steps.event(
                "stage", f"polishing {', '.join(plan_.revise)} (round {round_})", "polish"
            )
            for segment_id in plan_.revise:
                try:
                    script = self._revise(outline, script, kb, segment_id, blocking, round_)
                except Refused as refused:
                    self._skip(f"polishing {segment_id} (round {round_})", "polish", str(refused))
                    return script, self.steps.review(round_, outline, script, kb)

    def _review_decision(
        self, round_: int, max_rounds: int, blocking: list[Finding]
    ) -> ReviewDecision:
        flagged = sorted({f.segment for f in blocking if f.segment is not None})
        by_code = ReviewDecision(
            action="revise" if round_ < max_rounds and flagged else "accept",
            segments=flagged,
            rationale="decided by code: revise every segment with a blocking finding",
        )
        if self._by_code("review-decision"):
            self._skip(f"orchestrator review decision (round {round_})", "review", self.budget.mode)
            return by_code
        task = ReviewDecisionTask(round=round_, max_rounds=max_rounds, findings=blocking)
        try:
            decision: ReviewDecision = self.call(
                f"orchestrate.review.{round_}", "review", "orchestrator", task
            )
        except Refused as refused:
            self._skip(f"orchestrator review decision (round {round_})", "review", str(refused))
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
        draft: SegmentDraft = self.call(f"polish.{round_}.{segment_id}", "polish", "polisher", task)
        turns = [turn.model_copy(update={"segment": segment_id}) for turn in draft.turns]
        return script.replace_segment(segment_id, turns)

"""The episode, stage by stage: what is asked of whom, what is decided, and what happens when the
budget says no. Plain code against a `Steps` interface; `castline.engine.workflows` makes each step
durable.

A call the budget refuses does not fail the run. Where code can stand in (the orchestrator's
decisions, merging research), it does; where it cannot, work that is not essential is skipped and
listed, and when writing itself cannot go on the run finishes with what exists, marked as halted
by budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from castline.budget.policy import MODES, NON_ESSENTIAL, Mode, later
from castline.domain import (
    AudioInfo,
    BudgetOutcome,
    Episode,
    Finding,
    KnowledgeBase,
    Outline,
    Script,
    Source,
    Verdict,
)
from castline.engine.paid.calls import CallOutcome
from castline.engine.payloads import HumanDecision, Published, Voiced
from castline.errors import BudgetRefused
from castline.llm.base import Task
from castline.llm.tasks import (
    JudgeTask,
    Question,
)
from castline.quality.verdicts import blocking as quality_blocking
from castline.stages import RunContext, plan, research, write
from castline.stages.review import ReviewLoop


class Steps(Protocol):
    """The durable operations the pipeline needs; each is checkpointed by the workflow."""

    def call(self, step_key: str, stage: str, role: str, task: Task[Any]) -> CallOutcome: ...

    def research(self, questions: list[Question], *, batch: bool) -> list[CallOutcome]: ...

    def event(self, kind: str, message: str, stage: str | None, **data: Any) -> None: ...

    def fetch_page(self, url: str, source_id: str) -> Source | str:
        """A page research's web search found, fetched once and kept with the run as a source
        with this id; or why it could not be."""
        ...

    def review(
        self, round_: int, outline: Outline, script: Script, kb: KnowledgeBase
    ) -> list[Verdict]: ...

    def publish(self, episode: Episode) -> Published: ...

    def judge(self, tasks: list[tuple[str, str, JudgeTask]]) -> list[CallOutcome]:
        """Make (step key, role, task) calls concurrently; their outcomes in the same order."""
        ...

    def await_review(self, round_: int, summary: dict[str, Any]) -> HumanDecision | None:
        """A person's decision on an escalated episode, or None while nobody has decided."""
        ...

    def voice(self, outline: Outline, script: Script) -> Voiced:
        """Render every turn and master the episode: its audio info and timeline, or no audio
        and why, when the budget could not fit a clip."""
        ...


class RunResult(BaseModel):
    """How an episode's workflow ended, as it crosses the DBOS boundary."""

    accepted: bool
    halted_at: str | None = None
    blocking: list[str] = []
    skipped: list[str] = []
    output_dir: str | None = None
    words: int = 0
    awaiting_review: bool = False

    @property
    def status(self) -> str:
        """The run's final status in the store."""
        if self.awaiting_review:
            return "awaiting-review"
        if self.halted_at:
            return "halted"
        return "completed" if self.accepted else "rejected"


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
        self.note_mode(outcome.mode)
        if outcome.output is None:
            raise BudgetRefused(f"{step_key}: {outcome.refusal}")
        return task.parse_output(outcome.output)

    def note_mode(self, mode: str) -> None:
        if mode in MODES:
            self.budget.mode = later(self.budget.mode, MODES[MODES.index(mode)])

    def skip(self, what: str, stage: str, reason: str) -> None:
        self.first_skip = self.first_skip or stage
        self.budget.skipped.append(f"{what}: {reason}")
        self.steps.event("budget-skipped", f"skipped {what}: {reason}", stage)

    def by_code(self, kind: str) -> bool:
        """Whether a non-essential call is replaced by its code rule in the current mode."""
        return kind in NON_ESSENTIAL and self.budget.mode in ("degraded", "halted")

    def run(self) -> RunResult:
        ctx = self.ctx
        kb = research.run(self)
        if kb is None or not kb.notes:
            return self._halted_without_script("research")
        outline = plan.run(self, kb)
        if outline is None:
            return self._halted_without_script("plan")
        script = write.run(self, outline, kb)
        loop = ReviewLoop(self)
        reviewed = loop.run(outline, script, kb)
        script, verdicts = reviewed.script, reviewed.verdicts
        human: str | None = None
        if reviewed.escalated:
            summary = {
                "round": reviewed.round,
                "escalated": [
                    {
                        "criterion": c.criterion,
                        "gate": c.gate,
                        "scores": c.scores,
                        "reasons": {v.evaluator: v.reason for v in c.verdicts},
                    }
                    for c in reviewed.escalated
                ],
                "verdicts": [v.model_dump(mode="json") for v in reviewed.verdicts],
                "outline": outline.model_dump(mode="json"),
                "knowledge_base": kb.model_dump(mode="json"),
                "script": script.model_dump(mode="json"),
            }
            answer = self.steps.await_review(reviewed.round, summary)
            if answer is None:
                return self._awaiting_review(reviewed.round)
            human = answer.status
            if answer.script is not None:
                script = answer.script
            verdicts = self.steps.review(reviewed.round + 1, outline, script, kb)
            self.steps.event(
                "decision", f"a person {human} the episode: {answer.note or ''}", "review"
            )
            loop.report = loop.report.model_copy(update={"human": human})
        blocking = (
            quality_blocking(verdicts)
            if human != "rejected"
            else [Finding(check="human-review", message="a reviewer rejected the episode")]
        )
        if blocking and self.first_skip is not None and self.budget.halted_at is None:
            # the script fails its checks after work was given up for the budget: the budget,
            # not the writing, stopped this episode
            self.budget.halted_at = self.first_skip
        accepted = not blocking and self.budget.halted_at is None
        audio: AudioInfo | None = None
        if accepted and ctx.show.audio.voice:  # no speech is paid for a script that failed
            self.steps.event("stage", f"voicing {len(script.turns)} turns", "voice")
            voiced = self.steps.voice(outline, script)
            if voiced.audio is None:  # a clip the budget could not fit: the script is kept
                self.skip("the episode's audio", "voice", voiced.refused or "")
                self.budget.halted_at = "voice"
                accepted = False
            else:
                audio = voiced.audio
        self.steps.event("stage", "publishing", "publish")
        episode = Episode(
            run_id=ctx.run_id,
            number=ctx.number,
            show_title=ctx.show.show.title,
            topic=ctx.topic,
            offline=ctx.routing.offline,
            outline=outline,
            script=script,
            knowledge_base=kb,
            sources=ctx.sources,
            verdicts=verdicts,
            accepted=accepted,
            audio=audio,
            budget=self.budget.outcome(),
            quality=loop.report.model_copy(
                update={"decision": _final(blocking, self.budget.halted_at, human)}
            ),
        )
        published = self.steps.publish(episode)
        return RunResult(
            accepted=episode.accepted,
            halted_at=self.budget.halted_at,
            blocking=[f.message for f in blocking],
            skipped=self.budget.skipped,
            output_dir=published.output_dir,
            words=script.word_count,
        )

    def _awaiting_review(self, round_: int) -> RunResult:
        self.steps.event(
            "awaiting-review",
            f"waiting for a person to review round {round_}: `castline review` lists it",
            "review",
        )
        return RunResult(accepted=False, awaiting_review=True, skipped=self.budget.skipped)

    def _halted_without_script(self, stage: str) -> RunResult:
        self.budget.halted_at = stage
        self.steps.event(
            "budget-halted", f"halted by budget in {stage}: no script could be written", stage
        )
        return RunResult(accepted=False, halted_at=stage, skipped=self.budget.skipped)


def _final(blocking: list[Finding], halted_at: str | None, human: str | None) -> str:
    if human is not None:
        return f"{human} by a person"
    if halted_at is not None:
        return f"halted by budget in {halted_at}"
    return "accepted" if not blocking else "rejected"

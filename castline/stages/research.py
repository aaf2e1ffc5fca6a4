"""Research: generate questions, research each one against the sources, synthesise."""

from __future__ import annotations

from typing import TYPE_CHECKING

from castline.domain import KnowledgeBase
from castline.errors import BudgetRefused
from castline.knowledge import merge_findings
from castline.llm.tasks import (
    FanoutDecision,
    FanoutTask,
    Findings,
    Question,
    Questions,
    QuestionsTask,
    ResearchTask,
    SourceDigest,
    SynthesisTask,
)
from castline.orchestrator import guard_fanout
from castline.stages import RunContext

if TYPE_CHECKING:
    from castline.engine.runner import Pipeline


def questions_task(ctx: RunContext) -> QuestionsTask:
    digests = [
        SourceDigest(
            id=source.id,
            title=source.title,
            headings=[
                s.heading for s in source.sections if s.heading and s.heading != source.title
            ],
        )
        for source in ctx.sources
    ]
    return QuestionsTask(
        show=ctx.brief,
        topic=ctx.topic,
        sources=digests,
        max_questions=ctx.show.research.max_questions,
    )


def research_task(ctx: RunContext, question: Question) -> ResearchTask:
    return ResearchTask(
        topic=ctx.topic,
        question=question,
        sources=ctx.sources,
        max_notes=ctx.show.research.notes_per_question,
        covered=ctx.covered,
    )


def synthesis_task(
    ctx: RunContext, questions: list[Question], findings: list[Findings]
) -> SynthesisTask:
    known = {source.id for source in ctx.sources}
    # A note citing a source that does not exist is dropped here, before it can reach the script.
    cleaned = [
        Findings(notes=[note for note in found.notes if note.source_id in known])
        for found in findings
    ]
    return SynthesisTask(topic=ctx.topic, questions=questions, findings=cleaned)


def run(line: Pipeline) -> KnowledgeBase | None:
    """Questions, the orchestrator's fan-out, one research call per question (batched when
    asked or when the budget is tight), then synthesis (by code if the budget refuses it)."""
    ctx = line.ctx
    line.steps.event("stage", "generating research questions", "research")
    try:
        proposed: Questions = line.call(
            "research.questions", "research", "researcher", questions_task(ctx)
        )
    except BudgetRefused as refused:
        line.skip("research questions", "research", str(refused))
        return None
    chosen = _fan_out(line, proposed.questions)
    findings: list[Findings] = []
    answered: list[Question] = []
    # Batched at half price when the show asks for it, or once the budget is tight.
    batch = ctx.show.research.batch or line.budget.mode != "normal"
    outcomes = line.steps.research(chosen, batch=batch)
    for question, outcome in zip(chosen, outcomes, strict=True):
        line.note_mode(outcome.mode)
        if outcome.output is None:
            line.skip(f"research question {question.focus!r}", "research", outcome.refusal)
            continue
        answered.append(question)
        findings.append(Findings.model_validate(outcome.output))
    if not answered:
        return None
    task = synthesis_task(ctx, answered, findings)
    try:
        kb: KnowledgeBase = line.call("research.synthesis", "research", "researcher", task)
    except BudgetRefused as refused:
        line.skip("model synthesis (merged by code instead)", "research", str(refused))
        kb = merge_findings(task)
    line.steps.event(
        "knowledge-base",
        f"{len(kb.notes)} notes in {len(kb.themes)} themes",
        "research",
        notes=len(kb.notes),
        themes=[theme.title for theme in kb.themes],
    )
    return kb


def _fan_out(line: Pipeline, questions: list[Question]) -> list[Question]:
    limit = line.ctx.show.research.max_questions
    by_code = FanoutDecision(
        selected=list(range(min(limit, len(questions)))),
        rationale=f"decided by code: the first {limit} questions, most relevant first",
    )
    decision = by_code
    if line.by_code("fanout"):
        line.skip("orchestrator fan-out decision", "research", f"{line.budget.mode} mode")
    else:
        task = FanoutTask(topic=line.ctx.topic, questions=questions, max_questions=limit)
        try:
            decision = line.call("orchestrate.fanout", "research", "orchestrator", task)
        except BudgetRefused as refused:
            line.skip("orchestrator fan-out decision", "research", str(refused))
    guarded = guard_fanout(decision, questions, limit)
    chosen = [questions[i] for i in guarded.selected]
    line.steps.event(
        "decision",
        f"research fan-out: {len(chosen)} of {len(questions)} questions. {guarded.rationale}",
        "research",
        selected=guarded.selected,
        rationale=guarded.rationale,
        overrides=guarded.overrides,
    )
    return chosen

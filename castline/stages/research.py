"""Research: generate questions, research each one against the sources, synthesise."""

from __future__ import annotations

from castline.llm.tasks import (
    Findings,
    Question,
    QuestionsTask,
    ResearchTask,
    SourceDigest,
    SynthesisTask,
)
from castline.stages import RunContext


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

"""Polish: rewrite only the segments the review flagged, with the findings that concern them."""

from __future__ import annotations

from castline.domain import Finding, KnowledgeBase, Outline, Script
from castline.llm.tasks import PolishTask
from castline.stages import RunContext


def polish_task(
    ctx: RunContext,
    outline: Outline,
    script: Script,
    kb: KnowledgeBase,
    segment_id: str,
    findings: list[Finding],
) -> PolishTask:
    segment = outline.segment(segment_id)
    known = {note.id for note in kb.notes}
    return PolishTask(
        show=ctx.brief,
        segment=segment,
        turns=script.segment_turns(segment_id),
        findings=[f for f in findings if f.segment == segment_id],
        notes=[kb.note(n) for n in segment.note_ids if n in known],
    )

"""Write: one call per segment, assembled into the script in outline order."""

from __future__ import annotations

from castline.domain import KnowledgeBase, Outline, Script, Segment, Turn
from castline.llm.tasks import WriteSegmentTask
from castline.stages import RunContext


def segment_task(
    ctx: RunContext, outline: Outline, segment: Segment, knowledge_base: KnowledgeBase
) -> WriteSegmentTask:
    known = {note.id for note in knowledge_base.notes}
    return WriteSegmentTask(
        show=ctx.brief,
        outline=outline,
        segment=segment,
        notes=[knowledge_base.note(n) for n in segment.note_ids if n in known],
        source_titles=ctx.source_titles,
    )


def assemble(outline: Outline, drafts: dict[str, list[Turn]]) -> Script:
    """Join segment drafts in outline order, labelling every turn with its segment."""
    turns = [
        turn.model_copy(update={"segment": segment.id})
        for segment in outline.segments
        for turn in drafts.get(segment.id, [])
    ]
    return Script(title=outline.title, turns=turns)

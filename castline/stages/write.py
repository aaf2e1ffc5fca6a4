"""Write: one call per segment, assembled into the script in outline order."""

from __future__ import annotations

from castline.domain import KnowledgeBase, Outline, Script, Segment, Turn
from castline.llm.tasks import WriteSegmentTask
from castline.stages import RunContext


def segment_task(
    ctx: RunContext, outline: Outline, segment: Segment, knowledge_base: KnowledgeBase
) -> WriteSegmentTask:
    return WriteSegmentTask(
        show=ctx.brief,
        knowledge_base=knowledge_base,
        outline=outline,
        segment=segment,
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

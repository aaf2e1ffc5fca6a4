"""Write: one call per segment, assembled into the script in outline order."""

from __future__ import annotations

from typing import TYPE_CHECKING

from castline.domain import KnowledgeBase, Outline, Script, Segment, Turn
from castline.errors import BudgetRefused
from castline.llm.tasks import SegmentDraft, WriteSegmentTask
from castline.stages import RunContext

if TYPE_CHECKING:
    from castline.engine.runner import Pipeline


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


def run(line: Pipeline, outline: Outline, kb: KnowledgeBase) -> Script:
    """One call per segment in outline order; a refusal halts writing with what exists."""
    line.steps.event("stage", f"writing {len(outline.segments)} segments", "write")
    drafts: dict[str, list[Turn]] = {}
    for segment in outline.segments:
        task = segment_task(line.ctx, outline, segment, kb)
        try:
            draft: SegmentDraft = line.call(f"write.{segment.id}", "write", "writer", task)
        except BudgetRefused as refused:
            unwritten = [s.id for s in outline.segments if s.id not in drafts]
            line.skip(f"writing segments {', '.join(unwritten)}", "write", str(refused))
            line.budget.halted_at = "write"
            line.steps.event(
                "budget-halted",
                f"halted by budget while writing: publishing the {len(drafts)} segment(s) "
                "written so far",
                "write",
            )
            break
        drafts[segment.id] = draft.turns
    return assemble(outline, drafts)

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
    return PolishTask(
        show=ctx.brief,
        knowledge_base=kb,
        outline=outline,
        segment=outline.segment(segment_id),
        turns=script.segment_turns(segment_id),
        findings=[f for f in findings if f.segment == segment_id],
        source_titles=ctx.source_titles,
    )

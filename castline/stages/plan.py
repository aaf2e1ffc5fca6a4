"""Plan: turn the knowledge base into an outline sized to the episode's target length."""

from __future__ import annotations

from typing import TYPE_CHECKING

from castline.domain import KnowledgeBase, Outline
from castline.errors import BudgetRefused
from castline.llm.tasks import PlanTask
from castline.stages import RunContext

if TYPE_CHECKING:
    from castline.engine.runner import Pipeline


def plan_task(ctx: RunContext, knowledge_base: KnowledgeBase) -> PlanTask:
    return PlanTask(
        show=ctx.brief,
        topic=ctx.topic,
        knowledge_base=knowledge_base,
        target_words=ctx.show.episode.target_words,
    )


def run(line: Pipeline, knowledge_base: KnowledgeBase) -> Outline | None:
    """The outline, or None when the budget cannot fit planning."""
    line.steps.event("stage", "planning the episode", "plan")
    try:
        outline: Outline = line.call(
            "plan.outline", "plan", "planner", plan_task(line.ctx, knowledge_base)
        )
    except BudgetRefused as refused:
        line.skip("planning", "plan", str(refused))
        return None
    return outline

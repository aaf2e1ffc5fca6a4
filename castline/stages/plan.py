"""Plan: turn the knowledge base into an outline sized to the episode's target length."""

from __future__ import annotations

from castline.domain import KnowledgeBase
from castline.llm.tasks import PlanTask
from castline.stages import RunContext


def plan_task(ctx: RunContext, knowledge_base: KnowledgeBase) -> PlanTask:
    return PlanTask(
        show=ctx.brief,
        topic=ctx.topic,
        knowledge_base=knowledge_base,
        target_words=ctx.show.episode.target_words,
    )

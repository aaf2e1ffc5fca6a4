"""Realistic tasks for the adapter tests, built by the offline pipeline from the example show."""

from __future__ import annotations

from typing import Any

from castline.config import load_show
from castline.llm.base import Task
from castline.llm.offline import research, writing
from castline.llm.tasks import (
    FanoutTask,
    PlanTask,
    QuestionsTask,
    ResearchTask,
    ReviewDecisionTask,
    ShowBrief,
    SourceDigest,
    SynthesisTask,
    WriteSegmentTask,
)
from castline.sources import read_sources
from tests.conftest import EXAMPLE, EXAMPLE_SOURCES, EXAMPLE_TOPIC
from tests.fake_api.tasks import normalize_source


def realistic_tasks() -> dict[str, Task[Any]]:
    """fanout and review: one small block; research: sources + task; intro and body: show,
    knowledge base, outline + task (the two share everything but the task block)."""
    brief = ShowBrief.of(load_show(EXAMPLE / "show.yaml"))
    sources = [normalize_source(source) for source in read_sources(EXAMPLE_SOURCES)]
    digests = [
        SourceDigest(id=s.id, title=s.title, headings=[x.heading for x in s.sections if x.heading])
        for s in sources
    ]
    questions = research.questions(
        QuestionsTask(show=brief, topic=EXAMPLE_TOPIC, sources=digests, max_questions=3)
    ).questions
    research_tasks = [
        ResearchTask(topic=EXAMPLE_TOPIC, question=q, sources=sources, max_notes=6)
        for q in questions
    ]
    findings = [research.research(task) for task in research_tasks]
    kb = research.synthesis(
        SynthesisTask(topic=EXAMPLE_TOPIC, questions=questions, findings=findings)
    )
    outline = writing.plan(
        PlanTask(show=brief, topic=EXAMPLE_TOPIC, knowledge_base=kb, target_words=1500)
    )
    titles = {source.id: source.title for source in sources}
    intro, body = (
        WriteSegmentTask(
            show=brief, knowledge_base=kb, outline=outline, segment=segment, source_titles=titles
        )
        for segment in outline.segments[:2]
    )
    return {
        "fanout": FanoutTask(topic=EXAMPLE_TOPIC, questions=questions, max_questions=2),
        "review": ReviewDecisionTask(round=0, max_rounds=2, findings=[]),
        "research": research_tasks[0],
        "intro": intro,
        "body": body,
    }

"""The call journal keeps a run's sources once: a prompt that sends a source whole records a
reference to it, while the provider still receives the whole text."""

from __future__ import annotations

from pathlib import Path

from castline.config import database_url
from castline.engine import episodes
from castline.llm import prompts
from castline.llm.tasks import Question, ResearchTask
from castline.sources import read_sources
from castline.store import Store
from tests.conftest import EXAMPLE_SOURCES, EXAMPLE_TOPIC


def test_a_kept_source_is_journaled_by_reference_and_sent_whole() -> None:
    sources = read_sources(EXAMPLE_SOURCES)
    passage = sources[1].model_copy(update={"sections": sources[1].sections[:1]})
    task = ResearchTask(
        topic=EXAMPLE_TOPIC,
        question=Question(text="Who pays?", focus="costs"),
        sources=[sources[0], passage],
        max_notes=5,
    )
    kept = {source.id: source for source in sources}

    record = prompts.recorded(task, kept)
    sent = prompts.render(task).text

    assert sources[0].sections[0].text[:200] not in record  # kept once, with the run
    assert f'<source id="{sources[0].id}" sha256="{sources[0].sha256}"' in record
    assert passage.sections[0].text[:200] in record  # a passage is recorded as sent
    assert sources[0].sections[0].text[:200] in sent
    assert prompts.recorded(task, {}) == sent


def test_a_run_journals_each_source_once(show_copy: Path) -> None:
    outcome = episodes.produce(show_copy, EXAMPLE_TOPIC, EXAMPLE_SOURCES)

    store = Store(database_url())
    research = [
        c for c in store.calls(outcome.run_id) if c.step_key.startswith("research.question.")
    ]
    sources = read_sources(EXAMPLE_SOURCES)
    assert len(research) >= 3
    for call in research:
        for source in sources:
            assert f'<source id="{source.id}" sha256="{source.sha256}"' in call.prompt
            assert source.sections[-1].text[:300] not in call.prompt
    journal = sum(len(c.prompt) for c in research)
    assert journal < sum(len(source.text) for source in sources)  # less than one copy in all

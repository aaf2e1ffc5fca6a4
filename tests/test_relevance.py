from __future__ import annotations

from castline.domain import Section, Source
from castline.relevance import mentions, off_topic, shared_terms
from castline.text import terms


def _source(id_: str, heading: str, text: str) -> Source:
    return Source(
        id=id_,
        title=heading,
        path=f"{id_}.md",
        kind="markdown",
        sha256=id_,
        sections=[Section(heading=heading, text=text)],
    )


TREES = _source("trees", "Canopy", "A street tree shades the pavement of the city around it.")
BREAD = _source("bread", "Baking", "A cold fermentation overnight gives the dough its flavour.")


def test_topic_words_match_in_any_inflection() -> None:
    topic = terms("How street trees cool cities")
    assert shared_terms(TREES, topic) == set(terms("street tree city")) == set(topic) - {"cool"}


def test_a_heading_counts_as_part_of_the_source() -> None:
    assert mentions(TREES, terms("urban canopy"))


def test_sources_without_a_topic_word_are_off_topic() -> None:
    assert off_topic([TREES, BREAD], "How street trees cool cities") == [BREAD]
    assert off_topic([TREES, BREAD], "Baking in cities") == []


def test_a_topic_of_only_short_or_common_words_rules_nothing_out() -> None:
    # "AI" is too short to be a content term: nothing can be judged, so nothing is refused
    assert off_topic([TREES, BREAD], "Is AI in it?") == []

"""Whether a source speaks to an episode's topic at all.

Checked before a run (sources that share no word with the topic cannot make an episode on it,
whoever writes it) and used by the offline researcher, which never quotes such a source.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from castline.domain import Source
from castline.text import terms


def shared_terms(source: Source, topic_terms: Iterable[str]) -> set[str]:
    """The topic's content terms (stemmed) that occur anywhere in the source."""
    wanted = set(topic_terms)
    found: set[str] = set()
    for text in (source.title, *(part for s in source.sections for part in (s.heading, s.text))):
        found |= wanted.intersection(terms(text))
        if found == wanted:
            break
    return found


def mentions(source: Source, topic_terms: Iterable[str]) -> bool:
    return bool(shared_terms(source, topic_terms))


def off_topic(sources: Sequence[Source], topic: str) -> list[Source]:
    """The sources that share no content word with the topic."""
    wanted = terms(topic)
    return [source for source in sources if wanted and not mentions(source, wanted)]

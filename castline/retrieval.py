"""Reading long sources selectively: each research question gets the passages that answer it.

Sources that fit in a prompt (`WHOLE_WORDS` in all) go to every research question whole: one
block all the questions share, which the providers' prompt caches reuse. Longer ones are cut
into passages of about `PASSAGE_WORDS` words (paragraphs kept whole where they fit, within their
section), ranked for each question by BM25 (`bm25s`), and the best `PASSAGES_PER_QUESTION` go to
that question in the order the document has them, under their section headings. So a prompt
stays the same size however long the sources are, and a 50 MB report is cited from wherever it
answers the question, not from its first pages.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from castline.domain import Section, Source
from castline.text import sentences, word_count

WHOLE_WORDS = 20_000
PASSAGE_WORDS = 200
PASSAGES_PER_QUESTION = 24


@dataclass(frozen=True)
class Passage:
    source: int  # index in the sources
    section: int  # index in the source's sections
    heading: str
    text: str


def passages(sources: Sequence[Source]) -> list[Passage]:
    """Every source cut into passages, in document order."""
    found: list[Passage] = []
    for s_index, source in enumerate(sources):
        for c_index, section in enumerate(source.sections):
            for text in _pieces(section.text):
                found.append(Passage(s_index, c_index, section.heading, text))
    return found


def _pieces(text: str) -> Iterator[str]:
    """Paragraphs gathered up to PASSAGE_WORDS; a longer paragraph split between sentences."""
    parts: list[str] = []
    for paragraph in (p.strip() for p in text.split("\n\n")):
        if word_count(paragraph) <= PASSAGE_WORDS:
            parts += [paragraph] if paragraph else []
        else:
            parts += _runs(sentences(paragraph), " ")
    return _runs(parts, "\n\n")


def _runs(parts: Iterable[str], joiner: str) -> Iterator[str]:
    """The parts joined in runs of at most PASSAGE_WORDS words (a longer part stands alone)."""
    run: list[str] = []
    words = 0
    for part in parts:
        size = word_count(part)
        if run and words + size > PASSAGE_WORDS:
            yield joiner.join(run)
            run, words = [], 0
        run.append(part)
        words += size
    if run:
        yield joiner.join(run)


class Retriever:
    """The sources' passages, indexed once, and the best of them for any question."""

    def __init__(self, sources: Sequence[Source]) -> None:
        import bm25s  # numpy-backed; loaded only for sources too long to send whole

        self.sources = list(sources)
        self.passages = passages(sources)
        corpus = [f"{p.heading}\n{p.text}" for p in self.passages]
        self._bm25 = bm25s
        self._index: Any = bm25s.BM25()
        self._index.index(
            bm25s.tokenize(corpus, stopwords="en", show_progress=False), show_progress=False
        )

    def select(self, query: str, k: int = PASSAGES_PER_QUESTION) -> list[Passage]:
        """The k passages that best answer the query, in document order."""
        k = min(k, len(self.passages))
        tokens = self._bm25.tokenize([query], stopwords="en", show_progress=False)
        found, scores = self._index.retrieve(tokens, k=k, show_progress=False)
        chosen = sorted(int(i) for i, score in zip(found[0], scores[0], strict=True) if score > 0)
        return [self.passages[i] for i in chosen]

    def sources_for(self, query: str, k: int = PASSAGES_PER_QUESTION) -> list[Source]:
        """The sources cut down to the passages that answer the query (a source with none is
        left out), each passage a section under its heading."""
        by_source: dict[int, list[Passage]] = {}
        for passage in self.select(query, k):
            by_source.setdefault(passage.source, []).append(passage)
        return [
            self.sources[index].model_copy(
                update={"sections": [Section(heading=p.heading, text=p.text) for p in chosen]}
            )
            for index, chosen in sorted(by_source.items())
        ]


def too_long_to_send_whole(sources: Sequence[Source]) -> bool:
    return sum(source.word_count for source in sources) > WHOLE_WORDS

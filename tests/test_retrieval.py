"""Long sources read selectively: passages by question, from anywhere in the document."""

from __future__ import annotations

from castline.domain import Section, Source
from castline.retrieval import PASSAGE_WORDS, Retriever, passages, too_long_to_send_whole
from castline.text import word_count

FILLER = (
    "The committee met again to review the minutes of the previous session and agreed on the "
    "order of business for the coming quarter without further discussion."
)


def _report(chapters: int, facts: dict[int, str]) -> Source:
    """A long report: chapters of filler, with a fact planted in some of them."""
    sections = []
    for number in range(chapters):
        paragraphs = [FILLER] * 12
        if number in facts:
            paragraphs.insert(5, facts[number])
        sections.append(Section(heading=f"Chapter {number + 1}", text="\n\n".join(paragraphs)))
    return Source(
        id="report", title="Annual report", path="report.md", kind="markdown", sha256="0",
        sections=sections,
    )  # fmt: skip


def test_passages_keep_paragraphs_whole_and_stay_near_their_size() -> None:
    report = _report(3, {1: "Street trees lower summer air temperatures by shading walls."})
    cut = passages([report])
    assert all(word_count(p.text) <= PASSAGE_WORDS + 40 for p in cut)
    assert [p.section for p in cut] == sorted(p.section for p in cut)  # in document order
    # every word of the report is in exactly one passage
    assert sum(word_count(p.text) for p in cut) == report.word_count
    assert any(p.text.startswith("Street trees") or "\n\nStreet trees" in p.text for p in cut)


def test_each_question_gets_the_passages_that_answer_it_from_across_the_document() -> None:
    facts = {
        2: "A mature oak transpires hundreds of litres of water on a hot afternoon.",
        150: "Cool roofs reflect most of the sunlight that reaches them back into the sky.",
        298: "Night-time temperatures in dense districts stay up to seven degrees higher.",
    }
    report = _report(300, facts)
    assert too_long_to_send_whole([report])
    retriever = Retriever([report])

    for chapter, fact in facts.items():
        question = {
            2: "How much water does an oak tree transpire?",
            150: "What do cool roofs do with sunlight?",
            298: "How much warmer are dense districts at night?",
        }[chapter]
        [cut] = retriever.sources_for(question, k=3)
        assert fact in cut.text, question
        assert cut.sections[0].heading == f"Chapter {chapter + 1}"
        assert cut.id == report.id and cut.title == report.title
    # a question the document does not answer gets nothing, rather than filler
    assert retriever.sources_for("Who won the football cup in Montevideo?") == []


def test_short_sources_go_whole() -> None:
    assert not too_long_to_send_whole([_report(2, {})])

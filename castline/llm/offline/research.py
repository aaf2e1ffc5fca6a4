"""Offline research: questions from the sources' own structure, notes by extractive retrieval."""

from __future__ import annotations

from castline.domain import KnowledgeBase
from castline.knowledge import merge_findings
from castline.llm.offline.solvers import solves
from castline.llm.tasks import (
    FanoutDecision,
    FanoutTask,
    Findings,
    FoundNote,
    Question,
    Questions,
    QuestionsTask,
    ResearchTask,
    SynthesisTask,
)
from castline.relevance import mentions
from castline.text import overlap, quotable, sentences, terms

_GENERIC_HEADINGS = frozenset(
    {"introduction", "conclusion", "conclusions", "summary", "overview", "background", "references"}
)


def _phrase(heading: str) -> str:
    """'Cool Roofs' -> 'cool roofs', keeping acronyms such as 'EPA' as they are."""
    return " ".join(w if w.isupper() and len(w) > 1 else w.lower() for w in heading.split())


@solves(QuestionsTask)
def questions(task: QuestionsTask) -> Questions:
    """One question per section heading; each source's most relevant sections come first, taken
    in turn from each source so that no single document crowds out the others."""
    topic_terms = terms(task.topic)
    per_source: list[list[tuple[float, int, Question]]] = []
    seen: list[list[str]] = []
    for digest in task.sources:
        ranked: list[tuple[float, int, Question]] = []
        for position, heading in enumerate(digest.headings):
            heading_terms = terms(heading)
            if heading.casefold() in _GENERIC_HEADINGS or not heading_terms:
                continue
            if any(overlap(heading_terms, other) > 0.6 for other in seen):
                continue
            seen.append(heading_terms)
            score = overlap(topic_terms, heading_terms) + overlap(heading_terms, topic_terms)
            text = f"What do the sources establish about {_phrase(heading)}?"
            question = Question(text=text, focus=heading, source_id=digest.id)
            ranked.append((score, position, question))
        ranked.sort(key=lambda item: (-item[0], item[1]))
        per_source.append(ranked)
    interleaved = [
        ranked[i][2]
        for i in range(max(map(len, per_source), default=0))
        for ranked in per_source
        if i < len(ranked)
    ]
    if not interleaved:
        interleaved = [Question(text=f"What is known about {task.topic}?", focus="")]
    return Questions(questions=interleaved[: task.max_questions * 2])


@solves(FanoutTask)
def fanout(task: FanoutTask) -> FanoutDecision:
    """Pursue the most relevant questions, up to the limit, in the order of the sources (the
    order the user gave them is the episode's arc); say what was dropped and why."""
    first_seen = {q.source_id: i for i, q in reversed(list(enumerate(task.questions)))}
    selected = sorted(
        range(min(task.max_questions, len(task.questions))),
        key=lambda i: (first_seen[task.questions[i].source_id], i),
    )
    dropped = len(task.questions) - len(selected)
    focus = ", ".join(task.questions[i].focus or task.questions[i].text for i in selected)
    rationale = f"Research {len(selected)} question(s) covering: {focus}."
    if dropped:
        rationale += f" Dropped {dropped} with less bearing on the topic to stay within the limit."
    return FanoutDecision(selected=selected, rationale=rationale)


@solves(ResearchTask)
def research(task: ResearchTask) -> Findings:
    """Pick the source sentences that best answer the question, favouring its own section.

    A question without a focus (the sources have no usable headings) draws on every sentence of
    the sources on the topic, best first: a short note under a single heading still gives an
    episode. A source that shares no term with the topic is never quoted.
    """
    question_terms = terms(task.question.focus or task.question.text)
    topic_terms = terms(task.topic)
    focus = task.question.focus.casefold()
    covered = " ".join(task.covered)
    scored: list[tuple[float, int, FoundNote]] = []
    position = 0
    for source in task.sources:
        if not mentions(source, topic_terms):
            continue
        for section in source.sections:
            in_focus = section.heading.casefold() == focus if focus else True
            for sentence in sentences(section.text):
                position += 1
                if not quotable(sentence) or sentence[1:] in covered:
                    continue  # an earlier episode already said it
                sentence_terms = terms(sentence)
                if not in_focus and overlap(question_terms, sentence_terms) < 0.5:
                    continue
                score = (
                    overlap(question_terms, sentence_terms)
                    + 0.3 * overlap(topic_terms, sentence_terms)
                    + (1.0 if in_focus else 0.0)
                )
                note = FoundNote(claim=sentence, source_id=source.id, quote=sentence)
                scored.append((score, position, note))
    best = sorted(scored, key=lambda item: (-item[0], item[1]))[: task.max_notes]
    best.sort(key=lambda item: item[1])
    return Findings(notes=[note for _, _, note in best])


@solves(SynthesisTask)
def synthesis(task: SynthesisTask) -> KnowledgeBase:
    """Offline, synthesis is the deterministic merge castline also falls back on."""
    return merge_findings(task)

"""The compliance gate's deterministic checks: structure, forbidden phrases, disclaimers, length,
citations, speakability, and no words addressed to a language model. Each finding names the
segment (and turn) at fault, so that polishing rewrites only what is wrong."""

from __future__ import annotations

import re

from castline.config import Show
from castline.domain import Finding, KnowledgeBase, Outline, Script, Verdict
from castline.instructions import addressed_to_model
from castline.quality.verdicts import verdict
from castline.text import overlap, phrase_pattern, sentences, terms

GATE = "compliance"
_UNSPEAKABLE = re.compile(r"https?://\S+|www\.\S+|<[^>]+>|[*_#`]{2,}|\[[^\]]*\]\([^)]*\)")


def checks(show: Show, outline: Outline, script: Script, kb: KnowledgeBase) -> list[Verdict]:
    turns = len(script.turns) or 1
    return [
        verdict(GATE, "structure", _structure(show, outline, script), turns),
        verdict(GATE, "forbidden-phrases", _forbidden(show, script), turns),
        verdict(GATE, "disclaimers", _disclaimers(show, outline, script), 1),
        verdict(GATE, "length", _length(show, outline, script), 1),
        verdict(GATE, "citations", _citations(script, kb), turns),
        verdict(GATE, "speakable", _speakable(script), turns),
        verdict(GATE, "addressed-to-model", _addressed_to_model(script), turns),
    ]


def _structure(show: Show, outline: Outline, script: Script) -> list[Finding]:
    findings: list[Finding] = []
    hosts = set(show.host_names())
    outlined = {segment.id for segment in outline.segments}
    for segment in outline.segments:
        if not script.segment_turns(segment.id):
            findings.append(
                Finding(
                    check="missing-segment",
                    segment=segment.id,
                    message=f"segment {segment.id} ({segment.title}) has no turns",
                )
            )
    for index, turn in enumerate(script.turns):
        if turn.speaker not in hosts:
            findings.append(
                Finding(
                    check="speaker",
                    segment=turn.segment,
                    turn=index,
                    subject=turn.speaker,
                    message=f"turn {index} is spoken by {turn.speaker!r}, who is not a host",
                )
            )
        if not turn.text.strip():
            findings.append(
                Finding(
                    check="empty-turn",
                    segment=turn.segment,
                    turn=index,
                    message=f"turn {index} is empty",
                )
            )
        if turn.segment not in outlined:
            findings.append(
                Finding(
                    check="unknown-segment",
                    segment=None,
                    turn=index,
                    subject=turn.segment,
                    message=f"turn {index} belongs to segment {turn.segment!r}, not in the outline",
                )
            )
    return findings


def _forbidden(show: Show, script: Script) -> list[Finding]:
    findings: list[Finding] = []
    for phrase in show.rules.forbidden_phrases:
        pattern = phrase_pattern(phrase)
        for index, turn in enumerate(script.turns):
            match = pattern.search(turn.text)
            if match:
                findings.append(
                    Finding(
                        check="forbidden-phrase",
                        segment=turn.segment,
                        turn=index,
                        subject=phrase,
                        message=f'turn {index} uses the forbidden phrase "{phrase}" '
                        f'(as "{match.group(0)}")',
                    )
                )
    return findings


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def _disclaimers(show: Show, outline: Outline, script: Script) -> list[Finding]:
    spoken = _normalise(" ".join(turn.text for turn in script.turns))
    last = outline.segments[-1].id
    return [
        Finding(
            check="disclaimer",
            segment=last,
            subject=disclaimer,
            message=f'the required disclaimer is missing: "{disclaimer}"',
        )
        for disclaimer in show.rules.required_disclaimers
        if _normalise(disclaimer) not in spoken
    ]


def _length(show: Show, outline: Outline, script: Script) -> list[Finding]:
    target = show.episode.target_words
    tolerance = show.episode.length_tolerance
    words = script.word_count
    if abs(words - target) <= target * tolerance:
        return []
    minutes = words / show.episode.words_per_minute
    direction = "long" if words > target else "short"
    summary = (
        f"the script is too {direction}: {words} words (~{minutes:.1f} min) "
        f"against a target of {target} ±{tolerance:.0%}"
    )

    def off_target(segment_id: str, goal: int) -> int:
        actual = sum(len(t.text.split()) for t in script.segment_turns(segment_id))
        return actual - goal if direction == "long" else goal - actual

    # Blame every body segment that misses its own target in the same direction, worst first,
    # so that one revision round can fix them all.
    body = [s for s in outline.segments if s.kind == "body"] or list(outline.segments)
    culprits = sorted(
        (s for s in body if off_target(s.id, s.target_words) > 0),
        key=lambda s: -off_target(s.id, s.target_words),
    ) or [max(body, key=lambda s: off_target(s.id, s.target_words))]
    side = "over" if direction == "long" else "under"
    return [
        Finding(
            check="length",
            segment=s.id,
            message=f"{summary}; segment {s.id} is {off_target(s.id, s.target_words)} words "
            f"{side} its {s.target_words}",
        )
        for s in culprits
    ]


def _citations(script: Script, kb: KnowledgeBase) -> list[Finding]:
    findings: list[Finding] = []
    known = {note.id: note for note in kb.notes}
    note_terms = [(note, set(terms(note.quote))) for note in kb.notes]
    for index, turn in enumerate(script.turns):
        for citation in turn.citations:
            if citation not in known:
                findings.append(
                    Finding(
                        check="citation",
                        segment=turn.segment,
                        turn=index,
                        subject=citation,
                        message=f"turn {index} cites {citation!r}, which is not a research note",
                    )
                )
        if turn.citations:
            continue
        turn_terms = terms(turn.text)
        if len(turn_terms) < 6:
            continue
        for note, quote_terms in note_terms:
            if overlap(quote_terms, turn_terms) >= 0.8:
                findings.append(
                    Finding(
                        check="citation",
                        segment=turn.segment,
                        turn=index,
                        severity="warning",
                        message=f"turn {index} states note {note.id} without citing it",
                    )
                )
                break
    return findings


def _speakable(script: Script) -> list[Finding]:
    return [
        Finding(
            check="speakable",
            segment=turn.segment,
            turn=index,
            severity="warning",
            subject=match.group(0),
            message=f"turn {index} contains {match.group(0)!r}, which cannot be read aloud",
        )
        for index, turn in enumerate(script.turns)
        for match in [_UNSPEAKABLE.search(turn.text)]
        if match
    ]


def _addressed_to_model(script: Script) -> list[Finding]:
    """Turns that speak to a language model ("ignore previous instructions ..."): text a source
    aimed at the model that writes the script, which no host should read out."""
    findings: list[Finding] = []
    for index, turn in enumerate(script.turns):
        for sentence in sentences(turn.text):
            addressed = addressed_to_model(sentence)
            if addressed:
                findings.append(
                    Finding(
                        check="addressed-to-model",
                        segment=turn.segment,
                        turn=index,
                        subject=sentence,
                        message=f"turn {index} speaks to a language model ({addressed!r}), not "
                        "to listeners: a source's instruction to the model, not a fact",
                    )
                )
    return findings

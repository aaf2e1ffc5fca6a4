"""The style gate's checks: brand-voice similarity, readability for listening, and each host
staying in persona.

Brand-voice similarity is measured by meaning with the local embedding model where the
`semantic` extra is installed (`castline.quality.semantic`), else lexically (cosine of term
frequencies between the hosts' own lines and the show's sample lines and style guide); the
verdict says which, and a low value is a warning, not a failure.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from castline.config import Show
from castline.domain import Finding, Script, Verdict
from castline.quality import semantic
from castline.quality.verdicts import verdict
from castline.text import sentences, stem, terms, words

GATE = "style"
LONG_SENTENCE_WORDS = 40  # hard to follow by ear
AVERAGE_SENTENCE_WORDS = 24
BRAND_VOICE_FLOOR = 0.05
SEMANTIC_BRAND_VOICE_FLOOR = 0.2
BRAND_VOICE_SAMPLE = 40
_NEGATION = (
    r"(?:don't|do not|never|can't stand|hate|not interested in|stopped caring about|"
    r"bores? me|boring)"
)


def checks(show: Show, script: Script) -> list[Verdict]:
    return [brand_voice(show, script), readability(script), persona(show, script)]


def cosine(first: Counter[str], second: Counter[str]) -> float:
    shared = set(first) & set(second)
    dot = sum(first[t] * second[t] for t in shared)
    norm = math.sqrt(sum(v * v for v in first.values())) * math.sqrt(
        sum(v * v for v in second.values())
    )
    return dot / norm if norm else 0.0


def brand_voice(show: Show, script: Script) -> Verdict:
    """How close the hosts' own lines (not the quoted research) sound to the show's voice."""
    voice = [show.brand_voice.style_guide, *show.brand_voice.sample_lines]
    own = [t.text for t in script.turns if not t.citations and t.text.strip()]
    # an even sample of the hosts' lines: enough for their register, cheap to embed each round
    step = max(1, len(own) // BRAND_VOICE_SAMPLE)
    meant = semantic.centroid_similarity(own[::step][:BRAND_VOICE_SAMPLE], voice)
    if meant is not None:
        similarity, floor, full = meant, SEMANTIC_BRAND_VOICE_FLOOR, 0.5
        note = f"semantic similarity {similarity:.3f} ({semantic.NAME})"
    else:
        similarity = cosine(Counter(terms(" ".join(voice))), Counter(terms(" ".join(own))))
        floor, full = BRAND_VOICE_FLOOR, 0.25
        note = f"lexical term-frequency cosine {similarity:.3f}; no embedding model installed"
    findings = []
    if similarity < floor:
        findings.append(
            Finding(
                check="brand-voice",
                severity="warning",
                message=f"the hosts' own lines sound little like the brand voice "
                f"(similarity {similarity:.2f} < {floor})",
            )
        )
    return verdict(
        GATE, "brand-voice", findings, 1, score=min(1.0, max(0.0, similarity) / full), note=note
    )


def syllables(word: str) -> int:
    groups = re.findall(r"[aeiouy]+", word.lower())
    count = len(groups) - (1 if word.lower().endswith("e") and len(groups) > 1 else 0)
    return max(1, count)


def readability(script: Script) -> Verdict:
    """Flesch reading ease over the spoken text, and sentences too long to follow by ear."""
    findings: list[Finding] = []
    all_sentences: list[str] = []
    for index, turn in enumerate(script.turns):
        for sentence in sentences(turn.text):
            all_sentences.append(sentence)
            count = len(sentence.split())
            if count > LONG_SENTENCE_WORDS:
                findings.append(
                    Finding(
                        check="readability",
                        severity="warning",
                        segment=turn.segment,
                        turn=index,
                        subject=sentence,
                        message=f"turn {index} has a {count}-word sentence, hard to follow by ear",
                    )
                )
    tokens = [w for s in all_sentences for w in words(s)]
    if not tokens:
        return verdict(GATE, "readability", findings, 1, score=0.0, note="no text")
    per_sentence = len(tokens) / len(all_sentences)
    per_word = sum(syllables(w) for w in tokens) / len(tokens)
    ease = 206.835 - 1.015 * per_sentence - 84.6 * per_word
    if per_sentence > AVERAGE_SENTENCE_WORDS:
        findings.append(
            Finding(
                check="readability",
                severity="warning",
                message=f"sentences average {per_sentence:.1f} words (aim for at most "
                f"{AVERAGE_SENTENCE_WORDS} when spoken)",
            )
        )
    return verdict(
        GATE,
        "readability",
        findings,
        1,
        score=max(0.0, min(1.0, ease / 70)),
        note=f"Flesch reading ease {ease:.0f}, {per_sentence:.1f} words a sentence",
    )


def persona(show: Show, script: Script) -> Verdict:
    """A host saying they dislike, distrust or ignore what their persona is about is out of
    character: the turn is flagged for rewriting."""
    findings: list[Finding] = []
    personas = {
        host.name: {stem(w) for w in words(host.persona) if len(w) > 3} for host in show.hosts
    }
    for index, turn in enumerate(script.turns):
        own = personas.get(turn.speaker)
        if not own:
            continue
        for match in re.finditer(_NEGATION + r"((?:\s+\w+){1,4})", turn.text, flags=re.IGNORECASE):
            negated = {stem(w) for w in words(match.group(1))}
            hit = negated & own
            if hit:
                findings.append(
                    Finding(
                        check="persona",
                        segment=turn.segment,
                        turn=index,
                        subject=match.group(0),
                        message=f"turn {index}: {turn.speaker} says {match.group(0)!r}, against "
                        f"their persona ({', '.join(sorted(hit))})",
                    )
                )
                break
    return verdict(GATE, "persona", findings, len(script.turns) or 1)

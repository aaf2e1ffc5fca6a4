"""The content gate's check: groundedness. Every factual claim in the script must trace to a
research note (and so to a source); claims that do not are listed as unsupported.

A sentence is *factual* when it carries a number or a statistic, cites research, or is cited by
its turn. It is *supported* when some note shares most of its content terms and every number it
states. The check is deliberately simple and measured: `bench/bench_groundedness.py` prints its
precision and recall on a labelled set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from castline.domain import Finding, KnowledgeBase, Note, Script, Verdict
from castline.quality.verdicts import verdict
from castline.text import overlap, sentences, terms

GATE = "content"
SUPPORT_OVERLAP = 0.6
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NUMBER_WORDS = (
    r"\b(?:percent|per cent|half|twice|double|triple|dozens?|hundreds?|thousands?|millions?|"
    r"billions?)\b"
)
_FACT_CUES = re.compile(
    r"\b(?:studies|study|research|researchers|surveys?|data|reports?|evaluations?|scientists|"
    r"experts|analyses|analysis)\s+(?:show|shows|showed|found|find|finds|suggest|suggests|"
    r"suggested|estimate|estimates|indicate|indicates|confirm|confirms)\b|\baccording to\b|"
    r"\b(?:measured|estimated|recorded)\b|" + _NUMBER_WORDS,
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Support:
    supported: bool
    note: Note | None
    reason: str


def is_factual(sentence: str, cited: bool = False) -> bool:
    """A claim to check: a number, a research cue in a real sentence, or a long sentence in a
    turn that cites research (short lead-ins such as "Here's what the research says." are not)."""
    count = len(sentence.split())
    return bool(
        _NUMBER.search(sentence)
        or (_FACT_CUES.search(sentence) and count >= 6)
        or (cited and count >= 12)
    )


def numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def support(claim: str, notes: list[Note]) -> Support:
    """The note that best supports a claim, and whether it supports it enough."""
    claim_terms = terms(claim)
    best: tuple[float, Note] | None = None
    for note in notes:
        score = overlap(claim_terms, terms(note.quote))
        if best is None or score > best[0]:
            best = (score, note)
    if best is None or best[0] < SUPPORT_OVERLAP:
        found = f"{best[0]:.0%} term overlap with {best[1].id}" if best else "no notes"
        return Support(False, best[1] if best else None, f"no note supports it ({found})")
    missing = numbers(claim) - numbers(best[1].quote)
    if missing:
        return Support(
            False, best[1], f"{', '.join(sorted(missing))} not in the closest note {best[1].id}"
        )
    return Support(True, best[1], f"supported by {best[1].id}")


def groundedness(script: Script, kb: KnowledgeBase) -> Verdict:
    findings: list[Finding] = []
    factual = 0
    for index, turn in enumerate(script.turns):
        for sentence in sentences(turn.text):
            if not is_factual(sentence, cited=bool(turn.citations)):
                continue
            factual += 1
            result = support(sentence, kb.notes)
            if not result.supported:
                findings.append(
                    Finding(
                        check="unsupported-claim",
                        segment=turn.segment,
                        turn=index,
                        subject=sentence,
                        message=f"turn {index} claims {sentence!r}: {result.reason}",
                    )
                )
    return verdict(GATE, "groundedness", findings, factual or 1)

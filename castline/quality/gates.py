"""The four quality gates and their criteria: deterministic checks, and criteria judged by two
independent evaluators.

- compliance: structure, forbidden phrases, disclaimers, length, citations, speakable,
  addressed-to-model; judged: legal risk
- style: brand voice (lexical), readability, persona; judged: tone
- content: groundedness (claim by claim); judged: coherence, accuracy
- integration: repetition, contradictions, host continuity, handoff
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from castline.config import Show
from castline.domain import KnowledgeBase, Outline, Script, Verdict
from castline.quality import GATES as GATES
from castline.quality import compliance, content, integration, style
from castline.quality.integration import EarlierEpisode


@dataclass(frozen=True)
class Judged:
    """A criterion two evaluators score from 0 to 1, with a rubric they both follow."""

    gate: str
    name: str
    rubric: str


JUDGED = (
    Judged(
        "compliance",
        "legal-risk",
        "1 means nothing in the script risks defamation or gives unqualified medical, legal or "
        "financial advice; lower for each risky sentence. Quote every risky sentence.",
    ),
    Judged(
        "style",
        "tone",
        "1 means the hosts' own lines fit the show's style guide and sample lines throughout "
        "(no hype, no filler, the show's register); lower for each line that does not. Quote "
        "the lines that miss.",
    ),
    Judged(
        "content",
        "coherence",
        "1 means each segment stays on its theme and follows from the one before; lower for "
        "each segment that drifts. Quote the first line of each drifting segment.",
    ),
    Judged(
        "content",
        "accuracy",
        "1 means every cited turn says what its cited notes say, no more and no less; lower for "
        "each turn that distorts its notes. Quote each distorting sentence.",
    ),
)


# Added to the accuracy rubric when claims are sent with the script.
CLAIMS_RUBRIC = (
    " Also give every claim listed under `claims` a verdict: supported (its notes say the same), "
    "contradicted (a note says otherwise: another figure, name, date, or the opposite), or "
    "not-found (no note says it); name the deciding note and quote its words."
)


def known_names(show: Show, source_titles: Iterable[str]) -> list[str]:
    """Names that are not facts to check: the hosts', the show's and the sources' titles."""
    return [*show.host_names(), show.show.title, *source_titles]


def run_checks(
    show: Show,
    outline: Outline,
    script: Script,
    kb: KnowledgeBase,
    earlier: list[EarlierEpisode],
    source_titles: Iterable[str] = (),
) -> list[Verdict]:
    """Every deterministic criterion of the four gates, in gate order. Names in the hosts', the
    show's and the sources' titles are not facts to check."""
    known = known_names(show, source_titles)
    return [
        *compliance.checks(show, outline, script, kb),
        *style.checks(show, script),
        content.groundedness(script, kb, known),
        *integration.checks(show, outline, script, earlier),
    ]

"""A script's factual claims, each checked against the research notes.

A claim is a sentence that states something checkable: a number, a name, a causal or comparative
statement, a research cue, or any long sentence of a turn that cites a note. Each gets a verdict:

- `supported`: the notes (the cited ones, or any, for a fact fused from two) carry every number
  and name it states, and a note says much the same thing;
- `contradicted`: a number, date or name in it that no note contains, where the closest note
  states one of the same kind (a changed figure, a swapped name), or one the notes hold only
  where they say something else (a figure or name moved from another fact, or from another
  clause of the same note);
- `not-found`: such a number or name, where no note says anything like it (an invented fact);
- `to-verify`: every number and name it states is in the notes, but its wording is too far from
  any note to tell by counting words (a paraphrase, or a distortion only a judge can see).

Only what can be verified blocks: a number, date or name no note contains, or holds only in
another place. A paraphrase is never
blocked for its wording; it goes to the judged accuracy criterion as a claim to verify.
`bench/bench_claims.py` measures this on an outside labelled set.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

from castline.domain import Note, Script
from castline.quality.figures import Figure, figures, stated
from castline.text import STOPWORDS, overlap, sentences, terms

Verdict = Literal["supported", "contradicted", "not-found", "to-verify"]
BLOCKING: frozenset[Verdict] = frozenset({"contradicted", "not-found"})
# A note sharing this share of a claim's content terms says much the same thing.
SUPPORT_OVERLAP = 0.5
# A note a claim takes a fact from shares at least this share of its terms (a fused fact).
FUSED_OVERLAP = 0.3
# A clause of a note sharing this share of the words around a claim's fact says the same thing
# about something: if it states another of the kind, the claim's fact was moved there.
MOVED_OVERLAP = 0.5

Fact = tuple[str, Callable[[str], bool], bool]  # as said, what states it, whether movable

# Statements worth checking even without a number or a name: a causal link, a comparison, a
# finding attributed to research.
_CUES = re.compile(
    r"\b(?:because|caused?|causes|causing|led to|leads? to|due to|result(?:ed|s)? in)\b"
    r"|\b\w+(?:er)\s+than\b|\b(?:more|less|fewer)\s+\w+(?:\s+\w+)?\s+than\b"
    r"|\bthe\s+(?:\w+est|most|least)\b"
    r"|\b(?:studies|study|research|researchers|surveys?|data|reports?|evaluations?|scientists|"
    r"experts|analyses|analysis)\s+(?:show|shows|showed|found|find|finds|suggest|suggests|"
    r"suggested|estimate|estimates|indicate|indicates|confirm|confirms)\b|\baccording to\b",
    re.IGNORECASE,
)
_NAME = re.compile(r"\b[A-Z][\w'\u2019-]*(?:\s+(?:of|de|la|von|van|the)?\s*[A-Z][\w'\u2019-]*)*")
_CLAUSE = re.compile(r"[,;:](?!\d)|[()\u2014]|\b(?:while|whereas|but|and|which|who)\b")
_QUOTED = re.compile(r"[\"\u201c]([^\"\u201d]{12,})[\"\u201d]")
# Capitalised words that open spoken sentences without naming anything.
_SPOKEN = frozenset(
    [
        "so",
        "okay",
        "ok",
        "yeah",
        "yes",
        "no",
        "well",
        "now",
        "right",
        "and",
        "but",
        "or",
        "also",
        "then",
        "here",
        "there",
        "this",
        "that",
        "these",
        "those",
        "it",
        "its",
        "they",
        "we",
        "you",
        "i",
        "he",
        "she",
        "his",
        "her",
        "our",
        "my",
        "get",
        "wow",
        "huh",
        "hmm",
        "oh",
        "look",
        "think",
        "imagine",
        "basically",
        "actually",
        "honestly",
        "plus",
        "meanwhile",
        "still",
        "today",
        "tonight",
        "next",
        "first",
        "second",
        "third",
        "finally",
        "one",
        "two",
    ]
)


@dataclass(frozen=True)
class Claim:
    """One checkable sentence of the script, where it is, and what it states."""

    id: str
    turn: int
    segment: str
    text: str
    citations: tuple[str, ...]
    figures: tuple[Figure, ...]
    names: tuple[str, ...]

    @property
    def numbers(self) -> tuple[str, ...]:
        return tuple(figure.text for figure in self.figures)


@dataclass(frozen=True)
class ClaimCheck:
    """A claim's verdict with its evidence: the note that decides it and why."""

    claim: Claim
    verdict: Verdict
    score: float  # how well the best note supports it, 0..1
    note_id: str | None
    evidence: str  # the deciding note's quote, or "" when no note comes close
    reason: str
    missing: tuple[str, ...] = field(default=())  # the numbers and names no note contains

    @property
    def blocking(self) -> bool:
        return self.verdict in BLOCKING


def extract(script: Script, *, known: Iterable[str] = ()) -> list[Claim]:
    """The script's factual claims, in order. The words of `known` names (the hosts, the show,
    the sources' titles) and the speakers' names are not facts to check."""
    ignored = {word.casefold() for name in known for word in re.findall(r"[\w'-]+", name)}
    ignored |= {word.casefold() for turn in script.turns for word in turn.speaker.split()}
    claims: list[Claim] = []
    for index, turn in enumerate(script.turns):
        for sentence in sentences(turn.text):
            found_figures = tuple(figures(sentence))
            found_names = tuple(n for n in _names(sentence) if n.casefold() not in ignored)
            words = len(sentence.split())
            checkable = (
                found_figures
                or (found_names and words >= 6)
                or (_CUES.search(sentence) and words >= 8)
                or (turn.citations and words >= 12)
            )
            if checkable:
                claims.append(
                    Claim(
                        id=f"c{len(claims) + 1}",
                        turn=index,
                        segment=turn.segment,
                        text=sentence,
                        citations=tuple(turn.citations),
                        figures=found_figures,
                        names=found_names,
                    )
                )
    return claims


def check(claim: Claim, notes: Sequence[Note]) -> ClaimCheck:
    """The claim's verdict against the notes: cited notes first, then any (a fused fact)."""
    if not notes:
        return ClaimCheck(claim, "not-found", 0.0, None, "", "there are no research notes")
    by_id = {note.id: note for note in notes}
    cited = [by_id[c] for c in claim.citations if c in by_id]
    claim_terms = terms(claim.text)
    note_terms = {note.id: terms(note.quote) for note in notes}

    def closeness(note: Note) -> float:
        return overlap(claim_terms, note_terms[note.id])

    def kinship(note: Note) -> float:
        """How close a note is in the words around the claim's facts: a note holding the same
        number ("200,000") is not about the same thing for that alone."""
        return overlap(around, note_terms[note.id])

    ranked = sorted(notes, key=closeness, reverse=True)
    best = max(cited, key=closeness) if cited else ranked[0]
    # the cited notes with the closest two: a fact fused from two notes, one of them uncited
    pooled = set().union(*(note_terms[n.id] for n in [*cited, *ranked[:2]]))
    score = max(closeness(best), 0.9 * overlap(claim_terms, pooled))
    everything = " ".join(note.quote for note in notes)
    said = set(claim.numbers)
    # each fact, what states it, and whether it can have been moved from another fact: a share
    # ("about a third", "half") cannot be pinned to one note
    facts: list[Fact] = [
        *((f.text, partial(stated, f), not f.share) for f in claim.figures),
        *((n, partial(_name_in, n), True) for n in claim.names),
    ]
    anchor = cited or ranked[:1]
    around = _without(claim.text, claim.numbers)
    # a share must be in the notes the claim draws on: the cited ones, or the closest two
    near = [*anchor, *ranked[:2]]
    holders = {
        fact: [n for n in (notes if movable else near) if stated_in(n.quote)]
        for fact, stated_in, movable in facts
    }
    missing = [fact for fact, _, _ in facts if not holders[fact]]
    # A fact the notes state, but only in one that is about something else: a figure or name
    # moved from another fact ("Apollo 13" for "Apollo 1"). A note it was fused from is close;
    # a name many notes share (the topic's "Warsaw") is no one note's.
    misplaced = [
        (fact, holders[fact][0])
        for fact, _, movable in facts
        if movable and holders[fact] and not any(n in anchor for n in holders[fact])
        if (fact in said or len(holders[fact]) == 1)
        and max(map(kinship, holders[fact])) < FUSED_OVERLAP
    ]
    moved = _moved(claim, facts, anchor, notes)
    quoted = [q for q in _QUOTED.findall(claim.text) if _normal(q) not in _normal(everything)]

    def verdict(kind: Verdict, reason: str, missed: Iterable[str] = ()) -> ClaimCheck:
        return ClaimCheck(claim, kind, score, best.id, best.quote, reason, tuple(missed))

    if quoted:
        return verdict("not-found", f"the quotation {quoted[0]!r} is in no note", quoted)
    if missing:
        listed = ", ".join(missing)
        rival = _same_kind(missing, best.quote, said)
        if rival and score >= 0.3:
            return verdict(
                "contradicted",
                f"{listed} is in no note; the closest, {best.id}, says {rival}",
                missing,
            )
        return verdict("not-found", f"{listed} is in no note (the closest is {best.id})", missing)
    if misplaced:
        fact, holder = misplaced[0]
        rival = _same_kind([fact], best.quote, said) or "nothing of the kind"
        return verdict(
            "contradicted",
            f"{fact} is not what {best.id} says ({rival}); only {holder.id}, about something "
            "else, mentions it",
            (fact for fact, _ in misplaced),
        )
    if moved:
        fact, note, clause, rival = moved[0]
        return ClaimCheck(
            claim,
            "contradicted",
            score,
            note.id,
            note.quote,
            f"{fact} is out of place: {note.id} says {clause!r} of {rival}, not of {fact}",
            tuple(fact for fact, _, _, _ in moved),
        )
    if score >= SUPPORT_OVERLAP:
        return verdict("supported", f"supported by {best.id}")
    return verdict(
        "to-verify",
        f"its numbers and names are in the notes, but its wording shares only {score:.0%} of "
        f"its terms with the closest, {best.id}: a judge must say whether it says the same",
    )


def check_all(claims: Sequence[Claim], notes: Sequence[Note]) -> list[ClaimCheck]:
    return [check(claim, notes) for claim in claims]


# --- what a claim states ------------------------------------------------------------------------


def _names(sentence: str) -> list[str]:
    """Capitalised words that name something (months and weekdays too: they date a fact): not a
    sentence's first word (unless more names follow it or it is an acronym), not a spoken
    opener."""
    found: list[str] = []
    starts = {0} | {m.end() for m in re.finditer(r"[:;\u2014]\s*|[\"\u201c(]\s*", sentence)}
    for match in _NAME.finditer(sentence):
        words = [w for w in re.split(r"\s+", match.group(0)) if w[:1].isupper()]
        if match.start() in starts and len(words) == 1 and not words[0].isupper():
            continue
        for word in words:
            bare = re.sub(r"['\u2019]s$", "", word).strip("-")
            lowered = bare.casefold()
            if len(bare) < 2 or lowered in _SPOKEN or lowered in STOPWORDS:
                continue
            found.append(bare)
    return list(dict.fromkeys(found))


def _name_in(name: str, text: str) -> bool:
    """Whether the text names it: as it is, without a plural ending ("Europeans", "Centers"),
    or, for an acronym, by the initials of consecutive capitalised words ("AAA")."""
    stems = {name, re.sub(r"(?:e?s)$", "", name)} - {""}
    if any(re.search(rf"\b{re.escape(stem)}", text, re.IGNORECASE) for stem in stems):
        return True
    if name.isupper() and 2 <= len(name) <= 6:
        capitals = r"\s+".join(rf"{letter}[\w'-]*" for letter in name)
        return re.search(rf"\b{capitals}", text) is not None
    return False


def _moved(
    claim: Claim, facts: Sequence[Fact], anchor: Sequence[Note], notes: Sequence[Note]
) -> list[tuple[str, Note, str, str]]:
    """Facts put in another's place, each with the note and clause it was taken for and what
    that clause states instead: the clause of the claim's own notes most like the words around
    the fact states another of its kind, while the fact is only in clauses unlike them
    ("Apollo 17 was the first to orbit" where the note says "Apollo 8 was the first to orbit,
    while Apollo 17 made the sixth landing"). A name more than one note holds is the topic's,
    in no one place."""
    units = [(note, clause) for note in anchor for clause in _clauses(note.quote)]
    kinds = {figure.text: figure for figure in claim.figures}
    every = [fact for fact, _, _ in facts]
    found = []
    for fact, stated_in, movable in facts:
        if not movable:
            continue
        own = next((c for c in _clauses(claim.text) if fact in c), claim.text)
        around = _without(own, every)
        if len(around) < 2:
            continue  # too few words around it to place it by

        def likeness(clause: str, around: Sequence[str] = around) -> float:
            return overlap(around, terms(clause))

        note, closest = max(units, key=lambda unit: likeness(unit[1]))
        is_name = fact not in kinds
        if likeness(closest) < MOVED_OVERLAP or stated_in(closest):
            continue
        if is_name and _kin_in(fact, _names(closest)):
            continue
        holding = [n for n in notes if stated_in(n.quote)]
        if not holding or (is_name and len(holding) > 1):
            continue
        held = [c for n in holding for c in _clauses(n.quote) if stated_in(c)]
        if not held or max(map(likeness, held)) > likeness(closest) / 2:
            continue  # stated across clauses, or where the claim says much the same
        if is_name:
            rivals = [n for n in _names(closest) if not _kin_in(n, claim.names)]
        else:
            kind = kinds[fact]
            rivals = [
                f.text
                for f in figures(closest)
                if (f.kind, f.is_year) == (kind.kind, kind.is_year) and not stated(f, claim.text)
            ]
        if rivals:
            found.append((fact, note, closest, ", ".join(rivals[:3])))
    return found


def _without(text: str, facts: Iterable[str]) -> list[str]:
    """The text's terms other than the facts' words."""
    for fact in facts:
        text = text.replace(fact, " ")
    return terms(text)


def _clauses(quote: str) -> list[str]:
    """The quote's clauses; a piece too short to say anything ("In 1973", the "Vilnius" of
    "Kraków and Vilnius") stays with the clause before it, or the one after."""
    clauses: list[str] = []
    short = ""
    parts = (part.strip() for sentence in sentences(quote) for part in _CLAUSE.split(sentence))
    for part in parts:
        if len(terms(part)) >= 3:
            clauses.append(f"{short} {part}".strip())
            short = ""
        elif clauses:
            clauses[-1] = f"{clauses[-1]} {part}"
        else:
            short = f"{short} {part}".strip()
    return clauses or [quote]


def _kin_in(name: str, names: Sequence[str]) -> bool:
    """Whether one of the names is this one or its kin ("Polish" for "Poland")."""
    return any(
        _name_in(name, other) or name[:3].casefold() == other[:3].casefold() for other in names
    )


def _same_kind(missing: Sequence[str], quote: str, claim_figures: set[str]) -> str | None:
    """What the closest note states in place of a missing number or name, if anything."""
    for item in missing:
        if item in claim_figures:
            rivals = [f.text for f in figures(quote)]
        else:
            rivals = _names(quote)
        if rivals:
            return ", ".join(rivals[:3])
    return None


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())

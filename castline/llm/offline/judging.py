"""Offline judges: real scores computed from the script, never constants.

The primary and secondary evaluators measure each criterion in different ways, as two models
from different vendors would judge differently: they agree on clear cases and can disagree on
borderline ones. The tie-breaker takes the mean of both measures.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from castline.domain import Note, Turn
from castline.llm.offline.solvers import solves
from castline.llm.tasks import ClaimJudgment, ClaimToVerify, Evidence, JudgeTask, Judgment
from castline.quality import semantic
from castline.quality.claims import check, extract
from castline.text import overlap, sentences, stem, terms

_MEDICAL = (
    r"(?:you should|you must|stop taking|start taking|take \d+|dose|cure[sd]?|treat yourself)"
)
_FINANCIAL = r"(?:guaranteed returns?|you should (?:buy|invest|sell)|can't lose|risk-free)"
_DEFAMATION = r"(?:is a (?:fraud|criminal|liar|crook)|are (?:frauds|criminals|liars))"
_RISK = re.compile(f"{_MEDICAL}|{_FINANCIAL}|{_DEFAMATION}", re.IGNORECASE)
_HEALTH_OR_MONEY = re.compile(
    r"\b(?:medication|medicine|drug|pills?|doctor|dosage|invest\w*|stocks?|crypto|loan)\b", re.I
)
_HYPE = re.compile(
    r"\b(?:amazing|incredible|mind-blowing|insane|unbelievable|revolutionary|crazy|epic|"
    r"literally|super|totally)\b|!{2,}",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
# Below this cosine a claim says something else than its closest note (paraphrases of the
# outside labelled set score 0.53 and more; invented claims 0.32 to 0.6).
SEMANTIC_FLOOR = 0.5


def _quote(turn: Turn, text: str) -> Evidence:
    return Evidence(segment=turn.segment, quote=text)


def legal_risk(task: JudgeTask) -> Judgment:
    risky = [_quote(t, s) for t in task.script.turns for s in sentences(t.text) if _RISK.search(s)]
    if task.evaluator == "primary":
        score = max(0.0, 1 - 0.25 * len(risky))
    else:
        # weighs advice about health or money more, and credits spoken disclaimers
        weighty = [e for e in risky if _HEALTH_OR_MONEY.search(e.quote)]
        disclaimed = any(
            d.lower() in " ".join(t.text.lower() for t in task.script.turns)
            for d in task.show.rules.required_disclaimers
        )
        score = max(0.0, 1 - 0.2 * len(risky) - 0.1 * len(weighty) + (0.05 if disclaimed else 0))
    reason = (
        f"{len(risky)} sentence(s) risk giving unqualified advice or defaming someone"
        if risky
        else "no risky advice or defamation found"
    )
    return Judgment(score=round(min(1.0, score), 4), reason=reason, evidence=risky[:10])


def tone(task: JudgeTask) -> Judgment:
    own = [t for t in task.script.turns if not t.citations and t.text.strip()]
    if not own:
        return Judgment(score=0.0, reason="the hosts have no lines of their own")
    if task.evaluator == "primary":
        off = [t for t in own if _HYPE.search(t.text) or len(t.text.split()) > 60]
        score = 1 - len(off) / len(own)
    else:
        # counts every hype word and shouting, so one excited turn weighs more
        hits = sum(len(_HYPE.findall(t.text)) + t.text.count("!") // 2 for t in own)
        off = [t for t in own if _HYPE.search(t.text)]
        score = max(0.0, 1 - 2 * hits / len(own))
    reason = (
        f"{len(off)} of {len(own)} of the hosts' own lines miss the show's register"
        if off
        else f"all {len(own)} of the hosts' own lines fit the show's register"
    )
    return Judgment(
        score=round(score, 4), reason=reason, evidence=[_quote(t, t.text) for t in off[:10]]
    )


def _body_segments(task: JudgeTask) -> list[tuple[str, str, list[Turn]]]:
    return [
        (s.id, s.title, task.script.segment_turns(s.id))
        for s in task.outline.segments
        if s.kind == "body"
    ]


def coherence(task: JudgeTask) -> Judgment:
    segments = [seg for seg in _body_segments(task) if seg[2]]
    if not segments:
        return Judgment(score=0.0, reason="no body segment to judge")
    notes = {n.id: n for n in task.knowledge_base.notes}
    drifting: list[Evidence] = []
    for segment_id, _title, turns in segments:
        cited_ids = [c for t in turns for c in t.citations if c in notes]
        if task.evaluator == "primary":
            # the segment's facts answer one research question (the theme it is about)
            themes = [notes[c].question for c in cited_ids]
            fits = not themes or max(map(themes.count, themes)) / len(themes) >= 0.7
        else:
            # the segment cites the notes the outline planned for it
            planned = set(task.outline.segment(segment_id).note_ids)
            fits = not cited_ids or sum(c in planned for c in cited_ids) / len(cited_ids) >= 0.7
        if not fits:
            drifting.append(Evidence(segment=segment_id, quote=turns[0].text))
    score = 1 - len(drifting) / len(segments)
    reason = (
        f"{len(drifting)} of {len(segments)} segments drift from their theme"
        if drifting
        else f"all {len(segments)} segments stay on their theme"
    )
    return Judgment(score=round(score, 4), reason=reason, evidence=drifting)


def accuracy(task: JudgeTask) -> Judgment:
    notes = {n.id: n for n in task.knowledge_base.notes}
    verdicts = [verify_claim(claim, notes, task.evaluator) for claim in task.claims]
    wrong = [v for v in verdicts if v.verdict != "supported"]
    measured = semantic.measure() if task.evaluator == "primary" else semantic.LEXICAL
    on_claims = (
        f"; {len(wrong)} of {len(verdicts)} claims to verify are not what the notes say "
        f"(measured {measured})"
        if verdicts
        else ""
    )
    cited = [t for t in task.script.turns if t.citations]
    if not cited:
        return Judgment(score=0.0, reason="no turn cites the research" + on_claims, claims=verdicts)
    # a cited turn distorts its notes when one of its claims states a figure they do not, or
    # turns around the note it follows (names are the groundedness check's, which knows the
    # sources' titles); the claims left to verify are judged above, one by one
    wrong_turns: dict[int, str] = {}
    for claim in extract(task.script):
        if claim.turn in wrong_turns or not claim.citations:
            continue
        checked = check(claim, task.knowledge_base.notes)
        misstated = checked.blocking and bool(set(checked.missing) & set(claim.numbers))
        if misstated or (checked.verdict == "supported" and _flipped(claim.text, checked.evidence)):
            wrong_turns[claim.turn] = claim.text
    distorted = [
        _quote(task.script.turns[turn], text) for turn, text in sorted(wrong_turns.items())
    ]
    score = 1 - len(distorted) / len(cited)
    if verdicts:
        score = min(score, 1 - len(wrong) / len(verdicts))
    reason = (
        f"{len(distorted)} of {len(cited)} cited turns do not say what their notes say"
        if distorted
        else f"all {len(cited)} cited turns say what their notes say"
    )
    return Judgment(
        score=round(score, 4), reason=reason + on_claims, evidence=distorted[:10], claims=verdicts
    )


# Words that turn a statement into its opposite, and pairs of opposites (stemmed).
_NEGATORS = frozenset(
    {"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without", "cannot"}
    | {"hardly", "n't"}
)
_OPPOSITES = [
    frozenset(stem(word) for word in pair.split("/"))
    for pair in (
        *("rise/fall", "raise/lower", "increase/decrease", "more/less", "more/fewer"),
        *("large/small", "larger/smaller", "largest/smallest", "high/low", "higher/lower"),
        *("highest/lowest", "warm/cool", "hot/cold", "before/after", "first/last", "gain/loss"),
        *("win/lose", "success/failure", "open/close", "begin/end", "allow/forbid"),
        *("accept/reject", "approve/reject", "grow/shrink", "strong/weak", "rich/poor"),
        *("old/new", "early/late", "dense/sparse", "north/south", "east/west"),
        *("major/minor", "maximum/minimum", "above/below"),
    )
]


def verify_claim(claim: ClaimToVerify, notes: dict[str, Note], evaluator: str) -> ClaimJudgment:
    """A claim against the notes it was sent with: a flipped polarity (a negation or an
    opposite) contradicts; too little in common is not found. The primary evaluator measures
    meaning with the local embedding model where it is installed (else the claim's words found
    in the note), the secondary the note's words found in the claim."""
    candidates = [notes[n] for n in claim.notes if n in notes]
    if not candidates:
        return ClaimJudgment(id=claim.id, verdict="not-found")
    claim_terms = terms(claim.text)
    by_meaning = evaluator == "primary" and semantic.model() is not None

    def closeness(note: Note) -> float:
        if by_meaning:
            return semantic.similarity(claim.text, note.quote) or 0.0
        ours = terms(note.quote)
        return overlap(claim_terms, ours) if evaluator == "primary" else overlap(ours, claim_terms)

    note = max(candidates, key=closeness)
    flipped = _flipped(claim.text, note.quote)
    if flipped:
        return ClaimJudgment(id=claim.id, verdict="contradicted", note=note.id, evidence=flipped)
    floor = SEMANTIC_FLOOR if by_meaning else 0.2 if evaluator == "primary" else 0.15
    if closeness(note) < floor:
        return ClaimJudgment(id=claim.id, verdict="not-found", note=note.id, evidence=note.quote)
    return ClaimJudgment(id=claim.id, verdict="supported", note=note.id, evidence=note.quote)


def _flipped(claim: str, quote: str) -> str | None:
    """The note, if the claim turns it around: it negates what the note asserts (or asserts what
    the note negates), or says the opposite ("fell" for "rose") of a note it otherwise follows."""
    ours, theirs = _words(claim), _words(quote)
    our_negated, their_negated = _negated(ours), _negated(theirs)
    if our_negated & (set(theirs) - their_negated) or their_negated & (set(ours) - our_negated):
        return quote
    if overlap(terms(claim), terms(quote)) < 0.5:
        return None  # too far apart for one word to decide
    for pair in _OPPOSITES:
        said, meant = pair & set(ours), pair & set(theirs)
        if said and meant and said != meant and not pair <= set(ours):
            return quote
    return None


def _negated(words: list[str]) -> set[str]:
    """The content words a negation governs: the next three after "not", "never", ..."""
    governed: set[str] = set()
    for index, word in enumerate(words):
        if word in _NEGATORS:
            governed |= {w for w in words[index + 1 : index + 4] if len(w) > 3}
    return governed


def _words(text: str) -> list[str]:
    lowered = text.lower().replace("n\u2019t", " n't").replace("n't", " n't")
    return [stem(word) for word in re.findall(r"[a-z']+", lowered)]


_JUDGES: dict[str, Callable[[JudgeTask], Judgment]] = {
    "legal-risk": legal_risk,
    "tone": tone,
    "coherence": coherence,
    "accuracy": accuracy,
}


@solves(JudgeTask)
def judge(task: JudgeTask) -> Judgment:
    measure = _JUDGES[task.criterion]
    if task.evaluator != "tiebreaker":
        return measure(task)
    first = measure(task.model_copy(update={"evaluator": "primary"}))
    second = measure(task.model_copy(update={"evaluator": "secondary"}))
    return Judgment(
        score=round((first.score + second.score) / 2, 4),
        reason=f"weighing both: {first.reason}; {second.reason}",
        evidence=first.evidence + [e for e in second.evidence if e not in first.evidence],
    )

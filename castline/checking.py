"""Checking any script against its sources, outside a run: castline's own `script.md`, or one a
person wrote (`**Name:** text` or `NAME: text` turns, `## Segment` headings, `[1]` citing the
first source given).

Every sentence of the sources becomes a note, so a claim is checked against everything the
sources say. The deterministic criteria of the quality gates run; those that need a show bible
are skipped without one, and listed as skipped, not passed. Nothing is spent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from castline.config import Show
from castline.domain import KnowledgeBase, Note, Outline, Script, Segment, Source, Turn, Verdict
from castline.errors import ConfigError
from castline.quality import content, gates, semantic
from castline.quality.claims import ClaimCheck
from castline.text import quotable, sentences

# Criteria that judge the script against a show bible (its hosts, rules, voice and length).
NEEDS_SHOW = frozenset(
    {
        "structure",
        "forbidden-phrases",
        "disclaimers",
        "length",
        "brand-voice",
        "persona",
        "host-continuity",
        "handoff",
    }
)
_JUDGED_SKIP = "judged by the two evaluators during a run"

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_TURN = re.compile(
    r"^\s*(?:\*\*(?P<bold>[^*:]{1,60}?):?\*\*:?|(?P<plain>[A-Za-z][\w .'\u2019-]{0,59}?):)"
    r"\s+(?P<text>\S.*)$"
)
_MARKS = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*)\]")
_SOURCES_HEADING = frozenset({"sources", "references", "bibliography"})


@dataclass(frozen=True)
class CriterionResult:
    gate: str
    criterion: str
    status: str  # "passed", "failed" or "skipped"
    score: float | None
    reason: str
    verdict: Verdict | None = None


@dataclass(frozen=True)
class CheckReport:
    """What `castline check` found: every criterion's result and every claim's verdict."""

    script: Script
    criteria: list[CriterionResult]
    claims: list[ClaimCheck]
    similarity: str  # the measure of meaning the checks used (`castline.quality.semantic`)
    judged_by: str | None = None  # the evaluators' routing, when the judged criteria ran
    run_id: str | None = None  # the check's record of its paid calls (`castline runs show`)
    cost: Decimal = Decimal(0)
    shadow: bool = False  # the cost is what offline stand-ins would have cost (nothing spent)

    @property
    def passed(self) -> bool:
        return all(result.status != "failed" for result in self.criteria)


def parse_script(text: str, path: Path) -> Script:
    """Turns, segments and citations from a script in Markdown or plain text."""
    title = path.stem
    segment = "script"
    turns: list[Turn] = []
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            name = heading.group(2).strip()
            if len(heading.group(1)) == 1:
                title = name
                continue
            if name.casefold() in _SOURCES_HEADING:
                break  # the list of sources ends the script
            segment = re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-") or "segment"
            continue
        turn = _TURN.match(line)
        if turn:
            speaker = (turn.group("bold") or turn.group("plain") or "").strip()
            spoken, cites = _citations(turn.group("text"))
            turns.append(Turn(speaker=speaker, text=spoken, segment=segment, citations=cites))
        elif line.strip() and turns and not line.lstrip().startswith((">", "*", "-", "|")):
            last = turns[-1]  # a turn wrapped over several lines
            spoken, cites = _citations(line)
            turns[-1] = last.model_copy(
                update={
                    "text": f"{last.text} {spoken}",
                    "citations": list(dict.fromkeys([*last.citations, *cites])),
                }
            )
    if not turns:
        raise ConfigError(
            f"{path}: no turns found; write each turn on its own line as `**Name:** text` or "
            "`NAME: text`, with `## Segment` headings if you like"
        )
    return Script(title=title, turns=turns)


def _citations(text: str) -> tuple[str, list[str]]:
    found = [n.strip() for group in _MARKS.findall(text) for n in group.split(",")]
    return " ".join(_MARKS.sub("", text).split()), list(dict.fromkeys(found))


def notes_of(sources: Sequence[Source]) -> KnowledgeBase:
    """Every citable sentence of every source as a note: `1.4` is the first source's fourth."""
    notes = [
        Note(
            id=f"{number}.{index}",
            claim=sentence,
            source_id=source.id,
            quote=sentence,
            question=0,
        )
        for number, source in enumerate(sources, start=1)
        for index, sentence in enumerate(
            (s for section in source.sections for s in sentences(section.text) if quotable(s)),
            start=1,
        )
    ]
    return KnowledgeBase(topic=", ".join(s.title for s in sources), notes=notes, themes=[])


def check_script(
    script: Script,
    sources: Sequence[Source],
    *,
    show: Show | None = None,
    only: Sequence[str] = (),
) -> CheckReport:
    """Run the quality gates' deterministic criteria on a script; `only` names the gates to run
    (all when empty)."""
    unknown = sorted(set(only) - set(gates.GATES))
    if unknown:
        raise ConfigError(
            f"--gate {unknown[0]}: no such gate; the gates are {', '.join(gates.GATES)}"
        )
    kb = notes_of(sources)
    cited = _as_note_ids(script, sources, kb)
    titles = [source.title for source in sources]
    judged_by = show or _neutral_show(cited)
    verdicts = gates.run_checks(judged_by, outline_of(cited, kb), cited, kb, [], titles)
    wanted = set(only) or set(gates.GATES)
    results = [
        CriterionResult(v.gate, v.criterion, "skipped", None, "needs a show bible (--show)")
        if show is None and v.criterion in NEEDS_SHOW
        else CriterionResult(
            v.gate, v.criterion, "passed" if v.passed else "failed", v.score, v.reason, v
        )
        for v in verdicts
        if v.gate in wanted
    ]
    results += [
        CriterionResult(j.gate, j.name, "skipped", None, _JUDGED_SKIP)
        for j in gates.JUDGED
        if j.gate in wanted
    ]
    order = {gate: i for i, gate in enumerate(gates.GATES)}
    results.sort(key=lambda r: order[r.gate])
    known = [*judged_by.host_names(), judged_by.show.title, *titles]
    claims = content.checked_claims(cited, kb, known)
    return CheckReport(cited, results, claims if "content" in wanted else [], semantic.measure())


def _as_note_ids(script: Script, sources: Sequence[Source], kb: KnowledgeBase) -> Script:
    """`[2]` cites every note of the second source; a number beyond the sources stays as it is,
    for the citations check to report."""
    by_source: dict[str, list[str]] = {}
    for note in kb.notes:
        by_source.setdefault(note.source_id, []).append(note.id)
    turns = []
    for turn in script.turns:
        ids: list[str] = []
        for mark in turn.citations:
            number = int(mark) if mark.isdigit() else 0
            if 1 <= number <= len(sources):
                ids += by_source.get(sources[number - 1].id, [])
            else:
                ids.append(f"[{mark}]")
        turns.append(turn.model_copy(update={"citations": ids}))
    return script.model_copy(update={"turns": turns})


def outline_of(script: Script, kb: KnowledgeBase) -> Outline:
    """The outline the script follows: its segments in order, each as long as it is."""
    order = list(dict.fromkeys(turn.segment for turn in script.turns))
    known = {note.id for note in kb.notes}
    segments = []
    for position, segment_id in enumerate(order):
        turns = script.segment_turns(segment_id)
        kind = "body"
        if len(order) >= 3 and position == 0:
            kind = "intro"
        elif len(order) >= 3 and position == len(order) - 1:
            kind = "outro"
        segments.append(
            Segment(
                id=segment_id,
                kind=kind,
                title=segment_id.replace("-", " "),
                goal=segment_id.replace("-", " "),
                target_words=max(1, sum(len(t.text.split()) for t in turns)),
                note_ids=list(dict.fromkeys(c for t in turns for c in t.citations if c in known)),
            )
        )
    return Outline(title=script.title, summary=script.title, segments=segments)


def _neutral_show(script: Script) -> Show:
    """A show bible that asks nothing of the script, for the checks that need none: what it
    would decide is reported as skipped."""
    speakers = list(dict.fromkeys(turn.speaker for turn in script.turns))[:4]
    words = max(script.word_count, 1)
    return Show.model_validate(
        {
            "show": {"title": script.title, "description": "-", "author": "-"},
            "hosts": [{"name": _host_name(s), "persona": "-"} for s in speakers],
            "brand_voice": {"style_guide": "-"},
            "episode": {
                "target_minutes": max(1, min(180, round(words / 150))),
                "words_per_minute": 150,
            },
        }
    )


def _host_name(speaker: str) -> str:
    return re.sub(r"[:*\[\]#<>|\"\\/]", "", speaker)[:40].strip() or "Host"

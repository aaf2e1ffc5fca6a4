"""Offline planning, writing and polishing: a two-host conversation built from the notes.

The script is extractive: every factual turn speaks a researched sentence and cites its note, and
the connective lines around them are chosen deterministically from a small repertoire, so the same
inputs always give the same episode.
"""

from __future__ import annotations

import hashlib
import re

from castline.domain import Note, Outline, Segment, Turn
from castline.llm.offline.solvers import solves
from castline.llm.tasks import PlanTask, PolishTask, SegmentDraft, ShowBrief, WriteSegmentTask
from castline.text import phrase_pattern, sentences, word_count

INTRO_SHARE, OUTRO_SHARE = 0.06, 0.07
# Spoken words a note turns into, on average, once connective lines are added around it.
_CONNECTIVE_FACTOR = 1.45

_LEAD_INS = (
    "",
    "Here's what the research says.",
    "According to {source},",
    "One detail stood out to me.",
    "The numbers here are worth slowing down for.",
    "Here's a piece I didn't expect.",
    "{source} puts it plainly.",
    "",
)
_REACTIONS = (
    "That's striking.",
    "Okay, hold on, say more about that.",
    "Right, and that connects to the next piece.",
    "I think a lot of listeners will recognise that.",
    "That matters more than it sounds.",
    "So what else is in there?",
    "Huh. I did not know that.",
    "Let's stay with that for a second.",
    "That's the part people tend to miss.",
    "Makes sense. Keep going.",
)
_BUILDS = (
    "There's more to it, too.",
    "Here's another finding.",
    "That ties in with this.",
    "And one more thing from the research.",
    "",
)
# Asked before a finding when a segment has too little material to fill its length otherwise.
_ASKS = (
    "So what do we actually know about {title}?",
    "What else turned up on {title}?",
    "Okay, and where does the research go from there?",
    "Can you give me a concrete example?",
    "What's the evidence behind that, though?",
    "And what does that mean for the people living with it?",
    "Is there anything that complicates the picture?",
)
_TRANSITIONS = (
    "Let's turn to {title}.",
    "Next up: {title}.",
    "Now I want to get into {title}.",
    "Which brings us to {title}.",
)


def _pick(options: tuple[str, ...], *seed: object) -> str:
    digest = hashlib.sha256("|".join(map(str, seed)).encode()).digest()
    return options[digest[0] % len(options)]


def _in_turn(options: tuple[str, ...], position: int, seed: object) -> str:
    """The options in rotation from a seeded start: no line comes back before all have been
    used, where a segment needs many of them."""
    start = hashlib.sha256(str(seed).encode()).digest()[0]
    return options[(start + position) % len(options)]


@solves(PlanTask)
def plan(task: PlanTask) -> Outline:
    """Intro, one body segment per theme sized by its material, outro; targets sum to the goal."""
    kb = task.knowledge_base
    themes = [theme for theme in kb.themes if theme.note_ids]
    intro_words = max(40, round(task.target_words * INTRO_SHARE))
    outro_words = max(40, round(task.target_words * OUTRO_SHARE))
    body_total = max(len(themes), task.target_words - intro_words - outro_words)
    hook: list[str] = [themes[0].note_ids[0]] if themes and len(themes[0].note_ids) > 1 else []
    supply = [
        sum(word_count(kb.note(n).claim) for n in theme.note_ids if n not in hook)
        for theme in themes
    ]
    total_supply = sum(supply) or 1
    targets = [max(1, round(body_total * s / total_supply)) for s in supply]
    if targets:
        targets[-1] += body_total - sum(targets)
    segments = [
        Segment(
            id="intro",
            kind="intro",
            title="Welcome",
            goal=f"Greet listeners, introduce the hosts and set up the question: {task.topic}",
            target_words=intro_words,
            note_ids=hook,
        )
    ]
    for index, (theme, target) in enumerate(zip(themes, targets, strict=True), start=1):
        segments.append(
            Segment(
                id=f"s{index}",
                kind="body",
                title=theme.title,
                goal=theme.question,
                target_words=target,
                note_ids=[n for n in theme.note_ids if n not in hook],
            )
        )
    segments.append(
        Segment(
            id="outro",
            kind="outro",
            title="Wrap-up",
            goal="Recap the main points, give the required disclaimers and sign off",
            target_words=outro_words,
        )
    )
    titles = ", ".join(theme.title.lower() for theme in themes[:4])
    return Outline(
        title=task.topic[0].upper() + task.topic[1:],
        summary=f"{task.show.title} looks at {task.topic.rstrip('.?!').lower()}: {titles}.",
        segments=segments,
    )


class _Conversation:
    """Accumulates turns for one segment, alternating speakers and counting words."""

    def __init__(self, show: ShowBrief, segment: Segment, first_speaker: int = 0) -> None:
        self.hosts = [host.name for host in show.hosts]
        self.segment = segment
        self.turns: list[Turn] = []
        self.next_speaker = first_speaker % len(self.hosts)

    @property
    def words(self) -> int:
        return sum(word_count(turn.text) for turn in self.turns)

    def say(
        self, text: str, citations: list[str] | None = None, *, speaker: int | None = None
    ) -> None:
        index = self.next_speaker if speaker is None else speaker % len(self.hosts)
        self.turns.append(
            Turn(
                speaker=self.hosts[index],
                text=" ".join(text.split()),
                segment=self.segment.id,
                citations=citations or [],
            )
        )
        self.next_speaker = (index + 1) % len(self.hosts)


def _fact(note: Note, lead_in: str, source_titles: dict[str, str]) -> str:
    title = source_titles.get(note.source_id, "one of our sources").split(":")[0].strip()
    prefix = lead_in.format(source=title)
    if prefix.endswith(","):
        return (
            f"{prefix} {note.claim[0].lower()}{note.claim[1:]}"
            if _lowerable(note.claim)
            else f"{prefix} {note.claim}"
        )
    return f"{prefix} {note.claim}".strip()


def _lowerable(claim: str) -> bool:
    first = claim.split()[0]
    return first.istitle() and first.lower() in {
        "the",
        "a",
        "an",
        "in",
        "on",
        "at",
        "for",
        "most",
        "many",
        "some",
    }


@solves(WriteSegmentTask)
def write(task: WriteSegmentTask) -> SegmentDraft:
    segment, show = task.segment, task.show
    convo = _Conversation(show, segment)
    titles = task.source_titles
    if segment.kind == "intro":
        _intro(task, convo, titles)
    elif segment.kind == "outro":
        _outro(task, convo)
    else:
        _body(task, convo, titles)
    return SegmentDraft(turns=convo.turns)


def _intro(task: WriteSegmentTask, convo: _Conversation, titles: dict[str, str]) -> None:
    show, hosts = task.show, convo.hosts
    convo.say(f"Welcome to {show.title}. I'm {hosts[0]}.")
    for name in hosts[1:]:
        convo.say(f"And I'm {name}.")
    convo.say(f"Today's question: {task.outline.title.rstrip('.?!')}?", speaker=0)
    for note in task.notes:
        convo.say(f"Let me start with something from the research. {note.claim}", [note.id])
    body = [s.title.lower() for s in task.outline.segments if s.kind == "body"]
    if body:
        listing = ", ".join(body[:-1]) + (f", and {body[-1]}" if len(body) > 1 else body[0])
        convo.say(f"We'll get into {listing}.")
    if show.brand_voice.sample_lines:
        convo.say(show.brand_voice.sample_lines[0], speaker=0)
    convo.say("Everything we say today is drawn from the sources listed in the show notes.")


def _body(task: WriteSegmentTask, convo: _Conversation, titles: dict[str, str]) -> None:
    """Hosts take turns strictly: a finding, a reaction, a finding, the other host building on
    it with the next finding, and so on, so the facts are shared between the hosts. When the
    notes are too few to fill the segment, the other host asks for each finding first: more
    conversation, never an uncited fact."""
    segment = task.segment
    convo.say(_pick(_TRANSITIONS, segment.id).format(title=segment.title.lower()), speaker=0)
    supply = sum(word_count(note.claim) for note in task.notes) * _CONNECTIVE_FACTOR
    thin = supply < segment.target_words
    for position, note in enumerate(task.notes):
        # Add a finding only if it brings the segment closer to its target length.
        after = convo.words + word_count(note.claim) + 6
        if position and abs(after - segment.target_words) >= abs(
            convo.words - segment.target_words
        ):
            break
        seed = (segment.id, note.id)
        if thin and position:
            convo.say(_in_turn(_ASKS, position, segment.id).format(title=segment.title.lower()))
        elif position % 3 == 2 and convo.turns[-1].citations:
            convo.say(f"{_pick(_BUILDS, *seed)} {note.claim}", [note.id])
            continue
        convo.say(_fact(note, _pick(_LEAD_INS, *seed), titles), [note.id])
        if thin and convo.words < segment.target_words:
            convo.say(_in_turn(_REACTIONS, position, segment.id))
        elif convo.words < segment.target_words and position % 3 != 1:
            convo.say(_pick(_REACTIONS, *seed))


def _outro(task: WriteSegmentTask, convo: _Conversation) -> None:
    show, hosts = task.show, convo.hosts
    body = [s.title.lower() for s in task.outline.segments if s.kind == "body"]
    convo.say(f"That's our look at {task.outline.title.rstrip('.?!').lower()}.", speaker=0)
    if body:
        convo.say(
            f"We covered {', '.join(body)}. The sources for every claim are in the show notes."
        )
    for disclaimer in show.rules.required_disclaimers:
        convo.say(disclaimer, speaker=0)
    if len(show.brand_voice.sample_lines) > 1:
        convo.say(show.brand_voice.sample_lines[-1])
    convo.say(f"Thanks for listening to {show.title}. I'm {hosts[0]}.", speaker=0)
    for name in hosts[1:]:
        convo.say(f"And I'm {name}. See you next time.")


# Findings about what a sentence says: the sentence goes (with its turn, if it was the fact).
_DROP_SENTENCE = frozenset(
    {
        "unsupported-claim",
        "contradiction",
        "legal-risk",
        "tone",
        "accuracy",
        "persona",
        "addressed-to-model",
    }
)
# Findings about the segment as a whole: it is written again from its notes.
_REWRITE = frozenset({"repeated-segment", "coherence", "missing-segment"})


@solves(PolishTask)
def polish(task: PolishTask) -> SegmentDraft:
    """Resolve each finding with the smallest edit that removes it."""
    if any(f.check in _REWRITE for f in task.findings):
        rewrite = WriteSegmentTask(
            show=task.show,
            knowledge_base=task.knowledge_base,
            outline=task.outline,
            segment=task.segment,
            source_titles=task.source_titles,
        )
        return write(rewrite)
    turns = list(task.turns)
    hosts = [host.name for host in task.show.hosts]
    for finding in task.findings:
        if finding.check in _DROP_SENTENCE and finding.subject:
            turns = _drop_phrase(turns, re.compile(re.escape(finding.subject[:80]), re.I))
        elif finding.check == "forbidden-phrase" and finding.subject:
            turns = _drop_phrase(turns, phrase_pattern(finding.subject))
        elif finding.check == "disclaimer" and finding.subject:
            turns.append(Turn(speaker=hosts[0], text=finding.subject, segment=task.segment.id))
        elif finding.check == "speaker":
            turns = [
                t if t.speaker in hosts else t.model_copy(update={"speaker": hosts[i % len(hosts)]})
                for i, t in enumerate(turns)
            ]
        elif finding.check == "empty-turn":
            turns = [t for t in turns if t.text.strip()]
        elif finding.check == "length" and "long" in finding.message:
            keep = task.show.rules.required_disclaimers
            turns = _trim(turns, task.segment.target_words, keep)
    return SegmentDraft(turns=turns)


def _drop_phrase(turns: list[Turn], pattern: re.Pattern[str]) -> list[Turn]:
    """Remove the phrase with the sentences that carry it. A cited turn goes whole: its fact is
    the sentence, and the lead-in around it means nothing alone."""
    result: list[Turn] = []
    for turn in turns:
        if not pattern.search(turn.text):
            result.append(turn)
            continue
        kept = [s for s in sentences(turn.text) if not pattern.search(s)]
        if kept and not turn.citations:
            result.append(turn.model_copy(update={"text": " ".join(kept)}))
    return result


def _trim(turns: list[Turn], target: int, keep: list[str]) -> list[Turn]:
    """Drop turns from the end of the segment (never its opening line, never a turn that carries
    a required disclaimer) until it fits its target."""
    trimmed = list(turns)
    protected = [phrase_pattern(text) for text in keep]
    while sum(word_count(t.text) for t in trimmed) > target:
        removable = [
            i
            for i, turn in enumerate(trimmed)
            if i > 0 and not any(p.search(turn.text) for p in protected)
        ]
        if not removable:
            break
        trimmed.pop(removable[-1])
    return trimmed

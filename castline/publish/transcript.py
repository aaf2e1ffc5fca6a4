"""Timed transcripts and chapters of a mastered episode: WebVTT, SRT, and the Podcasting 2.0 JSON
transcript and chapters files.

Everything here is a pure function of the `Timeline`. Turns become caption cues; a turn that
would stay on screen longer than `MAX_CUE_SECONDS` is split at sentence boundaries so players show
captions of a readable size (see `cues`).

Formats:

- WebVTT (https://www.w3.org/TR/webvtt1/): cue text may not hold a raw ``&`` or ``<``, nor a voice
  annotation a raw ``&`` or ``>``, so both are written as character references; each cue carries
  its speaker as a voice span, ``<v Maya>…</v>``, which Apple Podcasts reads as speaker names.
- SRT has no markup: the speaker leads the text, ``MAYA: …``, as in castline's plain transcript.
- JSON transcript 1.0.0 and JSON chapters 1.2.0 of the podcast namespace
  (https://github.com/Podcastindex-org/podcast-namespace, docs/examples/transcripts/transcripts.md
  and docs/examples/chapters/jsonChapters.md); times are seconds, floats to the millisecond.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from castline.audio.timeline import TimedTurn, Timeline
from castline.text import sentences

MAX_CUE_SECONDS = 7.0
TRANSCRIPT_VERSION = "1.0.0"
CHAPTERS_VERSION = "1.2.0"


@dataclass(frozen=True)
class Cue:
    """One caption: a turn, or a run of whole sentences of a turn, with its time span."""

    turn: int
    speaker: str
    text: str
    start: float
    end: float


def cues(timeline: Timeline, *, max_seconds: float = MAX_CUE_SECONDS) -> list[Cue]:
    """The timeline's turns as captions, in order, long turns split (see `split_turn`)."""
    return [cue for turn in timeline.turns for cue in split_turn(turn, max_seconds=max_seconds)]


def split_turn(turn: TimedTurn, *, max_seconds: float = MAX_CUE_SECONDS) -> list[Cue]:
    """A turn as one cue, or, when it lasts longer than `max_seconds`, as several.

    The text is split into sentences (`castline.text.sentences`), and the turn's time is shared
    out in proportion to characters: a sentence with a fifth of the characters gets a fifth of the
    time. Sentences are then grouped greedily, in order, each cue taking sentences while its share
    stays within `max_seconds`. A sentence is never cut, so a single sentence longer than the limit
    stays one (long) cue. The cues are contiguous: the first starts at the turn's start, each
    starts where the one before ends, and the last ends at the turn's end. A turn without text
    gives no cue.
    """
    text = " ".join(turn.text.split())
    if not text:
        return []
    span = turn.end - turn.start
    parts = sentences(text) if span > max_seconds else [text]
    if len(parts) <= 1:
        return [Cue(turn.index, turn.speaker, text, turn.start, turn.end)]

    total = sum(len(part) for part in parts)
    budget = total * max_seconds / span  # the characters that fit in one cue
    groups: list[list[str]] = [[]]
    size = 0
    for part in parts:
        if groups[-1] and size + len(part) > budget:
            groups.append([])
            size = 0
        groups[-1].append(part)
        size += len(part)

    result = []
    done = 0
    for number, group in enumerate(groups, start=1):
        start = turn.start + span * done / total
        done += sum(len(part) for part in group)
        end = turn.end if number == len(groups) else turn.start + span * done / total
        result.append(Cue(turn.index, turn.speaker, " ".join(group), start, end))
    return result


def timestamp(seconds: float, *, separator: str = ".") -> str:
    """``HH:MM:SS.mmm`` (WebVTT) or, with ``separator=","``, ``HH:MM:SS,mmm`` (SRT); rounded to
    the millisecond, never negative, hours growing past two digits if they must."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webvtt(timeline: Timeline) -> str:
    """The WebVTT captions: numbered cues, each with its speaker as a voice span."""
    blocks = ["WEBVTT"]
    for number, cue in enumerate(cues(timeline), start=1):
        speaker = " ".join(cue.speaker.split())
        text = _vtt_escape(cue.text)
        payload = f"<v {_vtt_escape(speaker)}>{text}</v>" if speaker else text
        timing = f"{timestamp(cue.start)} --> {timestamp(cue.end)}"
        blocks.append(f"{number}\n{timing}\n{payload}")
    return "\n\n".join(blocks) + "\n"


def srt(timeline: Timeline) -> str:
    """The SRT captions: numbered cues, each led by its speaker's name in capitals."""
    blocks = []
    for number, cue in enumerate(cues(timeline), start=1):
        speaker = " ".join(cue.speaker.split()).upper()
        payload = f"{speaker}: {cue.text}" if speaker else cue.text
        timing = f"{timestamp(cue.start, separator=',')} --> {timestamp(cue.end, separator=',')}"
        blocks.append(f"{number}\n{timing}\n{payload}")
    return "\n\n".join(blocks) + "\n" if blocks else ""


def _seconds(value: float) -> float:
    return round(max(0.0, value), 3)


def podcast_transcript(timeline: Timeline) -> dict[str, Any]:
    """The podcast namespace JSON transcript (version 1.0.0): one segment per cue, so its
    segments are as long as the captions'."""
    return {
        "version": TRANSCRIPT_VERSION,
        "segments": [
            {
                "speaker": cue.speaker,
                "startTime": _seconds(cue.start),
                "endTime": _seconds(cue.end),
                "body": cue.text,
            }
            for cue in cues(timeline)
        ],
    }


def podcast_chapters(timeline: Timeline, *, title: str) -> dict[str, Any]:
    """The podcast namespace JSON chapters (version 1.2.0), in ascending start order as the
    format assumes; `title` is the episode's title, each chapter has its own and an endTime."""
    ordered = sorted(timeline.chapters, key=lambda chapter: chapter.start)
    return {
        "version": CHAPTERS_VERSION,
        "title": title,
        "chapters": [
            {
                "startTime": _seconds(chapter.start),
                "title": chapter.title,
                "endTime": _seconds(chapter.end),
            }
            for chapter in ordered
        ],
    }

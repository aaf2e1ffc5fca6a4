"""Where every turn and every segment sits in the mastered episode, in seconds.

Produced by mastering (from the real audio), consumed by tags (ID3 chapters), transcripts,
chapters files, show notes and the feed.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimedTurn(_Model):
    index: int
    speaker: str
    segment: str
    text: str
    start: float
    end: float


class Chapter(_Model):
    segment: str
    title: str
    start: float
    end: float


class Timeline(_Model):
    turns: list[TimedTurn]
    chapters: list[Chapter]
    duration: float

"""What crosses the DBOS boundary between the runner and the durable steps: typed, checkpointed
as they are, so a replay hands back the same objects the first run got."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from castline.domain import AudioInfo, Script


class Published(BaseModel):
    output_dir: str | None
    files: list[str] = []


class Voiced(BaseModel):
    """The mastered episode, or why the budget could not fit one of its clips."""

    audio: AudioInfo | None
    timeline: dict[str, Any] = {}
    refused: str | None = None


class HumanDecision(BaseModel):
    status: Literal["approved", "rejected", "edited"] | str
    note: str | None = None
    script: Script | None = None

"""The episode's length against its words and its target: missing speech fails the stage
before anything is written; a length beyond tolerance is said, with the voice's real pace."""

from __future__ import annotations

import pytest

from castline.config import load_show
from castline.domain import Script, Turn
from castline.errors import StageFailed
from castline.llm.registry import Routing
from castline.stages import RunContext
from castline.stages.voice import length_verdict
from tests.conftest import EXAMPLE


def _context() -> RunContext:
    show = load_show(EXAMPLE / "show.yaml")  # 20 minutes at 150 words a minute, ±15 %
    return RunContext("r1", show, "topic", [], Routing({}, True, "offline"), ".")


def _script(words: int) -> Script:
    return Script(title="t", turns=[Turn(speaker="Maya", text="word " * words, segment="intro")])


def test_a_length_within_tolerance_says_nothing() -> None:
    assert length_verdict(_context(), _script(3000), 21 * 60) is None


def test_a_voice_slower_than_planned_is_reported_with_its_real_pace() -> None:
    note = length_verdict(_context(), _script(3000), 25 * 60)
    assert note == (
        "25.0 min against a 20-min target (+25%); the voice speaks 120 words a minute, "
        "the show plans 150"
    )


def test_audio_far_shorter_than_its_words_fails_the_stage() -> None:
    with pytest.raises(StageFailed, match=r"lasts 10\.0 min but its 3000 words need about 20\.0"):
        length_verdict(_context(), _script(3000), 10 * 60)

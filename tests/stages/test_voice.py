"""The episode's length against its words and its target: missing speech fails the stage
before anything is written; a length beyond tolerance is said, with the voice's real pace."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from castline.config import load_show
from castline.domain import Script, Turn
from castline.errors import StageFailed
from castline.llm.registry import Routing
from castline.stages import RunContext
from castline.stages.voice import length_verdict
from tests.conftest import EXAMPLE
from tests.runs import add_run


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


def test_two_workers_voicing_the_same_clip_at_once_pay_for_it_once(tmp_path: Path) -> None:
    from castline.config import database_url
    from castline.stages.voice import Clip, clip_specs, voice_clip
    from castline.store import Store

    store = Store(database_url())
    add_run(
        store,
        show_title="Heat Check",
        show_path=str(EXAMPLE / "show.yaml"),
        routing_reason="",
        spec="{}",
        output_dir=str(tmp_path),
    )
    ctx = _context()
    [spec] = clip_specs(
        ctx, Script(title="t", turns=[Turn(speaker="Maya", text="Hello there.", segment="intro")])
    )
    start = threading.Barrier(2)

    def voice() -> Clip:
        start.wait()
        return voice_clip(store, ctx, spec, "voice.turn.0")

    with ThreadPoolExecutor(2) as pool:
        made = [future.result() for future in [pool.submit(voice), pool.submit(voice)]]

    assert sorted(m.cached for m in made) == [False, True]
    assert made[0].path == made[1].path
    paid = [c for c in store.calls("r1") if c.status == "ok"]
    assert len(paid) == 1
    kinds = [e.kind for e in store.events("r1")]
    assert kinds.count("clip-synthesized") == 1 and kinds.count("clip-cached") == 1

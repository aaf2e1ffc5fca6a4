"""A real episode: a playable MP3 at the loudness target, chapters that read back, a feed that
podcast apps parse; re-voicing renders only what changed; a silent clip never slips through."""

from __future__ import annotations

import io
from pathlib import Path

import feedparser
import numpy as np
import podcastparser
import pyloudnorm
import pytest
import soundfile as sf
from click.testing import CliRunner
from mutagen.id3 import ID3

from castline import production
from castline.audio.tts import Engine, Speech, register_engine
from castline.cli import cli, script_text
from castline.config import database_url
from castline.errors import StageFailed
from castline.quality.editing import parse_script
from castline.store import Store

TOPIC = "How castline turns sources into an episode"


@pytest.fixture
def short_show(tmp_path: Path) -> tuple[Path, Path]:
    """The scaffolded show: a three-minute episode from one source, voiced."""
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "s")], catch_exceptions=False)
    assert result.exit_code == 0
    return tmp_path / "s" / "show.yaml", tmp_path / "s" / "sources" / "example.md"


def _clips(store: Store, run_id: str) -> list[str]:
    return [e.kind for e in store.events(run_id) if e.kind in {"clip-synthesized", "clip-cached"}]


def test_the_episode_is_a_podcast(short_show: tuple[Path, Path]) -> None:
    show, source = short_show
    outcome = production.produce(show, TOPIC, [source])

    assert outcome.status == "completed" and outcome.output_dir is not None
    mp3 = outcome.output_dir / "episode.mp3"
    decoded, rate = sf.read(io.BytesIO(mp3.read_bytes()), dtype="float64")
    assert rate == 44100 and len(decoded) / rate > 60
    loudness = pyloudnorm.Meter(rate).integrated_loudness(decoded)
    assert abs(loudness - (-16.0)) <= 1.0
    peak = 20 * np.log10(np.max(np.abs(decoded)))
    assert peak <= -1.0 + 0.3  # sample peak of the decoded file, a lower bound of the true peak
    tags = ID3(str(mp3))
    by_id = {c.element_id: c for c in tags.getall("CHAP")}
    chapters = [by_id[i] for i in tags.getall("CTOC")[0].child_element_ids]
    episode = production.describe(outcome.run_id)
    assert chapters[0].sub_frames["TIT2"].text[0] == "Welcome"
    assert len(chapters) == len(by_id) >= 3
    starts = [c.start_time for c in chapters]
    assert starts == sorted(starts) and starts[0] == 0
    assert tags["TIT2"].text[0] == TOPIC and tags["TALB"].text[0] == "S"
    vtt = (outcome.output_dir / "episode.vtt").read_text()
    assert vtt.startswith("WEBVTT") and "<v Alex>" in vtt
    assert (outcome.output_dir / "chapters.json").exists()
    assert "audio" in episode.record.spec["show"]
    feed_file = outcome.output_dir.parent / "feed.xml"
    parsed = feedparser.parse(feed_file.read_bytes())
    [entry] = parsed.entries
    assert entry.enclosures[0]["length"] == str(mp3.stat().st_size)
    assert entry.enclosures[0]["type"] == "audio/mpeg"
    assert entry.get("podcast_transcript") or b"podcast:transcript" in feed_file.read_bytes()
    assert b"podcast:chapters" in feed_file.read_bytes()
    podcast = podcastparser.parse(feed_file.as_uri(), io.BytesIO(feed_file.read_bytes()))
    [item] = podcast["episodes"]
    assert item["guid"] == outcome.run_id and item["total_time"] == round(len(decoded) / rate)


def test_editing_one_turn_re_renders_exactly_one_clip(short_show: tuple[Path, Path]) -> None:
    show, source = short_show
    first = production.produce(show, TOPIC, [source])
    store = Store(database_url())
    assert first.output_dir is not None
    turns = parse_script(
        script_text(
            production.describe(first.run_id).record.spec
            and __import__("json").loads((first.output_dir / "episode.json").read_text())["script"]
        ),
        TOPIC,
    )
    edited = turns.model_copy(
        update={
            "turns": [
                t.model_copy(update={"text": t.text + " Worth remembering."}) if i == 3 else t
                for i, t in enumerate(turns.turns)
            ]
        }
    )
    before = len(_clips(store, first.run_id))

    again = production.revoice(first.run_id, script=edited)

    assert again.status == "completed"
    after = _clips(store, first.run_id)[before:]
    assert after.count("clip-synthesized") == 1 and after.count("clip-cached") == len(after) - 1
    assert "Worth remembering." in (first.output_dir / "episode.vtt").read_text()


class _Silent(Engine):
    """An engine that returns silence for one sentence: `times` times, then speaks properly."""

    name = "silent-once"
    route = "espeak:espeak-ng"

    def __init__(self, times: int) -> None:
        from castline.audio.tts.espeak import EspeakEngine

        self.real = EspeakEngine()
        self.times = times

    def default_voice(self, host_index: int) -> str:
        return self.real.default_voice(host_index)

    def synthesize(self, text: str, voice: str, *, words_per_minute: int) -> Speech:
        if "Welcome to" in text and self.times > 0:
            self.times -= 1
            return Speech(np.zeros(22050, dtype=np.float32), 22050)
        return self.real.synthesize(text, voice, words_per_minute=words_per_minute)


@pytest.mark.parametrize(("silences", "recovers"), [(1, True), (2, False)])
def test_a_silent_clip_is_rendered_again_or_the_run_fails_naming_the_turn(
    short_show: tuple[Path, Path], silences: int, recovers: bool
) -> None:
    show, source = short_show
    engine = _Silent(silences)
    register_engine(engine.name, lambda: engine)
    show.write_text(show.read_text() + f"\naudio: {{engine: {engine.name}}}\n")

    if recovers:
        outcome = production.produce(show, TOPIC, [source])
        assert outcome.status == "completed"
        store = Store(database_url())
        retried = [e for e in store.events(outcome.run_id) if "second try" in e.message]
        assert len(retried) == 1
    else:
        with pytest.raises(
            StageFailed, match=r"turn 0 \(Alex, segment intro\) could not be voiced"
        ):
            production.produce(show, TOPIC, [source])
        [run] = Store(database_url()).list_runs()
        assert run.status == "failed" and not (Path(run.output_dir) / "episode.mp3").exists()


def test_the_feed_is_rebuilt_from_the_store(short_show: tuple[Path, Path]) -> None:
    show, source = short_show
    first = production.produce(show, TOPIC, [source])
    assert first.output_dir is not None
    feed_file = first.output_dir.parent / "feed.xml"
    feed_file.unlink()

    result = CliRunner().invoke(cli, ["feed", str(show)], catch_exceptions=False)

    assert result.exit_code == 0 and "1 episode(s)" in result.output
    [entry] = feedparser.parse(feed_file.read_bytes()).entries
    assert entry.id == first.run_id

"""A real episode: a playable MP3 at the loudness target, chapters that read back, a feed that
podcast apps parse; re-voicing renders only what changed. (Cloud voices, and silent clips, are
tested against the fake API in `test_cloud_voices`.)"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import feedparser
import numpy as np
import podcastparser
import pyloudnorm
import pytest
import soundfile as sf
from click.testing import CliRunner
from mutagen.id3 import ID3

from castline.cli import cli, script_text
from castline.config import database_url
from castline.engine import episodes, inspection, revoice
from castline.errors import UnpricedModel
from castline.publish.feed import read_episodes
from castline.quality.editing import parse_script
from castline.store import Store

TOPIC = "How castline turns sources into an episode"


def _clips(store: Store, run_id: str) -> list[str]:
    return [e.kind for e in store.events(run_id) if e.kind in {"clip-synthesized", "clip-cached"}]


def test_the_episode_is_a_podcast(short_show: tuple[Path, Path]) -> None:
    show, source = short_show
    outcome = episodes.produce(show, TOPIC, [source])

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
    episode = inspection.describe(outcome.run_id)
    assert chapters[0].sub_frames["TIT2"].text[0] == "Welcome"
    assert len(chapters) == len(by_id) >= 3
    starts = [c.start_time for c in chapters]
    assert starts == sorted(starts) and starts[0] == 0
    assert tags["TIT2"].text[0] == TOPIC and tags["TALB"].text[0] == "S"
    assert tags["TRCK"].text == ["1"] and episode.record.number == outcome.number == 1
    notes = (outcome.output_dir / "show-notes.md").read_text()
    assert notes.startswith(f"# Episode 1: {TOPIC}\n")
    vtt = (outcome.output_dir / "episode.vtt").read_text()
    assert vtt.startswith("WEBVTT") and "<v Alex>" in vtt
    assert (outcome.output_dir / "chapters.json").exists()
    report = (outcome.output_dir / "report.md").read_text()
    audio = json.loads((outcome.output_dir / "episode.json").read_text())["audio"]
    assert abs(audio["loudness_lufs"] - loudness) < 0.05
    assert f"episode.mp3: {audio['duration_s'] / 60:.1f} min, " in report and "LUFS" in report
    assert "audio" in episode.record.spec["show"]
    feed_file = outcome.output_dir.parent / "feed.xml"
    parsed = feedparser.parse(feed_file.read_bytes())
    [entry] = parsed.entries
    assert entry.itunes_episode == "1" and entry.itunes_episodetype == "full"
    assert entry.enclosures[0]["length"] == str(mp3.stat().st_size)
    assert entry.enclosures[0]["type"] == "audio/mpeg"
    assert entry.get("podcast_transcript") or b"podcast:transcript" in feed_file.read_bytes()
    assert b"podcast:chapters" in feed_file.read_bytes()
    podcast = podcastparser.parse(feed_file.as_uri(), io.BytesIO(feed_file.read_bytes()))
    [item] = podcast["episodes"]
    assert item["guid"] == outcome.run_id
    # the feed's whole seconds are the decoded file's length (stored to the millisecond)
    assert abs(item["total_time"] - len(decoded) / rate) <= 0.501
    assert item["number"] == 1


def test_editing_one_turn_re_renders_exactly_one_clip(short_show: tuple[Path, Path]) -> None:
    show, source = short_show
    first = episodes.produce(show, TOPIC, [source])
    store = Store(database_url())
    assert first.output_dir is not None
    turns = parse_script(
        script_text(
            inspection.describe(first.run_id).record.spec
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

    again = revoice.revoice(first.run_id, script=edited)

    assert again.status == "completed"
    after = _clips(store, first.run_id)[before:]
    assert after.count("clip-synthesized") == 1 and after.count("clip-cached") == len(after) - 1
    assert "Worth remembering." in (first.output_dir / "episode.vtt").read_text()
    assert again.number == 1  # voicing again keeps the number fixed when the run was created
    assert ID3(str(first.output_dir / "episode.mp3"))["TRCK"].text == ["1"]
    [entry] = feedparser.parse((first.output_dir.parent / "feed.xml").read_bytes()).entries
    assert entry.itunes_episode == "1"


def test_a_changed_voice_re_voices_only_that_hosts_turns(short_show: tuple[Path, Path]) -> None:
    show, source = short_show
    first = episodes.produce(show, TOPIC, [source])
    store = Store(database_url())
    speakers = [t["speaker"] for t in _episode_json(first)["script"]["turns"]]
    before = len(_clips(store, first.run_id))
    show.write_text(show.read_text().replace("espeak: en-us+m3", "espeak: en-gb-x-rp"))

    again = revoice.revoice(first.run_id)

    assert again.status == "completed"
    after = _clips(store, first.run_id)[before:]
    assert after.count("clip-synthesized") == speakers.count("Sam") > 0
    assert after.count("clip-cached") == speakers.count("Alex") > 0
    spec = store.get_run(first.run_id).spec
    assert spec["show"]["hosts"][1]["voices"] == {"espeak": "en-gb-x-rp"}


def test_voicing_again_with_an_unpriced_voice_is_refused_before_anything_changes(
    short_show: tuple[Path, Path],
) -> None:
    show, source = short_show
    first = episodes.produce(show, TOPIC, [source])
    store = Store(database_url())
    spec = store.get_run(first.run_id).spec
    show.write_text(show.read_text() + "\naudio: {engine: openai, model: gpt-9-tts}\n")

    with pytest.raises(UnpricedModel, match="openai:gpt-9-tts"):
        revoice.revoice(first.run_id)

    record = store.get_run(first.run_id)
    assert record.status == "completed" and record.spec == spec


def _episode_json(outcome: episodes.Outcome) -> dict[str, Any]:
    assert outcome.output_dir is not None
    episode: dict[str, Any] = json.loads((outcome.output_dir / "episode.json").read_text())
    return episode


_EARLIER = "Mon, 02 Jun 2025 09:30:00 GMT"


def _pubdate(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def test_the_feed_is_rebuilt_from_the_store(short_show: tuple[Path, Path]) -> None:
    show, source = short_show
    first = episodes.produce(show, TOPIC, [source], number=4)
    assert first.output_dir is not None
    feed_file = first.output_dir.parent / "feed.xml"
    feed_file.unlink()

    result = CliRunner().invoke(cli, ["feed", str(show)], catch_exceptions=False)

    assert result.exit_code == 0 and "1 episode(s)" in result.output
    [rebuilt] = read_episodes(feed_file)
    # and rebuilt again over a feed that has it: the date it was published is kept
    feed_file.write_text(feed_file.read_text().replace(_pubdate(rebuilt.published), _EARLIER))
    assert CliRunner().invoke(cli, ["feed", str(show)], catch_exceptions=False).exit_code == 0
    [again] = read_episodes(feed_file)
    assert _pubdate(again.published) == _EARLIER
    [entry] = feedparser.parse(feed_file.read_bytes()).entries
    assert entry.id == first.run_id
    assert entry.itunes_episode == "4" and entry.itunes_episodetype == "full"
    [episode] = read_episodes(feed_file)
    assert episode.episode_number == 4

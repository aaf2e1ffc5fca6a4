"""ID3 tags of the episode MP3, read back by mutagen as players read them."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import lameenc
import numpy as np
import pytest
from mutagen.mp3 import MP3

from castline.audio.tags import write_tags
from castline.audio.timeline import Chapter, Timeline

RATE = 44100


@pytest.fixture
def mp3(tmp_path: Path) -> Path:
    """One second of a quiet tone, encoded as the episode is."""
    tone = 0.2 * np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE)
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(64)
    encoder.set_in_sample_rate(RATE)
    encoder.set_channels(1)
    encoder.set_quality(7)
    pcm = (tone * 32767).astype(np.int16).tobytes()
    path = tmp_path / "episode.mp3"
    path.write_bytes(encoder.encode(pcm) + encoder.flush())
    return path


def _tag(path: Path, episode_number: int | None) -> None:
    write_tags(
        path,
        title="Why cities run hot",
        show="Heat Check",
        hosts=["Maya", "Theo"],
        published=date(2025, 6, 1),
        timeline=Timeline(
            turns=[],
            chapters=[Chapter(segment="intro", title="Welcome", start=0.0, end=1.0)],
            duration=1.0,
        ),
        comment="Produced by castline (run run-1)",
        episode_number=episode_number,
    )


def test_the_episode_number_is_the_track_number(mp3: Path) -> None:
    _tag(mp3, 3)

    audio = MP3(str(mp3))

    assert audio.tags is not None
    assert audio.tags["TRCK"].text == ["3"]
    assert audio.tags["TIT2"].text == ["Why cities run hot"]  # the number is not in the title
    assert audio.tags.version == (2, 4, 0)
    assert abs(audio.info.length - 1.0) < 0.1  # still a playable MP3


def test_an_unnumbered_episode_has_no_track_number(mp3: Path) -> None:
    _tag(mp3, None)

    tags = MP3(str(mp3)).tags

    assert tags is not None
    assert "TRCK" not in tags and tags["TALB"].text == ["Heat Check"]

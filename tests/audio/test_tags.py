"""ID3 tags of the episode MP3, read back by mutagen as players read them, and frame by frame
from the bytes as stored (the order tools such as ffprobe list chapters in)."""

from __future__ import annotations

import io
import struct
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from mutagen.id3 import ID3
from mutagen.mp3 import MP3, BitrateMode

from castline.audio import master
from castline.audio.tags import write_tags
from castline.audio.timeline import Chapter, Timeline
from castline.config import Audio

RATE = 44100
SECONDS = 1.0


@pytest.fixture
def mp3(tmp_path: Path) -> Path:
    """One second of a quiet tone, encoded as the episode is."""
    tone = 0.2 * np.sin(2 * np.pi * 440 * np.arange(int(SECONDS * RATE)) / RATE)
    path = tmp_path / "episode.mp3"
    path.write_bytes(master.encode(tone.astype(np.float32), Audio(bitrate_kbps=64)))
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
    assert audio.info.length == SECONDS and not audio.info.sketchy  # the Info frame is found


def test_an_unnumbered_episode_has_no_track_number(mp3: Path) -> None:
    _tag(mp3, None)

    tags = MP3(str(mp3)).tags

    assert tags is not None
    assert "TRCK" not in tags and tags["TALB"].text == ["Heat Check"]


# twelve segments, as the example episode has; mutagen on its own stores frames of one kind
# by size, and these titles shrink and grow so that size order is not time order
TITLES = [
    "Welcome",
    "Why cities run hotter than the countryside around them",
    "Cool Roofs",
    "Who pays: heat, health and the people most exposed",
    "Trees",
    "Asphalt, concrete and the surfaces that store the afternoon",
    "Water",
    "What a city can do this summer",
    "Costs",
    "Listener questions",
    "Sources",
    "Wrap-up",
]


def _chapters(count: int, length_s: float) -> Timeline:
    step = length_s / count
    return Timeline(
        turns=[],
        chapters=[
            Chapter(segment=f"s{i}", title=TITLES[i], start=i * step, end=(i + 1) * step)
            for i in range(count)
        ],
        duration=length_s,
    )


def _stored_frames(data: bytes) -> list[tuple[str, bytes]]:
    """(frame id, body) of each frame of the file's ID3v2.4 tag, in the order stored: read
    from the bytes (ID3v2.4 structure, section 3 and 4) rather than through mutagen, which
    keeps frames in a dictionary."""
    assert data[:4] == b"ID3\x04"

    def syncsafe(raw: bytes) -> int:
        return sum((byte & 0x7F) << (7 * (3 - i)) for i, byte in enumerate(raw))

    end = 10 + syncsafe(data[6:10])
    frames = []
    at = 10
    while at + 10 <= end and data[at] != 0:
        size = syncsafe(data[at + 4 : at + 8])
        frames.append((data[at : at + 4].decode("ascii"), data[at + 10 : at + 10 + size]))
        at += 10 + size
    assert not any(data[at:end])  # the rest is padding
    return frames


def _chap(body: bytes) -> tuple[str, int, int]:
    element, _, rest = body.partition(b"\0")
    start, end = struct.unpack_from(">II", rest)
    return element.decode("ascii"), start, end


def test_chapters_are_stored_in_time_order_after_the_table_of_contents(
    tmp_path: Path, mp3: Path
) -> None:
    cover = tmp_path / "cover.png"
    cover.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(2000))
    timeline = _chapters(12, SECONDS)

    write_tags(
        mp3,
        title="Why cities run hot",
        show="Heat Check",
        hosts=["Maya", "Theo"],
        published=date(2025, 6, 1),
        timeline=timeline,
        comment="Produced by castline (run run-1)",
        episode_number=3,
        artwork=cover,
    )

    stored = _stored_frames(mp3.read_bytes())
    ids = [frame_id for frame_id, _ in stored]
    chapters = [_chap(body) for frame_id, body in stored if frame_id == "CHAP"]
    assert [element for element, _, _ in chapters] == [f"chp{i}" for i in range(1, 13)]
    assert [(start, end) for _, start, end in chapters] == [
        (round(c.start * 1000), round(c.end * 1000)) for c in timeline.chapters
    ]
    first_chapter = ids.index("CHAP")
    assert ids[first_chapter - 1] == "CTOC"  # the table of contents, then its chapters
    assert ids[first_chapter : first_chapter + 12] == ["CHAP"] * 12  # together
    assert ids[-1] == "APIC"  # the cover last, as mutagen puts it
    assert sorted(ids) == sorted(
        ["TIT2", "TALB", "TPE1", "TDRC", "COMM", "TRCK", "CTOC"] + ["CHAP"] * 12 + ["APIC"]
    )
    # and every frame is still what mutagen reads back
    tags = ID3(str(mp3))
    assert tags.getall("CTOC")[0].child_element_ids == [f"chp{i}" for i in range(1, 13)]
    by_id = {c.element_id: c for c in tags.getall("CHAP")}
    assert [by_id[f"chp{i}"].sub_frames["TIT2"].text[0] for i in range(1, 13)] == TITLES
    assert tags["APIC:cover"].data == cover.read_bytes() and tags["TRCK"].text == ["3"]


def test_tagging_keeps_the_info_header_and_the_audio(mp3: Path) -> None:
    """The tag goes in front of the MP3 stream; the Info frame still opens the stream, so the
    length players show is the programme's, however large the tag (cover art included)."""
    stream = mp3.read_bytes()

    _tag(mp3, 1)
    _tag(mp3, 2)  # tagging again replaces the tag

    data = mp3.read_bytes()
    tag_size = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(data[6:10]))
    assert data[tag_size:] == stream and data[tag_size:].find(b"ID3") == -1
    info = MP3(str(mp3)).info
    assert info.length == SECONDS and info.bitrate_mode == BitrateMode.CBR
    decoded, _ = sf.read(io.BytesIO(data), dtype="float32")
    assert len(decoded) == int(SECONDS * RATE)
    assert ID3(str(mp3))["TRCK"].text == ["2"]


def test_the_tagged_file_is_written_with_the_files_mode(mp3: Path) -> None:
    mp3.chmod(0o644)

    _tag(mp3, 1)

    assert mp3.stat().st_mode & 0o777 == 0o644
    assert not list(mp3.parent.glob(".episode.mp3.*"))  # no temporary file left behind

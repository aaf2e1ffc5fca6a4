"""ID3v2 tags of the episode MP3: title, show, hosts, episode number, date, cover art, comment,
and one CHAP chapter per segment under a CTOC table of contents, timed from the mastered audio.

mutagen builds and writes the tag, but it stores frames by its own ordering (a few text
frames first, then the rest by size, cover art last), which put chapters in the file in no
useful order: tools that list CHAP frames as stored (ffprobe does) showed "Welcome, Wrap-up,
Cool Roofs, ...". So the tag mutagen wrote is read back frame by frame and the table of
contents and its chapters put together, in time order, before the cover art.
"""

from __future__ import annotations

import io
import mimetypes
import struct
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from castline.audio.timeline import Timeline
from castline.errors import RunError
from castline.fileio import write_atomic

if TYPE_CHECKING:
    from mutagen.id3 import ID3

_HEADER = 10  # of the tag and of each frame


def write_tags(
    path: Path,
    *,
    title: str,
    show: str,
    hosts: list[str],
    published: date,
    timeline: Timeline,
    comment: str,
    episode_number: int | None = None,
    artwork: Path | None = None,
) -> None:
    """Tag the MP3 at `path` (replacing any ID3v2 tag it has), written atomically."""
    tags = _tags(
        title=title,
        show=show,
        hosts=hosts,
        published=published,
        timeline=timeline,
        comment=comment,
        episode_number=episode_number,
        artwork=artwork,
    )
    file = io.BytesIO(path.read_bytes())
    tags.save(file, v2_version=4)
    write_atomic(path, _chapters_in_time_order(file.getvalue()))


def _tags(
    *,
    title: str,
    show: str,
    hosts: list[str],
    published: date,
    timeline: Timeline,
    comment: str,
    episode_number: int | None,
    artwork: Path | None,
) -> ID3:
    from mutagen.id3 import APIC, CHAP, COMM, CTOC, ID3, TALB, TDRC, TIT2, TPE1, TRCK, CTOCFlags

    tags = ID3()
    tags.add(TIT2(encoding=3, text=title))
    tags.add(TALB(encoding=3, text=show))
    tags.add(TPE1(encoding=3, text=hosts))
    tags.add(TDRC(encoding=3, text=published.isoformat()))
    tags.add(COMM(encoding=3, lang="eng", desc="", text=comment))
    if episode_number is not None:
        tags.add(TRCK(encoding=3, text=str(episode_number)))
    if artwork is not None and artwork.is_file():
        mime = mimetypes.guess_type(artwork.name)[0] or "image/jpeg"
        tags.add(APIC(encoding=3, mime=mime, type=3, desc="cover", data=artwork.read_bytes()))
    ids = []
    for number, chapter in enumerate(timeline.chapters, start=1):
        element = f"chp{number}"
        ids.append(element)
        tags.add(
            CHAP(
                element_id=element,
                start_time=round(chapter.start * 1000),
                end_time=round(chapter.end * 1000),
                sub_frames=[TIT2(encoding=3, text=chapter.title)],
            )
        )
    if ids:
        tags.add(
            CTOC(
                element_id="toc",
                flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED,
                child_element_ids=ids,
                sub_frames=[TIT2(encoding=3, text="Chapters")],
            )
        )
    return tags


def _syncsafe(raw: bytes) -> int:
    return raw[0] << 21 | raw[1] << 14 | raw[2] << 7 | raw[3]


def _frames(tag: bytes) -> list[bytes]:
    """The frames of an ID3v2.4 tag (its header and padding left out), as stored."""
    frames = []
    position = _HEADER
    end = _HEADER + _syncsafe(tag[6:10])
    while position + _HEADER <= end and tag[position] != 0:  # padding is zeros
        size = _HEADER + _syncsafe(tag[position + 4 : position + 8])
        frames.append(tag[position : position + size])
        position += size
    return frames


def _chapter_start(frame: bytes) -> tuple[int, int]:
    """A CHAP frame's start and end, in milliseconds (after its null-terminated element id)."""
    element_end = frame.index(b"\0", _HEADER)
    start, end = struct.unpack_from(">II", frame, element_end + 1)
    return start, end


def _chapters_in_time_order(data: bytes) -> bytes:
    """`data` (an MP3 opening with the ID3v2.4 tag mutagen wrote) with the tag's frames in
    this order: mutagen's text and comment frames as they were, the CTOC, the CHAP frames
    by start time, then the cover art. The tag keeps its size and padding."""
    if data[:3] != b"ID3" or data[3] != 4:
        raise RunError("the episode MP3 does not open with an ID3v2.4 tag after tagging")
    if data[5] & 0xF0:  # unsynchronised, extended header, experimental, footer
        raise RunError(f"mutagen wrote an ID3 tag with flags {data[5]:#04x}; castline expects 0")
    size = _HEADER + _syncsafe(data[6:10])
    frames = _frames(data[:size])
    kinds: dict[bytes, list[bytes]] = {}
    for frame in frames:
        group = frame[:4] if frame[:4] in (b"CTOC", b"CHAP", b"APIC") else b"rest"
        kinds.setdefault(group, []).append(frame)
    ordered = [
        *kinds.get(b"rest", []),
        *kinds.get(b"CTOC", []),
        *sorted(kinds.get(b"CHAP", []), key=_chapter_start),
        *kinds.get(b"APIC", []),
    ]
    body = b"".join(ordered)
    return data[:_HEADER] + body + data[_HEADER + len(body) : size] + data[size:]

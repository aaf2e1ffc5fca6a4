"""ID3v2 tags of the episode MP3: title, show, hosts, episode number, date, cover art, comment,
and one CHAP chapter per segment under a CTOC table of contents, timed from the mastered audio."""

from __future__ import annotations

import mimetypes
from datetime import date
from pathlib import Path

from castline.audio.timeline import Timeline


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
    tags.save(str(path), v2_version=4)

"""Publishing a voiced episode: transcripts, chapters and notes timed from the audio, and the
episode added to the show's feed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from castline.audio.timeline import Timeline
from castline.config import Show
from castline.domain import Episode
from castline.fileio import write_atomic
from castline.publish import artwork, feed, notes, transcript
from castline.stages.publish import Written

MP3 = "episode.mp3"
CHAPTERS = "chapters.json"
NOTES_HTML = "show-notes.html"
# Every transcript format castline writes, as the feed lists it: (file, MIME type, rel)
TRANSCRIPTS: tuple[tuple[str, str, str | None], ...] = (
    ("episode.vtt", feed.VTT_TYPE, "captions"),
    ("episode.srt", feed.SRT_TYPE, "captions"),
    ("transcript.json", feed.JSON_TRANSCRIPT_TYPE, None),
)


def feed_path(show: Show, show_dir: Path) -> Path:
    return (show_dir / show.output_dir / show.feed.file).resolve()


def public_url(show: Show, show_dir: Path, path: Path) -> str:
    """Where a file under the show's output directory is published: under `feed.base_url`, or
    as a file URL on this machine until one is set."""
    root = (show_dir / show.output_dir).resolve()
    if show.feed.base_url:
        return f"{show.feed.base_url.rstrip('/')}/{path.resolve().relative_to(root).as_posix()}"
    return path.resolve().as_uri()


def publish_audio(
    episode: Episode, timeline: Timeline, directory: Path, show: Show, show_dir: Path
) -> list[Written]:
    documents = {
        "episode.vtt": transcript.webvtt(timeline),
        "episode.srt": transcript.srt(timeline),
        "transcript.json": json.dumps(transcript.podcast_transcript(timeline), indent=2),
        CHAPTERS: json.dumps(
            transcript.podcast_chapters(timeline, title=episode.script.title), indent=2
        ),
        "show-notes.md": notes.show_notes_markdown(episode, timeline),
        NOTES_HTML: notes.show_notes_html(episode, timeline),
    }
    written = []
    for name, text in documents.items():
        digest = write_atomic(directory / name, text)
        written.append(Written(name, directory / name, digest, len(text.encode("utf-8"))))
    assert episode.audio is not None
    target = feed_path(show, show_dir)
    feed.add_episode(
        target,
        show,
        public_url(show, show_dir, target),
        feed_episode(
            show,
            show_dir,
            directory,
            guid=episode.run_id,
            title=episode.script.title,
            description=episode.outline.summary,
            published=datetime.now(UTC),
            audio_bytes=episode.audio.bytes,
            duration_s=episode.audio.duration_s,
            number=episode.number,
        ),
        artwork_url=publish_artwork(show, show_dir),
    )
    notice = feed.preview_notice(show)
    if notice:
        from castline.engine import runtime

        runtime.store().add_event(episode.run_id, "feed-preview", notice, stage="publish")
    return written


def feed_episode(
    show: Show,
    show_dir: Path,
    directory: Path,
    *,
    guid: str,
    title: str,
    description: str,
    published: datetime,
    audio_bytes: int,
    duration_s: float,
    number: int | None,
) -> feed.FeedEpisode:
    """An episode as the feed lists it, from the files published in `directory`: every
    transcript format found there, the chapters, and the HTML show notes."""

    def url(name: str) -> str:
        return public_url(show, show_dir, directory / name)

    notes_file = directory / NOTES_HTML
    return feed.FeedEpisode(
        guid=guid,
        title=title,
        description=description,
        published=published,
        audio_url=url(MP3),
        audio_bytes=audio_bytes,
        duration_s=duration_s,
        transcripts=tuple(
            feed.TranscriptLink(url(name), kind, rel)
            for name, kind, rel in TRANSCRIPTS
            if (directory / name).is_file()
        ),
        chapters_url=url(CHAPTERS) if (directory / CHAPTERS).is_file() else None,
        notes_html=notes_file.read_text(encoding="utf-8") if notes_file.is_file() else None,
        episode_number=number,
        explicit=show.show.explicit,
    )


def publish_artwork(show: Show, show_dir: Path) -> str | None:
    """Copy the show's cover art beside the feed (before the feed names it) and return its
    URL; None when the artwork is a URL already, or there is none."""
    folder = feed_path(show, show_dir).parent
    name = artwork.publish(show, show_dir, folder)
    return public_url(show, show_dir, folder / name) if name else None


def _readable_episodes(path: Path) -> list[feed.FeedEpisode]:
    """The episodes of the feed being rebuilt, or none if it is missing or unreadable (it is
    rebuilt because it may be damaged)."""
    try:
        return feed.read_episodes(path)
    except feed.FeedError:  # damaged: the store is the record then
        return []


def rebuild_feed(show_path: Path) -> tuple[Path, int]:
    """Write the show's feed again from the store: every completed, voiced episode of the show
    (after moving files, changing `feed.base_url`, or losing the feed file)."""
    from castline.config import load_show, show_key
    from castline.engine import runtime

    show = load_show(show_path)
    show_dir = show_path.parent
    artwork.check(show, show_dir, bible=show_path)  # before anything is written
    store = runtime.store()
    target = feed_path(show, show_dir)
    # the date each episode was first published, where the feed has it: rebuilding keeps it
    first_published = {e.guid: e.published for e in _readable_episodes(target)}
    episodes: list[feed.FeedEpisode] = []
    for record in store.list_runs(limit=100_000):
        if (
            record.status != "completed"
            or record.spec.get("show", {}).get("show", {}).get("title", "").casefold().split()
            != show_key(show).split()
        ):
            continue
        directory = Path(record.output_dir)
        stored = directory / "episode.json"
        if not stored.is_file() or not (directory / MP3).is_file():
            continue
        episode = Episode.model_validate_json(stored.read_text())
        if episode.audio is None:
            continue
        episodes.append(
            feed_episode(
                show,
                show_dir,
                directory,
                guid=record.id,
                title=episode.script.title,
                description=episode.outline.summary,
                published=first_published.get(record.id)
                or datetime.fromtimestamp(record.finished_at or record.created_at, UTC),
                audio_bytes=(directory / MP3).stat().st_size,
                duration_s=episode.audio.duration_s,
                # the store's number is the one fixed for the run; episode.json repeats it
                number=record.number if record.number is not None else episode.number,
            )
        )
    feed.write_feed(
        target,
        show,
        public_url(show, show_dir, target),
        episodes,
        artwork_url=publish_artwork(show, show_dir),
    )
    return target, len(episodes)

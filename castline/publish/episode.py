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
from castline.publish import feed, notes, transcript
from castline.stages.publish import Written

MP3 = "episode.mp3"


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
        "chapters.json": json.dumps(
            transcript.podcast_chapters(timeline, title=episode.script.title), indent=2
        ),
        "show-notes.md": notes.show_notes_markdown(episode, timeline),
        "show-notes.html": notes.show_notes_html(episode, timeline),
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
        feed.FeedEpisode(
            guid=episode.run_id,
            title=episode.script.title,
            description=episode.outline.summary,
            published=datetime.now(UTC),
            audio_url=public_url(show, show_dir, directory / MP3),
            audio_bytes=episode.audio.bytes,
            duration_s=episode.audio.duration_s,
            transcript_url=public_url(show, show_dir, directory / "episode.vtt"),
            chapters_url=public_url(show, show_dir, directory / "chapters.json"),
            episode_number=episode.number,
            explicit=show.show.explicit,
        ),
    )
    return written


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
            feed.FeedEpisode(
                guid=record.id,
                title=episode.script.title,
                description=episode.outline.summary,
                published=first_published.get(record.id)
                or datetime.fromtimestamp(record.finished_at or record.created_at, UTC),
                audio_url=public_url(show, show_dir, directory / MP3),
                audio_bytes=(directory / MP3).stat().st_size,
                duration_s=episode.audio.duration_s,
                transcript_url=public_url(show, show_dir, directory / "episode.vtt"),
                chapters_url=public_url(show, show_dir, directory / "chapters.json"),
                # the store's number is the one fixed for the run; episode.json repeats it
                episode_number=record.number if record.number is not None else episode.number,
                explicit=show.show.explicit,
            )
        )
    feed.write_feed(target, show, public_url(show, show_dir, target), episodes)
    return target, len(episodes)

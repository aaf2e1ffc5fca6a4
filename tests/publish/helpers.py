"""Helpers for the publishing tests: a show and episodes as the feed writer takes them, cover
images of chosen sizes and modes, a public feed's settings."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image

from castline.config import BrandVoice, Feed, Host, Show, ShowInfo
from castline.publish.feed import ITUNES_NS, PODCAST_NS, FeedEpisode, TranscriptLink

PUBLIC_FEED = {
    "public": True,
    "base_url": "https://heat.example/pod",
    "owner_email": "owner@heat.example",
    "categories": ["Science > Earth Sciences", "Technology"],
}


def make_image(path: Path, size: tuple[int, int] = (1400, 1400), mode: str = "RGB") -> Path:
    """An image file of `size` and `mode`, in the format its extension names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size).save(path)
    return path


FEED_URL = "https://example.org/pod/feed.xml"
ARTWORK_URL = "https://example.org/pod/artwork-0123456789ab.png"
NS = {
    "itunes": ITUNES_NS,
    "podcast": PODCAST_NS,
    "atom": "http://www.w3.org/2005/Atom",
    "content": "http://purl.org/rss/1.0/modules/content/",
}


def make_show(**info: object) -> Show:
    fields: dict[str, object] = {
        "title": "Heat Island",
        "description": "Why cities run hot.",
        "author": "Ada Host",
        "artwork": ARTWORK_URL,
    }
    fields.update(info)
    return Show(
        show=ShowInfo.model_validate(fields),
        hosts=[Host(name="Ada", persona="curious")],
        brand_voice=BrandVoice(style_guide="plain"),
        feed=Feed(
            public=True,
            base_url="https://example.org/pod",
            owner_email="owner@example.org",
            categories=["Science > Earth Sciences", "Technology"],
        ),
    )


def transcripts(guid: str) -> tuple[TranscriptLink, ...]:
    base = f"https://example.org/pod/{guid}"
    return (
        TranscriptLink(f"{base}/episode.vtt", "text/vtt", "captions"),
        TranscriptLink(f"{base}/episode.srt", "application/x-subrip", "captions"),
        TranscriptLink(f"{base}/transcript.json", "application/json"),
    )


def make_episode(guid: str = "run-1", days: int = 0, **changes: object) -> FeedEpisode:
    episode = FeedEpisode(
        guid=guid,
        title=f"Episode {guid}",
        description="Shade, trees and cool roofs.",
        published=datetime(2025, 6, 1, 9, 30, tzinfo=UTC) + timedelta(days=days),
        audio_url=f"https://example.org/pod/{guid}/episode.mp3",
        audio_bytes=12_345_678,
        duration_s=1234.4,
        transcripts=transcripts(guid),
        chapters_url=f"https://example.org/pod/{guid}/chapters.json",
        notes_html="<h1>Episode</h1>\n<p>Shade &amp; trees</p>",
        episode_number=7,
        explicit=False,
    )
    return replace(episode, **changes)  # type: ignore[arg-type]


def with_feed(show: Show, **settings: object) -> Show:
    """`show` with some of its feed settings changed (validated as the show bible would be)."""
    fields = {**show.feed.model_dump(), **settings}
    return show.model_copy(update={"feed": Feed.model_validate(fields)})

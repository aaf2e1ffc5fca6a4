"""The show's podcast feed: RSS 2.0 with the iTunes and Podcasting 2.0 (`podcast:`) namespaces.

The feed is the one file every podcast app reads, so it is rebuilt whole from the show bible and
the list of episodes on each publish, and written atomically: an app fetching it mid-publish gets
the old feed or the new one, never a truncated document that would make it drop the show.

castline keeps no separate episode index: the feed itself is the record of what is published.
`read_episodes` parses it back, so `add_episode` can add or replace one episode (by its guid) and
rewrite the rest unchanged.

The XML is built with `xml.etree.ElementTree` rather than feedgen: feedgen 1.0's iTunes extension
only accepts "yes"/"no"/"clean" for `itunes:explicit` (Apple now documents "true"/"false"), it
would need a custom extension class for every `podcast:` element anyway, it cannot read a feed
back (so the parser would be ElementTree regardless), and it ships no type information.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import quote, urljoin, urlsplit

from castline.config import Show
from castline.errors import CastlineError
from castline.fileio import write_atomic

ITUNES_NS = "http://www.itunes.com/dtds/podcast-1.0.dtd"
ATOM_NS = "http://www.w3.org/2005/Atom"
# The namespace the Podcasting 2.0 spec declares; readers must treat the older GitHub address as
# the same namespace, so feeds written by earlier tools are still read back.
PODCAST_NS = "https://podcastindex.org/namespace/1.0"
LEGACY_PODCAST_NS = "https://github.com/Podcastindex-org/podcast-namespace/blob/main/docs/1.0.md"
_PODCAST_NAMESPACES = (PODCAST_NS, LEGACY_PODCAST_NS, LEGACY_PODCAST_NS.lower())

# Fixed by the Podcasting 2.0 spec (docs/tags/guid.md): every tool derives the same podcast:guid
# from the same feed URL, which is what lets directories recognise a show across hosts.
PODCAST_GUID_NAMESPACE = uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6")

AUDIO_TYPE = "audio/mpeg"
TRANSCRIPT_TYPE = "text/vtt"
CHAPTERS_TYPE = "application/json+chapters"
GENERATOR = "castline"

# Apple's `itunes:episodeType`: castline publishes full episodes; a trailer or bonus item edited
# into the feed by hand is kept as it is when the feed is rewritten.
EpisodeType = Literal["full", "trailer", "bonus"]
EPISODE_TYPES: tuple[EpisodeType, ...] = get_args(EpisodeType)

# The prefixes apps and validators expect to see (ElementTree would otherwise write ns0, ns1...).
ET.register_namespace("itunes", ITUNES_NS)
ET.register_namespace("podcast", PODCAST_NS)
ET.register_namespace("atom", ATOM_NS)

# Characters XML 1.0 cannot carry at all, even escaped; one in a model-written title would make
# the whole feed unparseable, so they are dropped.
_INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class FeedError(CastlineError):
    """The existing feed file cannot be read back, so castline will not rewrite it blindly."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"feed {path}: {reason}; fix the file or move it away and publish again "
            "(castline rebuilds the feed from the episodes it can read)"
        )


@dataclass(frozen=True)
class FeedEpisode:
    """One published episode as the feed describes it.

    `guid` must never change for an episode: podcast apps key downloads and play state on it, so
    a new guid shows up as a new episode (castline passes the run id).
    """

    guid: str
    title: str
    description: str
    published: datetime
    audio_url: str
    audio_bytes: int
    duration_s: float
    transcript_url: str | None = None
    chapters_url: str | None = None
    episode_number: int | None = None
    episode_type: EpisodeType = "full"
    explicit: bool = False

    def __post_init__(self) -> None:
        # Checked here rather than when writing, so a bad episode fails where it was made.
        if not self.guid.strip():
            raise ValueError("an episode's guid must not be empty")
        if self.published.tzinfo is None or self.published.utcoffset() is None:
            raise ValueError(
                f"episode {self.guid!r}: published must be timezone-aware; a naive time would be "
                "read differently by apps in different time zones"
            )
        if self.audio_bytes < 0:
            raise ValueError(f"episode {self.guid!r}: audio_bytes must not be negative")
        if self.duration_s < 0:
            raise ValueError(f"episode {self.guid!r}: duration_s must not be negative")
        if self.episode_number is not None and self.episode_number < 1:
            raise ValueError(f"episode {self.guid!r}: episode_number must be 1 or more")


def podcast_guid(feed_url: str) -> str:
    """The Podcasting 2.0 `podcast:guid` for a feed URL: a UUIDv5, in the spec's namespace, of the
    URL without its scheme and trailing slashes (so http/https and a stray "/" do not matter)."""
    seed = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://", "", feed_url.strip()).rstrip("/")
    return str(uuid.uuid5(PODCAST_GUID_NAMESPACE, seed))


def read_episodes(path: Path) -> list[FeedEpisode]:
    """The episodes in an existing castline feed, in file order; no file yet means no episodes.

    Only the items are read: the channel is always rebuilt from the show bible.
    """
    channel = _read_channel(path)
    if channel is None:
        return []
    return [_parse_item(path, position, item) for position, item in enumerate(channel.iter("item"))]


def write_feed(path: Path, show: Show, feed_url: str, episodes: list[FeedEpisode]) -> None:
    """Write the whole feed, newest episode first, atomically.

    The podcast:guid already in the file at `path` is kept: the spec assigns it once in a show's
    life, so moving the feed to a new URL must not give the show a new identity.
    """
    guids = [episode.guid for episode in episodes]
    duplicates = sorted({guid for guid in guids if guids.count(guid) > 1})
    if duplicates:
        raise ValueError(f"episodes share a guid ({', '.join(duplicates)}); apps would merge them")
    identity = _existing_podcast_guid(path) or podcast_guid(feed_url)
    root = _build(show, feed_url, identity, episodes, built=datetime.now(UTC))
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    write_atomic(path, f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n')


def add_episode(path: Path, show: Show, feed_url: str, episode: FeedEpisode) -> list[FeedEpisode]:
    """Add an episode to the feed, or replace the one with the same guid (a re-publish must update
    the item, never duplicate it); return the episodes now in the feed, newest first.

    An episode already in the feed keeps the date it was first published. The result is read
    back from the written file, so it is exactly what apps will see (durations
    in whole seconds, for one) and equals a later `read_episodes(path)`.
    """
    present = read_episodes(path)
    first = next((e.published for e in present if e.guid == episode.guid), episode.published)
    kept = [existing for existing in present if existing.guid != episode.guid]
    # published once: a re-published episode (re-voiced, re-cut) keeps its date and its place
    write_feed(path, show, feed_url, [*kept, replace(episode, published=first)])
    return read_episodes(path)


# --- writing -----------------------------------------------------------------------------------


def _newest_first(episodes: list[FeedEpisode]) -> list[FeedEpisode]:
    # The guid breaks ties so that rewriting the same episodes gives the same order.
    by_guid = sorted(episodes, key=lambda episode: episode.guid)
    return sorted(by_guid, key=lambda episode: episode.published, reverse=True)


def _build(
    show: Show, feed_url: str, identity: str, episodes: list[FeedEpisode], built: datetime
) -> ET.Element:
    info = show.show
    root = ET.Element("rss", {"version": "2.0"})
    channel = ET.SubElement(root, "channel")
    _text(channel, "title", info.title)
    _text(channel, "link", info.website or feed_url)
    _text(channel, "description", info.description)
    _text(channel, "language", info.language)
    _text(channel, "generator", GENERATOR)
    _text(channel, "lastBuildDate", _rfc822(built))
    ET.SubElement(
        channel,
        _atom("link"),
        {"href": feed_url, "rel": "self", "type": "application/rss+xml"},
    )
    _text(channel, _itunes("author"), info.author)
    owner = ET.SubElement(channel, _itunes("owner"))
    _text(owner, _itunes("name"), info.author)
    if show.feed.owner_email:
        _text(owner, _itunes("email"), show.feed.owner_email)
    if info.artwork:
        ET.SubElement(channel, _itunes("image"), {"href": _artwork_url(show, feed_url)})
    ET.SubElement(channel, _itunes("category"), {"text": show.feed.category})
    _text(channel, _itunes("explicit"), _flag(info.explicit))
    _text(channel, _itunes("type"), "episodic")
    _text(channel, _podcast("guid"), identity)
    _text(channel, _podcast("locked"), "no")
    for episode in _newest_first(episodes):
        _item(channel, episode)
    return root


def _item(channel: ET.Element, episode: FeedEpisode) -> None:
    item = ET.SubElement(channel, "item")
    _text(item, "title", episode.title)
    _text(item, "guid", episode.guid).set("isPermaLink", "false")
    _text(item, "pubDate", _rfc822(episode.published))
    _text(item, "description", episode.description)
    ET.SubElement(
        item,
        "enclosure",
        {"url": episode.audio_url, "length": str(episode.audio_bytes), "type": AUDIO_TYPE},
    )
    _text(item, _itunes("duration"), str(round(episode.duration_s)))
    if episode.episode_number is not None:
        _text(item, _itunes("episode"), str(episode.episode_number))
    _text(item, _itunes("episodeType"), episode.episode_type)
    _text(item, _itunes("explicit"), _flag(episode.explicit))
    if episode.transcript_url:
        ET.SubElement(
            item, _podcast("transcript"), {"url": episode.transcript_url, "type": TRANSCRIPT_TYPE}
        )
    if episode.chapters_url:
        ET.SubElement(
            item, _podcast("chapters"), {"url": episode.chapters_url, "type": CHAPTERS_TYPE}
        )


def _text(parent: ET.Element, tag: str, value: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = _INVALID_XML_CHARS.sub("", value)
    return element


def _artwork_url(show: Show, feed_url: str) -> str:
    """The artwork as a URL: as given if it is one, else resolved against where the episodes are
    served (feed.base_url, or the folder of the feed itself)."""
    artwork = show.show.artwork or ""
    if urlsplit(artwork).scheme in {"http", "https"}:
        return artwork
    base = f"{show.feed.base_url.rstrip('/')}/" if show.feed.base_url else feed_url
    return urljoin(base, quote(artwork.removeprefix("./").lstrip("/")))


def _rfc822(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _itunes(name: str) -> str:
    return f"{{{ITUNES_NS}}}{name}"


def _podcast(name: str) -> str:
    return f"{{{PODCAST_NS}}}{name}"


def _atom(name: str) -> str:
    return f"{{{ATOM_NS}}}{name}"


# --- reading -----------------------------------------------------------------------------------


def _read_channel(path: Path) -> ET.Element | None:
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        return None
    except ET.ParseError as exc:
        raise FeedError(path, f"is not well-formed XML ({exc})") from None
    channel = root.find("channel")
    if root.tag != "rss" or channel is None:
        raise FeedError(path, "is not an RSS feed (no <rss><channel>)")
    return channel


def _existing_podcast_guid(path: Path) -> str | None:
    try:
        channel = _read_channel(path)
    except FeedError:
        return None  # the file is about to be replaced; there is no identity to keep
    if channel is None:
        return None
    for namespace in _PODCAST_NAMESPACES:
        value = (channel.findtext(f"{{{namespace}}}guid") or "").strip()
        if value:
            return value
    return None


def _parse_item(path: Path, position: int, item: ET.Element) -> FeedEpisode:
    def required(tag: str) -> str:
        value = item.findtext(tag)
        if value is None or not value.strip():
            raise FeedError(path, f"item {position + 1} has no <{_plain(tag)}>")
        return value.strip()

    guid = required("guid")
    enclosure = item.find("enclosure")
    if enclosure is None or not enclosure.get("url"):
        raise FeedError(path, f"item {position + 1} ({guid}) has no <enclosure url=...>")
    try:
        published = parsedate_to_datetime(required("pubDate"))
        if published.tzinfo is None:  # RFC 2822's "-0000": UTC, local zone unknown
            published = published.replace(tzinfo=UTC)
        audio_bytes = int(enclosure.get("length") or 0)
        duration_s = _seconds(item.findtext(_itunes("duration")) or "0")
        number_text = (item.findtext(_itunes("episode")) or "").strip()
        episode_number = int(number_text) if number_text else None
        return FeedEpisode(
            guid=guid,
            title=(item.findtext("title") or "").strip(),
            description=(item.findtext("description") or "").strip(),
            published=published,
            audio_url=enclosure.get("url", ""),
            audio_bytes=audio_bytes,
            duration_s=duration_s,
            transcript_url=_podcast_url(item, "transcript"),
            chapters_url=_podcast_url(item, "chapters"),
            episode_number=episode_number,
            episode_type=_episode_type(item.findtext(_itunes("episodeType"))),
            explicit=(item.findtext(_itunes("explicit")) or "").strip().lower()
            in {"true", "yes", "explicit"},
        )
    except ValueError as exc:
        raise FeedError(path, f"item {position + 1} ({guid}) is invalid: {exc}") from None


def _podcast_url(item: ET.Element, name: str) -> str | None:
    for namespace in _PODCAST_NAMESPACES:
        element = item.find(f"{{{namespace}}}{name}")
        if element is not None and element.get("url"):
            return element.get("url")
    return None


def _episode_type(text: str | None) -> EpisodeType:
    """`itunes:episodeType`, "full" when absent or not one Apple defines (as Apple reads it)."""
    value = (text or "").strip().lower()
    for known in EPISODE_TYPES:
        if value == known:
            return known
    return "full"


def _seconds(text: str) -> float:
    """`itunes:duration` as seconds; castline writes whole seconds, but a hand-edited feed may
    say H:MM:SS or MM:SS, which Apple also accepts."""
    total = 0.0
    for part in text.strip().split(":"):
        total = total * 60 + float(part)
    return total


def _plain(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]

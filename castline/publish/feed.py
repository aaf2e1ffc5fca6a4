"""The show's podcast feed: RSS 2.0 with the iTunes and Podcasting 2.0 (`podcast:`) namespaces.

The feed is the one file every podcast app reads, so it is rebuilt whole from the show bible and
the list of episodes on each publish, and written atomically: an app fetching it mid-publish gets
the old feed or the new one, never a truncated document that would make it drop the show.

castline keeps no separate episode index: the feed itself is the record of what is published.
`read_episodes` parses it back, so `add_episode` can add or replace one episode (by its guid) and
rewrite the rest unchanged.

A show whose `feed.public` is not set gets a preview: blocked from every directory
(`itunes:block`, `podcast:block`), a comment saying so, and no `podcast:guid`, so that a preview
submitted by mistake is never listed and never fixes the show's identity to a local address.
What directories require of a public feed is checked by `castline.publish.feedcheck`.

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
from urllib.parse import urlsplit

from castline.config import Show
from castline.errors import CastlineError
from castline.fileio import write_atomic

ITUNES_NS = "http://www.itunes.com/dtds/podcast-1.0.dtd"
ATOM_NS = "http://www.w3.org/2005/Atom"
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
# The namespace the Podcasting 2.0 spec declares; readers must treat the older GitHub address as
# the same namespace, so feeds written by earlier tools are still read back.
PODCAST_NS = "https://podcastindex.org/namespace/1.0"
LEGACY_PODCAST_NS = "https://github.com/Podcastindex-org/podcast-namespace/blob/main/docs/1.0.md"
_PODCAST_NAMESPACES = (PODCAST_NS, LEGACY_PODCAST_NS, LEGACY_PODCAST_NS.lower())

# Fixed by the Podcasting 2.0 spec (docs/tags/guid.md): every tool derives the same podcast:guid
# from the same feed URL, which is what lets directories recognise a show across hosts.
PODCAST_GUID_NAMESPACE = uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6")

AUDIO_TYPE = "audio/mpeg"
CHAPTERS_TYPE = "application/json+chapters"
# The MIME types docs/tags/transcript.md of the podcast namespace gives for each format castline
# writes (SRT's is application/x-subrip; some readers also know the older application/srt).
VTT_TYPE = "text/vtt"
SRT_TYPE = "application/x-subrip"
JSON_TRANSCRIPT_TYPE = "application/json"
TRANSCRIPT_TYPES = (VTT_TYPE, SRT_TYPE, JSON_TRANSCRIPT_TYPE)
GENERATOR = "castline"
PREVIEW_NOTICE = (
    " castline local preview: marked itunes:block and podcast:block so that no directory lists "
    "it. To publish, set feed.public: true and feed.base_url in the show bible. "
)

# Apple's `itunes:episodeType`: castline publishes full episodes; a trailer or bonus item edited
# into the feed by hand is kept as it is when the feed is rewritten.
EpisodeType = Literal["full", "trailer", "bonus"]
EPISODE_TYPES: tuple[EpisodeType, ...] = get_args(EpisodeType)

# The prefixes apps and validators expect to see (ElementTree would otherwise write ns0, ns1...).
ET.register_namespace("itunes", ITUNES_NS)
ET.register_namespace("podcast", PODCAST_NS)
ET.register_namespace("atom", ATOM_NS)
ET.register_namespace("content", CONTENT_NS)

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
class TranscriptLink:
    """A `podcast:transcript`: one file of the episode's transcript, in one format. Caption
    files (timed for display while playing) carry `rel="captions"`."""

    url: str
    type: str
    rel: str | None = None


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
    transcripts: tuple[TranscriptLink, ...] = ()
    chapters_url: str | None = None
    notes_html: str | None = None  # the show notes, as the item's content:encoded
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


def preview_notice(show: Show) -> str | None:
    """What to tell the user when the show's feed is a preview (not meant for directories), or
    None when it is public."""
    if show.feed.public:
        return None
    where = (
        f"served under {show.feed.base_url}"
        if show.feed.base_url
        else "with file:// links to this machine"
    )
    return (
        f"the feed is a local preview ({where}, marked itunes:block and podcast:block so no "
        "directory lists it); to publish it set `feed.public: true` and `feed.base_url`, "
        "`feed.owner_email` and `feed.categories` in the show bible"
    )


def read_episodes(path: Path) -> list[FeedEpisode]:
    """The episodes in an existing castline feed, in file order; no file yet means no episodes.

    Only the items are read: the channel is always rebuilt from the show bible.
    """
    channel = _read_channel(path)
    if channel is None:
        return []
    return [_parse_item(path, position, item) for position, item in enumerate(channel.iter("item"))]


def write_feed(
    path: Path,
    show: Show,
    feed_url: str,
    episodes: list[FeedEpisode],
    *,
    artwork_url: str | None = None,
) -> None:
    """Write the whole feed, newest episode first, atomically. `artwork_url` is where the
    published cover art is served (an artwork given as a URL is used as it is without it).

    The podcast:guid already in the file at `path` is kept: the spec assigns it once in a show's
    life, so moving the feed to a new URL must not give the show a new identity. A preview (a
    show whose feed is not public) is given none: its URL is not the one the show will have.
    """
    guids = [episode.guid for episode in episodes]
    duplicates = sorted({guid for guid in guids if guids.count(guid) > 1})
    if duplicates:
        raise ValueError(f"episodes share a guid ({', '.join(duplicates)}); apps would merge them")
    identity = _existing_podcast_guid(path) or (
        podcast_guid(feed_url) if show.feed.public else None
    )
    if artwork_url is None and show.show.artwork and _is_web_url(show.show.artwork):
        artwork_url = show.show.artwork
    root = _build(show, feed_url, identity, artwork_url, episodes, built=datetime.now(UTC))
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    notice = "" if show.feed.public else f"<!--{PREVIEW_NOTICE}-->\n"
    write_atomic(path, f'<?xml version="1.0" encoding="UTF-8"?>\n{notice}{body}\n')


def add_episode(
    path: Path,
    show: Show,
    feed_url: str,
    episode: FeedEpisode,
    *,
    artwork_url: str | None = None,
) -> list[FeedEpisode]:
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
    write_feed(
        path, show, feed_url, [*kept, replace(episode, published=first)], artwork_url=artwork_url
    )
    return read_episodes(path)


# --- writing -----------------------------------------------------------------------------------


def _newest_first(episodes: list[FeedEpisode]) -> list[FeedEpisode]:
    # The guid breaks ties so that rewriting the same episodes gives the same order.
    by_guid = sorted(episodes, key=lambda episode: episode.guid)
    return sorted(by_guid, key=lambda episode: episode.published, reverse=True)


def _build(
    show: Show,
    feed_url: str,
    identity: str | None,
    artwork_url: str | None,
    episodes: list[FeedEpisode],
    built: datetime,
) -> ET.Element:
    info, settings = show.show, show.feed
    link = info.website or feed_url
    root = ET.Element("rss", {"version": "2.0"})
    channel = ET.SubElement(root, "channel")
    _text(channel, "title", info.title)
    _text(channel, "link", link)
    _text(channel, "description", info.description)
    _text(channel, "language", info.language)
    _text(channel, "generator", GENERATOR)
    _text(channel, "lastBuildDate", _rfc822(built))
    ET.SubElement(
        channel,
        _atom("link"),
        {"href": feed_url, "rel": "self", "type": "application/rss+xml"},
    )
    if artwork_url:
        # RSS 2.0's own image: its title and link must be the channel's
        image = ET.SubElement(channel, "image")
        _text(image, "url", artwork_url)
        _text(image, "title", info.title)
        _text(image, "link", link)
        ET.SubElement(channel, _itunes("image"), {"href": artwork_url})
    _text(channel, _itunes("author"), info.author)
    owner = ET.SubElement(channel, _itunes("owner"))
    _text(owner, _itunes("name"), settings.owner_name or info.author)
    if settings.owner_email:
        _text(owner, _itunes("email"), settings.owner_email)
    for name, subcategories in _grouped_categories(settings.categories):
        category = ET.SubElement(channel, _itunes("category"), {"text": name})
        for subcategory in subcategories:
            ET.SubElement(category, _itunes("category"), {"text": subcategory})
    _text(channel, _itunes("explicit"), _flag(info.explicit))
    _text(channel, _itunes("type"), "episodic")
    if not settings.public:  # a preview must not be listed if it is ever submitted
        _text(channel, _itunes("block"), "Yes")
        _text(channel, _podcast("block"), "yes")
    if identity:
        _text(channel, _podcast("guid"), identity)
    locked = _text(channel, _podcast("locked"), "yes" if settings.locked else "no")
    if settings.owner_email:
        locked.set("owner", settings.owner_email)
    for host in show.hosts:
        _text(channel, _podcast("person"), host.name).set("role", "host")
    for episode in _newest_first(episodes):
        _item(channel, episode)
    return root


def _grouped_categories(categories: list[str]) -> list[tuple[str, list[str]]]:
    """`Parent > Sub` entries as Apple nests them: one element per parent, in the order the
    show bible gives them, holding its subcategories."""
    grouped: dict[str, list[str]] = {}
    for entry in categories:
        name, _, subcategory = (part.strip() for part in entry.partition(">"))
        subs = grouped.setdefault(name, [])
        if subcategory and subcategory not in subs:
            subs.append(subcategory)
    return list(grouped.items())


def _item(channel: ET.Element, episode: FeedEpisode) -> None:
    item = ET.SubElement(channel, "item")
    _text(item, "title", episode.title)
    _text(item, "guid", episode.guid).set("isPermaLink", "false")
    _text(item, "pubDate", _rfc822(episode.published))
    _text(item, "description", episode.description)
    if episode.notes_html:
        _text(item, _content("encoded"), episode.notes_html)
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
    for transcript in episode.transcripts:
        attributes = {"url": transcript.url, "type": transcript.type}
        if transcript.rel:
            attributes["rel"] = transcript.rel
        ET.SubElement(item, _podcast("transcript"), attributes)
    if episode.chapters_url:
        ET.SubElement(
            item, _podcast("chapters"), {"url": episode.chapters_url, "type": CHAPTERS_TYPE}
        )


def _text(parent: ET.Element, tag: str, value: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = _INVALID_XML_CHARS.sub("", value)
    return element


def _is_web_url(text: str) -> bool:
    return urlsplit(text).scheme in {"http", "https"}


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


def _content(name: str) -> str:
    return f"{{{CONTENT_NS}}}{name}"


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
    """The show's podcast:guid in the feed at `path`, to keep. One that an earlier castline
    derived from the feed's local file:// address is not an identity the show ever had in
    public, so it is dropped."""
    try:
        channel = _read_channel(path)
    except FeedError:
        return None  # the file is about to be replaced; there is no identity to keep
    if channel is None:
        return None
    for namespace in _PODCAST_NAMESPACES:
        value = (channel.findtext(f"{{{namespace}}}guid") or "").strip()
        if value:
            self_link = channel.find(_atom("link"))
            href = self_link.get("href", "") if self_link is not None else ""
            if href.startswith("file:") and value == podcast_guid(href):
                return None
            return value
    return None


def is_preview(channel: ET.Element) -> bool:
    """Whether a feed's channel is blocked from every directory (how castline marks a
    preview): `itunes:block` yes, or an unbounded `podcast:block` yes."""
    if (channel.findtext(_itunes("block")) or "").strip().lower() == "yes":
        return True
    return any(
        (element.text or "").strip().lower() == "yes" and "id" not in element.attrib
        for namespace in _PODCAST_NAMESPACES
        for element in channel.findall(f"{{{namespace}}}block")
    )


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
            transcripts=_transcripts(item),
            chapters_url=_podcast_url(item, "chapters"),
            notes_html=(item.findtext(_content("encoded")) or "").strip() or None,
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


def _transcripts(item: ET.Element) -> tuple[TranscriptLink, ...]:
    return tuple(
        TranscriptLink(element.get("url", ""), element.get("type", ""), element.get("rel"))
        for namespace in _PODCAST_NAMESPACES
        for element in item.findall(f"{{{namespace}}}transcript")
        if element.get("url")
    )


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

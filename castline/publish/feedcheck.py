"""`castline feed --check`: the written feed checked as Apple Podcasts, Spotify and the Podcast
Index would check it, before anyone submits it.

The rules are the directories' published requirements plus castline's own promises: the basics
of RSS 2.0 (required channel and item elements, an enclosure with its length and type, unique
item guids, RFC 2822 dates, durations), Apple's (artwork, categories, owner, explicit), the
Podcasting 2.0 elements castline writes (`podcast:guid`, `podcast:locked` with its owner,
`podcast:person`, every transcript format with its MIME type, chapters) and that the files the
feed links are there: a URL under `feed.base_url` (or a file:// URL) is resolved to the file
in the output folder, which must exist, and the enclosure's length must be that file's size.

The check reads the file only and returns typed findings; rendering them is the CLI's job.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from castline.config import Show
from castline.errors import ConfigError
from castline.publish import artwork, categories, feed
from castline.publish.feed import ATOM_NS, CONTENT_NS, ITUNES_NS, PODCAST_NS

Severity = Literal["error", "warning"]
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_DURATION = re.compile(r"^(\d+|\d+:[0-5]?\d|\d+:[0-5]?\d:[0-5]?\d)$")
# the Podcasting 2.0 transcript formats castline publishes, each of which an item must list
_TRANSCRIPT_FORMATS = {
    feed.VTT_TYPE: "WebVTT",
    feed.SRT_TYPE: "SRT",
    feed.JSON_TRANSCRIPT_TYPE: "JSON",
}
# what docs/tags/transcript.md allows: castline's three and two it does not write
_SPEC_TRANSCRIPT_TYPES = ("text/plain", "text/html", *_TRANSCRIPT_FORMATS)
# names some readers still use for a format the spec now names otherwise
_OLDER_TYPES = {"application/srt": feed.SRT_TYPE}
_NS = {"itunes": ITUNES_NS, "podcast": PODCAST_NS, "atom": ATOM_NS, "content": CONTENT_NS}


class FeedMissing(ConfigError):
    """There is no feed file to check: nothing has been published yet, or it was moved."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"feed {path} does not exist; produce an episode, or run `castline feed SHOW` to "
            "write it from the episodes in the store"
        )


@dataclass(frozen=True)
class Finding:
    """One rule the feed breaks: which rule, where in the feed, and what to do about it."""

    rule: str
    where: str
    message: str
    severity: Severity = "error"


@dataclass(frozen=True)
class FeedCheck:
    """The outcome of checking one feed file."""

    path: Path
    items: int
    findings: list[Finding] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not any(finding.severity == "error" for finding in self.findings)


def check_feed(show: Show, show_dir: Path) -> FeedCheck:
    """Check the show's written feed (`feed.file` in its output folder) against the rules."""
    from castline.publish.episode import feed_path

    path = feed_path(show, show_dir)
    if not path.is_file():
        raise FeedMissing(path)
    return check_file(path, show, (show_dir / show.output_dir).resolve())


def check_file(path: Path, show: Show, output_root: Path) -> FeedCheck:
    """Check the feed at `path`; `output_root` is the folder `show.feed.base_url` serves."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        return FeedCheck(path, 0, [Finding("xml", "feed", f"not well-formed XML: {exc}")])
    channel = root.find("channel")
    if root.tag != "rss" or channel is None:
        return FeedCheck(path, 0, [Finding("xml", "feed", "not RSS: no <rss><channel>")])
    rules = _Rules(show, output_root)
    if root.get("version") != "2.0":
        rules.add("xml", "rss", f"version is {root.get('version')!r}; RSS 2.0 feeds say 2.0")
    rules.channel(channel)
    items = channel.findall("item")
    if not items:
        rules.add("item", "channel", "no <item>: directories refuse a feed without an episode")
    guids: Counter[str] = Counter()
    for position, item in enumerate(items, start=1):
        guids[rules.item(position, item)] += 1
    for guid, count in guids.items():
        if guid and count > 1:
            rules.add("guid", f"items ({guid})", f"{count} items share the guid; apps merge them")
    rules.links_are_public()
    return FeedCheck(path, len(items), rules.findings)


class _Rules:
    """The rules, accumulating findings as a feed is walked."""

    def __init__(self, show: Show, output_root: Path) -> None:
        self.show = show
        self.output_root = output_root
        self.findings: list[Finding] = []
        self.local_links: list[str] = []  # where the feed links a file:// URL

    def add(self, rule: str, where: str, message: str, severity: Severity = "error") -> None:
        self.findings.append(Finding(rule, where, message, severity))

    # --- the channel ---------------------------------------------------------------------------

    def channel(self, channel: ET.Element) -> None:
        for tag in ("title", "link", "description", "language"):
            if not (channel.findtext(tag) or "").strip():
                self.add("channel", "channel", f"no <{tag}>")
        self._flag(channel, "channel")
        self_link = channel.find("atom:link[@rel='self']", _NS)
        if self_link is None or not self_link.get("href"):
            self.add("channel", "channel", 'no <atom:link rel="self">: the feed\'s own URL')
        else:
            self._url(self_link.get("href", ""), "atom:link self")
        if feed.is_preview(channel):
            self.add(
                "public",
                "channel",
                "the feed is a local preview (itunes:block / podcast:block): directories will "
                "not list it; set `feed.public: true` and `feed.base_url` in the show bible and "
                "run `castline feed SHOW`",
            )
        self._artwork(channel)
        self._categories(channel)
        self._owner(channel)
        self._podcast(channel)

    def _artwork(self, channel: ET.Element) -> None:
        image = channel.find("itunes:image", _NS)
        href = image.get("href", "").strip() if image is not None else ""
        if not href:
            self.add(
                "artwork",
                "channel",
                "no <itunes:image href=...>: set `show.artwork`; " + artwork.REQUIRED,
            )
            return
        rss_image = (channel.findtext("image/url") or "").strip()
        if rss_image != href:
            self.add(
                "artwork",
                "channel <image>",
                f"<image><url> is {rss_image or 'missing'}; it should be the itunes:image",
            )
        local = self._url(href, "itunes:image")
        if local is None:
            return
        try:
            artwork.inspect(local, local)
        except artwork.ArtworkError as exc:
            self.add("artwork", "itunes:image", f"{local}: {exc.problem}")

    def _categories(self, channel: ET.Element) -> None:
        found = channel.findall("itunes:category", _NS)
        if not found:
            self.add(
                "category",
                "channel",
                "no <itunes:category>: Apple lists shows under one; set `feed.categories`",
            )
        for element in found:
            name = element.get("text", "")
            subs = [sub.get("text", "") for sub in element.findall("itunes:category", _NS)]
            for value in [name] if not subs else [f"{name} > {sub}" for sub in subs]:
                try:
                    parsed = categories.parse_category(value)
                except ValueError as exc:
                    self.add("category", f"itunes:category {value!r}", str(exc))
                    continue
                if str(parsed) != value:
                    self.add("category", "itunes:category", f"write {value!r} as {str(parsed)!r}")

    def _owner(self, channel: ET.Element) -> None:
        owner = channel.find("itunes:owner", _NS)
        name = email = ""
        if owner is not None:
            name = (owner.findtext("itunes:name", namespaces=_NS) or "").strip()
            email = (owner.findtext("itunes:email", namespaces=_NS) or "").strip()
        if not name:
            self.add("owner", "itunes:owner", "no <itunes:name>; set `feed.owner_name`")
        if "@" not in email:
            self.add(
                "owner",
                "itunes:owner",
                "no <itunes:email>: Apple and Spotify verify ownership by it; set "
                "`feed.owner_email`",
            )

    def _podcast(self, channel: ET.Element) -> None:
        guid = (channel.findtext("podcast:guid", namespaces=_NS) or "").strip()
        if not _UUID.match(guid):
            self.add(
                "podcast:guid",
                "channel",
                f"{guid!r} is not a UUID"
                if guid
                else "no <podcast:guid>, the show's identity (written once the feed is public)",
            )
        locked = channel.find("podcast:locked", _NS)
        if locked is None or (locked.text or "").strip() not in {"yes", "no"}:
            self.add("podcast:locked", "channel", "no <podcast:locked> with yes or no")
        elif "@" not in locked.get("owner", ""):
            self.add(
                "podcast:locked",
                "channel",
                "podcast:locked has no owner email attribute; set `feed.owner_email`",
            )
        people = {
            (person.text or "").strip()
            for person in channel.findall("podcast:person", _NS)
            if (person.get("role") or "host").lower() == "host"
        }
        for host in self.show.host_names():
            if host not in people:
                self.add("podcast:person", "channel", f"host {host} has no <podcast:person>")

    # --- items ---------------------------------------------------------------------------------

    def item(self, position: int, item: ET.Element) -> str:
        guid = (item.findtext("guid") or "").strip()
        where = f"item {position}" + (f" ({guid})" if guid else "")
        for tag in ("title", "guid", "pubDate"):
            if not (item.findtext(tag) or "").strip():
                self.add("item", where, f"no <{tag}>")
        self._date(item.findtext("pubDate"), where)
        self._enclosure(item, where)
        duration = (item.findtext("itunes:duration", namespaces=_NS) or "").strip()
        if not _DURATION.match(duration):
            self.add(
                "item",
                where,
                f"itunes:duration {duration!r} is not seconds or H:MM:SS" if duration else
                "no <itunes:duration>",
            )  # fmt: skip
        self._flag(item, where)
        if not (item.findtext("content:encoded", namespaces=_NS) or "").strip():
            self.add("show notes", where, "no <content:encoded>: the show notes")
        if not (item.findtext("description") or "").strip():
            self.add("item", where, "no <description>")
        self._transcripts(item, where)
        chapters = item.find("podcast:chapters", _NS)
        if chapters is None:
            self.add("podcast:chapters", where, "no <podcast:chapters>")
        else:
            if chapters.get("type") != feed.CHAPTERS_TYPE:
                self.add(
                    "podcast:chapters",
                    where,
                    f"type {chapters.get('type')!r}; the spec's is {feed.CHAPTERS_TYPE}",
                )
            self._url(chapters.get("url", ""), f"{where} chapters")
        return guid

    def _date(self, text: str | None, where: str) -> None:
        if not text or not text.strip():
            return
        try:
            moment = parsedate_to_datetime(text.strip())
        except (TypeError, ValueError):
            self.add("item", where, f"pubDate {text.strip()!r} is not an RFC 2822 date")
            return
        if moment.tzinfo is None and "-0000" not in text:
            self.add("item", where, f"pubDate {text.strip()!r} has no time zone")
        elif moment.replace(tzinfo=moment.tzinfo or UTC) > datetime.now(UTC):
            self.add("item", where, f"pubDate {text.strip()} is in the future", "warning")

    def _enclosure(self, item: ET.Element, where: str) -> None:
        enclosure = item.find("enclosure")
        if enclosure is None:
            self.add("enclosure", where, "no <enclosure>: the episode's audio")
            return
        url, length, kind = (enclosure.get(key, "").strip() for key in ("url", "length", "type"))
        if not url:
            self.add("enclosure", where, "the enclosure has no url")
        if not kind.startswith(("audio/", "video/")):
            self.add("enclosure", where, f"type {kind!r} is not an audio or video MIME type")
        if not length.isdigit() or int(length) == 0:
            self.add("enclosure", where, f"length {length!r} is not the file's size in bytes")
        local = self._url(url, f"{where} enclosure") if url else None
        if local is not None and length.isdigit() and local.stat().st_size != int(length):
            self.add(
                "enclosure",
                where,
                f"length is {int(length):,} bytes but {local.name} is "
                f"{local.stat().st_size:,}; run `castline feed SHOW` to rewrite the feed",
            )

    def _transcripts(self, item: ET.Element, where: str) -> None:
        listed: set[str] = set()
        for element in item.findall("podcast:transcript", _NS):
            kind = element.get("type", "")
            if kind in _OLDER_TYPES:
                self.add(
                    "podcast:transcript",
                    where,
                    f"type {kind!r} is an older name; the spec's is {_OLDER_TYPES[kind]}",
                )
                kind = _OLDER_TYPES[kind]
            elif kind not in _SPEC_TRANSCRIPT_TYPES:
                self.add(
                    "podcast:transcript",
                    where,
                    f"type {kind!r} is not a transcript type of the spec "
                    f"({', '.join(_SPEC_TRANSCRIPT_TYPES)})",
                )
            listed.add(kind)
            self._url(element.get("url", ""), f"{where} transcript")
        for kind, label in _TRANSCRIPT_FORMATS.items():
            if kind not in listed:
                self.add("podcast:transcript", where, f"the {label} transcript ({kind}) is missing")

    def _flag(self, element: ET.Element, where: str) -> None:
        value = (element.findtext("itunes:explicit", namespaces=_NS) or "").strip().lower()
        if value not in {"true", "false"}:
            self.add("explicit", where, "<itunes:explicit> must be true or false")

    # --- links ---------------------------------------------------------------------------------

    def _url(self, url: str, where: str) -> Path | None:
        """The local file `url` names, when it names one (under base_url, or file://): None if
        it is elsewhere, or missing (a finding)."""
        parts = urlsplit(url)
        base = (self.show.feed.base_url or "").rstrip("/")
        local: Path | None = None
        if parts.scheme == "file":
            self.local_links.append(where)
            local = Path(url2pathname(unquote(parts.path)))
        elif base and url.startswith(base + "/"):
            local = self.output_root / unquote(url.removeprefix(base + "/").split("?")[0])
        elif parts.scheme not in {"http", "https"}:
            self.add("link", where, f"{url!r} is not an http(s) URL")
            return None
        if local is None:
            return None  # served elsewhere: not ours to check offline
        if not local.is_file():
            self.add("link", where, f"{url} points at {local}, which does not exist")
            return None
        return local

    def links_are_public(self) -> None:
        if not self.local_links:
            return
        shown = ", ".join(self.local_links[:3]) + (" ..." if len(self.local_links) > 3 else "")
        self.add(
            "public",
            f"{len(self.local_links)} link(s)",
            f"file:// URLs only work on this machine ({shown}); set `feed.base_url`",
        )

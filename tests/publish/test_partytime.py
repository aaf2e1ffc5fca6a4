"""The feed through an independent Podcasting 2.0 parser: podcast-partytime (npm), run with node.
It is the parser the Podcast Index's ecosystem tools build on, and it reads every `podcast:` tag
castline writes, so a tag castline gets wrong shows up here as missing or different."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from castline.publish.categories import APPLE_CATEGORIES
from castline.publish.feed import add_episode, podcast_guid
from tests.publish.helpers import ARTWORK_URL, FEED_URL, make_episode, make_show, with_feed

Parser = Callable[..., Any]


def test_partytime_reads_every_tag_of_a_public_feed(tmp_path: Path, partytime: Parser) -> None:
    path = tmp_path / "feed.xml"
    add_episode(path, make_show(), FEED_URL, make_episode())

    feed = partytime(path)

    assert feed["title"] == "Heat Island"
    assert feed["guid"] == podcast_guid(FEED_URL)
    assert feed["locked"] is True and feed["podcastOwner"] == "owner@example.org"
    assert feed["owner"] == {"name": "Ada Host", "email": "owner@example.org"}
    assert feed["itunesCategory"] == ["Science > Earth Sciences", "Technology"]
    assert feed["itunesImage"] == feed["image"]["url"] == ARTWORK_URL
    assert feed["podcastPeople"] == [{"name": "Ada", "role": "Host", "group": "Cast"}]
    assert feed["itunesBlock"] is False and feed["podcastBlocked"] == "no"
    assert sorted(feed["pc20support"]["1"]) == ["chapters", "locked", "transcript"]
    [item] = feed["items"]
    assert item["guid"] == "run-1" and item["duration"] == 1234
    assert item["enclosure"] == {
        "url": "https://example.org/pod/run-1/episode.mp3",
        "length": 12_345_678,
        "type": "audio/mpeg",
    }
    assert item["content"] == "<h1>Episode</h1>\n<p>Shade & trees</p>"
    # partytime names SRT by its older type, application/srt: it recognised the format
    assert [(t["type"], t.get("rel")) for t in item["podcastTranscripts"]] == [
        ("text/vtt", "captions"),
        ("application/srt", "captions"),
        ("application/json", None),
    ]
    assert item["podcastChapters"] == {
        "url": "https://example.org/pod/run-1/chapters.json",
        "type": "application/json+chapters",
    }
    assert item["pubDate"] == "2025-06-01T09:30:00.000Z"


def test_partytime_sees_a_preview_as_blocked(tmp_path: Path, partytime: Parser) -> None:
    path = tmp_path / "feed.xml"
    preview = with_feed(make_show(), public=False, base_url=None)
    add_episode(path, preview, path.as_uri(), make_episode())

    feed = partytime(path)

    assert feed["itunesBlock"] is True and feed["podcastBlocked"] == "yes"
    assert "guid" not in feed


def test_apples_categories_are_the_ones_partytime_knows(partytime: Parser) -> None:
    theirs = partytime(Path(os.devnull), "--categories")

    assert {c["name"]: tuple(c["subCategories"]) for c in theirs} == APPLE_CATEGORIES

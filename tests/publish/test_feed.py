"""The podcast feed: what podcast apps' parsers read from it, and how it is updated in place."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import feedparser
import podcastparser
import pytest

from castline.publish.feed import (
    ITUNES_NS,
    LEGACY_PODCAST_NS,
    PODCAST_NS,
    FeedError,
    add_episode,
    podcast_guid,
    read_episodes,
    write_feed,
)
from tests.publish.helpers import ARTWORK_URL, FEED_URL, NS, make_episode, make_show, transcripts


@pytest.fixture
def feed_path(tmp_path: Path) -> Path:
    return tmp_path / "out" / "feed.xml"


def channel_of(path: Path) -> ET.Element:
    channel = ET.parse(path).getroot().find("channel")
    assert channel is not None
    return channel


# --- what parsers read --------------------------------------------------------------------------


def test_feedparser_reads_the_episode(feed_path: Path) -> None:
    add_episode(feed_path, make_show(), FEED_URL, make_episode())

    parsed = feedparser.parse(feed_path.read_bytes())

    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "rss20"
    assert parsed.feed.title == "Heat Island"
    [entry] = parsed.entries
    assert entry.title == "Episode run-1"
    assert entry.id == "run-1"
    assert entry.guidislink is False
    assert entry.itunes_duration == "1234"
    assert entry.itunes_episode == "7"
    assert entry.itunes_episodetype == "full"
    [enclosure] = entry.enclosures
    assert enclosure.href == "https://example.org/pod/run-1/episode.mp3"
    assert enclosure.length == "12345678"
    assert enclosure.type == "audio/mpeg"
    assert entry.content[0].value == "<h1>Episode</h1>\n<p>Shade &amp; trees</p>"
    assert entry.content[0].type == "text/html"
    assert entry.podcast_chapters == {
        "url": "https://example.org/pod/run-1/chapters.json",
        "type": "application/json+chapters",
    }


def test_podcastparser_reads_the_episode(feed_path: Path) -> None:
    add_episode(feed_path, make_show(), FEED_URL, make_episode(explicit=True))

    with feed_path.open("rb") as stream:
        parsed = podcastparser.parse(FEED_URL, stream)

    assert parsed["title"] == "Heat Island"
    assert parsed["type"] == "episodic"
    assert parsed["explicit"] is False
    assert parsed["itunes_owner"] == {"name": "Ada Host", "email": "owner@example.org"}
    assert parsed["itunes_categories"] == [["Science", "Earth Sciences"], ["Technology"]]
    assert parsed["cover_url"] == ARTWORK_URL
    [episode] = parsed["episodes"]
    assert episode["title"] == "Episode run-1"
    assert episode["guid"] == "run-1"
    assert episode["total_time"] == 1234
    assert episode["number"] == 7
    assert episode["type"] == "full"
    assert episode["explicit"] is True
    assert episode["published"] == int(datetime(2025, 6, 1, 9, 30, tzinfo=UTC).timestamp())
    assert episode["enclosures"] == [
        {
            "url": "https://example.org/pod/run-1/episode.mp3",
            "file_size": 12_345_678,
            "mime_type": "audio/mpeg",
        }
    ]


def test_channel_and_item_elements(feed_path: Path) -> None:
    add_episode(feed_path, make_show(), FEED_URL, make_episode())

    text = feed_path.read_text(encoding="utf-8")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert f'xmlns:podcast="{PODCAST_NS}"' in text
    assert f'xmlns:itunes="{ITUNES_NS}"' in text
    channel = channel_of(feed_path)
    assert channel.findtext("link") == FEED_URL
    assert channel.findtext("language") == "en"
    assert channel.findtext("generator") == "castline"
    assert channel.findtext("lastBuildDate", "").endswith(" GMT")
    self_link = channel.find("atom:link", NS)
    assert self_link is not None
    assert self_link.attrib == {"href": FEED_URL, "rel": "self", "type": "application/rss+xml"}
    assert channel.findtext("itunes:author", namespaces=NS) == "Ada Host"
    assert channel.findtext("itunes:explicit", namespaces=NS) == "false"
    assert channel.findtext("itunes:type", namespaces=NS) == "episodic"
    assert channel.findtext("podcast:guid", namespaces=NS) == podcast_guid(FEED_URL)
    locked = channel.find("podcast:locked", NS)
    assert locked is not None and locked.text == "yes"
    assert locked.attrib == {"owner": "owner@example.org"}
    item = channel.find("item")
    assert item is not None
    assert item.findtext("pubDate") == "Sun, 01 Jun 2025 09:30:00 GMT"
    assert item.findtext("itunes:episode", namespaces=NS) == "7"
    assert item.findtext("itunes:episodeType", namespaces=NS) == "full"
    guid = item.find("guid")
    assert guid is not None
    assert guid.get("isPermaLink") == "false"
    listed = [element.attrib for element in item.findall("podcast:transcript", NS)]
    assert listed == [
        {"url": "https://example.org/pod/run-1/episode.vtt", "type": "text/vtt", "rel": "captions"},
        {
            "url": "https://example.org/pod/run-1/episode.srt",
            "type": "application/x-subrip",
            "rel": "captions",
        },
        {"url": "https://example.org/pod/run-1/transcript.json", "type": "application/json"},
    ]
    chapters = item.find("podcast:chapters", NS)
    assert chapters is not None
    assert chapters.attrib == {
        "url": "https://example.org/pod/run-1/chapters.json",
        "type": "application/json+chapters",
    }


def test_optional_elements_are_left_out(feed_path: Path, tmp_path: Path) -> None:
    show = make_show(artwork="https://cdn.example.net/cover.jpg", website="https://heat.example")
    episode = make_episode(transcripts=(), chapters_url=None, episode_number=None, notes_html=None)

    add_episode(feed_path, show, FEED_URL, episode)

    channel = channel_of(feed_path)
    assert channel.findtext("link") == "https://heat.example"
    image = channel.find("itunes:image", NS)
    assert image is not None
    assert image.get("href") == "https://cdn.example.net/cover.jpg"
    item = channel.find("item")
    assert item is not None
    assert item.find("podcast:transcript", NS) is None
    assert item.find("content:encoded", NS) is None
    assert item.find("podcast:chapters", NS) is None
    assert item.find("itunes:episode", NS) is None
    assert item.findtext("itunes:episodeType", namespaces=NS) == "full"  # numbered or not
    assert read_episodes(feed_path) == [replace(episode, duration_s=1234.0)]


# --- podcast:guid -------------------------------------------------------------------------------


def test_podcast_guid_matches_the_spec_examples() -> None:
    # docs/tags/guid.md of Podcastindex-org/podcast-namespace
    assert podcast_guid("https://mp3s.nashownotes.com/pc20rss.xml") == (
        "917393e3-1b1e-5cef-ace4-edaa54e1f810"
    )
    assert podcast_guid("podnews.net/rss") == "9b024349-ccf0-5f69-a609-6b82873eab3c"


def test_podcast_guid_ignores_scheme_and_trailing_slashes() -> None:
    expected = "9b024349-ccf0-5f69-a609-6b82873eab3c"

    assert podcast_guid("http://podnews.net/rss") == expected
    assert podcast_guid("https://podnews.net/rss//") == expected


def test_podcast_guid_survives_a_new_feed_url(feed_path: Path) -> None:
    add_episode(feed_path, make_show(), FEED_URL, make_episode())

    add_episode(feed_path, make_show(), "https://new-host.example/feed.xml", make_episode("run-2"))

    guid = channel_of(feed_path).findtext("podcast:guid", namespaces=NS)
    assert guid == podcast_guid(FEED_URL)


# --- incremental updates ------------------------------------------------------------------------


def test_adding_the_same_guid_twice_updates_the_one_item(feed_path: Path) -> None:
    show = make_show()
    add_episode(feed_path, show, FEED_URL, make_episode())

    now = add_episode(feed_path, show, FEED_URL, make_episode(title="Re-cut", audio_bytes=99))

    assert [(e.guid, e.title, e.audio_bytes) for e in now] == [("run-1", "Re-cut", 99)]
    items = channel_of(feed_path).findall("item")
    assert [item.findtext("title") for item in items] == ["Re-cut"]
    assert read_episodes(feed_path) == now


def test_a_republished_episode_keeps_the_date_it_was_first_published(feed_path: Path) -> None:
    show = make_show()
    add_episode(feed_path, show, FEED_URL, make_episode("run-1", days=0))
    add_episode(feed_path, show, FEED_URL, make_episode("run-2", days=2))

    # re-voiced a week later: same guid, later time; apps must not see it as new
    now = add_episode(feed_path, show, FEED_URL, make_episode("run-1", days=7, title="Re-cut"))

    assert [(e.guid, e.published.day) for e in now] == [("run-2", 3), ("run-1", 1)]
    assert now[1].title == "Re-cut"


def test_a_second_episode_keeps_both_newest_first(feed_path: Path) -> None:
    show = make_show()
    add_episode(feed_path, show, FEED_URL, make_episode("run-2", days=7))

    now = add_episode(feed_path, show, FEED_URL, make_episode("run-1", days=0))

    assert [episode.guid for episode in now] == ["run-2", "run-1"]
    items = channel_of(feed_path).findall("item")
    assert [item.findtext("guid") for item in items] == ["run-2", "run-1"]
    assert [episode.guid for episode in read_episodes(feed_path)] == ["run-2", "run-1"]


def test_guids_are_stable_across_rewrites(feed_path: Path) -> None:
    show = make_show()
    add_episode(feed_path, show, FEED_URL, make_episode("run-1"))
    add_episode(feed_path, show, FEED_URL, make_episode("run-2", days=1))
    before = channel_of(feed_path)

    write_feed(feed_path, show, FEED_URL, read_episodes(feed_path))
    add_episode(feed_path, show, FEED_URL, make_episode("run-1", title="Fixed typo"))
    after = channel_of(feed_path)

    def guids(channel: ET.Element) -> list[str | None]:
        return [item.findtext("guid") for item in channel.findall("item")]

    assert guids(after) == guids(before) == ["run-2", "run-1"]
    assert after.findtext("podcast:guid", namespaces=NS) == podcast_guid(FEED_URL)


def test_episode_number_and_explicit_round_trip(feed_path: Path) -> None:
    show = make_show()
    first = make_episode("run-1", episode_number=12, explicit=True, duration_s=60.0)
    second = make_episode("run-2", days=1, episode_number=None, explicit=False, duration_s=5.0)

    write_feed(feed_path, show, FEED_URL, [first, second])

    assert read_episodes(feed_path) == [second, first]


def test_numbers_survive_adding_an_episode(feed_path: Path) -> None:
    show = make_show()
    add_episode(feed_path, show, FEED_URL, make_episode("run-1", episode_number=1))
    add_episode(feed_path, show, FEED_URL, make_episode("run-2", days=1, episode_number=2))

    with feed_path.open("rb") as stream:
        parsed = podcastparser.parse(FEED_URL, stream)

    assert [(e["guid"], e["number"]) for e in parsed["episodes"]] == [("run-2", 2), ("run-1", 1)]
    assert [e.episode_number for e in read_episodes(feed_path)] == [2, 1]


def test_a_hand_edited_episode_type_is_kept_and_an_unknown_one_reads_as_full(
    feed_path: Path,
) -> None:
    show = make_show()
    write_feed(feed_path, show, FEED_URL, [make_episode("run-1", episode_type="trailer")])
    assert read_episodes(feed_path)[0].episode_type == "trailer"
    text = feed_path.read_text().replace(">trailer<", ">teaser<")
    feed_path.write_text(text)

    assert read_episodes(feed_path)[0].episode_type == "full"


def test_an_episode_number_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="episode_number must be 1 or more"):
        make_episode(episode_number=0)


def test_published_times_in_other_zones_read_back_as_the_same_instant(feed_path: Path) -> None:
    published = datetime(2025, 1, 2, 23, 15, tzinfo=timezone(timedelta(hours=-5)))
    add_episode(feed_path, make_show(), FEED_URL, make_episode(published=published))

    [episode] = read_episodes(feed_path)

    assert episode.published == published
    assert episode.published.tzinfo == UTC


def test_a_missing_feed_has_no_episodes(tmp_path: Path) -> None:
    assert read_episodes(tmp_path / "nowhere" / "feed.xml") == []


def test_a_feed_written_with_the_legacy_podcast_namespace_is_read(feed_path: Path) -> None:
    add_episode(feed_path, make_show(), FEED_URL, make_episode())
    feed_path.write_text(feed_path.read_text().replace(PODCAST_NS, LEGACY_PODCAST_NS))

    [episode] = read_episodes(feed_path)

    assert episode.transcripts == transcripts("run-1")
    assert episode.chapters_url == "https://example.org/pod/run-1/chapters.json"


def test_an_unreadable_feed_is_reported_not_overwritten(feed_path: Path) -> None:
    feed_path.parent.mkdir(parents=True)
    feed_path.write_text("<rss><channel><item><title>half")

    with pytest.raises(FeedError, match="not well-formed XML"):
        add_episode(feed_path, make_show(), FEED_URL, make_episode())
    assert feed_path.read_text() == "<rss><channel><item><title>half"


def test_an_item_without_a_guid_is_reported(feed_path: Path) -> None:
    add_episode(feed_path, make_show(), FEED_URL, make_episode())
    feed_path.write_text(
        feed_path.read_text().replace('<guid isPermaLink="false">run-1</guid>', "")
    )

    with pytest.raises(FeedError, match=r"item 1 has no <guid>"):
        read_episodes(feed_path)


# --- safety -------------------------------------------------------------------------------------


def test_a_failing_write_leaves_the_old_feed_intact(
    feed_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_episode(feed_path, make_show(), FEED_URL, make_episode())
    old = feed_path.read_bytes()

    def refuse(source: object, target: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        add_episode(feed_path, make_show(), FEED_URL, make_episode("run-2", days=1))

    assert feed_path.read_bytes() == old
    assert sorted(p.name for p in feed_path.parent.iterdir()) == ["feed.xml"]


def test_xml_special_characters_are_escaped(feed_path: Path) -> None:
    title = 'Heat & "cool" <roofs> it\'s ]]> over'
    description = "Tom & Jerry <b>not bold</b>\nsecond line\x0b with a stray control char"
    show = make_show(title="Cities & <Heat>", description="A & B")

    add_episode(feed_path, show, FEED_URL, make_episode(title=title, description=description))

    text = feed_path.read_text(encoding="utf-8")
    assert 'Heat &amp; "cool" &lt;roofs&gt; it\'s ]]&gt; over' in text
    assert "<b>" not in text
    assert "\x0b" not in text
    [episode] = read_episodes(feed_path)
    assert episode.title == title
    assert episode.description == description.replace("\x0b", "")
    parsed = feedparser.parse(feed_path.read_bytes())
    assert not parsed.bozo
    assert parsed.feed.title == "Cities & <Heat>"
    assert parsed.entries[0].title == title


def test_duplicate_guids_are_refused(feed_path: Path) -> None:
    with pytest.raises(ValueError, match="share a guid"):
        write_feed(feed_path, make_show(), FEED_URL, [make_episode(), make_episode(days=1)])
    assert not feed_path.exists()


def test_a_naive_publication_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        make_episode(published=datetime(2025, 6, 1, 9, 30))

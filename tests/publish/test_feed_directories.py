"""What Apple Podcasts, Spotify and the Podcast Index read from castline's feed: artwork, owner,
categories, the show's identity, its hosts, show notes, every transcript; and a preview that no
directory would list."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import feedparser
import podcastparser
import pytest

from castline.config import parse_show
from castline.errors import ShowFileError
from castline.publish.feed import (
    PREVIEW_NOTICE,
    add_episode,
    is_preview,
    podcast_guid,
    preview_notice,
    read_episodes,
)
from tests.publish.helpers import ARTWORK_URL, FEED_URL, NS, make_episode, make_show, with_feed


def _channel(path: Path) -> ET.Element:
    channel = ET.parse(path).getroot().find("channel")
    assert channel is not None
    return channel


@pytest.fixture
def feed_path(tmp_path: Path) -> Path:
    return tmp_path / "out" / "feed.xml"


def test_feedparser_reads_owner_artwork_categories_and_show_notes(feed_path: Path) -> None:
    add_episode(feed_path, make_show(), FEED_URL, make_episode(), artwork_url=ARTWORK_URL)

    parsed = feedparser.parse(feed_path.read_bytes())

    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.feed.image.href == ARTWORK_URL
    assert parsed.feed.publisher_detail == {"name": "Ada Host", "email": "owner@example.org"}
    assert [tag.term for tag in parsed.feed.tags] == ["Science", "Earth Sciences", "Technology"]
    assert parsed.feed.podcast_guid == podcast_guid(FEED_URL)
    assert parsed.feed.podcast_locked == {"owner": "owner@example.org"}
    [entry] = parsed.entries
    assert entry.content[0].value == "<h1>Episode</h1>\n<p>Shade &amp; trees</p>"
    assert entry.summary == "Shade, trees and cool roofs."


def test_podcastparser_reads_the_nesting_of_categories_and_the_html_notes(
    feed_path: Path,
) -> None:
    add_episode(feed_path, make_show(), FEED_URL, make_episode())

    parsed = podcastparser.parse(FEED_URL, io.BytesIO(feed_path.read_bytes()))

    assert parsed["itunes_categories"] == [["Science", "Earth Sciences"], ["Technology"]]
    assert parsed["itunes_owner"] == {"name": "Ada Host", "email": "owner@example.org"}
    assert parsed["cover_url"] == ARTWORK_URL
    [episode] = parsed["episodes"]
    assert episode["description_html"] == "<h1>Episode</h1>\n<p>Shade &amp; trees</p>"


def test_two_subcategories_of_one_category_share_its_element(feed_path: Path) -> None:
    show = with_feed(
        make_show(), categories=["Science > Physics", "Technology", "Science > Nature"]
    )

    add_episode(feed_path, show, FEED_URL, make_episode())

    channel = _channel(feed_path)
    top = channel.findall("itunes:category", NS)
    assert [element.get("text") for element in top] == ["Science", "Technology"]
    assert [sub.get("text") for sub in top[0].findall("itunes:category", NS)] == [
        "Physics",
        "Nature",
    ]
    assert top[1].findall("itunes:category", NS) == []


def test_the_channel_image_repeats_the_title_and_link(feed_path: Path) -> None:
    add_episode(feed_path, make_show(website="https://heat.example"), FEED_URL, make_episode())

    image = _channel(feed_path).find("image")
    assert image is not None
    assert [child.tag for child in image] == ["url", "title", "link"]
    assert image.findtext("url") == ARTWORK_URL
    assert image.findtext("title") == "Heat Island"
    assert image.findtext("link") == "https://heat.example"


def test_a_local_artwork_without_a_published_copy_is_not_linked(feed_path: Path) -> None:
    # a relative path is not a URL: only the published copy (episode.publish_artwork) is
    add_episode(feed_path, make_show(artwork="cover.png"), FEED_URL, make_episode())

    channel = _channel(feed_path)
    assert channel.find("itunes:image", NS) is None and channel.find("image") is None


def test_the_hosts_are_podcast_people_and_the_owner_name_can_differ(feed_path: Path) -> None:
    show = with_feed(make_show(), owner_name="Heat Media Ltd")
    show = show.model_copy(
        update={"hosts": [*show.hosts, show.hosts[0].model_copy(update={"name": "Theo"})]}
    )

    add_episode(feed_path, show, FEED_URL, make_episode())

    channel = _channel(feed_path)
    people = channel.findall("podcast:person", NS)
    assert [(p.text, p.attrib) for p in people] == [
        ("Ada", {"role": "host"}),
        ("Theo", {"role": "host"}),
    ]
    assert channel.findtext("itunes:owner/itunes:name", namespaces=NS) == "Heat Media Ltd"
    assert channel.findtext("itunes:author", namespaces=NS) == "Ada Host"


def test_an_unlocked_feed_still_names_its_owner(feed_path: Path) -> None:
    add_episode(feed_path, with_feed(make_show(), locked=False), FEED_URL, make_episode())

    locked = _channel(feed_path).find("podcast:locked", NS)
    assert locked is not None
    assert (locked.text, locked.attrib) == ("no", {"owner": "owner@example.org"})


def test_show_notes_and_every_transcript_survive_adding_another_episode(feed_path: Path) -> None:
    show = make_show()
    first = make_episode("run-1")
    add_episode(feed_path, show, FEED_URL, first)

    now = add_episode(feed_path, show, FEED_URL, make_episode("run-2", days=1))

    assert now[1] == replace(first, duration_s=1234.0)
    assert [t.type for t in now[1].transcripts] == [
        "text/vtt",
        "application/x-subrip",
        "application/json",
    ]
    assert read_episodes(feed_path) == now


# --- podcast:guid -------------------------------------------------------------------------------


def test_the_guid_is_kept_when_base_url_changes(feed_path: Path) -> None:
    add_episode(feed_path, make_show(), FEED_URL, make_episode())
    moved = with_feed(make_show(), base_url="https://new-host.example/heat")

    add_episode(feed_path, moved, "https://new-host.example/heat/feed.xml", make_episode("run-2"))

    assert _channel(feed_path).findtext("podcast:guid", namespaces=NS) == podcast_guid(FEED_URL)
    assert podcast_guid(FEED_URL) == podcast_guid("example.org/pod/feed.xml")


def test_a_preview_has_no_guid_and_the_public_feed_takes_its_own(feed_path: Path) -> None:
    preview = with_feed(make_show(), public=False, base_url=None)
    local_url = feed_path.resolve().as_uri()
    add_episode(feed_path, preview, local_url, make_episode())
    assert _channel(feed_path).find("podcast:guid", NS) is None

    add_episode(feed_path, make_show(), FEED_URL, make_episode())

    assert _channel(feed_path).findtext("podcast:guid", namespaces=NS) == podcast_guid(FEED_URL)


def test_a_guid_an_old_feed_derived_from_its_file_path_is_replaced(feed_path: Path) -> None:
    local_url = feed_path.resolve().as_uri()
    add_episode(feed_path, make_show(), local_url, make_episode())  # as castline once did
    assert _channel(feed_path).findtext("podcast:guid", namespaces=NS) == podcast_guid(local_url)

    add_episode(feed_path, make_show(), FEED_URL, make_episode())

    assert _channel(feed_path).findtext("podcast:guid", namespaces=NS) == podcast_guid(FEED_URL)


def test_a_guid_set_by_hand_is_kept_even_in_a_preview(feed_path: Path) -> None:
    add_episode(feed_path, make_show(), FEED_URL, make_episode())
    given = "917393e3-1b1e-5cef-ace4-edaa54e1f810"
    feed_path.write_text(feed_path.read_text().replace(podcast_guid(FEED_URL), given))

    add_episode(feed_path, with_feed(make_show(), public=False), FEED_URL, make_episode("run-2"))

    assert _channel(feed_path).findtext("podcast:guid", namespaces=NS) == given


# --- a preview ----------------------------------------------------------------------------------


def test_a_preview_is_blocked_from_every_directory_and_says_so(feed_path: Path) -> None:
    preview = with_feed(make_show(), public=False, base_url=None)

    add_episode(feed_path, preview, feed_path.resolve().as_uri(), make_episode())

    text = feed_path.read_text()
    assert text.splitlines()[1] == f"<!--{PREVIEW_NOTICE}-->"
    channel = _channel(feed_path)
    assert channel.findtext("itunes:block", namespaces=NS) == "Yes"
    assert channel.findtext("podcast:block", namespaces=NS) == "yes"
    assert is_preview(channel)
    assert not feedparser.parse(feed_path.read_bytes()).bozo
    notice = preview_notice(preview)
    assert notice is not None and "file:// links" in notice and "feed.public: true" in notice


def test_a_public_feed_is_not_blocked(feed_path: Path) -> None:
    add_episode(feed_path, make_show(), FEED_URL, make_episode())

    channel = _channel(feed_path)
    assert channel.find("itunes:block", NS) is None and channel.find("podcast:block", NS) is None
    assert not is_preview(channel)
    assert "<!--" not in feed_path.read_text()
    assert preview_notice(make_show()) is None


def test_a_staging_preview_names_where_it_is_served() -> None:
    notice = preview_notice(with_feed(make_show(), public=False))

    assert notice is not None and "served under https://example.org/pod" in notice


# --- the show bible -----------------------------------------------------------------------------

BIBLE = (
    "show: {title: T, description: D, author: A}\n"
    "hosts: [{name: Ada, persona: p}]\n"
    "brand_voice: {style_guide: s}\n"
)


def test_a_public_feed_without_base_url_email_or_category_fails_to_load(tmp_path: Path) -> None:
    with pytest.raises(ShowFileError) as raised:
        parse_show(BIBLE + "feed:\n  public: true\n", tmp_path / "show.yaml")

    [problem] = raised.value.problems
    assert problem.startswith("line 4: feed: a public feed needs base_url (where apps download")
    assert "owner_email (" in problem and "categories (" in problem
    assert problem.endswith("or set `feed.public: false` for a local preview")


def test_an_owner_email_must_be_an_address(tmp_path: Path) -> None:
    with pytest.raises(ShowFileError, match="'owner at example' is not an email address"):
        parse_show(BIBLE + "feed: {owner_email: owner at example}\n", tmp_path / "show.yaml")


def test_a_complete_public_feed_loads(tmp_path: Path) -> None:
    show = parse_show(
        BIBLE + "feed: {public: true, base_url: 'https://x.example/pod', owner_email: "
        "'me@x.example', categories: [history]}\n",
        tmp_path / "show.yaml",
    )

    assert show.feed.public and show.feed.categories == ["History"] and show.feed.locked

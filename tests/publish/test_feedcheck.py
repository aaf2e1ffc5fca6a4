"""`castline feed --check`: a feed castline publishes passes, and each rule it checks catches the
feed that breaks it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from rich.console import Console

from castline import cli as app
from castline.cli import cli
from castline.config import Show, load_show
from castline.publish import feed
from castline.publish.episode import feed_episode, feed_path, public_url, publish_artwork
from castline.publish.feedcheck import FeedMissing, check_feed
from tests.publish.helpers import PUBLIC_FEED, make_image

EPISODE = "heat-1"


def _publish(show_dir: Path, **feed_settings: object) -> tuple[Show, Path]:
    """A show with one published episode, its files on disk, and its feed written as castline
    writes it; return the show and the feed file."""
    bible = {
        "show": {"title": "Heat", "description": "Hot cities.", "author": "A", "artwork": "c.jpg"},
        "hosts": [{"name": "Ada", "persona": "p"}, {"name": "Theo", "persona": "q"}],
        "brand_voice": {"style_guide": "s"},
        "feed": {**PUBLIC_FEED, **feed_settings},
    }
    (show_dir / "show.yaml").write_text(yaml.safe_dump(bible))
    make_image(show_dir / "c.jpg")
    show = load_show(show_dir / "show.yaml")
    directory = show_dir / "episodes" / EPISODE
    directory.mkdir(parents=True)
    (directory / "episode.mp3").write_bytes(b"\xff\xfb" * 5000)
    for name, text in {
        "episode.vtt": "WEBVTT\n",
        "episode.srt": "1\n00:00:00,000 --> 00:00:01,000\nADA: Hi\n",
        "transcript.json": json.dumps({"version": "1.0.0", "segments": []}),
        "chapters.json": json.dumps({"version": "1.2.0", "chapters": []}),
        "show-notes.html": "<h1>Heat</h1>\n<p>Notes &amp; sources</p>\n",
    }.items():
        (directory / name).write_text(text)
    target = feed_path(show, show_dir)
    episode = feed_episode(
        show,
        show_dir,
        directory,
        guid="run-1",
        title="Why cities run hot",
        description="Asphalt, shade and cool roofs.",
        published=datetime(2025, 6, 1, tzinfo=UTC),
        audio_bytes=(directory / "episode.mp3").stat().st_size,
        duration_s=95.2,
        number=1,
    )
    feed.write_feed(
        target,
        show,
        public_url(show, show_dir, target),
        [episode],
        artwork_url=publish_artwork(show, show_dir),
    )
    return show, target


@pytest.fixture
def published(tmp_path: Path) -> tuple[Show, Path]:
    return _publish(tmp_path)


def _rules(show: Show, show_dir: Path) -> list[tuple[str, str]]:
    return [(f.rule, f.message) for f in check_feed(show, show_dir).findings]


def test_a_feed_castline_publishes_passes(published: tuple[Show, Path]) -> None:
    show, target = published

    result = check_feed(show, target.parent.parent)

    assert result.findings == [] and result.passed and result.items == 1
    assert any(p.name.startswith("artwork-") for p in target.parent.iterdir())


def _edit(target: Path, old: str, new: str) -> None:
    """Replace the first `old` in the feed (the channel's, where channel and item both have
    one), or both ends of an element when `old` is a tag name."""
    text = target.read_text()
    assert old in text, old
    count = 2 if old.endswith(":encoded>") else 1
    target.write_text(text.replace(old, new, count))


BROKEN = [
    # (rule, what to replace, with what, a phrase the finding must contain)
    ("artwork", "<itunes:image href=", "<itunes:imagex href=", "no <itunes:image href=...>"),
    ("category", 'text="Technology"', 'text="Tech"', "'Tech' is not one of Apple's podcast"),
    ("category", 'text="Earth Sciences"', 'text="Geology"', "'Geology' is not a subcategory"),
    ("owner", "<itunes:email>owner@heat.example</itunes:email>", "", "no <itunes:email>"),
    ("podcast:locked", ' owner="owner@heat.example"', "", "has no owner email"),
    ("podcast:person", '<podcast:person role="host">Theo</podcast:person>', "", "host Theo"),
    ("show notes", "content:encoded>", "content:other>", "no <content:encoded>"),
    ("podcast:transcript", '"application/x-subrip"', '"application/srt"', "the spec's is appl"),
    ("enclosure", 'length="10000"', 'length="9999"', "length is 9,999 bytes but episode.mp3 is"),
    ("enclosure", ' type="audio/mpeg"', "", "is not an audio or video MIME type"),
    ("item", "Sun, 01 Jun 2025 00:00:00 GMT", "1 June 2025", "is not an RFC 2822 date"),
    ("item", ">95</itunes:duration>", ">1m</itunes:duration>", "'1m' is not seconds or H:MM:SS"),
    ("explicit", ">false</itunes:explicit>", ">no</itunes:explicit>", "must be true or false"),
    ("channel", "<language>en</language>", "", "no <language>"),
    ("public", "<itunes:type>", "<itunes:block>Yes</itunes:block><itunes:type>", "a local preview"),
    ("podcast:chapters", 'type="application/json+chapters"', 'type="application/json"', "spec's"),
]


@pytest.mark.parametrize(("rule", "old", "new", "phrase"), BROKEN)
def test_each_rule_catches_the_feed_that_breaks_it(
    published: tuple[Show, Path], rule: str, old: str, new: str, phrase: str
) -> None:
    show, target = published
    _edit(target, old, new)

    findings = _rules(show, target.parent.parent)

    assert [r for r, _ in findings] == [rule], findings
    assert phrase in findings[0][1]


def test_a_transcript_type_outside_the_spec_is_found(published: tuple[Show, Path]) -> None:
    show, target = published
    _edit(target, '"application/x-subrip"', '"text/srt"')

    assert _rules(show, target.parent.parent) == [
        (
            "podcast:transcript",
            "type 'text/srt' is not a transcript type of the spec (text/plain, text/html, "
            "text/vtt, application/x-subrip, application/json)",
        ),
        ("podcast:transcript", "the SRT transcript (application/x-subrip) is missing"),
    ]


def test_a_missing_transcript_format_is_named(published: tuple[Show, Path]) -> None:
    show, target = published
    text = target.read_text()
    start = text.index("<podcast:transcript url=", text.index("episode.srt") - 80)
    target.write_text(text[:start] + text[text.index("/>", start) + 2 :])

    assert _rules(show, target.parent.parent) == [
        ("podcast:transcript", "the SRT transcript (application/x-subrip) is missing")
    ]


def test_artwork_that_apple_would_refuse_is_found_in_the_output_folder(
    published: tuple[Show, Path],
) -> None:
    show, target = published
    [copy] = [p for p in target.parent.iterdir() if p.name.startswith("artwork-")]
    make_image(copy.with_suffix(".png"), (500, 500)).replace(copy)

    [(rule, message)] = _rules(show, target.parent.parent)

    assert rule == "artwork" and "is a 500x500 PNG in RGB but is named .jpg" in message


def test_a_linked_file_that_is_missing_is_found(published: tuple[Show, Path]) -> None:
    show, target = published
    mp3 = target.parent / EPISODE / "episode.mp3"
    mp3.unlink()

    [(rule, message)] = _rules(show, target.parent.parent)

    assert rule == "link"
    assert message == f"https://heat.example/pod/{EPISODE}/episode.mp3 points at {mp3}, which " \
        "does not exist"  # fmt: skip


def test_items_sharing_a_guid_are_found(published: tuple[Show, Path]) -> None:
    show, target = published
    text = target.read_text()
    item = text[text.index("<item>") : text.index("</item>") + len("</item>")]
    target.write_text(text.replace(item, item + item))

    assert _rules(show, target.parent.parent) == [
        ("guid", "2 items share the guid; apps merge them")
    ]


def test_a_feed_that_is_not_xml_fails_the_xml_rule(published: tuple[Show, Path]) -> None:
    show, target = published
    target.write_text("<rss><channel><title>half")

    [(rule, message)] = _rules(show, target.parent.parent)

    assert rule == "xml" and message.startswith("not well-formed XML")


def test_a_local_preview_fails_as_a_preview_and_its_files_are_found(tmp_path: Path) -> None:
    show, _ = _publish(tmp_path, public=False, base_url=None)

    findings = check_feed(show, tmp_path).findings

    rules = [f.rule for f in findings]
    assert rules == ["public", "podcast:guid", "public"], findings
    assert "set `feed.public: true`" in findings[0].message
    assert findings[2].where == "7 link(s)"  # self, artwork, audio, 3 transcripts, chapters
    assert findings[2].message.startswith("file:// URLs only work on this machine")


def test_a_feed_that_is_not_there_is_bad_input(tmp_path: Path) -> None:
    show, target = _publish(tmp_path)
    target.unlink()

    with pytest.raises(FeedMissing, match="run `castline feed SHOW` to write it"):
        check_feed(show, tmp_path)


# --- the command --------------------------------------------------------------------------------


@pytest.fixture
def console(monkeypatch: pytest.MonkeyPatch) -> Console:
    wide = Console(width=160, record=True, color_system=None)
    monkeypatch.setattr(app, "console", wide)
    monkeypatch.setattr(app, "err_console", wide)
    return wide


def test_the_command_passes_a_good_feed(published: tuple[Show, Path], console: Console) -> None:
    _, target = published

    result = CliRunner().invoke(cli, ["feed", str(target.parent.parent / "show.yaml"), "--check"])

    assert result.exit_code == 0, console.export_text()
    assert f"passes: {target} (1 episode(s))" in console.export_text()


def test_the_command_tabulates_what_is_wrong_and_exits_1(
    published: tuple[Show, Path], console: Console
) -> None:
    _, target = published
    _edit(target, ' owner="owner@heat.example"', "")
    _edit(target, "<itunes:email>owner@heat.example</itunes:email>", "")

    result = CliRunner().invoke(cli, ["feed", str(target.parent.parent / "show.yaml"), "--check"])

    assert result.exit_code == 1
    text = console.export_text()
    [header] = [line.split("┃")[1:4] for line in text.splitlines() if "┃" in line]
    assert [cell.strip() for cell in header] == ["rule", "where", "problem"]
    lines = [line for line in text.splitlines() if "│" in line]
    assert any("owner" in line and "no <itunes:email>" in line for line in lines)
    assert any("podcast:locked" in line and "has no owner email" in line for line in lines)
    assert f"fails: 2 problem(s) in {target} (1 episode(s))" in text


def test_the_command_exits_2_on_bad_input(tmp_path: Path, console: Console) -> None:
    _, target = _publish(tmp_path)
    target.unlink()
    runner = CliRunner()

    assert runner.invoke(cli, ["feed", str(tmp_path / "show.yaml"), "--check"]).exit_code == 2
    assert "does not exist" in console.export_text()
    (tmp_path / "show.yaml").write_text("show: [")
    assert runner.invoke(cli, ["feed", str(tmp_path / "show.yaml"), "--check"]).exit_code == 2

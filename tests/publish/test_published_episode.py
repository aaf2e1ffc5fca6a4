"""A voiced episode published end to end: first as a local preview, then, once the show says
where it is served, as a public feed that passes `castline feed --check` and the independent
parser; every published file has the mode the umask gives."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from rich.console import Console

from castline import cli as app
from castline.cli import cli
from castline.config import database_url
from castline.engine import episodes
from castline.publish.feed import podcast_guid
from castline.store import Store
from tests.publish.helpers import PUBLIC_FEED, make_image

TOPIC = "How castline turns sources into an episode"


@pytest.fixture
def umask_027() -> Iterator[None]:
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def console(monkeypatch: pytest.MonkeyPatch) -> Console:
    wide = Console(width=200, record=True, color_system=None)
    monkeypatch.setattr(app, "console", wide)
    monkeypatch.setattr(app, "err_console", wide)
    return wide


def _modes(folder: Path) -> dict[str, int]:
    return {
        str(path.relative_to(folder)): stat.S_IMODE(path.stat().st_mode)
        for path in folder.rglob("*")
        if path.is_file()
    }


def test_a_preview_becomes_a_public_feed_that_passes_every_check(
    public_show: tuple[Path, Path],
    umask_027: None,
    console: Console,
    maybe_partytime: Callable[..., Any] | None,
) -> None:
    show, source = public_show
    bible = yaml.safe_load(show.read_text())
    bible["feed"] = {"public": False}  # a local preview first
    show.write_text(yaml.safe_dump(bible, sort_keys=False))

    outcome = episodes.produce(show, TOPIC, [source])

    assert outcome.status == "completed" and outcome.output_dir is not None
    out = outcome.output_dir.parent
    feed_file = out / "feed.xml"
    [event] = [e for e in Store(database_url()).events(outcome.run_id) if e.kind == "feed-preview"]
    assert "local preview (with file:// links" in event.message
    text = feed_file.read_text()
    assert "<itunes:block>Yes</itunes:block>" in text and "podcast:guid" not in text
    runner = CliRunner()
    checked = runner.invoke(cli, ["feed", str(show), "--check"])
    assert checked.exit_code == 1 and "a local preview" in console.export_text(clear=True)
    rebuilt = runner.invoke(cli, ["feed", str(show)])
    said = " ".join(console.export_text(clear=True).split())
    assert rebuilt.exit_code == 0 and "warning: the feed is a local preview" in said

    # the show goes public: the feed is rebuilt with its public URLs
    bible["feed"] = dict(PUBLIC_FEED)
    show.write_text(yaml.safe_dump(bible, sort_keys=False))
    rebuilt = runner.invoke(cli, ["feed", str(show)])
    said = console.export_text(clear=True)
    assert rebuilt.exit_code == 0 and "1 episode(s)" in said and "warning" not in said

    checked = runner.invoke(cli, ["feed", str(show), "--check"])
    report = console.export_text()
    assert checked.exit_code == 0, report
    assert "passes:" in report and "(1 episode(s))" in report
    # every file published, the episode's and the show's, follows the umask (0o027: rw-r-----)
    folder = outcome.output_dir.name
    [copy] = [p.name for p in out.iterdir() if p.name.startswith("artwork-")]
    modes = _modes(out)
    assert {"feed.xml", copy, f"{folder}/episode.mp3", f"{folder}/episode.srt"} <= set(modes)
    assert {name: mode for name, mode in modes.items() if mode != 0o640} == {}
    assert (out / copy).read_bytes() == (show.parent / "cover.jpg").read_bytes()
    if maybe_partytime is None:  # node is not installed here (CI has it)
        return
    parsed = maybe_partytime(feed_file)
    assert parsed["guid"] == podcast_guid("https://heat.example/pod/feed.xml")
    assert parsed["itunesBlock"] is False
    assert parsed["itunesImage"] == f"https://heat.example/pod/{copy}"
    [item] = parsed["items"]
    assert item["enclosure"]["url"] == f"https://heat.example/pod/{folder}/episode.mp3"
    assert item["enclosure"]["length"] == (outcome.output_dir / "episode.mp3").stat().st_size
    assert item["content"].startswith("<h1>Episode 1: ")
    assert len(item["podcastTranscripts"]) == 3
    assert [p["name"] for p in parsed["podcastPeople"]] == ["Alex", "Sam"]


def test_a_public_show_with_artwork_apple_refuses_is_stopped_before_the_run(
    public_show: tuple[Path, Path], console: Console
) -> None:
    show, source = public_show
    make_image(show.parent / "cover.jpg", (1000, 1000))

    result = CliRunner().invoke(cli, ["produce", str(show), "-t", TOPIC, "-s", str(source)])

    assert result.exit_code == 2
    text = " ".join(console.export_text().split())
    assert "show.artwork:" in text and "cover.jpg: is a 1000x1000 JPEG in RGB;" in text
    assert Store(database_url()).list_runs() == []


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_the_feed_and_artwork_follow_the_umask(
    public_show: tuple[Path, Path], mask: int, expected: int
) -> None:
    from castline.config import load_show
    from castline.publish.episode import feed_path, public_url, publish_artwork
    from castline.publish.feed import write_feed

    show_path, _ = public_show
    show = load_show(show_path)
    target = feed_path(show, show_path.parent)
    old = os.umask(mask)
    try:
        artwork = publish_artwork(show, show_path.parent)
        write_feed(
            target, show, public_url(show, show_path.parent, target), [], artwork_url=artwork
        )
    finally:
        os.umask(old)

    assert set(_modes(target.parent).values()) == {expected}
    assert len(_modes(target.parent)) == 2

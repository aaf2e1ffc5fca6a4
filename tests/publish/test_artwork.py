"""Cover art: refused before a run unless Apple Podcasts would take it, and published beside the
feed under a name that changes with the image."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
import yaml
from PIL import Image

from castline.config import load_show
from castline.engine import preflight
from castline.errors import ConfigError, ShowFileError
from castline.publish import artwork
from castline.publish.artwork import ArtworkError, inspect
from tests.publish.helpers import PUBLIC_FEED, make_image


def _problem(path: Path) -> str:
    with pytest.raises(ArtworkError) as raised:
        inspect(path, path.parent / "show.yaml")
    assert isinstance(raised.value, ShowFileError)  # a configuration error: CLI exit 2
    message = str(raised.value)
    assert message.startswith(f"{path.parent / 'show.yaml'}: the show bible is invalid:")
    assert f"show.artwork: {path}: " in message  # names the file
    return raised.value.problem


@pytest.mark.parametrize(("side", "suffix"), [(1400, ".jpg"), (3000, ".png"), (2048, ".jpeg")])
def test_square_rgb_jpeg_and_png_from_1400_to_3000_px_pass(
    tmp_path: Path, side: int, suffix: str
) -> None:
    image = inspect(make_image(tmp_path / f"cover{suffix}", (side, side)), tmp_path / "show.yaml")

    assert (image.width, image.height, image.mode) == (side, side, "RGB")
    assert image.mime == ("image/png" if suffix == ".png" else "image/jpeg")


def test_a_500_px_image_is_refused_saying_what_it_is_and_what_is_required(tmp_path: Path) -> None:
    problem = _problem(make_image(tmp_path / "cover.png", (500, 500)))

    assert problem == (
        "is a 500x500 PNG in RGB; Apple Podcasts requires a square JPEG or PNG of 1400-3000 px "
        "a side, in RGB, with a .jpg or .png extension"
    )


@pytest.mark.parametrize(
    ("size", "mode", "name", "expected"),
    [
        ((3001, 3001), "RGB", "cover.png", "is a 3001x3001 PNG in RGB; Apple Podcasts requires"),
        ((1400, 1500), "RGB", "cover.jpg", "is a 1400x1500 JPEG in RGB, not square;"),
        ((1400, 1400), "RGBA", "cover.png", "in RGBA (not plain RGB: it has transparency"),
        ((1400, 1400), "CMYK", "cover.jpg", "in CMYK (CMYK is for print)"),
        ((1400, 1400), "L", "cover.png", "in L (not RGB)"),
        ((1400, 1400), "RGB", "cover.gif", "is a 1400x1400 GIF in"),
    ],
)
def test_other_images_are_refused(
    tmp_path: Path, size: tuple[int, int], mode: str, name: str, expected: str
) -> None:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("P" if name.endswith(".gif") else mode, size).save(path)

    assert expected in _problem(path)


def test_an_extension_that_lies_about_the_format_is_refused(tmp_path: Path) -> None:
    png = make_image(tmp_path / "real.png")
    lying = tmp_path / "cover.jpg"
    lying.write_bytes(png.read_bytes())

    assert "is a 1400x1400 PNG in RGB but is named .jpg; rename it to .png" in _problem(lying)


def test_a_file_that_is_not_an_image_and_a_missing_one_are_refused(tmp_path: Path) -> None:
    text = tmp_path / "cover.png"
    text.write_text("not an image")

    assert _problem(text).startswith("is not an image castline can read")
    assert _problem(tmp_path / "nowhere.png").startswith("no such file")


def test_only_the_header_is_read(tmp_path: Path) -> None:
    # the pixels cut away: the size and mode are in the header, so the check still passes
    whole = make_image(tmp_path / "whole.png", (2000, 2000)).read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole[:100])

    assert inspect(cut, tmp_path / "show.yaml").width == 2000


def _show(tmp_path: Path, **info: object) -> Path:
    bible = {
        "show": {"title": "T", "description": "D", "author": "A", **info},
        "hosts": [{"name": "Ada", "persona": "p"}],
        "brand_voice": {"style_guide": "s"},
        "feed": dict(PUBLIC_FEED),
        "audio": {"voice": False},
    }
    path = tmp_path / "show.yaml"
    path.write_text(yaml.safe_dump(bible))
    return path


def test_preflight_refuses_bad_artwork_before_a_run_is_recorded(tmp_path: Path) -> None:
    make_image(tmp_path / "small.png", (600, 600))
    source = tmp_path / "notes.md"
    source.write_text(
        "# Heat\n\nCities are hot because asphalt and concrete store the heat of the day and "
        "give it back at night, so a city centre stays warmer than the fields around it.\n"
    )

    with pytest.raises(ArtworkError, match=r"is a 600x600 PNG in RGB; Apple Podcasts requires"):
        preflight.prepare(_show(tmp_path, artwork="small.png"), "Why cities are hot", [source])


def test_a_public_feed_needs_artwork(tmp_path: Path) -> None:
    show = _show(tmp_path)

    with pytest.raises(
        ConfigError, match=re.escape("a public feed needs cover art: set `show.artwork`")
    ):
        artwork.check(load_show(show), tmp_path, bible=show)


def test_artwork_given_as_a_url_is_not_fetched(tmp_path: Path) -> None:
    show = _show(tmp_path, artwork="https://cdn.example.net/cover.jpg")

    assert artwork.check(load_show(show), tmp_path, bible=show) is None


def test_published_copy_is_named_by_content_and_follows_the_umask(tmp_path: Path) -> None:
    make_image(tmp_path / "cover.jpg")
    show = load_show(_show(tmp_path, artwork="cover.jpg"))
    out = tmp_path / "episodes"
    old = os.umask(0o027)
    try:
        first = artwork.publish(show, tmp_path, out)
    finally:
        os.umask(old)
    assert first is not None and first.startswith("artwork-") and first.endswith(".jpg")
    assert (out / first).read_bytes() == (tmp_path / "cover.jpg").read_bytes()
    assert stat.S_IMODE((out / first).stat().st_mode) == 0o640

    assert artwork.publish(show, tmp_path, out) == first  # unchanged image: same name
    make_image(tmp_path / "cover.jpg", (1500, 1500))
    second = artwork.publish(show, tmp_path, out)
    assert second != first and sorted(p.name for p in out.iterdir()) == sorted([first, second])

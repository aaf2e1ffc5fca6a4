"""report.html opened in headless Chromium: the charts are drawn (their SVG shapes have area in
the DOM, and the screenshot of each chart's region is far from blank, while a blank region of
the same size is blank). Needs Debian's `chromium` and Playwright (no browser download):
skipped without them, failed without them in CI. Screenshots are kept in the test's tmp dir."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from castline.engine import episodes
from tests.conftest import EXAMPLE_SOURCES, EXAMPLE_TOPIC

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
CHARTS = ("stage", "role", "model", "quality")


def _browser_or_skip() -> None:
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append("chromium (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install playwright)")
    if missing:
        message = f"needs {' and '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _ink(png: Path) -> float:
    """The share of the image's pixels that are not (near) white."""
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    return float((pixels.min(axis=2) < 235).mean())


def test_the_charts_are_drawn_in_chromium(show_copy: Path, tmp_path: Path) -> None:
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    report = episodes.produce(show_copy, EXAMPLE_TOPIC, EXAMPLE_SOURCES).output_dir / "report.html"
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1100, "height": 900},
            offline=True,  # nothing may be fetched: the file is self-contained
        )
        try:
            page = browser.new_page()
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(report.as_uri())
            page.screenshot(path=str(shots / "report.png"), full_page=True)
            for name in CHARTS:
                chart = page.locator(f"#chart-{name} svg")
                # the SVG has drawn shapes with area, not just an empty frame
                shapes = chart.evaluate(
                    """svg => [...svg.querySelectorAll('path, rect')]
                        .map(e => e.getBBox()).filter(b => b.width * b.height > 4).length"""
                )
                assert shapes >= 5, (name, shapes)
                box = chart.bounding_box()
                assert box is not None and box["width"] > 300 and box["height"] > 150, box
                chart.screenshot(path=str(shots / f"chart-{name}.png"))
                ink = _ink(shots / f"chart-{name}.png")
                assert ink > 0.02, (name, ink)
            # the same check on a blank region of a chart's size finds it blank
            page.evaluate(
                """() => { const d = document.createElement('div'); d.id = 'blank';
                   d.style.cssText = 'width:700px;height:330px;background:white';
                   document.body.prepend(d); }"""
            )
            page.locator("#blank").screenshot(path=str(shots / "blank.png"))
            assert _ink(shots / "blank.png") < 0.001
            assert [url for url in requests if not url.startswith("file://")] == []
        finally:
            browser.close()
    print(f"screenshots in {shots}")

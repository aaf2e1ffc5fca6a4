"""The studio in a real headless Chromium against a real uvicorn server and a `castline
worker` process: start an episode from the page (forecast first), watch it reach completion on
the live page, open the episode, play it and see the transcript follow the audio, edit a turn
and see only its clip voiced again, and approve an escalated episode from the review queue.
Needs Debian's `chromium` and Playwright: skipped without them, failed without them in CI.
Screenshots of each page are kept in the test's tmp dir."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from castline.engine import runtime
from castline.studio import create_app
from tests.conftest import EXAMPLE, EXAMPLE_SOURCES, EXAMPLE_TOPIC
from tests.insights.test_insights_browser import CHROMIUM, FLAGS, _browser_or_skip
from tests.studio.conftest import HEAT_CHECK, TOKEN, stop, worker
from tests.studio.test_studio_api import escalated

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.slow
PLANTED = "<script>window.pwned = 1</script>"


def _until(page: Page, expression: str, timeout: float = 30) -> None:
    """Poll a JavaScript expression (the page's CSP forbids the eval that
    `wait_for_function` uses; `evaluate` goes through the debugger instead)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.05)


def _off_the_loop(action: Callable[[], str]) -> str:
    """Run `action` in a thread: Playwright's sync API keeps an event loop running in this
    one, and DBOS refuses its blocking calls there."""
    box: list[str] = []
    thread = threading.Thread(target=lambda: box.append(action()))
    thread.start()
    thread.join(timeout=120)
    assert box, "the action failed or timed out"
    return box[0]


@pytest.fixture
def voiced_show(tmp_path: Path) -> Path:
    """The example show with its audio on (the player needs an MP3 and its VTT)."""
    target = tmp_path / "voiced" / "show.yaml"
    target.parent.mkdir(parents=True)
    target.write_text((EXAMPLE / "show.yaml").read_text())
    return target


@pytest.fixture
def studio_url(voiced_show: Path) -> Iterator[str]:
    """The studio under uvicorn on a free loopback port, as `castline serve` runs it."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(runtime.store(), TOKEN, shows=[voiced_show])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, name="studio-uvicorn", daemon=True)
    thread.start()
    deadline = threading.Event()
    for _ in range(200):
        if server.started:
            break
        deadline.wait(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    app.state.studio.settle(timeout=60)  # runs a review decision continued in this process


def test_an_episode_is_started_followed_played_edited_and_reviewed_in_chromium(
    studio_url: str, isolated: Path, tmp_path: Path, show_copy: Path
) -> None:
    _browser_or_skip()
    from playwright.sync_api import expect, sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()
    process = worker(isolated)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"),
                executable_path=CHROMIUM,
                headless=True,
                args=[*FLAGS, "--autoplay-policy=no-user-gesture-required"],
                viewport={"width": 1200, "height": 900},
            )
            try:
                page = browser.new_page()
                outside: list[str] = []
                page.on(
                    "request",
                    lambda r: None if r.url.startswith(studio_url) else outside.append(r.url),
                )
                page.goto(f"{studio_url}/start?token={TOKEN}")  # once; then the cookie
                assert page.url == f"{studio_url}/start"
                page.select_option("#show", HEAT_CHECK)
                page.fill("#topic", f"{EXAMPLE_TOPIC} {PLANTED}")
                page.set_input_files("#files", [str(p) for p in EXAMPLE_SOURCES[:2]])
                page.fill("#target_minutes", "5")
                page.click("#forecast-button")
                expect(page.locator("#forecast")).to_be_visible(timeout=60_000)
                summary = page.locator("#forecast-summary").inner_text()
                assert "5 minutes" in summary and "expected $" in summary and PLANTED in summary
                assert page.locator("#forecast-rows tbody tr").count() >= 5
                page.screenshot(path=str(shots / "start-forecast.png"), full_page=True)

                page.click("#confirm")
                page.get_by_role("link", name="Follow it live").click()
                page.wait_for_url(f"{studio_url}/runs/*")
                run_id = page.url.rsplit("/", 1)[1]
                expect(page.locator("#events li").first).to_be_visible(timeout=30_000)
                page.screenshot(path=str(shots / "run-live.png"), full_page=True)
                page.reload()  # the stream survives a reload
                expect(page.locator("#done")).to_be_visible(timeout=150_000)
                assert page.locator("#status").inner_text() == "completed"
                kinds = page.locator("#events li").evaluate_all(
                    "items => items.map(i => i.dataset.kind)"
                )
                trail = [e.kind for e in runtime.store().events(run_id)]
                assert kinds == trail  # every event once, in order, after the reload too
                assert PLANTED in page.locator("#title").inner_text()  # shown as text
                page.screenshot(path=str(shots / "run-completed.png"), full_page=True)

                page.get_by_role("link", name="Open the episode").click()
                page.wait_for_url(f"{studio_url}/episodes/{run_id}")
                record = runtime.store().get_run(run_id)
                expect(page.locator("#transcript li").nth(5)).to_be_visible(timeout=30_000)
                expect(page.locator("#script .turn").nth(10)).to_be_visible()  # loaded apart
                expect(page.locator("#verdicts tbody tr").nth(5)).to_be_attached()
                assert page.locator("#report").get_attribute("href", timeout=5000) == (
                    f"/api/runs/{run_id}/files/report.html"
                )
                page.evaluate("document.getElementById('audio').play()")
                _until(page, "document.getElementById('audio').currentTime > 0.5")
                first = page.locator("#transcript li.current").first
                expect(first).to_be_visible(timeout=10_000)
                was = first.get_attribute("data-start")
                later = page.locator("#transcript li").nth(8).get_attribute("data-start")
                assert later is not None and was != later
                page.evaluate(f"document.getElementById('audio').currentTime = {later} + 0.05")
                _until(
                    page,
                    "(() => { const c = document.querySelector('#transcript li.current');"
                    f" return c !== null && c.dataset.start === '{later}'; }})()",
                )
                assert page.locator("#transcript li.current").count() == 1
                # chapters seek the player; a citation opens its note and source
                expect(page.locator("#chapters li").nth(2)).to_be_visible()
                page.locator("#chapters button").nth(2).click()
                chapter = json.loads((Path(record.output_dir) / "chapters.json").read_text())
                start = chapter["chapters"][2]["startTime"]
                _until(
                    page, f"Math.abs(document.getElementById('audio').currentTime - {start}) < 2"
                )
                expect(page.locator("#chapters li").nth(2)).to_have_class("current")
                page.locator("#script button.citation").first.click()
                expect(page.locator("#note blockquote")).not_to_be_empty()
                assert "from " in page.locator("#note").inner_text()
                assert page.evaluate("window.pwned") is None  # the planted script never ran
                page.screenshot(path=str(shots / "episode.png"), full_page=True)

                # edit one turn in place: checked and priced, then only its clip is voiced again
                turn = page.locator("#script .turn").nth(3)
                turn.locator("button.edit").click()
                text = turn.locator("textarea")
                text.fill(text.input_value() + " We checked that figure twice.")
                turn.locator("button.check").click()
                plan = turn.locator(".edit-plan")
                expect(plan).to_contain_text("only the 1 changed turn(s)", timeout=30_000)
                assert "at most $" in plan.inner_text()
                page.screenshot(path=str(shots / "edit-turn.png"), full_page=True)
                before = max(e.id for e in runtime.store().events(run_id))
                turn.locator("button.confirm-edit").click()
                page.wait_for_url(f"{studio_url}/runs/{run_id}")
                expect(page.locator("#done")).to_be_visible(timeout=120_000)
                revoiced = [e.kind for e in runtime.store().events(run_id, after=before)]
                assert revoiced.count("clip-synthesized") == 1 and "clip-cached" in revoiced
                shown = page.locator("#events li[data-kind=clip-synthesized]").count()
                assert shown == [e.kind for e in runtime.store().events(run_id)].count(
                    "clip-synthesized"
                )

                page.goto(f"{studio_url}/")
                expect(page.locator("#episodes tbody tr")).to_have_count(1, timeout=10_000)
                assert page.locator("#episodes meter").count() == 1
                page.screenshot(path=str(shots / "shows.png"), full_page=True)
                # an escalated episode (made in this process, whose server thread decides it)
                escalated_id = _off_the_loop(lambda: escalated(show_copy))
                page.goto(f"{studio_url}/review")
                item = page.locator(f"section[data-run='{escalated_id}']")
                expect(item).to_contain_text("secondary thinks 0.4")
                page.screenshot(path=str(shots / "review.png"), full_page=True)
                item.locator("input.note").fill("fine by the studio")
                item.locator("button.approve").click()
                page.wait_for_url(f"{studio_url}/runs/{escalated_id}")
                expect(page.locator("#done")).to_be_visible(timeout=120_000)
                assert page.locator("#status").inner_text() == "completed"
                page.screenshot(path=str(shots / "review-approved.png"), full_page=True)
                assert outside == []  # no CDN, nothing fetched from anywhere else
            finally:
                browser.close()
    finally:
        stop(process)
    print(f"screenshots in {shots}")

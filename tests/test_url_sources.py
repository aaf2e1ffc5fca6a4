"""URL sources in a run: read like files, refused before anything is spent when they cannot be
used, kept with the run (a resume never fetches again) and cited with their address and date."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from castline.config import database_url
from castline.engine import episodes, preflight
from castline.errors import SourceError
from castline.sources import read_sources
from castline.store import Store
from tests.conftest import EXAMPLE, EXAMPLE_TOPIC
from tests.hostile import assert_refused, invoke
from tests.test_fetching import QuietServer, _Handler, server

__all__ = ["server"]  # the local web server's fixture, used below


def test_a_page_is_read_as_a_source_without_its_menus_and_footer(server: str) -> None:
    [source] = read_sources([f"http://{server}/article"], allow_private_urls=True)
    assert source.title == "Street trees and heat" and source.kind == "html"
    assert source.url == f"http://{server}/article" and source.retrieved_at
    text = source.text
    assert "hundreds of litres of water" in text and "Rules for builders" in {
        s.heading for s in source.sections
    }
    assert "Subscribe" not in text and "Cookie" not in text
    assert source.reference.startswith(f"http://{server}/article, retrieved 20")


def test_a_pdf_by_url_is_read_like_the_file(server: str) -> None:
    [fetched] = read_sources([f"http://{server}/paper"], allow_private_urls=True)
    [local] = read_sources([EXAMPLE / "sources" / "cooling-strategies.pdf"])
    assert fetched.kind == "pdf" and fetched.sections == local.sections
    assert fetched.sha256 == local.sha256


def test_the_same_url_twice_is_refused(server: str) -> None:
    url = f"http://{server}/article"
    with pytest.raises(SourceError, match="is given twice"):
        read_sources([url, url], allow_private_urls=True)


def test_a_loopback_url_is_refused_before_the_run_unless_allowed(
    server: str, show_copy: Path
) -> None:
    result = invoke(
        "produce", str(show_copy), "--topic", EXAMPLE_TOPIC, "--provider", "offline",
        "--source", f"http://{server}/equity",
    )  # fmt: skip
    assert_refused(result, f"http://{server}/equity", "loopback", "--allow-private-urls")
    assert Store(database_url()).list_runs() == []


def test_a_run_from_a_url_keeps_its_snapshot_and_cites_it(show_copy: Path) -> None:
    httpd = QuietServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/equity"
    sources = [EXAMPLE / "sources" / "cities-and-heat.md", url]
    run_id = preflight.create_run(
        show_copy, EXAMPLE_TOPIC, sources, provider="offline", allow_private_urls=True
    )
    httpd.shutdown()
    httpd.server_close()  # from here on the page cannot be fetched again

    outcome = episodes.resume(run_id)

    assert outcome.status == "completed", outcome
    [stored] = [s for s in Store(database_url()).load_sources(run_id) if s["url"]]
    assert stored["url"] == url and stored["retrieved_at"]
    assert outcome.output_dir is not None
    notes = (outcome.output_dir / "show-notes.md").read_text()
    assert f"{url}, retrieved {stored['retrieved_at'][:10]}" in notes
    episode = json.loads((outcome.output_dir / "episode.json").read_text())
    assert any(s["url"] == url for s in episode["sources"])

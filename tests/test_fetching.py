"""Fetching sources from the web, against a real HTTP server on loopback: pages, PDFs,
redirects and every way a fetch goes wrong, and the guard on where it may connect."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from castline import fetching
from castline.errors import SourceError
from tests.conftest import EXAMPLE

ARTICLE = b"""<!doctype html><html><head><title>Street trees and heat</title></head><body>
<nav><a href="/">Home</a> | <a href="/about">About us</a> | Subscribe to our newsletter</nav>
<article><h1>Street trees and heat</h1>
<p>Street trees lower summer air temperatures in cities by shading pavements and walls.</p>
<p>A mature oak can transpire hundreds of litres of water on a hot afternoon, cooling the air
around it by several degrees.</p>
<h2>Rules for builders</h2>
<p>Some cities now require developers to replace every tree they remove during construction.</p>
</article><footer>Copyright 2026. All rights reserved. Cookie settings.</footer></body></html>"""
PDF = (EXAMPLE / "sources" / "cooling-strategies.pdf").read_bytes()
EQUITY = (EXAMPLE / "sources" / "health-and-equity.html").read_bytes()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        port = self.server.server_address[1]
        routes = {
            "/article": (200, "text/html; charset=utf-8", ARTICLE),
            "/paper": (200, "application/pdf", PDF),
            "/equity": (200, "text/html", EQUITY),
            "/notes.txt": (200, "text/plain", b"Plain notes about trees. " * 20),
            "/image": (200, "image/png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64),
            "/missing": (404, "text/html", b"<p>not here</p>"),
        }
        redirects = {
            "/r1": "/r2",
            "/r2": f"http://localhost:{port}/article",
            "/loop": "/loop",
            "/to-ftp": "ftp://files.example/paper.pdf",
            "/to-other": f"http://127.0.0.2:{port}/article",
        }
        if self.path in redirects:
            self.send_response(302)
            self.send_header("Location", redirects[self.path])
            self.end_headers()
        elif self.path == "/slow":
            time.sleep(1.5)
            self._send(200, "text/html", ARTICLE)
        elif self.path == "/huge":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()  # no length: only the bytes that arrive can be counted
            for _ in range(64):
                self.wfile.write(b"x" * 65536)
        else:
            self._send(*routes[self.path])

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None  # quiet: the tests read what was served, not the server's log


class QuietServer(ThreadingHTTPServer):
    """A client that gave up (a timeout test) breaks the pipe of the answer being written: not
    an error worth a traceback on stderr, where it would land in another test's output."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        return None


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = QuietServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _fetch(url: str, **options: object) -> fetching.Page:
    return fetching.fetch(url, allow_private=True, **options)  # type: ignore[arg-type]


def test_an_article_page_is_fetched_with_its_address_time_and_hash(server: str) -> None:
    page = _fetch(f"http://{server}/article")
    assert page.kind == "html" and page.body == ARTICLE
    assert page.final_url == page.url == f"http://{server}/article"
    assert page.retrieved_at.endswith("+00:00") and len(page.sha256) == 64


def test_a_pdf_and_plain_text_are_fetched_by_their_content_type(server: str) -> None:
    assert _fetch(f"http://{server}/paper").kind == "pdf"
    assert _fetch(f"http://{server}/notes.txt").kind == "text"


def test_a_redirect_chain_is_followed_to_its_final_address(server: str) -> None:
    page = _fetch(f"http://{server}/r1")
    port = server.rsplit(":", 1)[1]
    assert page.final_url == f"http://localhost:{port}/article" and page.body == ARTICLE


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("/missing", ["404", "check the address"]),
        ("/image", ["image/png", "not a web page"]),
        ("/loop", ["redirects more than 5 times"]),
        ("/to-ftp", ["only http and https", "ftp://files.example"]),
    ],
)
def test_what_cannot_be_a_source_is_refused_with_why(
    server: str, path: str, names: list[str]
) -> None:
    with pytest.raises(SourceError) as refused:
        _fetch(f"http://{server}{path}")
    for name in names:
        assert name in str(refused.value)


def test_a_server_too_slow_to_answer_is_a_timeout(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetching, "READ_TIMEOUT_S", 0.3)
    with pytest.raises(SourceError, match="did not answer in time"):
        _fetch(f"http://{server}/slow")


def test_a_huge_body_is_cut_off_at_the_cap(server: str) -> None:
    with pytest.raises(SourceError, match="is more than the 1 MB a fetched source may be"):
        _fetch(f"http://{server}/huge", max_bytes=1_000_000)


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("127.0.0.1:{port}", "loopback"),
        ("localhost:{port}", "loopback"),  # a name that resolves to this machine
        ("[::1]:{port}", "loopback"),
        ("10.0.0.1", "private network"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("[::ffff:127.0.0.1]:{port}", "loopback"),
    ],
)
def test_the_guard_refuses_addresses_that_are_not_public(server: str, host: str, why: str) -> None:
    url = f"http://{host.format(port=server.rsplit(':', 1)[1])}/article"
    with pytest.raises(SourceError) as refused:
        fetching.fetch(url)
    message = str(refused.value)
    assert why in message and "--allow-private-urls" in message


def test_the_guard_checks_every_redirect(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # only 127.0.0.2 counts as private here, so that the first hop (127.0.0.1) is let through
    monkeypatch.setattr(
        fetching, "why_refused", lambda a: "a private network address" if a == "127.0.0.2" else None
    )
    with pytest.raises(SourceError) as refused:
        fetching.fetch(f"http://{server}/to-other")
    assert "redirected to http://127.0.0.2" in str(refused.value)


def test_with_the_allowance_a_private_address_is_fetched(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    assert fetching.fetch(f"http://localhost:{port}/article", allow_private=True).kind == "html"


@pytest.mark.parametrize(
    ("address", "public"),
    [("93.184.215.14", True), ("2606:4700::1111", True), ("192.168.1.4", False),
     ("100.64.0.1", False), ("224.0.0.1", False), ("0.0.0.0", False), ("fe80::1", False)],
)  # fmt: skip
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert (fetching.why_refused(address) is None) == public


@pytest.mark.parametrize(
    ("reference", "url"),
    [("https://example.org/a", True), ("ftp://x/y", True), ("notes.md", False),
     ("C:\\notes.md", False), ("./https/notes.md", False)],
)  # fmt: skip
def test_a_url_is_told_from_a_file(reference: str, url: bool) -> None:
    assert fetching.is_url(reference) == url


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("http://", ["has no host name"]),
        ("http://[::1", ["is not a valid address"]),
        ("http://example.org:99999/", ["is not a valid address"]),
        ("https://xn--.com/", ["is not a valid address"]),
        ("file:///etc/passwd", ["only http and https"]),
        ("https://nonexistent.invalid/x", ["cannot be fetched", "cannot be resolved"]),
    ],
)
def test_a_bad_address_is_refused_with_why(url: str, names: list[str]) -> None:
    with pytest.raises(SourceError) as refused:
        fetching.fetch(url)
    for name in names:
        assert name in str(refused.value)

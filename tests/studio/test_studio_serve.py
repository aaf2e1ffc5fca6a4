"""`castline serve` as a person starts it: on loopback, printing the URL and the token that
every API request then needs; the token is random per start unless CASTLINE_STUDIO_TOKEN is
set."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.studio.conftest import wait_for

pytestmark = pytest.mark.slow


def _serve(home: Path, port: int, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "castline", "serve", "--port", str(port)],
        env={**os.environ, "CASTLINE_HOME": str(home), "COLUMNS": "200", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _lines(process: subprocess.Popen[str], count: int) -> list[str]:
    assert process.stdout is not None
    return [process.stdout.readline().strip() for _ in range(count)]


@pytest.mark.parametrize("fixed", [None, "team-token-4242"])
def test_serve_prints_its_url_and_token_and_every_request_needs_it(
    isolated: Path, fixed: str | None
) -> None:
    port = _free_port()
    env = {"CASTLINE_STUDIO_TOKEN": fixed} if fixed else {}
    process = _serve(isolated, port, env)
    try:
        url, token_line, opening = _lines(process, 3)
        assert url == f"castline studio on http://127.0.0.1:{port}/"
        token = token_line.removeprefix("token: ")
        assert token == fixed if fixed else len(token) >= 24
        assert opening == f"open http://127.0.0.1:{port}/?token={token}"
        api = f"http://127.0.0.1:{port}/api/shows"

        def up() -> bool:
            try:
                return httpx.get(api, timeout=2).status_code == 401
            except httpx.TransportError:
                return False

        wait_for(up, "the studio to listen", timeout=30)
        shows = httpx.get(api, headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert shows.status_code == 200 and shows.json()["shows"] == []
        assert httpx.get(api, headers={"Authorization": "Bearer x"}, timeout=5).status_code == 401
    finally:
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
    assert "Traceback" not in err

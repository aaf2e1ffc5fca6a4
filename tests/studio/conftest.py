"""The studio in-process (FastAPI's TestClient) over the test's own run store, a worker
process for queued episodes, and the example's sources as uploads."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from castline.engine import runtime
from tests.conftest import EXAMPLE_SOURCES

try:
    from fastapi.testclient import TestClient

    from castline.studio.catalog import show_id
except ImportError:  # the `studio` extra is not installed: its tests cannot run (CI has it)
    if os.environ.get("CI"):
        raise
    collect_ignore_glob = ["test_*.py"]
    TestClient = object  # type: ignore[assignment,misc]

    def show_id(title: str) -> str:
        return title


TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HEAT_CHECK = show_id("Heat Check")  # the example show's title


@pytest.fixture
def client(show_copy: Path) -> Iterator[TestClient]:
    from castline.studio import create_app

    app = create_app(runtime.store(), TOKEN, shows=[show_copy])
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def uploads(paths: list[Path] = EXAMPLE_SOURCES[:2]) -> list[tuple[str, tuple[str, bytes]]]:
    """The files as a multipart form's `files` field."""
    return [("files", (path.name, path.read_bytes())) for path in paths]


def worker(home: Path) -> subprocess.Popen[bytes]:
    """`castline worker` on the test's state directory."""
    return subprocess.Popen(
        [sys.executable, "-m", "castline", "worker", "--concurrency", "2"],
        env={**os.environ, "CASTLINE_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return found

"""Atomic writes give files the mode the umask asks for, and keep a file's own mode."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from castline.fileio import umask, write_atomic


@pytest.fixture
def mask() -> Iterator[None]:
    saved = os.umask(0o022)
    yield
    os.umask(saved)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("given", "expected"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_a_new_file_gets_the_mode_the_umask_asks_for(
    tmp_path: Path, mask: None, given: int, expected: int
) -> None:
    os.umask(given)
    assert umask() == given
    path = tmp_path / "feed.xml"
    digest = write_atomic(path, "<rss/>")
    assert _mode(path) == expected
    assert path.read_text() == "<rss/>" and len(digest) == 64


def test_a_file_written_again_keeps_its_own_mode(tmp_path: Path, mask: None) -> None:
    path = tmp_path / "episode.mp3"
    write_atomic(path, b"ID3")
    path.chmod(0o640)
    write_atomic(path, b"ID3 again")
    assert _mode(path) == 0o640 and path.read_bytes() == b"ID3 again"
    assert [p.name for p in tmp_path.iterdir()] == ["episode.mp3"]  # no temporary file left

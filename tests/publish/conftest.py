"""Fixtures of the publishing tests: a public show, voiced, with cover art; and the independent
Podcasting 2.0 parser, podcast-partytime, run with node."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from filelock import FileLock

from castline.cli import cli
from tests.publish.helpers import PUBLIC_FEED, make_image


@pytest.fixture
def public_show(tmp_path: Path) -> tuple[Path, Path]:
    """The scaffolded three-minute show, voiced, with cover art and a public feed: (show.yaml,
    its example source)."""
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "s")], catch_exceptions=False)
    assert result.exit_code == 0
    show = tmp_path / "s" / "show.yaml"
    bible = yaml.safe_load(show.read_text())
    bible["show"]["artwork"] = "cover.jpg"
    bible["feed"] = dict(PUBLIC_FEED)
    show.write_text(yaml.safe_dump(bible, sort_keys=False))
    make_image(tmp_path / "s" / "cover.jpg")
    return show, tmp_path / "s" / "sources" / "example.md"


NODE_DIR = Path(__file__).resolve().parent / "node"


def _absent(reason: str) -> None:
    """Where node is not installed the tests that need it skip, but CI must run the parser."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: install Debian's nodejs and npm packages)")


def _partytime() -> Callable[..., Any] | str:
    """The parser, or why it cannot run here; its npm package is installed into
    tests/publish/node/ from the committed lock file when missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return "node and npm are needed for the podcast-partytime parser"
    with FileLock(str(NODE_DIR / ".install.lock")):
        if not (NODE_DIR / "node_modules" / "podcast-partytime").is_dir():
            quiet = ["--no-audit", "--no-fund", "--loglevel=error"]
            for command in ([npm, "ci", "--offline", *quiet], [npm, "ci", *quiet]):
                done = subprocess.run(
                    command, cwd=NODE_DIR, capture_output=True, text=True, timeout=300
                )
                if done.returncode == 0:
                    break
            else:
                return f"`npm ci` could not install podcast-partytime: {done.stderr.strip()}"

    def parse(path: Path, *options: str) -> Any:
        done = subprocess.run(
            [node, str(NODE_DIR / "parse.js"), *options, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    return parse


@pytest.fixture(scope="session")
def maybe_partytime() -> Callable[..., Any] | None:
    """podcast-partytime, the Podcasting 2.0 parser from npm run by node, or None where node is
    not installed (for tests with more to check than the parser; in CI it must be there)."""
    parser = _partytime()
    if isinstance(parser, str):
        _absent(parser)
        return None
    return parser


@pytest.fixture(scope="session")
def partytime(maybe_partytime: Callable[..., Any] | None) -> Callable[..., Any]:
    """podcast-partytime; the test skips where node is not installed (and fails in CI)."""
    if maybe_partytime is None:
        pytest.skip("node and npm are needed for the podcast-partytime parser")
    return maybe_partytime

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from castline.cli import cli


@pytest.fixture
def short_show(tmp_path: Path) -> tuple[Path, Path]:
    """The scaffolded show: a three-minute episode from one source, voiced."""
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "s")], catch_exceptions=False)
    assert result.exit_code == 0
    return tmp_path / "s" / "show.yaml", tmp_path / "s" / "sources" / "example.md"

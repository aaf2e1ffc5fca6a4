"""`castline stats SHOW`: the table, --json, --html with its charts, and an unknown show."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from castline import cli as cli_module
from castline.cli import cli
from castline.config import database_url
from castline.store import Store
from tests.insights.episodes import publish_episode


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_module, "console", Console(width=250))
    monkeypatch.setattr(cli_module, "err_console", Console(width=250, stderr=True))


@pytest.fixture
def history(tmp_path: Path) -> None:
    store = Store(database_url())
    for n, cost in enumerate(["1", "2", "3"], start=1):
        publish_episode(store, tmp_path, f"e{n}", number=n, research_cost=Decimal(cost))


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_stats_table_by_title(history: None) -> None:
    result = invoke("stats", "heat check")
    assert result.exit_code == 0, result.output
    assert "Heat Check: 3 published episodes" in result.output
    assert re.search(r"│ 3 .*\$3\.2500 .*\$0\.3250", result.output)  # cost and per minute
    assert "recurring: compliance/forbidden-phrases failed the first review in 3 of the last 3" in (
        result.output
    )
    assert "recurring-gate-failure" in result.output
    assert "cost_usd (last 1)" in result.output


def test_stats_json_by_show_bible_path(history: None, show_copy: Path) -> None:
    result = invoke("stats", str(show_copy), "--json")  # the example show is "Heat Check"
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [e["run_id"] for e in data["episodes"]] == ["e1", "e2", "e3"]
    assert [e["cost"] for e in data["episodes"]] == ["1.25", "2.25", "3.25"]
    assert data["episodes"][0]["cost_per_minute"] == "0.125000"
    assert data["total_cost"] == "6.75"
    assert [r["kind"] for r in data["recommendations"]] == ["recurring-gate-failure"]
    assert data["recommendations"][0]["saving_usd"] == "0.25"


def test_stats_html_has_its_charts(history: None, tmp_path: Path) -> None:
    page = tmp_path / "stats.html"
    result = invoke("stats", "Heat Check", "--html", str(page))
    assert result.exit_code == 0, result.output
    html = page.read_text()
    assert html.count("<svg") == 3  # cost, cost per minute, quality
    assert "<script" not in html and "src=" not in html
    assert 'id="chart-cost"' in html and "compliance/forbidden-phrases" in html


def test_stats_of_an_unknown_show_exits_2(history: None) -> None:
    result = invoke("stats", "No Such Show")
    assert result.exit_code == 2
    assert "no runs of the show 'No Such Show' in this run store; shows with runs: Heat Check" in (
        result.output
    )


def test_stats_in_an_empty_store_says_so() -> None:
    result = invoke("stats", "Heat Check")
    assert result.exit_code == 2
    assert "the store has no runs" in result.output


def test_without_matplotlib_the_page_is_written_and_says_why(
    history: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from castline.insights import charts

    monkeypatch.setattr(charts, "available", lambda: False)
    page = tmp_path / "stats.html"
    assert invoke("stats", "Heat Check", "--html", str(page)).exit_code == 0
    html = page.read_text()
    assert "<svg" not in html
    assert "Charts were not drawn: matplotlib is not installed (pip install " in html
    assert "&#39;castline[charts]&#39;)" in html  # escaped like every text
    assert "compliance/forbidden-phrases" in html  # the figures are all there

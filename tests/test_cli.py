"""The command line: the happy path, and every bad input with its message and exit code."""

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
from castline.engine import preflight
from castline.errors import EpisodeNumberTaken
from castline.store import Store
from tests.conftest import EXAMPLE_SOURCES, EXAMPLE_TOPIC


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Render tables at a width where nothing wraps, writing to whatever stdout is then."""
    monkeypatch.setattr(cli_module, "console", Console(width=250))
    monkeypatch.setattr(cli_module, "err_console", Console(width=250, stderr=True))


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _produce(show: Path, topic: str = EXAMPLE_TOPIC, *sources: Path) -> Result:
    args = ["produce", str(show), "--topic", topic]
    for source in sources or EXAMPLE_SOURCES:
        args += ["--source", str(source)]
    return _run(*args)


def _run_id(result: Result) -> str:
    return next(line.split()[-1] for line in result.output.splitlines() if "run id" in line)


def test_init_then_produce_then_inspect(tmp_path: Path) -> None:
    created = _run("init", str(tmp_path / "my-show"))
    assert created.exit_code == 0
    show = tmp_path / "my-show" / "show.yaml"
    source = tmp_path / "my-show" / "sources" / "example.md"
    assert "# castline show bible" in show.read_text()

    produced = _produce(show, "Why a show needs sources", source)

    assert produced.exit_code == 0, produced.output
    assert "shadow cost (offline)" in produced.output
    assert "shadow cost, offline by stage" in produced.output
    run_id = _run_id(produced)
    listing = _run("runs")
    assert run_id in listing.output and "completed" in listing.output
    shown = _run("runs", "show", run_id, "--json")
    detail = json.loads(shown.output)
    assert detail["run"]["status"] == "completed"
    cost = detail["cost"]
    assert {row["key"] for row in cost["by_stage"]} >= {"research", "plan", "write"}
    assert cost["label"] == "shadow cost (offline)" and cost["mode"] == "normal"
    assert sum(float(row["cost"]) for row in cost["by_model"]) == float(cost["spent"])
    assert {a["name"] for a in detail["artifacts"]} == {
        "chapters.json",
        "cost-report.json",
        "episode.json",
        "episode.mp3",
        "episode.srt",
        "episode.vtt",
        "quality-report.json",
        "report.html",
        "report.md",
        "show-notes.html",
        "transcript.json",
        "script.md",
        "show-notes.md",
        "transcript.txt",
    }
    assert any(v["criterion"] == "disclaimers" and v["passed"] for v in detail["verdicts"])
    logs = _run("runs", "logs", run_id)
    assert "research fan-out" in logs.output and "run completed" in logs.output


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    assert _run("init", str(tmp_path / "s")).exit_code == 0
    again = _run("init", str(tmp_path / "s"))
    assert again.exit_code == 2 and "already exists" in again.output


BAD_SHOWS = {
    "malformed YAML": ("show: [unclosed\n", "line 2, column 1: malformed YAML"),
    "unknown key": ("hostz: []\n", "line 1: hostz: unknown key 'hostz'; allowed here: audio"),
    "missing host": ("hosts: []\n", "line 1: hosts: List should have at least 1 item"),
    "zero budget": ("budget:\n  per_episode: 0\n", "line 2: budget.per_episode: Input should be"),
}


@pytest.mark.parametrize("case", sorted(BAD_SHOWS))
def test_bad_show_bible_is_a_usage_error_naming_file_field_and_line(
    case: str, show_copy: Path
) -> None:
    text, expected = BAD_SHOWS[case]
    original = show_copy.read_text()
    if case == "malformed YAML":
        show_copy.write_text(text)
    else:
        key = text.split(":")[0]
        kept = [
            block
            for block in original.split("\n\n")
            if not block.lstrip().startswith(f"{key}:") and not block.startswith("#")
        ]
        show_copy.write_text(text + "\n" + "\n\n".join(kept))
    result = _produce(show_copy)
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert str(show_copy) in message
    assert expected in message


def test_missing_source_file(show_copy: Path, tmp_path: Path) -> None:
    result = _produce(show_copy, EXAMPLE_TOPIC, tmp_path / "nowhere.md")
    assert result.exit_code == 2
    assert "nowhere.md: file not found" in " ".join(result.output.split())


def test_unreadable_pdf(show_copy: Path, tmp_path: Path) -> None:
    broken = tmp_path / "paper.pdf"
    broken.write_bytes(b"%PDF-1.7\nthis is not really a pdf\n")
    result = _produce(show_copy, EXAMPLE_TOPIC, broken)
    assert result.exit_code == 2
    assert "paper.pdf" in result.output and "not a readable PDF" in result.output


def test_empty_topic(show_copy: Path) -> None:
    result = _produce(show_copy, "   ")
    assert result.exit_code == 2 and "the topic is empty" in result.output


def test_nothing_is_recorded_for_bad_input(show_copy: Path, tmp_path: Path) -> None:
    _produce(show_copy, EXAMPLE_TOPIC, tmp_path / "missing.md")
    assert "no runs yet" in _run("runs").output


def test_unknown_run_id(show_copy: Path) -> None:
    for command in (["runs", "show", "nope"], ["runs", "logs", "nope"], ["resume", "nope"]):
        result = _run(*command)
        assert result.exit_code == 2
        assert "no run with id 'nope'" in result.output
        assert "run failed" not in result.output


def test_resume_of_a_finished_run(show_copy: Path) -> None:
    run_id = _run_id(_produce(show_copy))
    result = _run("resume", run_id)
    assert result.exit_code == 2
    assert f"run {run_id} already finished (completed)" in " ".join(result.output.split())
    assert "run failed" not in result.output


def test_unknown_provider(show_copy: Path) -> None:
    result = _run(
        "produce", str(show_copy), "-t", "x", "-s", str(EXAMPLE_SOURCES[0]), "--provider", "acme"
    )
    assert result.exit_code == 2 and "no provider named 'acme'" in result.output


def test_estimate_forecasts_what_an_offline_run_then_costs(show_copy: Path) -> None:
    args = ["estimate", str(show_copy), "--topic", EXAMPLE_TOPIC, "--json"]
    for source in EXAMPLE_SOURCES:
        args += ["--source", str(source)]
    result = _run(*args)
    assert result.exit_code == 0, result.output
    forecast = json.loads(result.output)
    total = {key: Decimal(value) for key, value in forecast["total"].items()}
    assert Decimal(0) < total["low"] < total["expected"] < total["high"]
    stages = [row["stage"] for row in forecast["rows"]]
    assert stages[0] == "research" and "write" in stages
    assert "no runs yet" in _run("runs").output  # estimating records no run
    assert not (show_copy.parent / "episodes").exists()  # and publishes nothing

    assert _produce(show_copy).exit_code == 0
    [run] = Store(database_url()).list_runs()
    cost = json.loads((Path(run.output_dir) / "cost-report.json").read_text())
    # the offline run's shadow cost prices every prompt uncached; the forecast models the cache
    assert total["expected"] < Decimal(cost["spent"]) <= total["high"]


def test_estimate_forecasts_a_voiced_show_s_speech_per_character(show_copy: Path) -> None:
    show_copy.write_text(
        show_copy.read_text().replace("audio: {voice: false}", "audio: {engine: elevenlabs}")
    )
    args = ["estimate", str(show_copy), "--topic", EXAMPLE_TOPIC, "--json"]
    for source in EXAMPLE_SOURCES:
        args += ["--source", str(source)]
    result = _run(*args)
    assert result.exit_code == 0, result.output
    [voice] = [row for row in json.loads(result.output)["rows"] if row["stage"] == "voice"]
    assert voice["model"] == "elevenlabs:eleven_multilingual_v2" and voice["calls"] > 50
    expected = Decimal(voice["expected"])
    assert Decimal(voice["low"]) == expected > 0  # $100 per million characters, no caching
    assert Decimal(voice["high"]) == 2 * expected  # a bad take made again, as reserved


def test_an_unpriced_model_stops_the_run_before_it_starts(show_copy: Path) -> None:
    show_copy.write_text(
        show_copy.read_text() + "routing:\n  writer: ['anthropic:claude-imaginary-9']\n"
    )
    result = _produce(show_copy)
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "no price is known for 'anthropic:claude-imaginary-9'" in message
    assert "prices:" in message  # says how to add an override
    assert "no runs yet" in _run("runs").output


def _other_show(show_copy: Path) -> Path:
    """A second show: the example under another title."""
    other = show_copy.parent.parent / "other" / "show.yaml"
    other.parent.mkdir()
    other.write_text(show_copy.read_text().replace("title: Heat Check", "title: Cool Roofs", 1))
    return other


def test_episodes_are_numbered_per_show(show_copy: Path) -> None:
    first = preflight.create_run(show_copy, EXAMPLE_TOPIC, EXAMPLE_SOURCES)
    elsewhere = preflight.create_run(_other_show(show_copy), EXAMPLE_TOPIC, EXAMPLE_SOURCES)

    produced = _produce(show_copy)

    assert produced.exit_code == 0, produced.output
    run_id = _run_id(produced)
    store = Store(database_url())
    assert [store.get_run(r).number for r in (first, elsewhere, run_id)] == [1, 1, 2]
    assert "number   2" in produced.output
    detail = json.loads(_run("runs", "show", run_id, "--json").output)
    assert detail["run"]["number"] == 2
    output = Path(detail["run"]["output_dir"])
    assert json.loads((output / "episode.json").read_text())["number"] == 2
    assert (output / "show-notes.md").read_text().startswith("# Episode 2: ")
    [row] = [line for line in _run("runs").output.splitlines() if run_id in line]
    assert re.search(r"│ Heat Check │ 2 │", row)
    assert "episode 2: " in _run("runs", "show", run_id).output


@pytest.mark.parametrize("number", ["0", "-3"])
def test_an_episode_number_below_one_is_a_usage_error(show_copy: Path, number: str) -> None:
    result = _run(
        "produce", str(show_copy), "-t", "x", "-s", str(EXAMPLE_SOURCES[0]), "--number", number
    )
    assert result.exit_code == 2
    assert f"--number {number}: an episode number is from 1 to 99,999" in result.output
    assert "no runs yet" in _run("runs").output


def test_a_number_another_run_holds_is_refused_naming_it(show_copy: Path) -> None:
    holder = preflight.create_run(show_copy, EXAMPLE_TOPIC, EXAMPLE_SOURCES, number=3)

    refused = _run(
        "produce", str(show_copy), "-t", "x", "-s", str(EXAMPLE_SOURCES[0]), "--number", "3"
    )

    assert refused.exit_code == 2
    message = " ".join(refused.output.split())
    assert f"episode number 3 is already run {holder}'s (running)" in message
    assert len(Store(database_url()).list_runs()) == 1  # nothing recorded
    with pytest.raises(EpisodeNumberTaken) as taken:  # another show's runs do not count
        preflight.create_run(show_copy, "x", EXAMPLE_SOURCES[:1], number=3)
    assert taken.value.run_id == holder
    assert preflight.create_run(_other_show(show_copy), "x", EXAMPLE_SOURCES[:1], number=3)


def test_the_number_of_a_failed_run_may_be_given_again(show_copy: Path) -> None:
    holder = preflight.create_run(show_copy, EXAMPLE_TOPIC, EXAMPLE_SOURCES, number=3)
    store = Store(database_url())
    store.update_run(holder, status="failed")

    produced = _produce(show_copy)  # the default still counts the failed run's number
    again = preflight.create_run(show_copy, "x", EXAMPLE_SOURCES[:1], number=3)

    assert produced.exit_code == 0, produced.output
    assert store.get_run(_run_id(produced)).number == 4
    assert store.get_run(again).number == 3


def test_keys_lists_model_and_speech_keys_without_revealing_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "sk-proj-visible-only-as-9f3e"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    result = CliRunner().invoke(cli, ["keys"], catch_exceptions=False, terminal_width=200)
    assert result.exit_code == 0
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│" in line}
    assert set(rows) == {"anthropic", "gemini", "openai", "elevenlabs"}
    assert "set in OPENAI_API_KEY …9f3e" in rows["openai"]
    assert "ELEVENLABS_API_KEY" in rows["elevenlabs"] and "not set" in rows["elevenlabs"]
    assert secret not in result.output

"""Hostile input, generated from classes: every field of the show bible by its type and range,
every command's arguments, and broken environments. Each case is refused before anything is
spent: exit code 2, a message naming the field or file, no traceback, the store unchanged."""

from __future__ import annotations

import copy
import os
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from castline.config import Show, parse_show
from castline.errors import ShowFileError
from tests.conftest import EXAMPLE, EXAMPLE_SOURCES, TEXT_ONLY
from tests.hostile import assert_refused, invoke, record, store_snapshot

BASE: dict[str, Any] = yaml.safe_load((EXAMPLE / "show.yaml").read_text())
# str fields where an empty string means something: a key-less local server
EMPTY_ALLOWED = {("providers", "*", "api_key_env")}


def _leaves(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every field of the show bible with its annotation and bounds, sub-models expanded."""
    for name, info in model.model_fields.items():
        path = (*prefix, name)
        annotation = info.annotation
        options = [a for a in get_args(annotation) if a is not type(None)]
        if get_origin(annotation) in (Union, types.UnionType) and len(options) == 1:
            annotation = options[0]
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _leaves(annotation, path)
        else:
            yield path, annotation, info.metadata


def _bad_values(annotation: Any, metadata: list[Any]) -> list[Any]:
    """Values no field of this kind may take."""
    origin = get_origin(annotation)
    if origin is Literal:
        return ["no-such-choice", ["a", "list"]]
    if origin is list:
        return ["not a list", {"a": "mapping"}]
    if origin is dict:
        return ["not a mapping", ["a", "list"]]
    if annotation is bool:
        return ["perhaps", [True]]
    if annotation in (int, float) or str(annotation) == "<class 'decimal.Decimal'>":
        bad: list[Any] = ["many", [1]]
        for bound in metadata:
            if isinstance(bound, annotated_types.Ge | annotated_types.Gt):
                limit = bound.ge if isinstance(bound, annotated_types.Ge) else bound.gt
                bad.append(float(limit) - (1 if annotation is int else 0.5))
            if isinstance(bound, annotated_types.Le | annotated_types.Lt):
                limit = bound.le if isinstance(bound, annotated_types.Le) else bound.lt
                bad.append(float(limit) + 1)
        return bad
    return [["a", "list"], {"a": "mapping"}]


def _text_fields() -> list[tuple[str, ...]]:
    return [path for path, annotation, _ in _leaves(Show) if annotation is str]


def _cases() -> Iterator[tuple[tuple[str, ...], Any]]:
    for path, annotation, metadata in _leaves(Show):
        for value in _bad_values(annotation, metadata):
            yield path, value


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    node = data
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    return data


def _refusal(data: dict[str, Any]) -> str:
    with pytest.raises(ShowFileError) as caught:
        parse_show(yaml.safe_dump(data), Path("show.yaml"))
    return str(caught.value)


@pytest.mark.parametrize(("path", "value"), list(_cases()), ids=repr)
def test_every_field_refuses_values_of_the_wrong_type_or_range(
    path: tuple[str, ...], value: Any
) -> None:
    message = _refusal(_with(path, value))
    assert ".".join(path) in message
    assert "Traceback" not in message


def test_the_generator_covers_the_whole_show_bible() -> None:
    """Guard against a generator that quietly skips: every section and kind is exercised."""
    cases = list(_cases())
    assert {path[0] for path, _ in cases} >= {"show", "episode", "budget", "audio", "quality"}
    assert len(cases) > 120


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("show", "title"), "   "),
        (("show", "description"), ""),
        (("show", "language"), "english"),
        (("show", "language"), "en_"),
        (("show", "website"), "example.org"),
        (("show", "website"), "javascript:alert(1)"),
        (("brand_voice", "style_guide"), "\n\t "),
        (("brand_voice", "sample_lines"), ["fine", " "]),
        (("rules", "forbidden_phrases"), [""]),
        (("rules", "forbidden_phrases"), ["!!!"]),
        (("rules", "required_disclaimers"), ["  "]),
        (("episode", "target_minutes"), 0.1),
        (("feed", "base_url"), "ftp://example.org/pod"),
        (("feed", "base_url"), "https://exa mple.org"),
        (("feed", "file"), "../feed.xml"),
        (("audio", "engine"), ""),
        (("output_dir"), " "),
    ],
    ids=repr,
)
def test_values_that_would_produce_nonsense_are_refused(path: Any, value: Any) -> None:
    path = path if isinstance(path, tuple) else (path,)
    message = _refusal(_with(path, value))
    assert ".".join(path) in message


@given(name=st.text(min_size=1, max_size=60))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_host_name_is_a_clean_speaker_label_or_refused(name: str) -> None:
    data = copy.deepcopy(BASE)
    data["hosts"][0]["name"] = name
    try:
        show = parse_show(yaml.safe_dump(data), Path("show.yaml"))
    except ShowFileError as exc:
        assert "hosts.0.name" in str(exc) or "hosts" in str(exc)
        return
    label = show.hosts[0].name
    assert label == label.strip() and label
    assert not set(label) & set(':*[]#<>|"\\') and label.isprintable()


@given(tag=st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ-_0123456789 ", max_size=14))
@settings(max_examples=150, deadline=None)
def test_a_language_is_a_standard_bcp47_tag_or_refused(tag: str) -> None:
    import langcodes

    data = copy.deepcopy(BASE)
    data["show"]["language"] = tag
    try:
        show = parse_show(yaml.safe_dump(data), Path("show.yaml"))
    except ShowFileError as exc:
        assert "show.language" in str(exc)
        return
    assert langcodes.tag_is_valid(show.show.language)
    assert show.show.language == langcodes.standardize_tag(show.show.language)


# The command line


@pytest.fixture
def show_file(tmp_path: Path) -> Path:
    target = tmp_path / "show" / "show.yaml"
    target.parent.mkdir(parents=True)
    target.write_text((EXAMPLE / "show.yaml").read_text() + TEXT_ONLY)
    return target


def _produce(show: Path, *extra: str, topic: str = "Why cities run hot") -> Any:
    sources = [arg for path in EXAMPLE_SOURCES for arg in ("--source", str(path))]
    return invoke("produce", str(show), "--topic", topic, *sources, *extra)


@pytest.mark.parametrize(
    ("extra", "topic", "named"),
    [
        (["--number", "0"], "Heat", "--number 0"),
        (["--number", "12345678901234567890"], "Heat", "99,999"),
        (["--number", "ten"], "Heat", "'ten' is not a valid integer"),
        ([], "   ", "the topic is empty"),
        ([], "heat " * 2_000, "at most 300"),
        (["--provider", "nosuch"], "Heat", "nosuch"),
        (["--source", str(EXAMPLE_SOURCES[0])], "Heat", "twice"),
        (["--source", "/nonexistent/notes.md"], "Heat", "/nonexistent/notes.md"),
        (["--source", "/"], "Heat", "source /"),
        (["--source", "http://[::1"], "Heat", "is not a valid address"),
        (["--source", "http://169.254.169.254/latest"], "Heat", "link-local"),
        (["--source", "ftp://example.org/notes.txt"], "Heat", "only http and https"),
    ],
    ids=repr,
)
def test_produce_refuses_bad_arguments(
    show_file: Path, extra: list[str], topic: str, named: str
) -> None:
    before = store_snapshot()
    assert_refused(_produce(show_file, *extra, topic=topic), named)
    assert store_snapshot() == before


@pytest.mark.parametrize(
    ("mutate", "named"),
    [
        (lambda text: text.replace("output_dir: episodes", "output_dir: show.yaml"), "output_dir"),
        (lambda text: text.replace("per_episode: 33.25", "per_episode: 0.01"), "$0.01"),
        (lambda text: text + "\nrouting: {writer: ['antropic:claude-opus-4-6']}\n", "antropic"),
        (lambda text: text.replace("name: Maya", "name: 'Maya: the host'"), "hosts.0.name"),
        (lambda text: text.replace("language: en", "language: English"), "show.language"),
        (lambda text: text[: len(text) // 3] + "\n  - [unclosed", "malformed YAML"),
        (lambda text: "\x00\x01binary", "show.yaml"),
        (lambda text: "", "show.yaml"),
    ],
    ids=["output-dir-is-a-file", "budget", "provider", "host", "language", "yaml", "binary",
         "empty"],
)  # fmt: skip
def test_produce_refuses_a_broken_show_bible(show_file: Path, mutate: Any, named: str) -> None:
    if "output_dir" not in show_file.read_text():
        show_file.write_text(show_file.read_text() + "\noutput_dir: episodes\n")
    show_file.write_text(mutate(show_file.read_text()))
    before = store_snapshot()
    assert_refused(_produce(show_file), named)
    assert store_snapshot() == before
    assert not (show_file.parent / "episodes").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["runs", "show", "nope"],
        ["runs", "logs", "nope"],
        ["resume", "nope"],
        ["voice", "nope"],
        ["review", "show", "nope"],
        ["review", "approve", "nope"],
        ["review", "reject", "nope"],
    ],
    ids=" ".join,
)
def test_commands_on_an_unknown_run_are_usage_errors(command: list[str]) -> None:
    assert_refused(invoke(*command), "no run with id 'nope'")


def test_commands_on_a_finished_run_are_usage_errors(show_file: Path) -> None:
    produced = _produce(show_file)
    assert produced.exit_code == 0, produced.output
    run_id = next(line.split()[-1] for line in produced.output.splitlines() if "run id" in line)
    before = store_snapshot()
    for command, why in [
        (["resume", run_id], "already finished"),
        (["review", "approve", run_id], "never asked for a review"),
        (["review", "reject", run_id], "never asked for a review"),
        (["voice", run_id], "voice: false"),
    ]:
        result = invoke(*command)
        assert_refused(result, why)
        assert "done" not in result.output  # no progress bar left behind
    assert store_snapshot() == before


# The environment


@pytest.mark.parametrize("where", ["a-file", "under-a-file", "in-proc"])
def test_a_state_directory_that_cannot_be_made_is_a_clear_error(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    home = {"a-file": blocker, "under-a-file": blocker / "home", "in-proc": Path("/proc/x")}
    monkeypatch.setenv("CASTLINE_HOME", str(home[where]))
    for command in (["runs"], ["runs", "show", "abc"], ["review"]):
        assert_refused(invoke(*command), "CASTLINE_HOME")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_state_directory_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "ro"
    home.mkdir(mode=0o500)
    monkeypatch.setenv("CASTLINE_HOME", str(home))
    assert_refused(invoke("runs"), "CASTLINE_HOME")


@pytest.mark.parametrize(
    "url",
    ["nonsense", "postgresql://castline:hunter2@127.0.0.1:1/castline", "sqlite:////proc/x/db"],
)
def test_an_unreachable_database_is_a_clear_error_without_its_password(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASTLINE_DATABASE_URL", url)
    result = invoke("runs")
    assert_refused(result, "CASTLINE_DATABASE_URL")
    assert "hunter2" not in result.output


def test_an_unexpected_error_is_one_line_with_the_details_in_a_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from castline.engine import runtime

    def broken() -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(runtime, "store", broken)
    result = invoke("runs")
    record("internal error", result.output)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    assert "internal error: ZeroDivisionError: a bug" in text
    details = Path(text.split("the details are in ")[1].split(". ")[0])
    assert "ZeroDivisionError" in details.read_text() and "Traceback" in details.read_text()
    details.unlink()

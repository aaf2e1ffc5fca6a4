"""The show bible: the example loads with castline's defaults, and every invalid file is reported
with its path, the field at fault, the line it is on and what would be allowed instead."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from castline.config import DEFAULT_ROUTING, ROLES, Show, load_show, parse_show
from castline.errors import ConfigError, ShowFileError
from tests.conftest import EXAMPLE

PATH = Path("/shows/heat/show.yaml")

# Line numbers below refer to this document: keep it in sync with the tests that use them.
MINIMAL = """\
show:
  title: Test Show
  description: A show for tests.
  author: The tests
hosts:
  - name: Maya
    persona: A researcher.
  - name: Theo
    persona: A reporter.
brand_voice:
  style_guide: Plain and short.
"""
# line 12 is the first line appended after MINIMAL


def problems_of(text: str) -> tuple[str, list[str]]:
    with pytest.raises(ShowFileError) as caught:
        parse_show(text, PATH)
    error = caught.value
    assert error.path == PATH
    assert str(PATH) in str(error)
    return str(error), error.problems


def only_problem(text: str) -> str:
    message, problems = problems_of(text)
    assert len(problems) == 1, problems
    assert problems[0] in message
    return problems[0]


def line_of(problem: str) -> int:
    match = re.match(r"line (\d+)", problem)
    assert match, f"no line number in {problem!r}"
    return int(match.group(1))


# --- the example show and defaults -------------------------------------------------------------


def test_example_show_loads_with_defaults() -> None:
    show = load_show(EXAMPLE / "show.yaml")

    assert show.show.title == "Heat Check"
    assert show.host_names() == ["Maya", "Theo"]
    assert show.budget.per_episode == Decimal("33.25")
    assert isinstance(show.budget.per_episode, Decimal)
    assert show.budget.orchestration_share == Decimal("0.085")
    assert isinstance(show.budget.orchestration_share, Decimal)
    assert show.quality.consensus_threshold == 0.85
    assert show.quality.max_revision_rounds == 2
    assert show.episode.target_words == 3000
    assert show.rules.forbidden_phrases == [
        "silver bullet",
        "game changer",
        "in today's fast-paced world",
    ]
    assert len(show.rules.required_disclaimers) == 1
    assert show.rules.required_disclaimers[0].startswith("This episode is for general information")


def test_example_show_gets_the_default_routing() -> None:
    show = load_show(EXAMPLE / "show.yaml")

    assert set(show.routing) == set(ROLES)
    assert show.routing == DEFAULT_ROUTING
    writer = show.routing["writer"]
    assert writer[0].startswith("anthropic:") and "opus" in writer[0]
    evaluators = show.routing["evaluator_primary"] + show.routing["evaluator_secondary"]
    assert any(route.startswith("gemini:") for route in evaluators)
    assert show.routing["evaluator_secondary"][0].startswith("gemini:")
    assert all(":" in route for chain in show.routing.values() for route in chain)


def test_minimal_show_fills_every_default() -> None:
    show = parse_show(MINIMAL, PATH)

    assert show.budget.per_episode == Decimal("33.25")
    assert show.budget.orchestration_share == Decimal("0.085")
    assert show.quality.consensus_threshold == 0.85
    assert show.episode.target_words == 3000
    assert show.research.max_questions == 10
    assert show.output_dir == "episodes"
    assert show.rules.forbidden_phrases == []


def test_partial_routing_is_merged_with_the_defaults() -> None:
    show = parse_show(MINIMAL + "routing:\n  writer:\n    - anthropic:claude-sonnet-4-6\n", PATH)

    assert show.routing["writer"] == ["anthropic:claude-sonnet-4-6"]
    for role in ROLES:
        if role != "writer":
            assert show.routing[role] == DEFAULT_ROUTING[role]


def test_target_words_follow_minutes_and_pace() -> None:
    show = parse_show(MINIMAL + "episode:\n  target_minutes: 12.5\n  words_per_minute: 160\n", PATH)

    assert show.episode.target_words == 2000


def test_show_is_immutable() -> None:
    show = parse_show(MINIMAL, PATH)

    with pytest.raises(ValueError):
        show.output_dir = "elsewhere"  # type: ignore[misc]
    assert isinstance(show, Show)


# --- malformed documents ------------------------------------------------------------------------


def test_malformed_yaml_names_line_and_column() -> None:
    text = "show:\n  title: T\n   bad: [x\n"

    problem = only_problem(text)

    assert problem.startswith("line 3, column 7: malformed YAML")
    assert "mapping values are not allowed" in problem


def test_unclosed_flow_sequence_names_its_line() -> None:
    text = "show:\n  title: T\n  description: [unclosed\nhosts: x\n"

    problem = only_problem(text)

    assert problem.startswith("line 4, column 6: malformed YAML")


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "", "# only a comment\n"])
def test_non_mapping_document_is_rejected(text: str) -> None:
    problem = only_problem(text)

    assert "must be a YAML mapping" in problem
    assert "show, hosts" in problem


def test_error_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        parse_show("[]", PATH)


# --- unknown keys -------------------------------------------------------------------------------


def test_unknown_top_level_key_lists_allowed_keys() -> None:
    problem = only_problem(MINIMAL + "colour: blue\n")

    assert line_of(problem) == 12
    assert problem.startswith("line 12: colour: unknown key 'colour'")
    allowed = problem.split("allowed here: ")[1].split(", ")
    assert allowed == sorted(Show.model_fields)
    assert "hosts" in allowed and "brand_voice" in allowed


def test_unknown_nested_key_names_its_path_and_line() -> None:
    text = MINIMAL.replace("  author: The tests\n", "  author: The tests\n  titel: Typo\n")

    problem = only_problem(text)

    assert line_of(problem) == 5
    assert "show.titel: unknown key 'titel'" in problem
    assert problem.endswith(
        "allowed here: artwork, author, description, explicit, language, title, website"
    )


def test_unknown_key_in_a_list_item_names_the_item() -> None:
    text = MINIMAL.replace("    persona: A reporter.\n", "    persona: A reporter.\n    voice: x\n")

    problem = only_problem(text)

    assert line_of(problem) == 10
    assert "hosts.1.voice: unknown key 'voice'" in problem
    assert problem.endswith("allowed here: name, persona, voices")


def test_unknown_key_deep_in_a_section() -> None:
    problem = only_problem(MINIMAL + "budget:\n  per_episode: 5\n  currency: EUR\n")

    assert line_of(problem) == 14
    assert "budget.currency: unknown key 'currency'" in problem
    assert problem.endswith(
        "allowed here: allocations, degrade_at, orchestration_share, per_episode, warn_at"
    )


def test_every_problem_is_reported() -> None:
    text = MINIMAL + "colour: blue\nbudget:\n  per_episode: 0\n"

    _, problems = problems_of(text)

    assert len(problems) == 2
    assert {line_of(p) for p in problems} == {12, 14}


# --- hosts --------------------------------------------------------------------------------------


def test_missing_host_list() -> None:
    text = "".join(
        line
        for line in MINIMAL.splitlines(keepends=True)
        if not line.startswith(("hosts", "  - name", "    persona"))
    )

    problem = only_problem(text)

    assert problem == "line 1: hosts: is required"


def test_zero_hosts() -> None:
    text = MINIMAL.split("hosts:")[0] + "hosts: []\nbrand_voice:\n  style_guide: S\n"

    problem = only_problem(text)

    assert line_of(problem) == 5
    assert "hosts:" in problem
    assert "at least 1 item" in problem


def test_five_hosts() -> None:
    hosts = "".join(f"  - name: Host{i}\n    persona: P{i}\n" for i in range(5))
    text = MINIMAL.split("hosts:")[0] + "hosts:\n" + hosts + "brand_voice:\n  style_guide: S\n"

    problem = only_problem(text)

    assert line_of(problem) == 5
    assert "hosts:" in problem
    assert "at most 4 items" in problem
    assert "not 5" in problem


def test_four_hosts_are_allowed() -> None:
    hosts = "".join(f"  - name: Host{i}\n    persona: P{i}\n" for i in range(4))
    text = MINIMAL.split("hosts:")[0] + "hosts:\n" + hosts + "brand_voice:\n  style_guide: S\n"

    assert parse_show(text, PATH).host_names() == ["Host0", "Host1", "Host2", "Host3"]


def test_duplicate_host_names_are_rejected_case_insensitively() -> None:
    text = MINIMAL.replace("name: Theo", "name: maya")

    problem = only_problem(text)

    assert "host names must be distinct" in problem


def test_duplicate_host_names_point_at_the_hosts() -> None:
    text = MINIMAL.replace("name: Theo", "name: maya")

    problem = only_problem(text)

    assert "(top level)" not in problem
    assert re.search(r"\bhosts\b", problem.split("host names")[0])
    assert line_of(problem) in {5, 8}  # the `hosts:` key or the duplicate entry


def test_host_with_empty_name() -> None:
    problem = only_problem(MINIMAL.replace("name: Theo", "name: ''"))

    assert line_of(problem) == 8
    assert "hosts.1.name:" in problem
    assert "must not be empty" in problem


# --- budget -------------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", ["0", "-5", "-0.01"])
def test_non_positive_budget_is_rejected(amount: str) -> None:
    problem = only_problem(MINIMAL + f"budget:\n  per_episode: {amount}\n")

    assert line_of(problem) == 13
    assert "budget.per_episode:" in problem
    assert "greater than 0" in problem


def test_budget_is_kept_as_an_exact_decimal() -> None:
    show = parse_show(MINIMAL + "budget:\n  per_episode: 0.1\n", PATH)

    assert show.budget.per_episode == Decimal("0.1")


def test_orchestration_share_must_be_below_one() -> None:
    problem = only_problem(MINIMAL + "budget:\n  orchestration_share: 1.5\n")

    assert line_of(problem) == 13
    assert "budget.orchestration_share:" in problem
    assert "less than 1" in problem


# --- routing ------------------------------------------------------------------------------------

BAD_ROUTE = MINIMAL + "routing:\n  writer:\n    - claude\n"
UNKNOWN_ROLE = MINIMAL + "routing:\n  narrator:\n    - anthropic:claude-sonnet-4-6\n"


def test_route_without_colon_is_rejected() -> None:
    problem = only_problem(BAD_ROUTE)

    assert "routing" in problem
    assert "'claude' is not of the form 'provider:model'" in problem
    assert 12 <= line_of(problem) <= 14


def test_unknown_routing_role_lists_allowed_roles() -> None:
    problem = only_problem(UNKNOWN_ROLE)

    assert "routing" in problem
    assert "unknown role 'narrator'" in problem
    assert problem.endswith("allowed roles: " + ", ".join(ROLES))
    assert 12 <= line_of(problem) <= 13


def test_route_without_colon_points_at_the_entry() -> None:
    problem = only_problem(BAD_ROUTE)

    assert "routing.writer" in problem
    assert line_of(problem) == 14


def test_unknown_routing_role_points_at_the_role() -> None:
    problem = only_problem(UNKNOWN_ROLE)

    assert line_of(problem) == 13


def test_empty_route_chain_is_rejected() -> None:
    problem = only_problem(MINIMAL + "routing:\n  writer: []\n")

    assert line_of(problem) == 13
    assert "routing.writer: List should have at least 1 item" in problem


# --- load_show ----------------------------------------------------------------------------------


def test_load_show_file_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "show.yaml"

    with pytest.raises(ShowFileError) as caught:
        load_show(missing)

    assert caught.value.path == missing
    assert str(missing) in str(caught.value)
    assert "file not found" in str(caught.value)
    assert "castline init" in str(caught.value)


def test_load_show_rejects_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "show.yaml"
    path.write_bytes(b"show:\n  title: Caf\xe9\n")

    with pytest.raises(ShowFileError) as caught:
        load_show(path)

    assert str(path) in str(caught.value)
    assert "UTF-8" in str(caught.value)


def test_load_show_reports_the_path_of_an_invalid_file(show_copy: Path) -> None:
    show_copy.write_text(show_copy.read_text() + "colour: blue\n")

    with pytest.raises(ShowFileError) as caught:
        load_show(show_copy)

    assert caught.value.path == show_copy
    assert str(caught.value).startswith(f"{show_copy}: the show bible is invalid")
    [problem] = caught.value.problems
    assert line_of(problem) == len(show_copy.read_text().splitlines())
    assert "unknown key 'colour'" in problem


def test_load_show_reads_a_copy(show_copy: Path) -> None:
    copy, original = load_show(show_copy), load_show(EXAMPLE / "show.yaml")
    assert copy.model_copy(update={"audio": original.audio}) == original
    assert not copy.audio.voice  # the test copy is text only


def test_duplicate_key_is_rejected() -> None:
    text = MINIMAL + "budget:\n  per_episode: 5\nbudget:\n  per_episode: 500\n"

    problem = only_problem(text)

    assert "budget" in problem
    assert line_of(problem) == 14

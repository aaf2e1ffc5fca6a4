"""Preflight: every role a run can call needs a key before anything is spent, the tie-breaker
included; the roles come from one declaration (`castline.config.ROLE_SPECS`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

import castline
from castline.config import DEFAULT_ROUTING, ROLE_SPECS, ROLES, load_show, roles_reached
from castline.engine import preflight, runtime
from castline.errors import MissingCredentials
from tests.conftest import EXAMPLE_SOURCES, EXAMPLE_TOPIC

KEYS = {"ANTHROPIC_API_KEY": "sk-ant-fake-4c7e1d9a2b3f5061", "GEMINI_API_KEY": "AIzaFakeKey0042"}
# The tie-breaker routed to OpenAI, whose key is not set; every other role keeps its default.
TIEBREAKER_ON_OPENAI = '\nrouting:\n  evaluator_tiebreaker: ["openai:gpt-4.1"]\n'


def _show(show_copy: Path, escalation: str) -> Path:
    text = show_copy.read_text()
    quality = "quality:\n"
    assert text.count(quality) == 1
    show_copy.write_text(
        text.replace(quality, f"{quality}  escalation: {escalation}\n") + TIEBREAKER_ON_OPENAI
    )
    return show_copy


def _rows(table: str) -> int:
    with runtime.store().engine.connect() as connection:
        return int(connection.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def test_every_role_is_declared_once_and_the_default_routing_comes_from_it() -> None:
    assert tuple(ROLE_SPECS) == ROLES
    assert {role: list(s.default_routing) for role, s in ROLE_SPECS.items()} == DEFAULT_ROUTING


def test_a_run_can_reach_every_role_unless_a_person_breaks_the_ties(show_copy: Path) -> None:
    show = load_show(show_copy)
    assert show.quality.escalation == "tiebreaker"
    assert roles_reached(show) == set(ROLES)
    human = show.model_copy(
        update={"quality": show.quality.model_copy(update={"escalation": "human"})}
    )
    assert roles_reached(human) == set(ROLES) - {"evaluator_tiebreaker"}


def test_a_tiebreaker_without_a_key_is_refused_before_the_run_starts(
    show_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable, value in KEYS.items():
        monkeypatch.setenv(variable, value)
    show = _show(show_copy, "tiebreaker")

    with pytest.raises(MissingCredentials, match=r"evaluator_tiebreaker.*OPENAI_API_KEY"):
        castline.produce(show, EXAMPLE_TOPIC, EXAMPLE_SOURCES)

    assert runtime.store().list_runs() == []
    assert _rows("calls") == 0  # nothing was asked of any provider, nothing reserved


def test_a_show_that_asks_a_person_needs_no_tiebreaker_key(
    show_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable, value in KEYS.items():
        monkeypatch.setenv(variable, value)
    show = _show(show_copy, "human")

    prepared = preflight.prepare(show, EXAMPLE_TOPIC, EXAMPLE_SOURCES)

    assert not prepared.routing.offline
    assert "evaluator_tiebreaker" not in prepared.routing.routes
    assert {"evaluator_primary", "evaluator_secondary"} <= set(prepared.routing.routes)

"""The public API: exactly these names, each resolving to the real thing, and imported lazily so
that the command line starts without the run engine."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import castline
from castline.budget.estimate import estimate
from castline.config import Show, load_show
from castline.engine import episodes, inspection, preflight, reviews, revoice
from castline.errors import ConfigError, RunError

PUBLIC = [
    "ConfigError",
    "Outcome",
    "RunError",
    "Show",
    "__version__",
    "audit_trail",
    "create_run",
    "decide",
    "describe",
    "estimate",
    "load_show",
    "produce",
    "resume",
    "revoice",
]
# What `castline --help`, `castline keys` and `castline runs` must not pay for at start-up.
HEAVY = ["dbos", "scipy", "anthropic", "google.genai", "openai"]


def test_the_public_names_are_pinned() -> None:
    assert sorted(castline.__all__) == PUBLIC
    assert set(PUBLIC) <= set(dir(castline))


def test_every_public_name_resolves_to_its_definition() -> None:
    expected = {
        "ConfigError": ConfigError,
        "RunError": RunError,
        "Show": Show,
        "load_show": load_show,
        "estimate": estimate,
        "Outcome": episodes.Outcome,
        "produce": episodes.produce,
        "resume": episodes.resume,
        "create_run": preflight.create_run,
        "describe": inspection.describe,
        "audit_trail": inspection.audit_trail,
        "decide": reviews.decide,
        "revoice": revoice.revoice,
    }
    for name in PUBLIC:
        value = getattr(castline, name)
        assert value is not None, name
        if name == "__version__":
            assert isinstance(value, str) and value
        else:
            assert value is expected[name], name
    star: dict[str, object] = {}
    exec("from castline import *", star)  # a star import resolves every lazy name too
    assert set(PUBLIC) <= set(star)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        castline.no_such_name  # type: ignore[attr-defined]  # noqa: B018


def _modules_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120
    )
    return set(json.loads(done.stdout))


def test_importing_the_command_line_loads_no_engine_provider_sdk_or_signal_processing() -> None:
    loaded = _modules_after("import castline.cli")
    assert [name for name in HEAVY if name in loaded] == []
    assert "castline.engine.episodes" not in loaded


def test_importing_castline_loads_only_the_error_tree() -> None:
    loaded = _modules_after("import castline")
    assert {name for name in loaded if name.startswith("castline")} == {
        "castline",
        "castline.errors",
    }

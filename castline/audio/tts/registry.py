"""Engines by name, and the voicing plan of a run: which engine speaks and what it is priced as.

`audio.engine` names an engine kind (`espeak`, `piper`, `openai`, `elevenlabs`, `gemini`) or a
provider under `providers:` whose `api` is one (a local OpenAI-compatible speech server, say).
A cloud engine without its key (or in a run forced offline) is voiced by espeak-ng, priced as
the configured engine (a shadow cost, like offline model calls); a live run without the key is
an error before anything is spent.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from castline.audio.tts.base import Billing, Engine, EngineSetup
from castline.config import ProviderSettings, Show
from castline.errors import MissingCredentials, ProviderNotFound

OFFLINE_ENGINE = "espeak"

_kinds: dict[str, type[Engine]] = {}
_instances: dict[tuple[str, str, str | None, str | None], Engine] = {}
_lock = threading.Lock()


def register_engine(kind: str, engine: type[Engine]) -> None:
    """Make an engine class available as `audio.engine: KIND` (and as `api: KIND`)."""
    with _lock:
        _kinds[kind] = engine
        for key in [k for k in _instances if k[0] == kind]:
            del _instances[key]


def engine_keys() -> dict[str, tuple[str, ...]]:
    """Where each registered engine that needs a key reads it from."""
    with _lock:
        return {kind: cls.key_variables for kind, cls in _kinds.items() if cls.key_variables}


def key_variables() -> set[str]:
    """Every environment variable a registered engine reads its key from."""
    return {variable for variables in engine_keys().values() for variable in variables}


def _settings(name: str, show: Show) -> ProviderSettings:
    return show.providers.get(name) or ProviderSettings()


def engine_class(name: str, show: Show) -> type[Engine]:
    kind = _settings(name, show).api or name
    with _lock:
        found = _kinds.get(kind)
    if found is None:
        raise ProviderNotFound(
            f"no TTS engine named {name!r} (available: {', '.join(sorted(_kinds))}); set "
            "`audio.engine`, or add the name under `providers:` with `api: openai` for an "
            "OpenAI-compatible speech server"
        )
    return found


def _key(name: str, show: Show, cls: type[Engine]) -> tuple[tuple[str, ...], str | None]:
    configured = _settings(name, show).api_key_env
    variables = cls.key_variables if configured is None else ((configured,) if configured else ())
    found = next((os.environ[v] for v in variables if os.environ.get(v)), None)
    return variables, found


def build(name: str, model: str | None, show: Show) -> Engine:
    """The engine `name` speaking with `model` (its default when None), built once per process."""
    cls = engine_class(name, show)
    settings = _settings(name, show)
    variables, key = _key(name, show, cls)
    if variables and key is None:
        raise MissingCredentials(
            f"the TTS engine {name!r} needs a key: set {' or '.join(variables)}"
        )
    chosen = model or cls.default_model
    cache_key = (settings.api or name, name + ":" + chosen, settings.base_url, key)
    with _lock:
        if cache_key not in _instances:
            _instances[cache_key] = cls(EngineSetup(name, chosen, settings, key))
        return _instances[cache_key]


@dataclass(frozen=True)
class Voicing:
    """Who speaks a run's clips, and at whose price."""

    engine: str
    model: str | None
    priced_as: str
    billing: Billing
    shadow: bool  # priced as an engine that did not speak (offline stand-in)
    reason: str

    def build(self, show: Show) -> Engine:
        return build(self.engine, self.model, show)


def plan_voicing(show: Show, show_dir: Path, *, offline: bool, paid: bool = True) -> Voicing:
    """Decide, before anything is spent, which engine voices the run. `paid: False` (a run
    forced offline) never pays for speech: espeak-ng stands in for an engine that bills."""
    name = show.audio.engine
    cls = engine_class(name, show)
    route = f"{name}:{show.audio.model or cls.default_model}"
    variables, key = _key(name, show, cls)
    if not variables or (key is not None and paid):
        cls.check_voices(name, show.hosts, show_dir)
        cls.check_available()
        return Voicing(name, show.audio.model, route, cls.billing, False, f"voiced by {route}")
    if offline or not paid:
        why = f"no {' or '.join(variables)}" if key is None else "forced offline"
        return Voicing(
            OFFLINE_ENGINE,
            None,
            route,
            cls.billing,
            True,
            f"offline ({why}): voiced by espeak-ng, priced as {route}",
        )
    raise MissingCredentials(
        f"`audio.engine: {name}` needs a key: set {' or '.join(variables)}, choose "
        "`audio.engine: espeak`, or set `audio.voice: false` to publish the script only"
    )

"""Providers by name, and the routes ("provider:model") each role takes in a run.

A provider name in a route resolves through the show's `providers:` settings to a wire format
(`anthropic`, `gemini`, `openai`) with its endpoint and key, or to one of the built-in
providers (`offline`, and `scripted` in tests). Wire formats register a factory here; nothing
else in castline names a provider. When no API key for any routed provider is set, the run goes
offline and prices its usage as the routed models.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from castline.config import ProviderSettings, Show
from castline.errors import MissingCredentials, ProviderNotFound
from castline.llm.anthropic import AnthropicProvider
from castline.llm.base import Provider
from castline.llm.gemini import GeminiProvider
from castline.llm.offline import OfflineProvider
from castline.llm.openai_compat import OpenAICompatibleProvider

# The environment variables that hold each wire format's key (any one of them suffices).
CREDENTIAL_ENV: dict[str, tuple[str, ...]] = {
    "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "openai": ("OPENAI_API_KEY",),
}

# A wire format's factory: (provider name, its settings, its API key or None) -> provider.
WireFactory = Callable[[str, ProviderSettings, str | None], Provider]

_wires: dict[str, WireFactory] = {}
_builtins: dict[str, Callable[[], Provider]] = {}
_instances: dict[tuple[str, str], Provider] = {}
_lock = threading.Lock()


def register_wire(api: str, factory: WireFactory) -> None:
    """Make a wire format available to provider settings (`api: NAME`)."""
    _wires[api] = factory


def register(name: str, factory: Callable[[], Provider]) -> None:
    """Make a provider that needs no settings available as `name:` and `--provider name`."""
    with _lock:
        _builtins[name] = factory
        for key in [k for k in _instances if k[0] == name]:
            del _instances[key]


def use(provider: Provider) -> None:
    """Register an existing provider instance (tests use this for the scripted provider)."""
    register(provider.name, lambda: provider)


def settings_for(name: str, show: Show | None) -> ProviderSettings:
    configured = show.providers.get(name) if show is not None else None
    return configured or ProviderSettings(api=name if name in CREDENTIAL_ENV else None)


def key_variables(name: str, settings: ProviderSettings) -> tuple[str, ...]:
    """Where the provider's key may be found; empty for a server that needs none."""
    if settings.api_key_env is not None:
        return (settings.api_key_env,) if settings.api_key_env else ()
    return CREDENTIAL_ENV.get(settings.api or name, ())


def api_key(name: str, settings: ProviderSettings) -> str | None:
    for variable in key_variables(name, settings):
        value = os.environ.get(variable)
        if value:
            return value
    return None


def has_credentials(name: str, settings: ProviderSettings | None = None) -> bool:
    if name in _builtins:
        return True
    settings = settings or settings_for(name, None)
    return not key_variables(name, settings) or api_key(name, settings) is not None


def get(name: str, show: Show | None = None) -> Provider:
    """The provider that answers routes named `name`, built once per name and settings."""
    if name in _builtins:
        with _lock:
            key = (name, "")
            if key not in _instances:
                _instances[key] = _builtins[name]()
            return _instances[key]
    settings = settings_for(name, show)
    factory = _wire(name, settings, show)
    key = (name, settings.model_dump_json())
    with _lock:
        if key not in _instances:
            try:
                _instances[key] = factory(name, settings, api_key(name, settings))
            except ValueError as exc:  # an SDK refusing its configuration
                raise MissingCredentials(f"provider {name!r} cannot be set up: {exc}") from None
        return _instances[key]


def _wire(name: str, settings: ProviderSettings, show: Show | None) -> WireFactory:
    factory = _wires.get(settings.api or name)
    if factory is None:
        known = ", ".join(sorted({*_builtins, *_wires, *(show.providers if show else {})}))
        raise ProviderNotFound(
            f"no provider named {name!r} (known: {known}); add it under `providers:` in "
            "show.yaml with `api: anthropic | gemini | openai`, or run with --provider offline"
        )
    return factory


@dataclass(frozen=True)
class KeyStatus:
    provider: str
    variables: tuple[str, ...]
    found_in: str | None
    hint: str | None  # the key's last four characters, never more

    @property
    def usable(self) -> bool:
        return not self.variables or self.found_in is not None


def key_status(
    show: Show | None = None, *, also: Mapping[str, tuple[str, ...]] | None = None
) -> list[KeyStatus]:
    """Which providers have a key in the environment, without revealing the keys. `also` adds
    other services' key variables by name (the speech engines), where not already listed."""
    names = sorted({*CREDENTIAL_ENV, *(show.providers if show is not None else {})})
    entries = [(name, key_variables(name, settings_for(name, show))) for name in names]
    entries += [(name, v) for name, v in sorted((also or {}).items()) if name not in names]
    statuses = []
    for name, variables in entries:
        found = next((v for v in variables if os.environ.get(v)), None)
        hint = f"…{os.environ[found][-4:]}" if found and len(os.environ[found]) > 12 else None
        statuses.append(KeyStatus(name, variables, found, hint))
    return statuses


def available() -> list[str]:
    return sorted({*_builtins, *_wires})


@dataclass(frozen=True)
class Route:
    """Who answers a role's call, and which model its cost is priced as."""

    provider: str
    model: str
    priced_as: str

    @property
    def label(self) -> str:
        return self.priced_as if self.provider != "offline" else f"offline ({self.priced_as})"


@dataclass(frozen=True)
class Routing:
    routes: Mapping[str, list[Route]]
    offline: bool
    reason: str

    def chain(self, role: str) -> list[Route]:
        return self.routes[role]


def plan_routing(
    show: Show, provider: str | None = None, *, needed: frozenset[str] | None = None
) -> Routing:
    """Decide, before anything is spent, which provider answers each role.

    `provider` forces one provider for every role (models stay as routed, for pricing).
    `needed` names the roles the run will call: only those must have a key; a role outside it
    with no key is left out of the routing.
    """
    if provider is not None:
        get(provider, show)
        forced: dict[str, list[Route]] = {
            role: [Route(provider, entry.partition(":")[2], entry) for entry in chain]
            for role, chain in show.routing.items()
        }
        return Routing(forced, provider == "offline", f"--provider {provider}")
    named = sorted({entry.partition(":")[0] for chain in show.routing.values() for entry in chain})
    if not any(has_credentials(name, settings_for(name, show)) for name in named):
        variables = sorted({v for n in named for v in key_variables(n, settings_for(n, show))})
        offline_routes: dict[str, list[Route]] = {
            role: [Route("offline", entry.partition(":")[2], entry) for entry in chain]
            for role, chain in show.routing.items()
        }
        reason = f"offline: no API key set ({', '.join(variables) or 'none needed'})"
        return Routing(offline_routes, True, reason)
    routes: dict[str, list[Route]] = {}
    for role, chain in show.routing.items():
        usable = []
        for entry in chain:
            name, _, model = entry.partition(":")
            if name not in _builtins:
                _wire(name, settings_for(name, show), show)  # an unknown name fails here
            if has_credentials(name, settings_for(name, show)):
                get(name, show)
                usable.append(Route(name, model, entry))
        if not usable and needed is not None and role not in needed:
            continue  # a role this run does not call
        if not usable:
            names = {entry.partition(":")[0] for entry in chain}
            variables = sorted({v for n in names for v in key_variables(n, settings_for(n, show))})
            raise MissingCredentials(
                f"role {role!r} routes to {', '.join(chain)} but none has a key; set "
                f"{' or '.join(variables)}, or run with --provider offline"
            )
        routes[role] = usable
    return Routing(routes, False, "live: API keys found")


register("offline", OfflineProvider)
register_wire("anthropic", AnthropicProvider)
register_wire("gemini", GeminiProvider)
register_wire("openai", OpenAICompatibleProvider)

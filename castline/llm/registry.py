"""Providers by name, and the routes ("provider:model") each role takes in a run.

New providers register a factory here; nothing else in castline names a provider. When no API key
for any routed provider is set, the run goes offline and prices its usage as the routed models.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from castline.config import Show
from castline.errors import MissingCredentials, ProviderNotFound
from castline.llm.base import Provider
from castline.llm.offline import OfflineProvider

# The environment variables that hold each cloud provider's key (any one of them suffices).
CREDENTIAL_ENV: dict[str, tuple[str, ...]] = {
    "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "openai": ("OPENAI_API_KEY",),
}

_factories: dict[str, Callable[[], Provider]] = {}
_instances: dict[str, Provider] = {}


def register(name: str, factory: Callable[[], Provider]) -> None:
    """Make a provider available as `name:` in routes and as `--provider name`."""
    _factories[name] = factory
    _instances.pop(name, None)


def use(provider: Provider) -> None:
    """Register an existing provider instance (tests use this for the scripted provider)."""
    _factories[provider.name] = lambda: provider
    _instances[provider.name] = provider


def get(name: str) -> Provider:
    if name not in _instances:
        factory = _factories.get(name)
        if factory is None:
            known = ", ".join(sorted(_factories))
            raise ProviderNotFound(
                f"no provider named {name!r} in this castline installation (available: {known}); "
                "change the route in show.yaml or run with --provider offline"
            )
        _instances[name] = factory()
    return _instances[name]


def available() -> list[str]:
    return sorted(_factories)


def has_credentials(provider: str) -> bool:
    return any(os.environ.get(variable) for variable in CREDENTIAL_ENV.get(provider, ()))


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
    routes: dict[str, list[Route]]
    offline: bool
    reason: str

    def chain(self, role: str) -> list[Route]:
        return self.routes[role]


def plan_routing(show: Show, provider: str | None = None) -> Routing:
    """Decide, before anything is spent, which provider answers each role.

    `provider` forces one provider for every role (models stay as routed, for pricing).
    """
    if provider is not None:
        get(provider)
        forced: dict[str, list[Route]] = {
            role: [Route(provider, entry.partition(":")[2], entry) for entry in chain]
            for role, chain in show.routing.items()
        }
        offline = provider == "offline"
        return Routing(forced, offline, f"--provider {provider}")
    named = sorted({entry.partition(":")[0] for chain in show.routing.values() for entry in chain})
    if not any(has_credentials(name) for name in named):
        variables = sorted({v for name in named for v in CREDENTIAL_ENV.get(name, ())})
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
            get(name)
            if has_credentials(name) or name not in CREDENTIAL_ENV:
                usable.append(Route(name, model, entry))
        if not usable:
            needed = sorted({v for e in chain for v in CREDENTIAL_ENV.get(e.partition(":")[0], ())})
            raise MissingCredentials(
                f"role {role!r} routes to {', '.join(chain)} but none has a key; set "
                f"{' or '.join(needed)}, or run with --provider offline"
            )
        routes[role] = usable
    return Routing(routes, False, "live: API keys found")


register("offline", OfflineProvider)

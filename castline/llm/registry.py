"""Providers by name, and the routes ("provider:model") each role takes in a run.

A provider name in a route resolves through the show's `providers:` settings to a wire format
(`anthropic`, `gemini`, `openai`) with its endpoint and key, or to one of the built-in
providers (`offline`, and `scripted` in tests). Wire formats register a factory here; nothing
else in castline names a provider. When no API key for any routed provider is set, the run goes
offline and prices its usage as the routed models.

Every provider name is checked before keys and prices, so a typo is reported as one. The
routing plan (`routing_plan`) is what a user sees before the first paid call: each role's chain
and price, and warnings about choices they may not have made on purpose.
"""

from __future__ import annotations

import difflib
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from castline.config import (
    DEFAULT_ROUTING,
    ROLE_SPECS,
    ProviderSettings,
    Role,
    Show,
    roles_reached,
)
from castline.errors import MissingCredentials, ProviderNotFound, UnpricedModel
from castline.llm.anthropic import AnthropicProvider
from castline.llm.base import Provider, Usage
from castline.llm.gemini import GeminiProvider
from castline.llm.offline import OfflineProvider
from castline.llm.openai_compat import OpenAICompatibleProvider

if TYPE_CHECKING:  # castline.budget.prices imports castline.llm, which imports this module
    from castline.budget.prices import Pricer

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
        raise ProviderNotFound(unknown_provider(name, show))
    return factory


def searches_web(name: str, show: Show | None) -> bool:
    """Whether routes named `name` can search the web server-side (research.web_search)."""
    if name in _builtins:
        return get(name).web_search
    factory = _wires.get(settings_for(name, show).api or name)
    return bool(getattr(factory, "web_search", False))


def known(name: str, show: Show | None) -> bool:
    """Whether a route may name `name`: a built-in provider, or one with a wire format."""
    return name in _builtins or (settings_for(name, show).api or name) in _wires


def unknown_provider(name: str, show: Show | None, subject: str = "no such provider") -> str:
    """Why `name` resolves to no provider, what the known ones are and the likeliest fix: a
    typo is named as one (difflib), so it is not mistaken later for an unpriced model."""
    configured = show.providers if show is not None else {}
    if name in configured:  # named under `providers:` but with no wire format to speak
        return (
            f"provider {name!r} under `providers:` has no `api:`; add `api: openai` for an "
            "OpenAI-compatible server (Ollama, vLLM, llama.cpp, LM Studio), or `api: anthropic` "
            "or `api: gemini`"
        )
    # offline first: the one built-in a user routes to; others are registered by tests
    builtins = sorted((n for n in _builtins if n not in _wires), key=lambda n: (n != "offline", n))
    own = ", ".join(sorted(configured)) or "none in this show bible"
    names = [*sorted(_wires), *builtins]
    text = (
        f"{subject} {name!r}; known: {', '.join(names)}, and the names under `providers:` ({own})"
    )
    close = difflib.get_close_matches(name, [*names, *configured], n=1, cutoff=0.6)
    if close:
        return f"{text} — did you mean {close[0]!r}?"
    return (
        f"{text}; add it under `providers:` in the show bible with "
        "`api: anthropic | gemini | openai`, or run with --provider offline"
    )


def check_provider_names(show: Show) -> None:
    """Raise `ProviderNotFound` for every routing entry whose provider does not exist, before
    keys or prices are looked at: a misspelt name must not read as a missing key or price."""
    where: dict[str, list[str]] = {}
    for role, chain in show.routing.items():
        for entry in chain:
            name = entry.partition(":")[0]
            if not known(name, show):
                where.setdefault(name, []).append(f"routing.{role}: {entry}")
    if where:
        raise ProviderNotFound(
            "\n".join(
                f"{', '.join(places)}: {unknown_provider(name, show)}"
                for name, places in where.items()
            )
        )


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
    forced: str | None = None  # the provider `--provider` put behind every role, if any

    def chain(self, role: str) -> list[Route]:
        return self.routes[role]


_ROLES: tuple[Role, ...] = tuple(ROLE_SPECS)


def defaulted_roles(show: Show) -> frozenset[str]:
    """The roles the show bible does not route: they take castline's default chain.

    The show's own record of the roles it routed (`Show.routed_roles`) decides; a show without
    that record (built some other way) counts a chain equal to the default as the default.
    """
    routed = getattr(show, "routed_roles", None)
    if isinstance(routed, frozenset):
        return frozenset(role for role in _ROLES if role not in routed)
    return frozenset(role for role in _ROLES if show.routing[role] == DEFAULT_ROUTING[role])


def plan_routing(
    show: Show, provider: str | None = None, *, needed: frozenset[str] | None = None
) -> Routing:
    """Decide, before anything is spent, which provider answers each role.

    Every provider name, of `provider` and of every chain, is checked first, so a typo is
    reported as one and not as a missing key or price. `provider` forces one provider for every
    role (models stay as routed, for pricing). `needed` names the roles the run will call: only
    those must have a key; a role outside it with no key is left out of the routing.
    """
    if provider is not None and not known(provider, show):
        raise ProviderNotFound(
            f"--provider {provider}: " + unknown_provider(provider, show, "no provider named")
        )
    check_provider_names(show)
    if provider is not None:
        get(provider, show)
        forced: dict[str, list[Route]] = {
            role: [Route(provider, entry.partition(":")[2], entry) for entry in chain]
            for role, chain in show.routing.items()
        }
        return Routing(forced, provider == "offline", f"--provider {provider}", provider)
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
            if has_credentials(name, settings_for(name, show)):
                get(name, show)
                usable.append(Route(name, model, entry))
        if not usable and needed is not None and role not in needed:
            continue  # a role this run does not call
        if not usable:
            raise MissingCredentials(_no_key_message(show, role, chain))
        routes[role] = usable
    return Routing(routes, False, live_reason(show, routes))


def _variables(names: Iterable[str], show: Show) -> list[str]:
    return sorted({v for n in names for v in key_variables(n, settings_for(n, show))})


def _no_key_message(show: Show, role: Role, chain: list[str]) -> str:
    """Why a role cannot be called live; for a role the show did not route, that it took the
    default chain and how to route it instead."""
    variables = _variables({entry.partition(":")[0] for entry in chain}, show)
    message = (
        f"role {role!r} routes to {', '.join(chain)} but none has a key; set "
        f"{' or '.join(variables)}, or run with --provider offline"
    )
    suggestion = _suggested_route(show, role)
    if role in defaulted_roles(show) and suggestion is not None:
        message += (
            f". The show bible does not route {role}, so it takes castline's default; to send "
            "it where your other roles go, add to the show bible "
            f'`routing: {role}: ["{suggestion}"]`'
        )
    return message


def live_reason(show: Show, routes: Mapping[str, list[Route]]) -> str:
    """What a live run rests on, truthfully: each provider it calls and where its key comes
    from (or that it needs none), and the routed providers left out for want of a key."""
    used = list(dict.fromkeys(route.provider for chain in routes.values() for route in chain))
    parts = []
    for name in used:
        settings = settings_for(name, show)
        variables = key_variables(name, settings)
        if name in _builtins:
            parts.append(f"{name} (built in)")
        elif not variables:
            parts.append(f"{name} (no key needed)")
        else:
            found = next((v for v in variables if os.environ.get(v)), variables[0])
            parts.append(f"{name} ({found})")
    reason = f"live: {', '.join(parts)}"
    named = dict.fromkeys(
        entry.partition(":")[0] for chain in show.routing.values() for entry in chain
    )
    missing = [n for n in named if n not in used and not has_credentials(n, settings_for(n, show))]
    if missing:
        unset = " or ".join(_variables(missing, show))
        reason += f"; {', '.join(missing)} skipped, no key set ({unset})"
    return reason


# --- the plan shown before the first paid call ---------------------------------------------------

WarningKind = Literal[
    "default-route",
    "same-evaluator-model",
    "same-evaluator-vendor",
    "tiebreaker-is-evaluator",
    "fallback-repeats",
    "single-vendor",
    "skipped-route",
    "unpriced",
]


@dataclass(frozen=True)
class PlanRow:
    """One role of the plan: the routes it will try and what its first route costs."""

    role: str
    chain: tuple[str, ...]  # the routes' labels, in the order they are tried; empty: not called
    input_per_million: Decimal | None  # USD per million input tokens on the first route
    output_per_million: Decimal | None  # None: not called, or no price is known
    default: bool  # the show bible does not route this role: it takes castline's default
    left_at_default: bool  # default, while the show routes other roles
    reached: bool  # whether a run of this show can call the role
    skipped: tuple[str, ...] = ()  # routed entries this run cannot use (no key)


@dataclass(frozen=True)
class PlanWarning:
    """Something about the routing a user should decide on before paying for it."""

    kind: WarningKind
    roles: tuple[str, ...]
    message: str


@dataclass(frozen=True)
class RoutingPlan:
    reason: str
    rows: tuple[PlanRow, ...]
    warnings: tuple[PlanWarning, ...]

    def lines(self) -> list[str]:
        """The plan as text: one line per role, then the warnings."""
        out = [self.reason]
        for row in self.rows:
            if not row.chain:
                out.append(f"  {row.role}: not called in this run")
                continue
            if row.input_per_million is None or row.output_per_million is None:
                price = "no price known"
            else:
                price = f"${row.input_per_million:.2f} in / ${row.output_per_million:.2f} out per M"
            marks = " (default)" if row.left_at_default else ""
            out.append(f"  {row.role}{marks}: {' → '.join(row.chain)}  [{price}]")
        out += [f"warning: {warning.message}" for warning in self.warnings]
        return out


PER_MILLION_SAMPLE = 1000  # tokens priced to get a rate: below every tier's threshold


def routing_plan(show: Show, routing: Routing, pricer: Pricer) -> RoutingPlan:
    """Per role, the chain a run will take and the price of its first route, with warnings about
    choices a user may not have made on purpose: for display before the first paid call."""
    defaults = defaulted_roles(show)
    customised = len(defaults) < len(_ROLES)
    reached = roles_reached(show)
    rows = []
    for role in _ROLES:
        chain = routing.routes.get(role, [])
        rates = _rates(pricer, chain[0].priced_as) if chain else None
        used = {route.priced_as for route in chain}
        skipped = (
            tuple(entry for entry in show.routing[role] if entry not in used)
            if chain and routing.forced is None and not routing.offline
            else ()
        )
        rows.append(
            PlanRow(
                role=role,
                chain=tuple(route.label for route in chain),
                input_per_million=rates[0] if rates else None,
                output_per_million=rates[1] if rates else None,
                default=role in defaults,
                left_at_default=customised and role in defaults,
                reached=role in reached,
                skipped=skipped,
            )
        )
    warnings = [
        *_default_warnings(show, routing, defaults, reached),
        *_evaluator_warnings(show, routing, reached),
        *_fallback_warnings(show, routing),
        *_skipped_warnings(show, rows),
        *_unpriced_warnings(routing, pricer),
    ]
    return RoutingPlan(routing.reason, tuple(rows), tuple(warnings))


def _rates(pricer: Pricer, route: str) -> tuple[Decimal, Decimal] | None:
    try:
        per = Decimal(1_000_000) / PER_MILLION_SAMPLE
        return (
            pricer.list_cost(route, Usage(input_tokens=PER_MILLION_SAMPLE)) * per,
            pricer.list_cost(route, Usage(output_tokens=PER_MILLION_SAMPLE)) * per,
        )
    except UnpricedModel:
        return None


def vendor(entry: str, show: Show) -> str:
    """Who really answers a route: the server's address where one is configured (two names
    for one server are one vendor), else the wire format or the name."""
    name = entry.partition(":")[0]
    settings = settings_for(name, show)
    if settings.base_url:
        parts = urlsplit(settings.base_url)
        return f"{parts.hostname}:{parts.port or ''}{parts.path.rstrip('/')}"
    return settings.api or name


def _vendor_names(entries: Iterable[str], show: Show) -> dict[str, str]:
    """Each vendor of `entries` with the first provider name that reaches it."""
    names: dict[str, str] = {}
    for entry in entries:
        names.setdefault(vendor(entry, show), entry.partition(":")[0])
    return names


def _suggested_route(show: Show, role: Role) -> str | None:
    """A route the show itself uses that fits `role`: that of a routed role with the same
    default chain, else the first route the routed roles use most."""
    routed = [r for r in _ROLES if r not in defaulted_roles(show)]
    if not routed:
        return None
    for other in routed:
        if DEFAULT_ROUTING[other] == DEFAULT_ROUTING[role]:
            return show.routing[other][0]
    firsts = Counter(show.routing[r][0] for r in routed)
    return max(firsts, key=lambda entry: firsts[entry])


def _default_warnings(
    show: Show, routing: Routing, defaults: frozenset[str], reached: frozenset[str]
) -> list[PlanWarning]:
    routed = [role for role in _ROLES if role not in defaults]
    if not routed:
        return []
    routed_vendors = _vendor_names((e for r in routed for e in show.routing[r]), show)
    default_vendors = _vendor_names((e for c in DEFAULT_ROUTING.values() for e in c), show)
    if set(routed_vendors) <= set(default_vendors):
        return []  # the show only rearranged castline's own vendors: nothing new to miss
    warnings = []
    for role in _ROLES:
        if role not in defaults or role not in reached:
            continue
        chain = show.routing[role]
        if set(_vendor_names(chain, show)) <= set(routed_vendors):
            continue
        names = dict.fromkeys(entry.partition(":")[0] for entry in chain)
        variables = _variables(names, show)
        live = routing.routes.get(role) if not routing.offline and routing.forced is None else None
        if live:
            outcome = f"this run sends its calls to {live[0].label}, billed as that model"
        else:
            outcome = f"a live run needs {' or '.join(variables) or 'its provider'} for it"
        suggestion = _suggested_route(show, role) or "provider:model"
        warnings.append(
            PlanWarning(
                "default-route",
                (role,),
                f"{role} is not routed in the show bible, so it falls back to castline's default "
                f"{', '.join(chain)}, while the roles you routed use "
                f"{', '.join(dict.fromkeys(routed_vendors.values()))}: {outcome}. Route it in "
                f'the show bible: `routing: {role}: ["{suggestion}"]`',
            )
        )
    return warnings


def _first(routing: Routing, role: str) -> str | None:
    chain = routing.routes.get(role)
    return chain[0].priced_as if chain else None


def _evaluator_warnings(show: Show, routing: Routing, reached: frozenset[str]) -> list[PlanWarning]:
    primary, secondary = (
        _first(routing, "evaluator_primary"),
        _first(routing, "evaluator_secondary"),
    )
    warnings = []
    if primary is not None and secondary is not None:
        roles = ("evaluator_primary", "evaluator_secondary")
        if primary == secondary:
            warnings.append(
                PlanWarning(
                    "same-evaluator-model",
                    roles,
                    f"both evaluators are {primary}: one model grading the script twice is not a "
                    "second opinion, and the design's point is two independent vendors; route "
                    "evaluator_secondary to another vendor's model",
                )
            )
        elif vendor(primary, show) == vendor(secondary, show):
            warnings.append(
                PlanWarning(
                    "same-evaluator-vendor",
                    roles,
                    f"both evaluators are on one vendor ({primary}, {secondary}): their blind "
                    "spots are alike, and the design's point is two independent vendors; route "
                    "evaluator_secondary to another vendor's model",
                )
            )
    tiebreaker = _first(routing, "evaluator_tiebreaker")
    if (
        tiebreaker is not None
        and "evaluator_tiebreaker" in reached
        and tiebreaker in {primary, secondary}
    ):
        same = "evaluator_primary" if tiebreaker == primary else "evaluator_secondary"
        warnings.append(
            PlanWarning(
                "tiebreaker-is-evaluator",
                ("evaluator_tiebreaker", same),
                f"evaluator_tiebreaker is {tiebreaker}, the same model as {same}: asked to "
                "settle a disagreement, it tends to side with itself; route it to a third model",
            )
        )
    return warnings


def _fallback_warnings(show: Show, routing: Routing) -> list[PlanWarning]:
    fallback = [route.priced_as for route in routing.routes.get("fallback", [])]
    if not fallback:
        return []
    repeats = tuple(
        role
        for role, chain in routing.routes.items()
        if role != "fallback" and chain and chain[0].priced_as in fallback
    )
    warnings = []
    if repeats:
        warnings.append(
            PlanWarning(
                "fallback-repeats",
                ("fallback", *repeats),
                f"fallback ({', '.join(fallback)}) is the model that {', '.join(repeats)} "
                "already call first: when that model fails, falling back asks it again; route "
                "`fallback` to another model, ideally another vendor's",
            )
        )
    entries = [route.priced_as for chain in routing.routes.values() for route in chain]
    vendors = _vendor_names(entries, show)
    if len(vendors) == 1 and len(routing.routes) > 1 and not routing.offline:
        [(where, name)] = vendors.items()
        warnings.append(
            PlanWarning(
                "single-vendor",
                tuple(routing.routes),
                f"every role and the fallback go to {name} ({where}): if it is down or "
                "rate-limited, the run has nowhere to fall back to",
            )
        )
    return warnings


def _skipped_warnings(show: Show, rows: list[PlanRow]) -> list[PlanWarning]:
    warnings = []
    for row in rows:
        if row.skipped:
            names = dict.fromkeys(entry.partition(":")[0] for entry in row.skipped)
            warnings.append(
                PlanWarning(
                    "skipped-route",
                    (row.role,),
                    f"{row.role}: {', '.join(row.skipped)} skipped, no key set "
                    f"({' or '.join(_variables(names, show))}); this run uses {row.chain[0]}",
                )
            )
    return warnings


def _unpriced_warnings(routing: Routing, pricer: Pricer) -> list[PlanWarning]:
    unpriced: dict[str, list[str]] = {}
    for role, chain in routing.routes.items():
        for route in chain:
            if _rates(pricer, route.priced_as) is None:
                unpriced.setdefault(route.priced_as, []).append(role)
    return [
        PlanWarning(
            "unpriced",
            tuple(roles),
            f"no price is known for {route} ({', '.join(roles)}), so the run will be refused "
            f'before it starts; add one to the show bible: `prices: "{route}": '
            "{input: 0, output: 0}` for a server of your own, else the vendor's rates",
        )
        for route, roles in unpriced.items()
    ]


register("offline", OfflineProvider)
register_wire("anthropic", AnthropicProvider)
register_wire("gemini", GeminiProvider)
register_wire("openai", OpenAICompatibleProvider)

"""The registry's routing: provider names checked before keys and prices (a typo is named as
one, with a suggestion), a truthful reason for a live run, the routing plan shown before the
first paid call with its warnings, and keys kept out of every provider's error messages."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from castline.budget.prices import Pricer
from castline.config import DEFAULT_ROUTING, ROLES, Show, roles_reached
from castline.engine import preflight
from castline.errors import MissingCredentials, ProviderError, ProviderNotFound
from castline.llm import registry
from castline.llm.base import Task
from castline.llm.registry import PlanWarning, RoutingPlan, plan_routing, routing_plan
from tests.conftest import EXAMPLE_SOURCES, EXAMPLE_TOPIC
from tests.llm.realistic import realistic_tasks

ANTHROPIC_KEY = "sk-ant-test-key-0123456789"
GEMINI_KEY = "AIza-test-key-0123456789"
LOCAL = {"api": "openai", "base_url": "http://localhost:11434/v1", "api_key_env": ""}
FREE = {"input": 0, "output": 0}


def make_show(
    routing: dict[str, list[str]] | None = None,
    *,
    providers: dict[str, Any] | None = None,
    prices: dict[str, Any] | None = None,
    **extra: Any,
) -> Show:
    data: dict[str, Any] = {
        "show": {"title": "Test Show", "description": "A show.", "author": "Someone"},
        "hosts": [{"name": "Ada", "persona": "curious"}],
        "brand_voice": {"style_guide": "plain"},
        **extra,
    }
    if routing is not None:
        data["routing"] = routing
    if providers is not None:
        data["providers"] = providers
    if prices is not None:
        data["prices"] = prices
    return Show.model_validate(data)


def all_local(
    model: str = "llama3", *, but: tuple[str, ...] = (), **routes: list[str]
) -> dict[str, list[str]]:
    """Every role on the local server's `model`, except the roles in `but` (left at their
    default) and those given in `routes`."""
    routing = {role: [f"local:{model}"] for role in ROLES if role not in but}
    routing.update(routes)
    return routing


def local_show(routing: dict[str, list[str]], **extra: Any) -> Show:
    prices = {entry: FREE for chain in routing.values() for entry in chain if "local:" in entry}
    return make_show(routing, providers={"local": LOCAL}, prices=prices, **extra)


def planned(show: Show) -> RoutingPlan:
    routing = plan_routing(show, needed=roles_reached(show))
    return routing_plan(show, routing, Pricer(show.prices))


def kinds(plan: RoutingPlan) -> list[str]:
    return [warning.kind for warning in plan.warnings]


def only(plan: RoutingPlan, kind: str) -> PlanWarning:
    [warning] = [w for w in plan.warnings if w.kind == kind]
    return warning


@pytest.fixture
def both_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_KEY)


# --- 1. unknown provider names ------------------------------------------------------------------


def test_a_misspelt_provider_is_named_with_a_suggestion(both_keys: None) -> None:
    show = make_show({"writer": ["antropic:claude-opus-4-6"]})

    with pytest.raises(ProviderNotFound) as raised:
        plan_routing(show, needed=roles_reached(show))

    message = str(raised.value)
    # other tests may register built-in providers of their own (`scripted`) after `offline`
    assert message.startswith(
        "routing.writer: antropic:claude-opus-4-6: no such provider 'antropic'; known: "
        "anthropic, gemini, openai, offline, "
    )
    assert message.endswith(
        "and the names under `providers:` (none in this show bible) — did you mean 'anthropic'?"
    )
    assert "\n" not in message


def test_the_name_is_checked_before_keys_even_offline() -> None:
    """With no key set the run would go offline and the unknown route would only surface later
    as an unpriced model ("add a price"): the name is checked first."""
    show = make_show({"writer": ["antropic:claude-opus-4-6"]})

    for provider in (None, "offline"):
        with pytest.raises(ProviderNotFound, match="did you mean 'anthropic'"):
            plan_routing(show, provider, needed=roles_reached(show))


def test_preflight_reports_the_typo_not_a_missing_price(show_copy: Path) -> None:
    text = show_copy.read_text() + '\nrouting:\n  writer: ["antropic:claude-opus-4-6"]\n'
    show_copy.write_text(text)

    with pytest.raises(ProviderNotFound) as raised:
        preflight.prepare(show_copy, EXAMPLE_TOPIC, EXAMPLE_SOURCES)

    assert "no such provider 'antropic'" in str(raised.value)
    assert "price" not in str(raised.value)


def test_every_unknown_name_is_listed_with_where_it_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    show = make_show(
        {
            "writer": ["antropic:claude-opus-4-6", "acme:big-model"],
            "polisher": ["antropic:claude-sonnet-4-6"],
            "orchestrator": ["locl:llama3"],
        },
        providers={"local": LOCAL},
        prices={"local:llama3": FREE},
    )

    with pytest.raises(ProviderNotFound) as raised:
        plan_routing(show)

    lines = str(raised.value).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("routing.orchestrator: locl:llama3: no such provider 'locl'; ")
    assert lines[0].endswith("the names under `providers:` (local) — did you mean 'local'?")
    assert lines[1].startswith(
        "routing.writer: antropic:claude-opus-4-6, routing.polisher: antropic:claude-sonnet-4-6: "
        "no such provider 'antropic'"
    )
    assert lines[2].startswith("routing.writer: acme:big-model: no such provider 'acme'; ")
    assert "did you mean" not in lines[2]
    assert lines[2].endswith(
        "add it under `providers:` in the show bible with `api: anthropic | gemini | openai`, "
        "or run with --provider offline"
    )


def test_a_configured_provider_without_a_wire_format_says_to_add_one() -> None:
    show = make_show(
        {"writer": ["local:llama3"]}, providers={"local": {"base_url": LOCAL["base_url"]}}
    )

    with pytest.raises(ProviderNotFound) as raised:
        plan_routing(show)

    assert "provider 'local' under `providers:` has no `api:`; add `api: openai`" in str(
        raised.value
    )


def test_a_misspelt_forced_provider_is_named_with_a_suggestion() -> None:
    with pytest.raises(ProviderNotFound) as raised:
        plan_routing(make_show(), "oflfine")

    assert str(raised.value).startswith("--provider oflfine: no provider named 'oflfine'; known: ")
    assert str(raised.value).endswith("did you mean 'offline'?")


# --- 2. the reason ------------------------------------------------------------------------------


def test_the_reason_names_each_provider_and_where_its_key_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("GOOGLE_API_KEY", GEMINI_KEY)
    routing = all_local(
        writer=["anthropic:claude-opus-4-6"], evaluator_secondary=["gemini:gemini-2.5-pro"]
    )

    reason = plan_routing(local_show(routing)).reason

    assert (
        reason
        == "live: local (no key needed), anthropic (ANTHROPIC_API_KEY), gemini (GOOGLE_API_KEY)"
    )


def test_a_keyless_local_server_is_not_reported_as_keys_found() -> None:
    reason = plan_routing(local_show(all_local())).reason

    assert reason == "live: local (no key needed)"
    assert "API keys found" not in reason


def test_the_reason_says_which_routed_providers_were_skipped() -> None:
    routing = all_local(evaluator_secondary=["gemini:gemini-2.5-pro", "local:qwen3"])

    routing_ = plan_routing(local_show(routing))

    assert routing_.reason == (
        "live: local (no key needed); gemini skipped, no key set (GEMINI_API_KEY or GOOGLE_API_KEY)"
    )
    assert [r.priced_as for r in routing_.chain("evaluator_secondary")] == ["local:qwen3"]


def test_the_reason_offline_and_forced() -> None:
    show = make_show()

    assert plan_routing(show).reason == (
        "offline: no API key set (ANTHROPIC_API_KEY, GEMINI_API_KEY, GOOGLE_API_KEY)"
    )
    forced = plan_routing(show, "offline")
    assert (forced.reason, forced.forced, forced.offline) == ("--provider offline", "offline", True)


def test_a_missing_key_for_a_defaulted_role_says_how_to_route_it() -> None:
    show = local_show(all_local(but=("evaluator_tiebreaker",)))

    with pytest.raises(MissingCredentials) as raised:
        plan_routing(show, needed=roles_reached(show))

    message = str(raised.value)
    assert message.startswith(
        "role 'evaluator_tiebreaker' routes to anthropic:claude-opus-4-6, "
        "anthropic:claude-sonnet-4-6 but none has a key; set ANTHROPIC_API_KEY"
    )
    assert message.endswith(
        "The show bible does not route evaluator_tiebreaker, so it takes castline's default; to "
        "send it where your other roles go, add to the show bible "
        '`routing: evaluator_tiebreaker: ["local:llama3"]`'
    )


# --- 3. the plan --------------------------------------------------------------------------------


def test_the_default_routing_has_rows_and_no_warnings(both_keys: None) -> None:
    show = make_show()

    plan = planned(show)

    assert plan.warnings == ()
    assert [row.role for row in plan.rows] == list(ROLES)
    by_role = {row.role: row for row in plan.rows}
    assert by_role["writer"].chain == tuple(DEFAULT_ROUTING["writer"])
    assert all(row.default and not row.left_at_default for row in plan.rows)
    assert all(row.reached and row.skipped == () for row in plan.rows)
    # the rate below Gemini's 200K-token tier, not the rate a million-token request pays
    secondary = by_role["evaluator_secondary"]
    assert secondary.input_per_million == Decimal("1.25")
    assert secondary.output_per_million == Decimal("10")
    assert plan.reason == "live: anthropic (ANTHROPIC_API_KEY), gemini (GEMINI_API_KEY)"


def test_rows_carry_the_first_routes_price_and_the_default_flags(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    routing = all_local(but=("evaluator_tiebreaker",), writer=["local:big", "local:llama3"])
    show = make_show(
        routing,
        providers={"local": LOCAL},
        prices={
            "local:llama3": FREE,
            "local:big": {"input": "0.10", "output": "0.40"},
            "anthropic:claude-opus-4-6": {"input": 6, "output": 30},
        },
    )

    rows = {row.role: row for row in planned(show).rows}

    assert rows["writer"].chain == ("local:big", "local:llama3")
    assert (rows["writer"].input_per_million, rows["writer"].output_per_million) == (
        Decimal("0.10"),
        Decimal("0.40"),
    )
    assert not rows["writer"].default and not rows["writer"].left_at_default
    tiebreaker = rows["evaluator_tiebreaker"]
    assert tiebreaker.chain == ("anthropic:claude-opus-4-6", "anthropic:claude-sonnet-4-6")
    assert tiebreaker.skipped == ()
    assert (tiebreaker.input_per_million, tiebreaker.output_per_million) == (
        Decimal(6),
        Decimal(30),
    )
    assert tiebreaker.default and tiebreaker.left_at_default


def test_a_defaulted_role_in_an_all_local_show_is_warned_of(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    show = local_show(all_local(but=("evaluator_tiebreaker",)))

    warning = only(planned(show), "default-route")

    assert warning.roles == ("evaluator_tiebreaker",)
    assert warning.message == (
        "evaluator_tiebreaker is not routed in the show bible, so it falls back to castline's "
        "default anthropic:claude-opus-4-6, anthropic:claude-sonnet-4-6, while the roles you "
        "routed use local: this run sends its calls to anthropic:claude-opus-4-6, billed as that "
        'model. Route it in the show bible: `routing: evaluator_tiebreaker: ["local:llama3"]`'
    )


def test_the_suggested_route_is_that_of_a_role_with_the_same_default() -> None:
    # the writer's default chain is the tie-breaker's: its route is the one to copy
    routing = all_local(but=("evaluator_tiebreaker",), writer=["local:big"])
    show = make_show(
        routing, providers={"local": LOCAL}, prices={"local:llama3": FREE, "local:big": FREE}
    )
    routed = plan_routing(show, "offline")

    warning = only(routing_plan(show, routed, Pricer(show.prices)), "default-route")

    assert warning.message.endswith('`routing: evaluator_tiebreaker: ["local:big"]`')
    assert "a live run needs ANTHROPIC_API_KEY for it" in warning.message


def test_a_defaulted_role_the_run_never_calls_is_not_warned_of() -> None:
    show = local_show(all_local(but=("evaluator_tiebreaker",)), quality={"escalation": "human"})

    plan = planned(show)

    assert "default-route" not in kinds(plan)
    tiebreaker = next(row for row in plan.rows if row.role == "evaluator_tiebreaker")
    assert (tiebreaker.chain, tiebreaker.reached, tiebreaker.input_per_million) == ((), False, None)
    assert "not called in this run" in "\n".join(plan.lines())


def test_a_show_that_only_rearranges_the_default_vendors_is_not_warned_of(
    both_keys: None,
) -> None:
    show = make_show({"writer": ["anthropic:claude-opus-4-6"]})  # the default, written out

    plan = planned(show)

    assert plan.warnings == ()
    assert {row.role for row in plan.rows if row.left_at_default} == set(ROLES) - {"writer"}


def test_both_evaluators_on_one_model() -> None:
    plan = planned(local_show(all_local()))

    warning = only(plan, "same-evaluator-model")
    assert warning.roles == ("evaluator_primary", "evaluator_secondary")
    assert "both evaluators are local:llama3" in warning.message
    assert "the design's point is two independent vendors" in warning.message


def test_both_evaluators_on_one_vendor_under_two_names() -> None:
    routing = all_local(evaluator_secondary=["ollama:qwen3"])
    show = make_show(
        routing,
        providers={"local": LOCAL, "ollama": LOCAL},
        prices={"local:llama3": FREE, "ollama:qwen3": FREE},
    )

    plan = planned(show)

    assert "same-evaluator-model" not in kinds(plan)
    warning = only(plan, "same-evaluator-vendor")
    assert "(local:llama3, ollama:qwen3)" in warning.message
    assert "the design's point is two independent vendors" in warning.message


def test_evaluators_on_two_servers_are_two_vendors() -> None:
    other = {**LOCAL, "base_url": "http://gpu-box:8000/v1"}
    routing = all_local(evaluator_secondary=["vllm:qwen3"], evaluator_tiebreaker=["vllm:big"])
    show = make_show(
        routing,
        providers={"local": LOCAL, "vllm": other},
        prices={"local:llama3": FREE, "vllm:qwen3": FREE, "vllm:big": FREE},
    )

    plan = planned(show)

    assert not {"same-evaluator-model", "same-evaluator-vendor", "single-vendor"} & set(kinds(plan))


def test_a_tiebreaker_that_is_an_evaluator() -> None:
    routing = all_local(evaluator_secondary=["local:qwen3"], evaluator_tiebreaker=["local:qwen3"])

    warning = only(planned(local_show(routing)), "tiebreaker-is-evaluator")

    assert warning.roles == ("evaluator_tiebreaker", "evaluator_secondary")
    assert "local:qwen3, the same model as evaluator_secondary" in warning.message


def test_a_fallback_that_is_the_model_it_backs_up_and_a_single_vendor() -> None:
    routing = all_local(writer=["local:big"], fallback=["local:llama3"])

    plan = planned(local_show(routing))

    repeats = only(plan, "fallback-repeats")
    assert "writer" not in repeats.roles
    assert repeats.roles[0] == "fallback" and "orchestrator" in repeats.roles
    assert repeats.message.startswith("fallback (local:llama3) is the model that orchestrator, ")
    single = only(plan, "single-vendor")
    assert single.message.startswith("every role and the fallback go to local (localhost:11434/v1)")


def test_a_route_skipped_for_want_of_a_key_is_warned_of() -> None:
    routing = all_local(evaluator_secondary=["gemini:gemini-2.5-pro", "local:qwen3"])

    plan = planned(local_show(routing))

    warning = only(plan, "skipped-route")
    assert warning.message == (
        "evaluator_secondary: gemini:gemini-2.5-pro skipped, no key set (GEMINI_API_KEY or "
        "GOOGLE_API_KEY); this run uses local:qwen3"
    )
    row = next(row for row in plan.rows if row.role == "evaluator_secondary")
    assert row.skipped == ("gemini:gemini-2.5-pro",)


def test_an_unpriced_route_is_warned_of_before_preflight_refuses_it() -> None:
    show = make_show(all_local(), providers={"local": LOCAL})  # no prices

    plan = planned(show)

    warning = only(plan, "unpriced")
    assert warning.roles == tuple(ROLES)
    assert 'add one to the show bible: `prices: "local:llama3": {input: 0, output: 0}`' in (
        warning.message
    )
    assert all(row.input_per_million is None for row in plan.rows)
    assert "no price known" in plan.lines()[1]


def test_the_plan_as_text(both_keys: None) -> None:
    lines = planned(make_show()).lines()

    assert lines[0] == "live: anthropic (ANTHROPIC_API_KEY), gemini (GEMINI_API_KEY)"
    assert lines[4] == (
        "  writer: anthropic:claude-opus-4-6 → anthropic:claude-sonnet-4-6  "
        "[$5.00 in / $25.00 out per M]"
    )
    assert len(lines) == 1 + len(ROLES)


# --- 6. keys never reach a message --------------------------------------------------------------


class _EchoKey(BaseHTTPRequestHandler):
    """Refuses every request, echoing the key it was sent, as some vendors' errors do."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        sent = (
            self.headers.get("x-api-key")
            or self.headers.get("x-goog-api-key")
            or (self.headers.get("authorization") or "").removeprefix("Bearer ")
        )
        message = f"Incorrect API key provided: {sent}"
        payloads = {
            "anthropic": {
                "type": "error",
                "error": {"type": "authentication_error", "message": message},
            },
            "gemini": {"error": {"code": 401, "message": message, "status": "UNAUTHENTICATED"}},
            "openai": {"error": {"message": message, "type": "invalid_request_error"}},
        }
        body = json.dumps(payloads[self.server.api]).encode()  # type: ignore[attr-defined]
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


@pytest.fixture(scope="module")
def fanout() -> Task[Any]:
    return realistic_tasks()["fanout"]


@pytest.fixture
def echo() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoKey)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


WIRES = [
    ("anthropic", "ANTHROPIC_API_KEY", "", "claude-sonnet-4-6"),
    ("gemini", "GEMINI_API_KEY", "", "gemini-2.5-flash"),
    ("openai", "OPENAI_API_KEY", "/v1", "gpt-5-mini"),
]


@pytest.mark.parametrize(("api", "variable", "path", "model"), WIRES, ids=[w[0] for w in WIRES])
def test_a_key_a_server_echoes_is_redacted(
    echo: ThreadingHTTPServer,
    fanout: Task[Any],
    monkeypatch: pytest.MonkeyPatch,
    api: str,
    variable: str,
    path: str,
    model: str,
) -> None:
    key = f"sk-secret-{api}-0123456789abcdef"
    monkeypatch.setenv(variable, key)
    echo.api = api  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{echo.server_address[1]}{path}"
    show = make_show(
        providers={"vendor": {"api": api, "base_url": url, "timeout_s": 5, "api_key_env": variable}}
    )

    with pytest.raises(ProviderError) as raised:
        registry.get("vendor", show).complete(fanout, model)

    assert raised.value.kind == "auth"
    assert "Incorrect API key provided: [redacted]" in str(raised.value)
    assert key not in str(raised.value)
    assert key not in repr(raised.value)
    assert all(key not in str(arg) for arg in raised.value.args)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize(("api", "variable", "path", "model"), WIRES, ids=[w[0] for w in WIRES])
def test_a_key_in_the_servers_address_is_left_out_of_a_connection_error(
    fanout: Task[Any],
    monkeypatch: pytest.MonkeyPatch,
    api: str,
    variable: str,
    path: str,
    model: str,
) -> None:
    key = f"sk-secret-{api}-0123456789abcdef"
    monkeypatch.setenv(variable, key)
    port = _closed_port()
    url = f"http://user:{key}@127.0.0.1:{port}{path}?key={key}"
    show = make_show(
        providers={"vendor": {"api": api, "base_url": url, "timeout_s": 5, "api_key_env": variable}}
    )

    with pytest.raises(ProviderError) as raised:
        registry.get("vendor", show).complete(fanout, model)

    message = str(raised.value)
    assert f"cannot connect to http://127.0.0.1:{port}{path}" in message
    assert "is the server running? check `providers.vendor.base_url` in the show bible" in message
    assert key not in message and "user" not in message
    assert raised.value.kind == "server_error"

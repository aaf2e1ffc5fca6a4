"""The OpenAI-compatible adapter against the fake Chat Completions API: structured replies and
usage, every fault's classification, repair, max_completion_tokens, and the step-down from a
JSON schema to a JSON object to no response format for servers that reject them."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from castline.config import ProviderSettings
from castline.errors import MalformedOutput, ProviderError
from castline.llm import prompts
from castline.llm.base import Repair, Result, Task, Usage
from castline.llm.offline import OfflineProvider
from castline.llm.openai_compat import OpenAICompatibleProvider, usage_of
from castline.llm.tasks import (
    FanoutDecision,
    FanoutTask,
    Findings,
    ReviewDecision,
)
from castline.text import estimate_tokens
from tests.fake_api import FakeAPI, Fault
from tests.llm.realistic import realistic_tasks

KEY = "sk-test-key-0123456789"
MODEL = "gpt-5-mini"
RETIRED = "gpt-3.5-turbo-0301"


# --- material: realistic tasks built by the offline pipeline ------------------------------------


@pytest.fixture(scope="module")
def tasks() -> dict[str, Task[Any]]:
    return realistic_tasks()


def offline(task: Task[Any]) -> Any:
    """What the fake answers: the offline provider's output for the task."""
    return OfflineProvider().complete(task, MODEL).output


# --- the fake and the adapter --------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeAPI]:
    with FakeAPI(latency_ms=0, seed=0) as server:
        yield server
        assert server.internal_errors == []


def make_provider(fake: FakeAPI, **settings: Any) -> OpenAICompatibleProvider:
    options: dict[str, Any] = {
        "api": "openai",
        "base_url": fake.url + "/v1",
        "timeout_s": 1,
        **settings,
    }
    return OpenAICompatibleProvider("openai", ProviderSettings(**options), KEY)


@pytest.fixture
def provider(fake: FakeAPI) -> Iterator[OpenAICompatibleProvider]:
    adapter = make_provider(fake)
    yield adapter
    adapter.client.close()


def bodies(fake: FakeAPI) -> list[dict[str, Any]]:
    return [entry.json() for entry in fake.log if entry.endpoint == "openai.chat"]


def assert_clean(error: ProviderError, model: str = MODEL) -> None:
    """Names the provider and the model, never the key."""
    assert "openai" in str(error)
    assert model in str(error)
    assert KEY not in str(error)
    assert KEY not in repr(error)


def schema_format(task: Task[Any]) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {"name": task.kind, "schema": task.output_type.model_json_schema()},
    }


# --- completions and usage -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "output_type"),
    [("fanout", FanoutDecision), ("review", ReviewDecision), ("research", Findings)],
)
def test_complete_returns_the_tasks_output_type(
    provider: OpenAICompatibleProvider,
    fake: FakeAPI,
    tasks: dict[str, Task[Any]],
    kind: str,
    output_type: type[Any],
) -> None:
    task = tasks[kind]

    result = provider.complete(task, MODEL)

    assert isinstance(result, Result)
    assert isinstance(result.output, output_type)
    assert result.output == offline(task)
    assert result.model == MODEL
    [body] = bodies(fake)
    prompt = prompts.render(task)
    assert body["messages"] == [
        {"role": "system", "content": prompt.system},
        {"role": "user", "content": "\n\n".join(prompt.blocks)},
    ]
    assert body["response_format"] == schema_format(task)


def test_usage_counts_cached_tokens_apart_from_the_prompt(
    provider: OpenAICompatibleProvider, fake: FakeAPI, tasks: dict[str, Task[Any]]
) -> None:
    body, intro = tasks["body"], tasks["intro"]  # share the system, show, kb and outline

    first = provider.complete(body, MODEL)
    after_first = dict(fake.stats.tokens["openai"])
    second = provider.complete(intro, MODEL)
    served = fake.stats.tokens["openai"]

    assert first.usage == Usage(
        input_tokens=estimate_tokens(prompts.render(body).text),
        output_tokens=after_first["output"],
    )
    assert first.usage.output_tokens == estimate_tokens(first.output.model_dump_json())
    cached = served["cache_read"]
    assert cached > 0 and cached % 128 == 0
    # prompt_tokens includes cached_tokens; castline's input excludes them
    assert second.usage.cache_read_tokens == cached
    assert second.usage.input_tokens == estimate_tokens(prompts.render(intro).text) - cached
    assert second.usage.output_tokens == served["output"] - after_first["output"]
    assert first.usage.prompt_tokens + second.usage.prompt_tokens == served["input"]
    assert (second.usage.cache_write_tokens, second.usage.cache_write_1h_tokens) == (0, 0)


def test_usage_of_maps_openai_fields() -> None:
    cached = SimpleNamespace(
        prompt_tokens=3000,
        completion_tokens=250,
        prompt_tokens_details=SimpleNamespace(cached_tokens=2048),
    )
    local = SimpleNamespace(prompt_tokens=90, completion_tokens=10, prompt_tokens_details=None)
    unreported = SimpleNamespace(
        prompt_tokens=90,
        completion_tokens=10,
        prompt_tokens_details=SimpleNamespace(cached_tokens=None),
    )

    assert usage_of(cached) == Usage(input_tokens=952, output_tokens=250, cache_read_tokens=2048)
    assert usage_of(cached).prompt_tokens == 3000
    assert usage_of(local) == Usage(input_tokens=90, output_tokens=10)
    assert usage_of(unreported) == Usage(input_tokens=90, output_tokens=10)
    assert usage_of(None) == Usage()


def test_count_tokens_is_not_offered(
    provider: OpenAICompatibleProvider, fake: FakeAPI, tasks: dict[str, Task[Any]]
) -> None:
    assert provider.count_tokens(tasks["fanout"], MODEL) is None
    assert sum(fake.stats.requests.values()) == 0


def closed_port() -> int:
    """A loopback port nothing listens on: bound, read, closed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# --- faults --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "kind", "status"),
    [
        (Fault.RATE_LIMIT, "rate_limit", "HTTP 429"),
        (Fault.OVERLOADED, "overloaded", "HTTP 503"),
        (Fault.SERVER_ERROR, "server_error", "HTTP 500"),
        (Fault.NOT_FOUND, "not_found", "HTTP 404"),
        (Fault.SPEND_LIMIT, "spend_limit", "HTTP 429"),
        (Fault.INVALID_REQUEST, "invalid_request", "HTTP 400"),
    ],
    ids=lambda value: value.name if isinstance(value, Fault) else None,
)
def test_each_fault_maps_to_its_kind(
    provider: OpenAICompatibleProvider,
    fake: FakeAPI,
    tasks: dict[str, Task[Any]],
    fault: Fault,
    kind: str,
    status: str,
) -> None:
    fake.retry_after_s = 7
    fake.queue(fault)

    with pytest.raises(ProviderError) as raised:
        provider.complete(tasks["fanout"], MODEL)

    error = raised.value
    assert not isinstance(error, MalformedOutput)
    assert error.kind == kind
    assert error.retry_after == (7.0 if fault is Fault.RATE_LIMIT else None)
    assert f"openai {MODEL}: {kind} ({status})" in str(error)
    assert_clean(error)
    assert fake.stats.faults == {fault.name: 1}
    assert provider.format == "json_schema"  # only a rejected response_format steps down
    assert provider.complete(tasks["fanout"], MODEL).output == offline(tasks["fanout"])
    assert len(bodies(fake)) == 2


def test_a_slow_reply_is_a_timeout(fake: FakeAPI, tasks: dict[str, Task[Any]]) -> None:
    provider = make_provider(fake, timeout_s=0.3)
    fake.timeout_sleep_s = 1.5  # then it answers: only the 0.3 s timeout makes this an error
    fake.queue(Fault.TIMEOUT)

    with pytest.raises(ProviderError) as raised:
        provider.complete(tasks["fanout"], MODEL)
    provider.client.close()

    assert raised.value.kind == "timeout"
    assert raised.value.retry_after is None
    assert_clean(raised.value)
    assert f"timeout (no answer within 0.3 s from {fake.url}" in str(raised.value)
    assert "or raise `providers.openai.timeout_s` for a slow one" in str(raised.value)


def test_a_retired_model_is_not_found(
    provider: OpenAICompatibleProvider, fake: FakeAPI, tasks: dict[str, Task[Any]]
) -> None:
    fake.retired = {RETIRED}

    with pytest.raises(ProviderError) as raised:
        provider.complete(tasks["fanout"], RETIRED)

    assert raised.value.kind == "not_found"
    assert_clean(raised.value, RETIRED)
    assert provider.complete(tasks["fanout"], MODEL).model == MODEL


def test_malformed_json_is_billed_and_keeps_the_raw_reply(
    provider: OpenAICompatibleProvider, fake: FakeAPI, tasks: dict[str, Task[Any]]
) -> None:
    task = tasks["fanout"]
    full = offline(task).model_dump_json()
    fake.queue(Fault.MALFORMED_JSON)

    with pytest.raises(MalformedOutput) as raised:
        provider.complete(task, MODEL)

    bad = raised.value
    assert bad.kind == "malformed"
    assert bad.raw == full[: len(full) // 2]
    assert bad.usage.output_tokens == estimate_tokens(bad.raw) > 0
    assert bad.usage.prompt_tokens == estimate_tokens(prompts.render(task).text)
    assert bad.usage.output_tokens == fake.stats.tokens["openai"]["output"]
    assert MODEL in str(bad)
    assert KEY not in str(bad)


def test_repair_sends_the_bad_reply_back_as_an_assistant_turn(
    provider: OpenAICompatibleProvider, fake: FakeAPI, tasks: dict[str, Task[Any]]
) -> None:
    task = tasks["research"]
    fake.queue(Fault.MALFORMED_JSON)
    with pytest.raises(MalformedOutput) as raised:
        provider.complete(task, MODEL)
    bad = raised.value
    repair = Repair(raw=bad.raw, error=str(bad))

    result = provider.complete(task, MODEL, repair=repair)

    assert result.output == offline(task)
    messages = bodies(fake)[-1]["messages"]
    assert [message["role"] for message in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "\n\n".join(prompts.render(task).blocks)
    assert messages[2]["content"] == bad.raw
    assert messages[3]["content"] == repair.instruction
    assert str(bad) in repair.instruction
    assert result.usage.prompt_tokens == estimate_tokens(
        "\n\n".join((prompts.render(task).text, bad.raw, repair.instruction))
    )


@pytest.mark.parametrize(("max_tokens", "sent"), [(None, 600), (3210, 3210)])
def test_max_completion_tokens_is_passed_through(
    provider: OpenAICompatibleProvider,
    fake: FakeAPI,
    tasks: dict[str, Task[Any]],
    max_tokens: int | None,
    sent: int,
) -> None:
    assert FanoutTask.max_output_tokens == 600

    provider.complete(tasks["fanout"], MODEL, max_tokens=max_tokens)

    [body] = bodies(fake)
    assert body["max_completion_tokens"] == sent
    assert "max_tokens" not in body


# --- response formats ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [("json_schema", "schema"), ("json_object", {"type": "json_object"}), ("none", None)],
)
def test_each_format_sends_its_response_format(
    provider: OpenAICompatibleProvider,
    fake: FakeAPI,
    tasks: dict[str, Task[Any]],
    fmt: Any,
    expected: Any,
) -> None:
    task = tasks["review"]
    provider.format = fmt
    wanted = schema_format(task) if expected == "schema" else expected

    result = provider.complete(task, MODEL)

    assert provider._response_format(task) == wanted
    [body] = bodies(fake)
    assert body.get("response_format") == wanted
    assert ("response_format" in body) == (wanted is not None)
    assert result.output == offline(task)
    assert provider.format == fmt


def test_a_rejected_response_format_steps_down_to_json_object_then_none(
    provider: OpenAICompatibleProvider,
    fake: FakeAPI,
    tasks: dict[str, Task[Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The fake rejects a malformed response_format with a 400 that names it, as a server
    # without structured output does: make both structured formats malformed.
    task = tasks["fanout"]
    proper = provider._response_format

    def rejected(task: Task[Any]) -> Any:
        if provider.format == "json_schema":
            return {"type": "json_schema", "json_schema": {"schema": {}}}  # no name
        if provider.format == "json_object":
            return "json_object"  # not an object
        return proper(task)

    monkeypatch.setattr(provider, "_response_format", rejected)

    result = provider.complete(task, MODEL)
    again = provider.complete(tasks["review"], MODEL)

    assert result.output == offline(task)
    assert again.output == offline(tasks["review"])
    assert provider.format == "none"
    statuses = [(entry.status, entry.json().get("response_format")) for entry in fake.log]
    assert statuses == [
        (400, {"type": "json_schema", "json_schema": {"schema": {}}}),
        (400, "json_object"),
        (200, None),
        (200, None),  # the next call starts at the format that worked
    ]
    assert "response_format" in fake.log[0].body.decode()


def test_a_rejected_json_schema_falls_back_to_json_object(
    provider: OpenAICompatibleProvider,
    fake: FakeAPI,
    tasks: dict[str, Task[Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    task = tasks["fanout"]
    proper = provider._response_format

    def rejected(task: Task[Any]) -> Any:
        if provider.format == "json_schema":
            return {"type": "json_schema", "json_schema": {"schema": {}}}
        return proper(task)

    monkeypatch.setattr(provider, "_response_format", rejected)

    result = provider.complete(task, MODEL)

    assert result.output == offline(task)
    assert provider.format == "json_object"
    assert [body.get("response_format") for body in bodies(fake)][-1] == {"type": "json_object"}
    assert [entry.status for entry in fake.log] == [400, 200]


def test_a_400_about_something_else_does_not_step_down(
    provider: OpenAICompatibleProvider, fake: FakeAPI, tasks: dict[str, Task[Any]]
) -> None:
    fake.queue(Fault.INVALID_REQUEST)

    with pytest.raises(ProviderError) as raised:
        provider.complete(tasks["fanout"], MODEL)

    assert raised.value.kind == "invalid_request"
    assert provider.format == "json_schema"
    assert len(bodies(fake)) == 1


def test_a_format_rejection_without_a_format_left_is_an_invalid_request(
    provider: OpenAICompatibleProvider,
    fake: FakeAPI,
    tasks: dict[str, Task[Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider.format = "none"
    monkeypatch.setattr(provider, "_response_format", lambda task: "json_object")

    with pytest.raises(ProviderError) as raised:
        provider.complete(tasks["fanout"], MODEL)

    assert raised.value.kind == "invalid_request"
    assert "response_format" in str(raised.value)
    assert_clean(raised.value)
    assert provider.format == "none"
    assert len(bodies(fake)) == 1


def test_a_server_that_is_down_is_named_with_a_hint(tasks: dict[str, Task[Any]]) -> None:
    port = closed_port()
    settings = ProviderSettings(api="openai", base_url=f"http://127.0.0.1:{port}/v1", timeout_s=5)
    provider = OpenAICompatibleProvider("local", settings, KEY)

    with pytest.raises(ProviderError) as raised:
        provider.complete(tasks["fanout"], MODEL)

    message = str(raised.value)
    assert message.startswith(f"local {MODEL}: cannot connect to http://127.0.0.1:{port}/v1/: ")
    assert "Connection refused" in message  # the cause, not only the SDK's "Connection error."
    assert message.endswith(
        "is the server running? check `providers.local.base_url` in the show bible"
    )
    assert raised.value.kind == "server_error"  # retried, then fallen back
    assert KEY not in message


def test_the_vendors_own_address_gets_a_network_hint(
    tasks: dict[str, Task[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = OpenAICompatibleProvider("openai", ProviderSettings(api="openai", timeout_s=5), KEY)
    refused = ConnectionRefusedError(111, "Connection refused")

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise refused

    monkeypatch.setattr(socket.socket, "connect", unreachable)

    with pytest.raises(ProviderError) as raised:
        provider.complete(tasks["fanout"], MODEL)

    message = str(raised.value)
    assert "cannot connect to https://api.openai.com/v1/:" in message
    assert message.endswith(
        "is the network up? to use another server, set `providers.openai.base_url` in the "
        "show bible"
    )


def test_each_step_down_is_a_note_on_the_result_and_a_logged_warning(
    provider: OpenAICompatibleProvider,
    fake: FakeAPI,
    tasks: dict[str, Task[Any]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proper = provider._response_format

    def rejected(task: Task[Any]) -> Any:
        if provider.format == "json_schema":
            return {"type": "json_schema", "json_schema": {"schema": {}}}  # no name
        if provider.format == "json_object":
            return "json_object"  # not an object
        return proper(task)

    monkeypatch.setattr(provider, "_response_format", rejected)
    caplog.set_level(logging.WARNING, logger="castline.llm.openai_compat")

    result = provider.complete(tasks["fanout"], MODEL)
    again = provider.complete(tasks["review"], MODEL)

    first, second = result.notes
    assert first.startswith(
        f"openai {MODEL} rejected structured output as a JSON schema (response_format "
        "json_schema) ("
    )
    assert first.endswith("asking for a JSON object (response_format json_object) from now on")
    assert second.startswith(
        f"openai {MODEL} rejected structured output as a JSON object (response_format "
        "json_object) ("
    )
    assert second.endswith(
        "asking for the schema in the prompt only (no response_format; replies are still "
        "validated) from now on"
    )
    assert again.notes == ()  # the next call starts at the format that worked: nothing new
    records = [r for r in caplog.records if r.name == "castline.llm.openai_compat"]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.WARNING, first),
        (logging.WARNING, second),
    ]
    assert KEY not in first + second


def test_a_call_that_needs_no_step_down_carries_no_note(
    provider: OpenAICompatibleProvider, tasks: dict[str, Task[Any]]
) -> None:
    assert provider.complete(tasks["fanout"], MODEL).notes == ()

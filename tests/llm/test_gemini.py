"""The Gemini adapter against the fake Developer API: structured replies and usage (cached and
thinking tokens), token counting, every fault's classification, repair, and batch mode."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from castline.config import ProviderSettings
from castline.errors import MalformedOutput, ProviderError
from castline.llm import prompts
from castline.llm.base import Repair, Result, Task, Usage
from castline.llm.gemini import GeminiProvider, usage_of
from castline.llm.offline import OfflineProvider
from castline.llm.tasks import (
    FanoutDecision,
    FanoutTask,
    Findings,
    ReviewDecision,
    SegmentDraft,
)
from castline.llm.wire import BatchItem
from castline.text import estimate_tokens
from tests.fake_api import FakeAPI, Fault
from tests.llm.realistic import realistic_tasks

KEY = "AIza-test-key-0123456789"
MODEL = "gemini-2.5-flash"
RETIRED = "gemini-1.0-pro"


# --- material: realistic tasks built by the offline pipeline ------------------------------------


@pytest.fixture(scope="module")
def tasks() -> dict[str, Task[Any]]:
    return realistic_tasks()


def offline(task: Task[Any]) -> Any:
    """What the fake answers: the offline provider's output for the task."""
    return OfflineProvider().complete(task, MODEL).output


def prompt_tokens(task: Task[Any]) -> int:
    """Gemini's prompt count: the system instruction is tokenized apart from the contents."""
    prompt = prompts.render(task)
    return estimate_tokens(prompt.system) + estimate_tokens("\n\n".join(prompt.blocks))


# --- the fake and the adapter --------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeAPI]:
    with FakeAPI(latency_ms=0, seed=0) as server:
        yield server
        assert server.internal_errors == []


def make_provider(fake: FakeAPI, **settings: Any) -> GeminiProvider:
    options: dict[str, Any] = {"api": "gemini", "base_url": fake.url, "timeout_s": 1, **settings}
    return GeminiProvider("gemini", ProviderSettings(**options), KEY)


@pytest.fixture
def provider(fake: FakeAPI) -> Iterator[GeminiProvider]:
    adapter = make_provider(fake)
    yield adapter
    adapter.client.close()


def last_body(fake: FakeAPI, endpoint: str = "gemini.generate") -> dict[str, Any]:
    body: dict[str, Any] = [entry for entry in fake.log if entry.endpoint == endpoint][-1].json()
    return body


def texts(content: dict[str, Any]) -> list[str]:
    return [part["text"] for part in content["parts"]]


def assert_clean(error: ProviderError, model: str = MODEL) -> None:
    """Names the provider and the model, never the key."""
    assert "gemini" in str(error)
    assert model in str(error)
    assert KEY not in str(error)
    assert KEY not in repr(error)


def wait_for_end(provider: GeminiProvider, batch_id: str) -> list[str]:
    states: list[str] = [provider.batch_state(batch_id)]
    deadline = time.monotonic() + 5
    while states[-1] != "ended":
        assert time.monotonic() < deadline, states
        time.sleep(0.02)
        states.append(provider.batch_state(batch_id))
    return states


# --- completions and usage -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "output_type"),
    [("fanout", FanoutDecision), ("review", ReviewDecision), ("research", Findings)],
)
def test_complete_returns_the_tasks_output_type(
    provider: GeminiProvider,
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
    assert fake.log[-1].path.endswith(f"/models/{MODEL}:generateContent")


def test_the_request_carries_system_contents_and_schema(
    provider: GeminiProvider, fake: FakeAPI, tasks: dict[str, Task[Any]]
) -> None:
    task = tasks["body"]

    provider.complete(task, MODEL)

    body = last_body(fake)
    prompt = prompts.render(task)
    assert texts(body["systemInstruction"]) == [prompt.system]
    assert [content["role"] for content in body["contents"]] == ["user"]
    assert texts(body["contents"][0]) == list(prompt.blocks)
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == SegmentDraft.model_json_schema()


def test_usage_counts_cached_tokens_apart_from_the_prompt(
    provider: GeminiProvider, fake: FakeAPI, tasks: dict[str, Task[Any]]
) -> None:
    body, intro = tasks["body"], tasks["intro"]  # share the system, show, kb and outline

    first = provider.complete(body, MODEL)
    after_first = dict(fake.stats.tokens["gemini"])
    second = provider.complete(intro, MODEL)
    served = fake.stats.tokens["gemini"]

    assert first.usage == Usage(
        input_tokens=prompt_tokens(body),
        output_tokens=after_first["output"],
        cache_read_tokens=0,
    )
    assert first.usage.output_tokens == estimate_tokens(first.output.model_dump_json())
    cached = served["cache_read"]
    assert cached > 0 and cached % 256 == 0
    # prompt_token_count includes the cached tokens; castline's input excludes them
    assert second.usage.cache_read_tokens == cached
    assert second.usage.input_tokens == prompt_tokens(intro) - cached
    assert second.usage.prompt_tokens == prompt_tokens(intro)
    assert second.usage.output_tokens == served["output"] - after_first["output"]
    assert first.usage.prompt_tokens + second.usage.prompt_tokens == served["input"]
    assert (second.usage.cache_write_tokens, second.usage.cache_write_1h_tokens) == (0, 0)


def test_usage_of_maps_gemini_fields() -> None:
    thinking = SimpleNamespace(
        prompt_token_count=5000,
        cached_content_token_count=4096,
        candidates_token_count=300,
        thoughts_token_count=1200,
    )
    uncached = SimpleNamespace(
        prompt_token_count=80,
        cached_content_token_count=None,
        candidates_token_count=20,
        thoughts_token_count=None,
    )

    assert usage_of(thinking) == Usage(input_tokens=904, output_tokens=1500, cache_read_tokens=4096)
    assert usage_of(thinking).prompt_tokens == 5000
    assert usage_of(uncached) == Usage(input_tokens=80, output_tokens=20)
    assert usage_of(None) == Usage()


# --- token counting ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["body", "fanout"])
def test_count_tokens_equals_the_prompt_token_count_of_the_call(
    provider: GeminiProvider, fake: FakeAPI, tasks: dict[str, Task[Any]], kind: str
) -> None:
    task = tasks[kind]

    counted = provider.count_tokens(task, MODEL)
    usage = provider.complete(task, MODEL).usage

    assert counted == usage.input_tokens + usage.cache_read_tokens == prompt_tokens(task)
    assert fake.stats.requests["gemini.count_tokens"] == 1
    assert "systemInstruction" not in last_body(fake, "gemini.count_tokens")


@pytest.mark.parametrize("fault", [Fault.SERVER_ERROR, Fault.RATE_LIMIT, Fault.OVERLOADED])
def test_count_tokens_is_none_when_counting_fails(
    provider: GeminiProvider, fake: FakeAPI, tasks: dict[str, Task[Any]], fault: Fault
) -> None:
    fake.queue(fault, path="gemini.count_tokens")

    assert provider.count_tokens(tasks["fanout"], MODEL) is None
    assert fake.stats.faults == {fault.name: 1}
    assert provider.count_tokens(tasks["fanout"], MODEL) == prompt_tokens(tasks["fanout"])


def test_count_tokens_is_none_for_a_retired_model(
    provider: GeminiProvider, fake: FakeAPI, tasks: dict[str, Task[Any]]
) -> None:
    fake.retired = {RETIRED}

    assert provider.count_tokens(tasks["fanout"], RETIRED) is None


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
    provider: GeminiProvider,
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
    assert f"gemini {MODEL}: {kind} ({status})" in str(error)
    assert_clean(error)
    assert fake.stats.faults == {fault.name: 1}
    assert provider.complete(tasks["fanout"], MODEL).output == offline(tasks["fanout"])


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
    assert "or raise `providers.gemini.timeout_s` for a slow one" in str(raised.value)


def test_a_retired_model_is_not_found(
    provider: GeminiProvider, fake: FakeAPI, tasks: dict[str, Task[Any]]
) -> None:
    fake.retired = {RETIRED}

    with pytest.raises(ProviderError) as raised:
        provider.complete(tasks["fanout"], RETIRED)

    assert raised.value.kind == "not_found"
    assert_clean(raised.value, RETIRED)
    assert provider.complete(tasks["fanout"], MODEL).model == MODEL


def test_malformed_json_is_billed_and_keeps_the_raw_reply(
    provider: GeminiProvider, fake: FakeAPI, tasks: dict[str, Task[Any]]
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
    assert bad.usage.prompt_tokens == prompt_tokens(task)
    assert bad.usage.output_tokens == fake.stats.tokens["gemini"]["output"]
    assert MODEL in str(bad)
    assert KEY not in str(bad)


def test_repair_sends_the_bad_reply_back_as_a_model_turn(
    provider: GeminiProvider, fake: FakeAPI, tasks: dict[str, Task[Any]]
) -> None:
    task = tasks["research"]
    fake.queue(Fault.MALFORMED_JSON)
    with pytest.raises(MalformedOutput) as raised:
        provider.complete(task, MODEL)
    bad = raised.value
    repair = Repair(raw=bad.raw, error=str(bad))

    result = provider.complete(task, MODEL, repair=repair)

    assert result.output == offline(task)
    contents = last_body(fake)["contents"]
    assert [content["role"] for content in contents] == ["user", "model", "user"]
    assert texts(contents[0]) == list(prompts.render(task).blocks)
    assert texts(contents[1]) == [bad.raw]
    assert texts(contents[2]) == [repair.instruction]
    assert str(bad) in repair.instruction


@pytest.mark.parametrize(("max_tokens", "sent"), [(None, 600), (3210, 3210)])
def test_max_tokens_is_passed_through(
    provider: GeminiProvider,
    fake: FakeAPI,
    tasks: dict[str, Task[Any]],
    max_tokens: int | None,
    sent: int,
) -> None:
    assert FanoutTask.max_output_tokens == 600

    provider.complete(tasks["fanout"], MODEL, max_tokens=max_tokens)

    assert last_body(fake)["generationConfig"]["maxOutputTokens"] == sent


# --- batch mode ----------------------------------------------------------------------------------


@pytest.fixture
def items(tasks: dict[str, Task[Any]]) -> list[BatchItem]:
    return [
        BatchItem("body", tasks["body"], 6000),
        BatchItem("fanout", tasks["fanout"], 600),
        BatchItem("research", tasks["research"], 4000),
        BatchItem("review", tasks["review"], 500),
    ]


def test_a_batch_ends_with_one_result_per_custom_id(
    provider: GeminiProvider, fake: FakeAPI, items: list[BatchItem]
) -> None:
    fake.batch_delay_s = 0.2

    batch_id = provider.submit_batch(MODEL, items)
    states = wait_for_end(provider, batch_id)
    # asked for in another order than submitted: matched by the custom id in the metadata
    results = provider.batch_results(batch_id, list(reversed(items)), MODEL)

    assert batch_id.startswith("batches/")
    assert fake.stats.batch_creations == 1
    assert states[0] == "pending"
    assert states[-1] == "ended"
    assert set(states) == {"pending", "ended"}
    assert set(results) == {item.custom_id for item in items}
    for item in items:
        result = results[item.custom_id]
        assert isinstance(result, Result), result
        assert result.output == offline(item.task)
        assert result.usage.prompt_tokens == prompt_tokens(item.task)
    served = fake.stats.tokens["gemini"]
    usages = [result.usage for result in results.values() if isinstance(result, Result)]
    assert sum(u.prompt_tokens for u in usages) == served["input"]
    assert sum(u.output_tokens for u in usages) == served["output"]


def test_batch_requests_carry_each_items_prompt_and_limit(
    provider: GeminiProvider, fake: FakeAPI, items: list[BatchItem]
) -> None:
    fake.batch_delay_s = 0

    provider.submit_batch(MODEL, items)

    assert fake.log[-1].path.endswith(f"/models/{MODEL}:batchGenerateContent")
    requests = last_body(fake, "gemini.batches.create")["batch"]["inputConfig"]["requests"]
    sent = requests["requests"]
    assert [entry["metadata"] for entry in sent] == [{"custom_id": i.custom_id} for i in items]
    for entry, item in zip(sent, items, strict=True):
        request = entry["request"]
        assert request["generationConfig"]["maxOutputTokens"] == item.max_tokens
        assert texts(request["contents"][0]) == list(prompts.render(item.task).blocks)
        assert texts(request["systemInstruction"]) == [prompts.render(item.task).system]


def test_a_retired_model_cannot_start_a_batch(
    provider: GeminiProvider, fake: FakeAPI, items: list[BatchItem]
) -> None:
    fake.retired = {RETIRED}

    with pytest.raises(ProviderError) as raised:
        provider.submit_batch(RETIRED, items)

    assert raised.value.kind == "not_found"
    assert_clean(raised.value, RETIRED)
    assert fake.stats.batch_creations == 0


def test_a_retired_models_batch_items_come_back_as_errors(
    provider: GeminiProvider, fake: FakeAPI, tasks: dict[str, Task[Any]]
) -> None:
    # Gemini batches name one model, so a per-item failure needs an item naming another model;
    # the request is built the adapter's way, with the retired model on the second item.
    fake.retired = {RETIRED}
    fake.batch_delay_s = 0
    task = tasks["fanout"]
    system, contents = provider._contents(task, None)
    config = provider._config(task, system, 600)
    requests = [
        provider._types.InlinedRequest(
            contents=contents, config=config, metadata={"custom_id": "alive"}
        ),
        provider._types.InlinedRequest(
            model=RETIRED, contents=contents, config=config, metadata={"custom_id": "retired"}
        ),
    ]
    batch_id = str(provider.client.batches.create(model=MODEL, src=requests).name)
    items = [BatchItem("alive", task, 600), BatchItem("retired", task, 600)]

    wait_for_end(provider, batch_id)
    results = provider.batch_results(batch_id, items, MODEL)

    alive, retired = results["alive"], results["retired"]
    assert isinstance(alive, Result)
    assert alive.output == offline(task)
    assert isinstance(retired, ProviderError)
    assert not isinstance(retired, MalformedOutput)
    assert batch_id in str(retired)
    assert f"models/{RETIRED} is not found" in str(retired)
    assert KEY not in str(retired)


def test_a_new_provider_reads_an_existing_batch(
    provider: GeminiProvider, fake: FakeAPI, items: list[BatchItem]
) -> None:
    fake.batch_delay_s = 0.05
    batch_id = provider.submit_batch(MODEL, items)
    provider.client.close()

    again = make_provider(fake)
    wait_for_end(again, batch_id)
    results = again.batch_results(batch_id, items, MODEL)
    again.client.close()

    assert again.client is not provider.client
    assert {key: value.output for key, value in results.items() if isinstance(value, Result)} == {
        item.custom_id: offline(item.task) for item in items
    }
    assert fake.stats.batch_creations == 1


def test_an_unknown_batch_is_not_found(provider: GeminiProvider) -> None:
    with pytest.raises(ProviderError) as raised:
        provider.batch_state("batches/missing")

    assert raised.value.kind == "not_found"
    assert KEY not in str(raised.value)


def test_a_server_that_is_down_is_named_with_a_hint(tasks: dict[str, Task[Any]]) -> None:
    port = closed_port()
    settings = ProviderSettings(api="gemini", base_url=f"http://127.0.0.1:{port}", timeout_s=5)
    provider = GeminiProvider("local", settings, KEY)

    with pytest.raises(ProviderError) as raised:
        provider.complete(tasks["fanout"], MODEL)

    message = str(raised.value)
    assert message.startswith(f"local {MODEL}: cannot connect to http://127.0.0.1:{port}: ")
    assert "Connection refused" in message  # the cause, not only the SDK's "Connection error."
    assert message.endswith(
        "is the server running? check `providers.local.base_url` in the show bible"
    )
    assert raised.value.kind == "server_error"  # retried, then fallen back
    assert KEY not in message


def test_the_vendors_own_address_gets_a_network_hint(
    tasks: dict[str, Task[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = GeminiProvider("gemini", ProviderSettings(api="gemini", timeout_s=5), KEY)
    refused = ConnectionRefusedError(111, "Connection refused")

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise refused

    monkeypatch.setattr(socket.socket, "connect", unreachable)

    with pytest.raises(ProviderError) as raised:
        provider.complete(tasks["fanout"], MODEL)

    message = str(raised.value)
    assert "cannot connect to https://generativelanguage.googleapis.com/:" in message
    assert message.endswith(
        "is the network up? to use another server, set `providers.gemini.base_url` in the "
        "show bible"
    )

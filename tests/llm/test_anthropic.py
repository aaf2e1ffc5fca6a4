"""The Anthropic adapter against the fake Messages API: structured replies and usage, the cache
layout it sends, token counting, every fault's classification, repair, and Message Batches."""

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
from castline.llm.anthropic import AnthropicProvider, usage_of
from castline.llm.base import Repair, Result, Task, Usage
from castline.llm.offline import OfflineProvider
from castline.llm.tasks import (
    FanoutDecision,
    FanoutTask,
    Findings,
    ReviewDecision,
    SegmentDraft,
)
from castline.llm.wire import BatchItem, BatchProvider
from castline.text import estimate_tokens
from tests.fake_api import FakeAPI, Fault
from tests.llm.realistic import realistic_tasks

KEY = "sk-ant-test-key-0123456789"
MODEL = "claude-sonnet-4-6"
RETIRED = "claude-3-haiku-20240307"
EPHEMERAL = {"type": "ephemeral"}
ONE_HOUR = {"type": "ephemeral", "ttl": "1h"}


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


def make_provider(fake: FakeAPI, **settings: Any) -> AnthropicProvider:
    options: dict[str, Any] = {"api": "anthropic", "base_url": fake.url, "timeout_s": 1, **settings}
    return AnthropicProvider("anthropic", ProviderSettings(**options), KEY)


@pytest.fixture
def provider(fake: FakeAPI) -> Iterator[AnthropicProvider]:
    adapter = make_provider(fake)
    yield adapter
    adapter.client.close()


def last_body(fake: FakeAPI, endpoint: str = "anthropic.messages") -> dict[str, Any]:
    body: dict[str, Any] = [entry for entry in fake.log if entry.endpoint == endpoint][-1].json()
    return body


def user_blocks(params: dict[str, Any]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = params["messages"][0]["content"]
    return blocks


def assert_clean(error: ProviderError, model: str = MODEL) -> None:
    """Names the provider and the model, never the key."""
    assert "anthropic" in str(error)
    assert model in str(error)
    assert KEY not in str(error)
    assert KEY not in repr(error)


def wait_for_end(provider: BatchProvider, batch_id: str) -> list[str]:
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
    provider: AnthropicProvider,
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


def test_usage_matches_what_the_fake_served(
    provider: AnthropicProvider, fake: FakeAPI, tasks: dict[str, Task[Any]]
) -> None:
    task = tasks["body"]

    result = provider.complete(task, MODEL)

    served = fake.stats.tokens["anthropic"]
    usage = result.usage
    assert isinstance(result.output, SegmentDraft)
    assert usage.prompt_tokens == served["input"] == estimate_tokens(prompts.render(task).text)
    assert usage.cache_write_tokens == served["cache_write"] > 0
    assert usage.cache_read_tokens == served["cache_read"] == 0
    assert usage.input_tokens == served["input"] - served["cache_write"]  # excludes the cache
    assert usage.output_tokens == served["output"]
    assert usage.output_tokens == estimate_tokens(result.output.model_dump_json())
    assert usage.cache_write_1h_tokens == 0  # 5-minute breakpoints outside batches
    assert fake.stats.requests["anthropic.messages"] == 1


def test_usage_of_maps_anthropic_fields() -> None:
    reported = SimpleNamespace(
        input_tokens=100,
        output_tokens=40,
        cache_read_input_tokens=2000,
        cache_creation_input_tokens=700,
        cache_creation=SimpleNamespace(
            ephemeral_5m_input_tokens=200, ephemeral_1h_input_tokens=500
        ),
    )
    bare = SimpleNamespace(
        input_tokens=12,
        output_tokens=3,
        cache_read_input_tokens=None,
        cache_creation_input_tokens=None,
        cache_creation=None,
    )

    assert usage_of(reported) == Usage(
        input_tokens=100,
        output_tokens=40,
        cache_read_tokens=2000,
        cache_write_tokens=700,
        cache_write_1h_tokens=500,
    )
    assert usage_of(reported).prompt_tokens == 2800
    assert usage_of(bare) == Usage(input_tokens=12, output_tokens=3)


# --- cache layout --------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "blocks"), [("body", 4), ("research", 2), ("review", 1)])
def test_every_block_but_the_task_carries_a_breakpoint(
    provider: AnthropicProvider,
    fake: FakeAPI,
    tasks: dict[str, Task[Any]],
    kind: str,
    blocks: int,
) -> None:
    task = tasks[kind]

    provider.complete(task, MODEL)

    body = last_body(fake)
    sent = user_blocks(body)
    assert [block["text"] for block in sent] == list(prompts.render(task).blocks)
    assert len(sent) == blocks
    assert [block.get("cache_control") for block in sent] == [EPHEMERAL] * (blocks - 1) + [None]
    assert sent[-1]["text"].startswith(f"<task kind={task.kind!r}>")
    assert all("cache_control" not in block for block in body["system"])
    assert body["model"] == MODEL
    assert body["stream"] is True


def test_no_breakpoints_when_prompt_caching_is_off(
    fake: FakeAPI, tasks: dict[str, Task[Any]]
) -> None:
    provider = make_provider(fake, prompt_cache=False)
    task = tasks["body"]

    first = provider.complete(task, MODEL)
    second = provider.complete(tasks["intro"], MODEL)
    provider.client.close()

    for entry in fake.log:
        assert all("cache_control" not in block for block in user_blocks(entry.json()))
    for usage in (first.usage, second.usage):
        assert (usage.cache_read_tokens, usage.cache_write_tokens) == (0, 0)
    assert first.usage.input_tokens == estimate_tokens(prompts.render(task).text)
    assert fake.stats.tokens["anthropic"]["cache_write"] == 0


def test_first_call_writes_the_shared_prefix_and_the_next_reads_it(
    provider: AnthropicProvider, fake: FakeAPI, tasks: dict[str, Task[Any]]
) -> None:
    body, intro = tasks["body"], tasks["intro"]  # same show, knowledge base and outline
    shared = prompts.render(body)
    through_outline = estimate_tokens("\n\n".join((shared.system, *shared.blocks[:3])))

    first = provider.complete(body, MODEL).usage
    second = provider.complete(intro, MODEL).usage

    assert first.cache_write_tokens == through_outline > 0
    assert first.cache_read_tokens == 0
    assert second.cache_read_tokens == through_outline
    assert second.cache_write_tokens == 0
    assert second.input_tokens == estimate_tokens(prompts.render(intro).text) - through_outline
    served = fake.stats.tokens["anthropic"]
    assert served["cache_read"] == second.cache_read_tokens
    assert served["cache_write"] == first.cache_write_tokens
    assert served["input"] == first.prompt_tokens + second.prompt_tokens


# --- token counting ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["body", "fanout"])
def test_count_tokens_equals_the_prompt_tokens_of_the_call(
    provider: AnthropicProvider, fake: FakeAPI, tasks: dict[str, Task[Any]], kind: str
) -> None:
    task = tasks[kind]

    counted = provider.count_tokens(task, MODEL)
    usage = provider.complete(task, MODEL).usage

    assert counted == usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    assert counted == estimate_tokens(prompts.render(task).text)
    assert fake.stats.requests["anthropic.count_tokens"] == 1
    assert last_body(fake, "anthropic.count_tokens")["model"] == MODEL


@pytest.mark.parametrize("fault", [Fault.SERVER_ERROR, Fault.RATE_LIMIT, Fault.OVERLOADED])
def test_count_tokens_is_none_when_counting_fails(
    provider: AnthropicProvider, fake: FakeAPI, tasks: dict[str, Task[Any]], fault: Fault
) -> None:
    fake.queue(fault, path="anthropic.count_tokens")

    assert provider.count_tokens(tasks["fanout"], MODEL) is None
    assert fake.stats.faults == {fault.name: 1}
    assert provider.count_tokens(tasks["fanout"], MODEL) == estimate_tokens(
        prompts.render(tasks["fanout"]).text
    )


def test_count_tokens_is_none_for_a_retired_model(
    provider: AnthropicProvider, fake: FakeAPI, tasks: dict[str, Task[Any]]
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
        (Fault.OVERLOADED, "overloaded", "HTTP 529"),
        (Fault.OVERLOADED_IN_STREAM, "overloaded", "HTTP 200"),  # an error event mid-stream
        (Fault.SERVER_ERROR, "server_error", "HTTP 500"),
        (Fault.NOT_FOUND, "not_found", "HTTP 404"),
        (Fault.SPEND_LIMIT, "spend_limit", "HTTP 429"),
        (Fault.INVALID_REQUEST, "invalid_request", "HTTP 400"),
    ],
    ids=lambda value: value.name if isinstance(value, Fault) else None,
)
def test_each_fault_maps_to_its_kind(
    provider: AnthropicProvider,
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
    assert f"anthropic {MODEL}: {kind} ({status})" in str(error)
    assert_clean(error)
    assert fake.stats.faults == {fault.name: 1}
    # the fault was used up: the next call goes through
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
    assert "or raise `providers.anthropic.timeout_s` for a slow one" in str(raised.value)


def test_a_retired_model_is_not_found(
    provider: AnthropicProvider, fake: FakeAPI, tasks: dict[str, Task[Any]]
) -> None:
    fake.retired = {RETIRED}

    with pytest.raises(ProviderError) as raised:
        provider.complete(tasks["fanout"], RETIRED)

    assert raised.value.kind == "not_found"
    assert_clean(raised.value, RETIRED)
    assert provider.complete(tasks["fanout"], MODEL).model == MODEL


def test_malformed_json_is_billed_and_keeps_the_raw_reply(
    provider: AnthropicProvider, fake: FakeAPI, tasks: dict[str, Task[Any]]
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
    assert bad.usage.output_tokens == fake.stats.tokens["anthropic"]["output"]
    assert MODEL in str(bad)
    assert KEY not in str(bad)


def test_repair_sends_the_bad_reply_back_and_succeeds(
    provider: AnthropicProvider, fake: FakeAPI, tasks: dict[str, Task[Any]]
) -> None:
    task = tasks["research"]
    fake.queue(Fault.MALFORMED_JSON)
    with pytest.raises(MalformedOutput) as raised:
        provider.complete(task, MODEL)
    bad = raised.value
    repair = Repair(raw=bad.raw, error=str(bad))

    result = provider.complete(task, MODEL, repair=repair)

    assert result.output == offline(task)
    messages = last_body(fake)["messages"]
    assert [message["role"] for message in messages] == ["user", "assistant", "user"]
    assert [block["text"] for block in messages[0]["content"]] == list(prompts.render(task).blocks)
    assert messages[1]["content"] == bad.raw
    assert messages[2]["content"] == repair.instruction
    assert str(bad) in messages[2]["content"]
    assert "Reply again with only the corrected JSON object" in messages[2]["content"]
    assert result.usage.prompt_tokens == estimate_tokens(
        "\n\n".join((prompts.render(task).text, bad.raw, repair.instruction))
    )


@pytest.mark.parametrize(("max_tokens", "sent"), [(None, 600), (3210, 3210)])
def test_max_tokens_is_passed_through(
    provider: AnthropicProvider,
    fake: FakeAPI,
    tasks: dict[str, Task[Any]],
    max_tokens: int | None,
    sent: int,
) -> None:
    assert FanoutTask.max_output_tokens == 600

    provider.complete(tasks["fanout"], MODEL, max_tokens=max_tokens)

    assert last_body(fake)["max_tokens"] == sent


# --- Message Batches -----------------------------------------------------------------------------


@pytest.fixture
def items(tasks: dict[str, Task[Any]]) -> list[BatchItem]:
    return [
        BatchItem("body", tasks["body"], 6000),
        BatchItem("fanout", tasks["fanout"], 600),
        BatchItem("research", tasks["research"], 4000),
        BatchItem("intro", tasks["intro"], 6000),
    ]


def test_a_batch_ends_with_one_result_per_custom_id(
    provider: AnthropicProvider, fake: FakeAPI, items: list[BatchItem]
) -> None:
    fake.batch_delay_s = 0.2

    batch_id = provider.submit_batch(MODEL, items)
    states = wait_for_end(provider, batch_id)
    results = provider.batch_results(batch_id, items, MODEL)

    assert batch_id.startswith("msgbatch_")
    assert fake.stats.batch_creations == 1
    assert states[0] == "pending"
    assert states[-1] == "ended"
    assert set(states) == {"pending", "ended"}
    assert set(results) == {item.custom_id for item in items}
    # the fake streams results in reverse order; each is still matched to its own task
    assert list(results) == [item.custom_id for item in reversed(items)]
    for item in items:
        result = results[item.custom_id]
        assert isinstance(result, Result), result
        assert result.output == offline(item.task)
        assert result.model == MODEL
    served = fake.stats.tokens["anthropic"]
    usages = [result.usage for result in results.values() if isinstance(result, Result)]
    assert sum(u.prompt_tokens for u in usages) == served["input"]
    assert sum(u.cache_write_1h_tokens for u in usages) == served["cache_write"] > 0
    assert sum(u.cache_write_tokens for u in usages) == served["cache_write"]
    assert sum(u.cache_read_tokens for u in usages) == served["cache_read"] > 0


def test_batch_requests_use_one_hour_breakpoints(
    provider: AnthropicProvider, fake: FakeAPI, items: list[BatchItem]
) -> None:
    fake.batch_delay_s = 0

    provider.submit_batch(MODEL, items)

    requests = last_body(fake, "anthropic.batches.create")["requests"]
    assert [request["custom_id"] for request in requests] == [item.custom_id for item in items]
    for request, item in zip(requests, items, strict=True):
        params = request["params"]
        blocks = user_blocks(params)
        assert [block.get("cache_control") for block in blocks] == [ONE_HOUR] * (
            len(blocks) - 1
        ) + [None]
        assert params["max_tokens"] == item.max_tokens
        assert params["model"] == MODEL
        assert "stream" not in params


def test_batch_without_prompt_cache_sends_no_breakpoints(
    fake: FakeAPI, items: list[BatchItem]
) -> None:
    provider = make_provider(fake, prompt_cache=False)
    fake.batch_delay_s = 0

    provider.submit_batch(MODEL, items)
    provider.client.close()

    for request in last_body(fake, "anthropic.batches.create")["requests"]:
        assert all("cache_control" not in block for block in user_blocks(request["params"]))


def test_a_retired_models_batch_items_come_back_as_errors(
    provider: AnthropicProvider, fake: FakeAPI, items: list[BatchItem]
) -> None:
    fake.retired = {RETIRED}
    fake.batch_delay_s = 0.05

    batch_id = provider.submit_batch(RETIRED, items)
    wait_for_end(provider, batch_id)
    results = provider.batch_results(batch_id, items, RETIRED)

    assert set(results) == {item.custom_id for item in items}
    for custom_id, result in results.items():
        assert isinstance(result, ProviderError)
        assert not isinstance(result, MalformedOutput)
        assert f"item {custom_id}" in str(result)
        assert batch_id in str(result)
        assert "not_found_error" in str(result)
        assert KEY not in str(result)
    assert fake.stats.tokens["anthropic"]["input"] == 0


def test_a_new_provider_reads_an_existing_batch(
    provider: AnthropicProvider, fake: FakeAPI, items: list[BatchItem]
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


def test_results_skip_ids_not_asked_for(
    provider: AnthropicProvider, fake: FakeAPI, items: list[BatchItem]
) -> None:
    fake.batch_delay_s = 0
    batch_id = provider.submit_batch(MODEL, items)

    results = provider.batch_results(batch_id, items[:2], MODEL)

    assert set(results) == {items[0].custom_id, items[1].custom_id}


def test_an_unknown_batch_is_not_found(provider: AnthropicProvider) -> None:
    with pytest.raises(ProviderError) as raised:
        provider.batch_state("msgbatch_missing")

    assert raised.value.kind == "not_found"
    assert KEY not in str(raised.value)


def test_a_server_that_is_down_is_named_with_a_hint(tasks: dict[str, Task[Any]]) -> None:
    port = closed_port()
    settings = ProviderSettings(api="anthropic", base_url=f"http://127.0.0.1:{port}", timeout_s=5)
    provider = AnthropicProvider("local", settings, KEY)

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
    provider = AnthropicProvider("anthropic", ProviderSettings(api="anthropic", timeout_s=5), KEY)
    refused = ConnectionRefusedError(111, "Connection refused")

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise refused

    monkeypatch.setattr(socket.socket, "connect", unreachable)

    with pytest.raises(ProviderError) as raised:
        provider.complete(tasks["fanout"], MODEL)

    message = str(raised.value)
    assert "cannot connect to https://api.anthropic.com:" in message
    assert message.endswith(
        "is the network up? to use another server, set `providers.anthropic.base_url` in the "
        "show bible"
    )

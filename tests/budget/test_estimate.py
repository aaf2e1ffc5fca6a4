"""`castline estimate` forecasts what the run will be billed: each provider's prompt cache and the
batch API as the run uses them. Checked against the example episode made through the real SDKs
and the local fake of the vendors' APIs (text only), and, call by call, against the cache rules."""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from castline.budget.estimate import Forecast, _Caches, estimate
from castline.budget.prices import Pricer
from castline.config import Show, database_url, load_show
from castline.engine import episodes
from castline.llm.base import Usage
from castline.llm.prompts import SYSTEM_PREAMBLE, Prompt
from castline.store import CallRecord, Store
from castline.text import estimate_tokens
from tests import test_episode_via_fake_api as via_fake
from tests.conftest import EXAMPLE, EXAMPLE_SOURCES, EXAMPLE_TOPIC
from tests.fake_api import FakeAPI
from tests.test_episode_via_fake_api import wire

fake = via_fake.fake  # the fake API server, the fixture those tests use
TOLERANCE = Decimal("0.25")


def forecast_and_produce(show: Path) -> tuple[Forecast, Decimal, list[CallRecord]]:
    """The forecast of the example episode, then the episode itself through the fake: its
    recorded cost (every call the store holds) and its calls."""
    forecast = estimate(show, EXAMPLE_TOPIC, EXAMPLE_SOURCES)
    outcome = episodes.produce(show, EXAMPLE_TOPIC, EXAMPLE_SOURCES)
    assert outcome.status == "completed" and not outcome.offline
    calls = Store(database_url()).calls(outcome.run_id)
    return forecast, sum((c.cost for c in calls), Decimal(0)), calls


def assert_close(forecast: Forecast, actual: Decimal) -> None:
    assert abs(forecast.expected - actual) <= TOLERANCE * actual, (forecast.expected, actual)
    assert forecast.low <= actual <= forecast.high


def test_the_forecast_expects_what_the_example_episode_costs_through_the_fake_api(
    show_copy: Path, fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    forecast, actual, calls = forecast_and_produce(wire(show_copy, fake, monkeypatch))

    # the run read most of its input from the caches (Anthropic's and Gemini's)
    assert fake.stats.cache_hit_share("anthropic") >= 0.6
    assert any(c.cache_read_tokens for c in calls if c.provider == "gemini")
    assert_close(forecast, actual)
    assert forecast.low < forecast.expected < forecast.high
    # the same calls with no cache (what the offline run's shadow cost prices) are far dearer
    pricer = Pricer()
    uncached = sum(
        (
            pricer.cost(c.priced_as, Usage(input_tokens=prompt, output_tokens=c.output_tokens))
            for c in calls
            for prompt in [c.input_tokens + c.cache_read_tokens + c.cache_write_tokens]
        ),
        Decimal(0),
    )
    assert actual < uncached * (1 - TOLERANCE)


def test_batched_research_is_forecast_at_batch_rates_with_hour_long_cache_writes(
    show_copy: Path, fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    show = wire(show_copy, fake, monkeypatch, more="research: {batch: true}\n")

    forecast, actual, calls = forecast_and_produce(show)

    research = [c for c in calls if c.step_key.startswith("research.question.")]
    assert research and all(c.batch for c in research)
    assert any(c.cache_write_1h_tokens for c in research)
    assert_close(forecast, actual)


def test_batching_research_lowers_the_forecast(
    show_copy: Path, fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    show = wire(show_copy, fake, monkeypatch)
    interactive = estimate(show, EXAMPLE_TOPIC, EXAMPLE_SOURCES)
    show.write_text(show.read_text() + "research: {batch: true}\n")

    batched = estimate(show, EXAMPLE_TOPIC, EXAMPLE_SOURCES)

    [before] = [r for r in interactive.rows if r.stage == "research"]
    [after] = [r for r in batched.rows if r.stage == "research"]
    assert after.expected < before.expected * Decimal("0.8")
    assert after.high == before.high  # the worst case is the list price, uncached


def test_with_prompt_caching_off_the_forecast_reads_nothing_from_anthropic_s_cache(
    show_copy: Path, fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = estimate(wire(show_copy, fake, monkeypatch), EXAMPLE_TOPIC, EXAMPLE_SOURCES)
    show_copy.write_text(show_copy.read_text().replace("prompt_cache: true", "prompt_cache: false"))

    forecast, actual, calls = forecast_and_produce(show_copy)

    assert not any(c.cache_read_tokens for c in calls if c.provider == "anthropic")
    assert_close(forecast, actual)
    assert forecast.expected > cached.expected * Decimal("1.5")


# The cache rules, call by call


def example_show(tmp_path: Path, extra: str = "") -> Show:
    copy = tmp_path / "show.yaml"
    copy.write_text((EXAMPLE / "show.yaml").read_text() + extra)
    return load_show(copy)


_ids = iter(range(1, 10**6))


def record(route: str, layout: Prompt, **overrides: Any) -> CallRecord:
    """A finished call of the offline run that sent `layout` to `route`."""
    values: dict[str, Any] = {field.name: None for field in fields(CallRecord)}
    model = route.partition(":")[2]
    values.update(
        id=(number := next(_ids)),
        run_id="r",
        step_key=f"step.{number}",
        stage="research",
        role="researcher",
        task_kind="research",
        provider="offline",
        model=model,
        priced_as=route,
        status="ok",
        prompt=layout.text,
        input_tokens=estimate_tokens(layout.text),
        output_tokens=100,
        cache_read_tokens=0,
        cache_write_tokens=0,
        cache_write_1h_tokens=0,
        cost=Decimal(0),
        shadow=True,
        reserved=Decimal(0),
        batch=False,
        started_at=0.0,
    )
    values.update(overrides)
    return CallRecord(**values)


def prompt(*blocks: str) -> Prompt:
    return Prompt(system=SYSTEM_PREAMBLE, blocks=blocks)


def tokens_through(layout: Prompt, blocks: int) -> int:
    """The tokens of the prompt up to and including its first `blocks` blocks."""
    return estimate_tokens("\n\n".join((layout.system, *layout.blocks[:blocks])))


SHOW = "<show>\n" + "brief " * 40 + "\n</show>"  # too short to cache on its own
SOURCES = "<source>\n" + "evidence " * 3000 + "\n</source>"  # ~6,750 tokens
OUTLINE = "<material>\n" + "segment " * 1500 + "\n</material>"  # ~3,000 tokens


def test_anthropic_writes_each_marked_prefix_once_and_reads_it_after(tmp_path: Path) -> None:
    caches = _Caches(example_show(tmp_path))
    first, second = prompt(SHOW, SOURCES, "<task>a</task>"), prompt(SHOW, SOURCES, "<task>b</task>")
    third = prompt(SHOW, SOURCES, OUTLINE, "<task>c</task>")
    route = "anthropic:claude-sonnet-4-6"

    one = caches.usage(record(route, first), first, batch=False)
    two = caches.usage(record(route, second), second, batch=False)
    three = caches.usage(record(route, third), third, batch=False)

    prefix = tokens_through(first, 2)
    assert (one.cache_read_tokens, one.cache_write_tokens) == (0, prefix)
    assert (two.cache_read_tokens, two.cache_write_tokens) == (prefix, 0)
    assert three.cache_read_tokens == prefix
    assert three.cache_write_tokens == tokens_through(third, 3) - prefix
    assert one.prompt_tokens == estimate_tokens(first.text)  # nothing lost or counted twice
    # another model has a cache of its own
    other = caches.usage(record("anthropic:claude-opus-4-6", second), second, batch=False)
    assert other.cache_read_tokens == 0 and other.cache_write_tokens == prefix


def test_anthropic_caches_nothing_below_the_model_s_minimum_nor_with_caching_off(
    tmp_path: Path,
) -> None:
    short = prompt(SHOW, OUTLINE, "<task>a</task>")  # ~3,100 tokens before the task
    for route, cached in [
        ("anthropic:claude-sonnet-4-6", True),  # 1,024 tokens
        ("anthropic:claude-opus-4-6", False),  # 4,096 tokens
        ("anthropic:claude-haiku-4-5", False),  # 4,096 tokens
    ]:
        usage = _Caches(example_show(tmp_path)).usage(record(route, short), short, batch=False)
        assert bool(usage.cache_write_tokens) is cached, route

    off = example_show(tmp_path, "providers:\n  anthropic: {prompt_cache: false}\n")
    layout = prompt(SHOW, SOURCES, "<task>a</task>")
    caches = _Caches(off)
    for _ in range(2):
        usage = caches.usage(record("anthropic:claude-sonnet-4-6", layout), layout, batch=False)
        assert usage.cache_read_tokens == usage.cache_write_tokens == 0


def test_a_batch_writes_the_cache_for_an_hour(tmp_path: Path) -> None:
    layout = prompt(SHOW, SOURCES, "<task>a</task>")
    call = record("anthropic:claude-sonnet-4-6", layout, batch=True)
    usage = _Caches(example_show(tmp_path)).usage(call, layout, batch=True)
    assert usage.cache_write_1h_tokens == usage.cache_write_tokens > 0


def test_implicit_caches_read_the_longest_shared_prefix_and_write_nothing(tmp_path: Path) -> None:
    caches = _Caches(example_show(tmp_path))
    first, second = prompt(SHOW, SOURCES, "<task>a</task>"), prompt(SHOW, SOURCES, "<task>b</task>")
    shared = len(first.text) - len("a</task>")

    one = caches.usage(record("gemini:gemini-2.5-pro", first), first, batch=False)
    two = caches.usage(record("gemini:gemini-2.5-pro", second), second, batch=False)
    old = caches.usage(record("gemini:gemini-2.0-flash", second), second, batch=False)
    gpt = [caches.usage(record("openai:gpt-4o", p), p, batch=False) for p in (first, second)]

    assert one.cache_read_tokens == one.cache_write_tokens == 0
    assert two.cache_read_tokens == shared // 4 and two.cache_write_tokens == 0
    assert old.cache_read_tokens == 0  # no implicit caching before Gemini 2.5
    assert gpt[1].cache_read_tokens == shared // 4 // 128 * 128  # in steps of 128 tokens

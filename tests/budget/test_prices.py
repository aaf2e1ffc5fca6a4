"""Pricing usage with genai-prices: castline's uncached input plus cache reads and writes.

Expected costs are written out from the vendors' published prices in USD per million tokens:
Anthropic claude-sonnet-4-6 $3 in / $15 out, cache read 0.1x = $0.30, 5-minute cache write
1.25x = $3.75, 1-hour cache write 2x = $6; claude-haiku-4-5 $1 / $5 (reads $0.10, writes $1.25 and
$2); claude-opus-4-6 $5 / $25 (reads $0.50, writes $6.25 and $10). Gemini gemini-2.5-pro $1.25 in /
$10 out and cache reads $0.125 for prompts up to 200K tokens; $2.50 / $15 / $0.25 above, for the
whole request. Batch APIs bill half the list price.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import genai_prices
import pytest
import yaml
from genai_prices.types import TieredPrices
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from castline.budget.prices import Pricer, check_priced, cost
from castline.config import DEFAULT_ROUTING, ModelPrice
from castline.errors import ConfigError, UnpricedModel
from castline.llm.base import Usage

MILLION = Decimal(1_000_000)
SONNET = "anthropic:claude-sonnet-4-6"
HAIKU = "anthropic:claude-haiku-4-5"
OPUS = "anthropic:claude-opus-4-6"
GEMINI_PRO = "gemini:gemini-2.5-pro"
GEMINI_FLASH = "gemini:gemini-2.5-flash"
GPT_4O_MINI = "openai:gpt-4o-mini"
LOCAL = "openai:llama3"
TIER = 200_000  # Gemini 2.5 Pro's prompt size above which the higher rates apply

LITELLM_PRICES = Path(__file__).parent / "fixtures" / "litellm_prices.json"


def by_hand(usage: Usage, input_: str, output: str, cache_read: str, cache_write: str) -> Decimal:
    """Dollars per million tokens, applied to castline's split of the usage."""
    return (
        usage.input_tokens * Decimal(input_)
        + usage.output_tokens * Decimal(output)
        + usage.cache_read_tokens * Decimal(cache_read)
        + usage.cache_write_tokens * Decimal(cache_write)
    ) / MILLION


def assert_says_how_to_fix(message: str, route: str) -> None:
    """The message names both fixes: price the route in the show bible, or route elsewhere."""
    assert "add a price to the show bible" in message
    assert "prices:" in message
    assert f'"{route}": {{input:' in message  # a snippet ready to paste
    assert "route the role to a model that genai-prices knows" in message


# --- existing checks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "usage",
    [
        Usage(
            input_tokens=1000, output_tokens=2000, cache_read_tokens=3000, cache_write_tokens=4000
        ),
        Usage(input_tokens=12_345, output_tokens=678),
        Usage(input_tokens=0, output_tokens=0, cache_read_tokens=50_000),
        Usage(input_tokens=10, output_tokens=0, cache_write_tokens=20_000),
        Usage(input_tokens=150_000, output_tokens=8_000, cache_read_tokens=40_000),
    ],
)
def test_sonnet_cost_matches_a_hand_computation(usage: Usage) -> None:
    expected = by_hand(usage, "3", "15", "0.30", "3.75")

    assert cost(SONNET, usage) == expected


def test_cached_input_is_not_charged_twice() -> None:
    # castline's input_tokens excludes cache tokens: 1M cache reads cost $0.30, not $3.30
    assert cost(SONNET, Usage(cache_read_tokens=1_000_000)) == Decimal("0.30")
    assert cost(SONNET, Usage(cache_write_tokens=1_000_000)) == Decimal("3.75")
    assert cost(SONNET, Usage(input_tokens=1_000_000)) == Decimal("3")
    assert cost(SONNET, Usage(output_tokens=1_000_000)) == Decimal("15")


def test_cost_is_a_decimal_and_zero_for_no_usage() -> None:
    price = cost(SONNET, Usage())

    assert isinstance(price, Decimal)
    assert price == 0


def test_gemini_flash_is_priced() -> None:
    usage = Usage(input_tokens=200_000, output_tokens=100_000)

    price = cost(GEMINI_FLASH, usage)

    assert isinstance(price, Decimal)
    assert price == by_hand(usage, "0.30", "2.50", "0", "0")


@pytest.mark.parametrize("route", sorted({r for chain in DEFAULT_ROUTING.values() for r in chain}))
def test_every_default_route_is_priced(route: str) -> None:
    check_priced(route)

    assert cost(route, Usage(input_tokens=1000, output_tokens=1000)) > 0


def test_unknown_model_raises_unpriced_model() -> None:
    route = "anthropic:claude-imaginary-9"

    with pytest.raises(UnpricedModel) as caught:
        cost(route, Usage(input_tokens=1, output_tokens=1))

    message = str(caught.value)
    assert repr(route) in message
    assert_says_how_to_fix(message, route)
    assert isinstance(caught.value, ConfigError)


def test_unknown_provider_raises_unpriced_model() -> None:
    route = "nosuchprovider:some-model"

    with pytest.raises(UnpricedModel) as caught:
        cost(route, Usage(input_tokens=1, output_tokens=1))

    message = str(caught.value)
    assert repr(route) in message
    assert "nosuchprovider" in message
    assert_says_how_to_fix(message, route)


def test_check_priced_rejects_an_unpriced_route() -> None:
    with pytest.raises(UnpricedModel) as caught:
        check_priced("gemini:gemini-imaginary")

    assert_says_how_to_fix(str(caught.value), "gemini:gemini-imaginary")


# --- 1. hand-computed costs from published prices --------------------------------------------


def test_sonnet_mixes_uncached_input_reads_and_both_cache_ttls() -> None:
    # 30,000 cache writes in all, 12,000 of them with the 1-hour TTL: 18,000 five-minute writes
    usage = Usage(
        input_tokens=10_000,
        cache_read_tokens=20_000,
        cache_write_tokens=30_000,
        cache_write_1h_tokens=12_000,
        output_tokens=4_000,
    )
    expected = (
        10_000 * Decimal("3.00")  # uncached input
        + 20_000 * Decimal("0.30")  # cache reads, 0.1x
        + (30_000 - 12_000) * Decimal("3.75")  # 5-minute writes, 1.25x
        + 12_000 * Decimal("6.00")  # 1-hour writes, 2x
        + 4_000 * Decimal("15.00")  # output, thinking included
    ) / MILLION

    assert expected == Decimal("0.2355")
    assert cost(SONNET, usage) == expected
    assert Pricer().cost(SONNET, usage) == expected


def test_sonnet_cache_ttls_one_million_tokens_each() -> None:
    assert cost(SONNET, Usage(cache_write_tokens=1_000_000)) == Decimal("3.75")
    assert cost(
        SONNET, Usage(cache_write_tokens=1_000_000, cache_write_1h_tokens=1_000_000)
    ) == Decimal("6")
    # 2M writes of which 1M are 1-hour: $3.75 + $6
    assert cost(
        SONNET, Usage(cache_write_tokens=2_000_000, cache_write_1h_tokens=1_000_000)
    ) == Decimal("3.75") + Decimal("6")


def test_sonnet_has_no_long_context_premium_above_200k() -> None:
    # genai-prices and LiteLLM both price claude-sonnet-4-6 flat across its 1M context (genai-prices
    # keeps the old 2x-above-200K tier only for requests before 2026-03-13)
    usage = Usage(input_tokens=300_000, cache_read_tokens=100_000, output_tokens=10_000)
    expected = (
        300_000 * Decimal("3") + 100_000 * Decimal("0.30") + 10_000 * Decimal("15")
    ) / MILLION

    assert expected == Decimal("1.08")
    assert cost(SONNET, usage) == expected


def test_haiku_by_hand() -> None:
    usage = Usage(
        input_tokens=50_000,
        cache_read_tokens=100_000,
        cache_write_tokens=20_000,
        cache_write_1h_tokens=5_000,
        output_tokens=8_000,
    )
    expected = (
        50_000 * Decimal("1")  # $1 input
        + 100_000 * Decimal("0.10")  # 0.1x
        + (20_000 - 5_000) * Decimal("1.25")  # 1.25x
        + 5_000 * Decimal("2")  # 2x
        + 8_000 * Decimal("5")  # $5 output
    ) / MILLION

    assert expected == Decimal("0.12875")
    assert cost(HAIKU, usage) == expected


def test_opus_by_hand() -> None:
    usage = Usage(
        input_tokens=40_000,
        cache_read_tokens=60_000,
        cache_write_tokens=10_000,
        cache_write_1h_tokens=4_000,
        output_tokens=12_000,
    )
    expected = (
        40_000 * Decimal("5")  # $5 input
        + 60_000 * Decimal("0.50")  # 0.1x
        + (10_000 - 4_000) * Decimal("6.25")  # 1.25x
        + 4_000 * Decimal("10")  # 2x
        + 12_000 * Decimal("25")  # $25 output
    ) / MILLION

    assert expected == Decimal("0.6075")
    assert cost(OPUS, usage) == expected


def test_gemini_pro_below_200k_prompt_tokens() -> None:
    usage = Usage(input_tokens=120_000, output_tokens=6_000)
    expected = (120_000 * Decimal("1.25") + 6_000 * Decimal("10")) / MILLION

    assert expected == Decimal("0.21")
    assert cost(GEMINI_PRO, usage) == expected


def test_gemini_pro_above_200k_bills_the_whole_request_at_the_higher_rate() -> None:
    usage = Usage(input_tokens=250_000, output_tokens=6_000)
    # all 250,000 prompt tokens at $2.50 (not 200,000 at $1.25 and 50,000 at $2.50), output at $15
    expected = (250_000 * Decimal("2.50") + 6_000 * Decimal("15")) / MILLION

    assert expected == Decimal("0.715")
    assert cost(GEMINI_PRO, usage) == expected


def test_gemini_pro_tier_boundary_is_more_than_200k() -> None:
    # "prompts <= 200k tokens" get the base rate
    at = Usage(input_tokens=TIER, output_tokens=10_000)
    over = Usage(input_tokens=TIER + 1, output_tokens=10_000)

    assert cost(GEMINI_PRO, at) == (TIER * Decimal("1.25") + 10_000 * Decimal("10")) / MILLION
    assert (
        cost(GEMINI_PRO, over) == ((TIER + 1) * Decimal("2.50") + 10_000 * Decimal("15")) / MILLION
    )
    assert cost(GEMINI_PRO, over) == Decimal("0.6500025")


def test_gemini_pro_cache_reads_below_200k() -> None:
    usage = Usage(input_tokens=50_000, cache_read_tokens=100_000, output_tokens=2_000)
    expected = (
        50_000 * Decimal("1.25") + 100_000 * Decimal("0.125") + 2_000 * Decimal("10")
    ) / MILLION

    assert expected == Decimal("0.095")
    assert cost(GEMINI_PRO, usage) == expected


def test_gemini_pro_cache_reads_count_toward_the_200k_threshold() -> None:
    # 150,000 uncached + 60,000 cached = a 210,000-token prompt: everything at the higher rates
    usage = Usage(input_tokens=150_000, cache_read_tokens=60_000, output_tokens=1_000)
    expected = (
        150_000 * Decimal("2.50") + 60_000 * Decimal("0.25") + 1_000 * Decimal("15")
    ) / MILLION

    assert expected == Decimal("0.405")
    assert cost(GEMINI_PRO, usage) == expected


def test_gemini_pro_cache_read_rates_in_genai_prices() -> None:
    # what the installed genai-prices itself holds for gemini-2.5-pro cache reads
    price = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1, output_tokens=1), "gemini-2.5-pro", provider_id="google"
    ).model_price
    cache_read = price.cache_read_mtok

    assert isinstance(cache_read, TieredPrices)
    assert cache_read.base == Decimal("0.125")
    assert [(tier.start, tier.price) for tier in cache_read.tiers] == [(TIER, Decimal("0.25"))]


# --- 2. batch ---------------------------------------------------------------------------------


@pytest.mark.parametrize("route", [SONNET, HAIKU, OPUS, GEMINI_PRO, GEMINI_FLASH, GPT_4O_MINI])
@pytest.mark.parametrize(
    "usage",
    [
        Usage(input_tokens=123_457, output_tokens=9_877),
        Usage(input_tokens=250_001, output_tokens=3),  # above Gemini's tier
        Usage(output_tokens=1_000_000),
    ],
)
def test_batch_is_exactly_half_the_list_price(route: str, usage: Usage) -> None:
    pricer = Pricer()
    list_price = pricer.list_cost(route, usage)

    assert list_price > 0
    assert pricer.batch_discount(route) == Decimal("0.5")
    assert pricer.cost(route, usage) == list_price
    assert pricer.cost(route, usage, batch=True) == list_price / 2


@pytest.mark.parametrize("route", [SONNET, HAIKU, OPUS])
def test_anthropic_batch_halves_cache_traffic_too(route: str) -> None:
    usage = Usage(
        input_tokens=1_001,
        cache_read_tokens=30_003,
        cache_write_tokens=20_000,
        cache_write_1h_tokens=7_001,
        output_tokens=5_005,
    )
    pricer = Pricer()

    assert pricer.cost(route, usage, batch=True) == pricer.list_cost(route, usage) / 2


def test_batch_of_sonnet_by_hand() -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)

    assert Pricer().cost(SONNET, usage, batch=True) == (Decimal("3") + Decimal("15")) / 2


@pytest.mark.parametrize(
    "route",
    [
        SONNET,
        pytest.param(
            GEMINI_FLASH,
        ),
        pytest.param(
            GEMINI_PRO,
        ),
        pytest.param(
            GPT_4O_MINI,
        ),
    ],
)
def test_batch_cache_reads_match_genai_prices_batch_rates(route: str) -> None:
    # genai-prices (>= 0.2) carries batch prices ({"processing": "batch"}); castline's own flat
    # 50% discount should agree with them. It does on input and output (test above); the
    # disagreement is on cache reads, which Google and OpenAI do not halve there.
    usage = Usage(input_tokens=50_000, cache_read_tokens=100_000, output_tokens=2_000)
    provider, _, model = route.partition(":")
    upstream = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=usage.prompt_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            output_tokens=usage.output_tokens,
        ),
        model,
        provider_id={"gemini": "google"}.get(provider, provider),
        price_context={"processing": "batch"},
    ).total_price

    assert Pricer().cost(route, usage, batch=True) == upstream


def test_show_override_changes_the_batch_discount() -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    quarter_off = Pricer(
        {
            SONNET: ModelPrice(
                input=Decimal("3"), output=Decimal("15"), batch_discount=Decimal("0.25")
            )
        }
    )
    no_batch = Pricer({SONNET: ModelPrice(input=Decimal(3), output=Decimal(15), batch_discount=0)})

    assert quarter_off.batch_discount(SONNET) == Decimal("0.25")
    assert quarter_off.cost(SONNET, usage, batch=True) == (Decimal("3") + Decimal("15")) * Decimal(
        "0.75"
    )
    assert no_batch.cost(SONNET, usage, batch=True) == Decimal("18")
    # other routes keep the provider's discount
    assert quarter_off.batch_discount(HAIKU) == Decimal("0.5")


def test_override_changes_the_batch_discount_of_a_free_local_model() -> None:
    pricer = Pricer({LOCAL: ModelPrice(input=Decimal(0), output=Decimal(0), batch_discount=0)})

    assert pricer.batch_discount(LOCAL) == 0
    assert Pricer().batch_discount(LOCAL) == Decimal("0.5")  # openai's default


def test_batch_discount_only_override_keeps_the_list_price() -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    pricer = Pricer({SONNET: ModelPrice(batch_discount=Decimal("0.25"))})

    assert pricer.list_cost(SONNET, usage) == Decimal("18")
    assert pricer.cost(SONNET, usage, batch=True) == Decimal("13.50")


# --- 3. overrides -------------------------------------------------------------------------------


def test_local_server_is_free_only_by_explicit_override() -> None:
    usage = Usage(
        input_tokens=500_000,
        cache_read_tokens=10_000,
        cache_write_tokens=5_000,
        cache_write_1h_tokens=1_000,
        output_tokens=200_000,
    )
    free = Pricer({LOCAL: ModelPrice(input=0, output=0)})

    free.check(LOCAL)  # priced: does not raise
    assert free.cost(LOCAL, usage) == 0
    assert free.cost(LOCAL, usage, batch=True) == 0
    assert free.worst_case(LOCAL, 100_000, 4_096) == 0

    with pytest.raises(UnpricedModel) as caught:
        Pricer().check(LOCAL)
    with pytest.raises(UnpricedModel):
        Pricer().cost(LOCAL, usage)

    message = str(caught.value)
    assert repr(LOCAL) in message
    assert_says_how_to_fix(message, LOCAL)
    assert (
        '  prices:\n    "openai:llama3": {input: 3.00, output: 15.00}   # USD per million tokens\n'
        in message
    )


def test_the_suggested_prices_snippet_is_a_working_override() -> None:
    with pytest.raises(UnpricedModel) as caught:
        Pricer().check(LOCAL)
    message = str(caught.value)
    snippet = message[message.index("  prices:") : message.index("or route the role")]

    prices = yaml.safe_load(snippet)["prices"]
    pricer = Pricer({route: ModelPrice.model_validate(p) for route, p in prices.items()})

    assert set(prices) == {LOCAL}
    pricer.check(LOCAL)
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert pricer.cost(LOCAL, usage) == Decimal("3.00") + Decimal("15.00")


def test_override_takes_precedence_over_genai_prices() -> None:
    negotiated = ModelPrice(
        input=Decimal("2"),
        output=Decimal("10"),
        cache_read=Decimal("0.2"),
        cache_write=Decimal("2.5"),
        cache_write_1h=Decimal("4"),
    )
    usage = Usage(
        input_tokens=10_000,
        cache_read_tokens=20_000,
        cache_write_tokens=30_000,
        cache_write_1h_tokens=12_000,
        output_tokens=4_000,
    )
    expected = (
        10_000 * Decimal("2")
        + 20_000 * Decimal("0.2")
        + 18_000 * Decimal("2.5")
        + 12_000 * Decimal("4")
        + 4_000 * Decimal("10")
    ) / MILLION

    assert expected == Decimal("0.157")
    assert Pricer({SONNET: negotiated}).cost(SONNET, usage) == expected
    # the override is the show's alone: the default pricer still uses genai-prices
    assert Pricer().cost(SONNET, usage) == Decimal("0.2355")
    assert cost(SONNET, usage) == Decimal("0.2355")


def test_a_partial_override_takes_the_rates_it_leaves_out_from_the_published_price() -> None:
    pricer = Pricer({SONNET: ModelPrice(input=Decimal(2), output=Decimal(8), cache_write=3)})

    assert pricer.cost(SONNET, Usage(input_tokens=1_000_000)) == Decimal("2")
    assert pricer.cost(SONNET, Usage(cache_write_tokens=1_000_000)) == Decimal("3")
    # not overridden: Sonnet's published $0.30 cache read and $6 one-hour cache write
    assert pricer.cost(SONNET, Usage(cache_read_tokens=1_000_000)) == Decimal("0.3")
    one_hour = Usage(cache_write_tokens=1_000_000, cache_write_1h_tokens=1_000_000)
    assert pricer.cost(SONNET, one_hour) == Decimal("6")


def test_an_unpublished_model_falls_back_to_the_override_input_rate() -> None:
    local = "openai:llama3"
    pricer = Pricer({local: ModelPrice(input=Decimal(2), output=Decimal(8))})

    assert pricer.cost(local, Usage(cache_read_tokens=1_000_000)) == Decimal("2")
    one_hour = Usage(cache_write_tokens=1_000_000, cache_write_1h_tokens=1_000_000)
    assert pricer.cost(local, one_hour) == Decimal("2")


def test_an_unpublished_model_needs_both_input_and_output() -> None:
    with pytest.raises(UnpricedModel, match="needs both input and output"):
        Pricer({"openai:llama3": ModelPrice(input=Decimal(2))}).check("openai:llama3")


def test_override_takes_precedence_over_gemini_tiers() -> None:
    pricer = Pricer({GEMINI_PRO: ModelPrice(input=Decimal("1"), output=Decimal("4"))})
    usage = Usage(input_tokens=300_000, output_tokens=1_000)

    assert pricer.cost(GEMINI_PRO, usage) == (300_000 * 1 + 1_000 * 4) / MILLION


def test_override_takes_precedence_over_castline_tts_table() -> None:
    assert Pricer().characters_cost("openai:tts-1", 2_000_000) == Decimal("30")
    cheaper = Pricer({"openai:tts-1": ModelPrice(per_million_characters=Decimal("12"))})
    assert cheaper.characters_cost("openai:tts-1", 2_000_000) == Decimal("24")


# --- 4. worst case ------------------------------------------------------------------------------


@st.composite
def call_within(draw: st.DrawFn) -> tuple[int, int, Usage]:
    """A limit (n prompt tokens, m output tokens) and a usage that stays within it, split into
    uncached input, cache reads, 5-minute writes and 1-hour writes."""
    n = draw(st.integers(min_value=0, max_value=400_000))
    m = draw(st.integers(min_value=0, max_value=64_000))
    prompt = draw(st.integers(min_value=0, max_value=n))
    cuts = sorted(draw(st.integers(min_value=0, max_value=prompt)) for _ in range(3))
    uncached, reads, writes_5m, writes_1h = (
        cuts[0],
        cuts[1] - cuts[0],
        cuts[2] - cuts[1],
        prompt - cuts[2],
    )
    usage = Usage(
        input_tokens=uncached,
        cache_read_tokens=reads,
        cache_write_tokens=writes_5m + writes_1h,
        cache_write_1h_tokens=writes_1h,
        output_tokens=draw(st.integers(min_value=0, max_value=m)),
    )
    assert usage.prompt_tokens == prompt
    return n, m, usage


@pytest.mark.parametrize("route", [SONNET, GEMINI_PRO])
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(call=call_within())
@example(call=(TIER, 10, Usage(input_tokens=TIER, output_tokens=10)))
@example(call=(TIER + 1, 10, Usage(cache_read_tokens=TIER + 1, output_tokens=10)))
@example(call=(400_000, 64_000, Usage(cache_write_tokens=400_000, cache_write_1h_tokens=400_000)))
def test_worst_case_bounds_any_usage_within_the_limits(
    route: str, call: tuple[int, int, Usage]
) -> None:
    n, m, usage = call
    pricer = Pricer()

    worst = pricer.worst_case(route, n, m)

    assert pricer.list_cost(route, usage) <= worst
    if route.startswith("anthropic:"):
        all_1h_writes = Usage(cache_write_tokens=n, cache_write_1h_tokens=n, output_tokens=m)
        assert worst == pricer.list_cost(route, all_1h_writes)
        assert worst == (n * Decimal("6") + m * Decimal("15")) / MILLION


@pytest.mark.parametrize(
    ("n", "m", "expected"),
    [
        (100_000, 4_096, (100_000 * Decimal("6") + 4_096 * Decimal("15")) / MILLION),
        (350_000, 64_000, (350_000 * Decimal("6") + 64_000 * Decimal("15")) / MILLION),
        (0, 0, Decimal(0)),
    ],
)
def test_sonnet_worst_case_is_every_prompt_token_written_to_the_1h_cache(
    n: int, m: int, expected: Decimal
) -> None:
    pricer = Pricer()

    assert pricer.worst_case(SONNET, n, m) == expected
    assert pricer.worst_case(SONNET, n, m) == pricer.list_cost(
        SONNET, Usage(cache_write_tokens=n, cache_write_1h_tokens=n, output_tokens=m)
    )


@pytest.mark.parametrize(
    ("n", "m", "expected"),
    [
        (100_000, 8_192, (100_000 * Decimal("1.25") + 8_192 * Decimal("10")) / MILLION),
        (TIER, 8_192, (TIER * Decimal("1.25") + 8_192 * Decimal("10")) / MILLION),
        (300_000, 10, (300_000 * Decimal("2.50") + 10 * Decimal("15")) / MILLION),
    ],
)
def test_gemini_worst_case_is_uncached_input_at_the_tier_the_size_reaches(
    n: int, m: int, expected: Decimal
) -> None:
    assert Pricer().worst_case(GEMINI_PRO, n, m) == expected


# --- 5. cache savings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "usage", "saved"),
    [
        # 60,000 prompt tokens at $3 + output, minus $0.2355 actually paid
        (
            SONNET,
            Usage(
                input_tokens=10_000,
                cache_read_tokens=20_000,
                cache_write_tokens=30_000,
                cache_write_1h_tokens=12_000,
                output_tokens=4_000,
            ),
            (60_000 * Decimal("3") + 4_000 * Decimal("15")) / MILLION - Decimal("0.2355"),
        ),
        # reads only: each read saves $3 - $0.30
        (SONNET, Usage(cache_read_tokens=1_000_000), Decimal("3") - Decimal("0.30")),
        # writes cost more than plain input: a 1-hour write "saves" $3 - $6 per million
        (
            SONNET,
            Usage(cache_write_tokens=100_000, cache_write_1h_tokens=100_000),
            100_000 * (Decimal("3") - Decimal("6")) / MILLION,
        ),
        (HAIKU, Usage(input_tokens=5, output_tokens=7), Decimal(0)),
        # a 210,000-token Gemini prompt is above the tier whether cached or not
        (
            GEMINI_PRO,
            Usage(input_tokens=150_000, cache_read_tokens=60_000, output_tokens=1_000),
            60_000 * (Decimal("2.50") - Decimal("0.25")) / MILLION,
        ),
        (
            GEMINI_PRO,
            Usage(input_tokens=50_000, cache_read_tokens=100_000, output_tokens=2_000),
            100_000 * (Decimal("1.25") - Decimal("0.125")) / MILLION,
        ),
    ],
)
def test_cache_savings_by_hand(route: str, usage: Usage, saved: Decimal) -> None:
    pricer = Pricer()
    uncached = Usage(input_tokens=usage.prompt_tokens, output_tokens=usage.output_tokens)

    assert pricer.cache_savings(route, usage) == saved
    assert saved == pricer.list_cost(route, uncached) - pricer.list_cost(route, usage)


# --- 6. LiteLLM's price table -------------------------------------------------------------------

# castline route -> LiteLLM key in tests/budget/fixtures/litellm_prices.json
LITELLM_KEY = {
    SONNET: "claude-sonnet-4-6",
    HAIKU: "claude-haiku-4-5",
    OPUS: "claude-opus-4-6",
    GEMINI_PRO: "gemini/gemini-2.5-pro",
    GEMINI_FLASH: "gemini/gemini-2.5-flash",
    GPT_4O_MINI: "gpt-4o-mini",
}

# LiteLLM field -> (usage kind, above Gemini's 200K tier)
LITELLM_FIELD: dict[str, tuple[str, bool]] = {
    "input_cost_per_token": ("input", False),
    "output_cost_per_token": ("output", False),
    "cache_read_input_token_cost": ("cache_read", False),
    "cache_creation_input_token_cost": ("cache_write", False),
    "cache_creation_input_token_cost_above_1hr": ("cache_write_1h", False),
    "input_cost_per_token_above_200k_tokens": ("input", True),
    "output_cost_per_token_above_200k_tokens": ("output", True),
    "cache_read_input_token_cost_above_200k_tokens": ("cache_read", True),
    "cache_creation_input_token_cost_above_200k_tokens": ("cache_write", True),
}

# (route, LiteLLM field) -> reason naming both numbers, for rows where LiteLLM and genai-prices
# disagree. None do at the fixture's commit.
LITELLM_DISAGREES: dict[tuple[str, str], str] = {}


def litellm_rows() -> dict[str, dict[str, Decimal]]:
    data: dict[str, Any] = json.loads(LITELLM_PRICES.read_text(), parse_float=Decimal)
    return {key: row for key, row in data.items() if not key.startswith("_")}


def litellm_cases() -> list[Any]:
    rows = litellm_rows()
    cases = []
    for route, key in LITELLM_KEY.items():
        for field, per_token in rows[key].items():
            marks = []
            if (route, field) in LITELLM_DISAGREES:
                marks.append(pytest.mark.xfail(strict=True, reason=LITELLM_DISAGREES[route, field]))
            cases.append(pytest.param(route, field, per_token, id=f"{route}-{field}", marks=marks))
    return cases


def one_kind(kind: str, tokens: int) -> Usage:
    if kind == "cache_write_1h":
        return Usage(cache_write_tokens=tokens, cache_write_1h_tokens=tokens)
    return Usage(**{f"{kind}_tokens": tokens})


def per_million(route: str, kind: str, above_tier: bool) -> Decimal:
    """castline's USD per million tokens of one kind, from list costs. Prompt tokens below the
    tier are measured on a 200K-token prompt (x5) since a 1M-token one would cross it; above the
    tier on a 1M-token prompt; output on 1M tokens after a prompt that sets the tier."""
    pricer = Pricer()
    if kind == "output":
        prompt = Usage(input_tokens=1_000_000 if above_tier else 0)
        return pricer.list_cost(route, prompt + one_kind("output", 1_000_000)) - pricer.list_cost(
            route, prompt
        )
    if above_tier:
        return pricer.list_cost(route, one_kind(kind, 1_000_000))
    return pricer.list_cost(route, one_kind(kind, TIER)) * 5


def test_litellm_fixture_names_its_source_and_has_every_model() -> None:
    data = json.loads(LITELLM_PRICES.read_text())
    source = data["_source"]

    assert source["repository"] == "BerriAI/litellm"
    assert source["path"] == "model_prices_and_context_window.json"
    assert len(source["commit"]) == 40
    assert set(litellm_rows()) == set(LITELLM_KEY.values())
    for row in litellm_rows().values():
        assert set(row) <= set(LITELLM_FIELD)
        assert {"input_cost_per_token", "output_cost_per_token"} <= set(row)


@pytest.mark.parametrize(("route", "field", "per_token"), litellm_cases())
def test_castline_rates_match_litellm(route: str, field: str, per_token: Decimal) -> None:
    kind, above_tier = LITELLM_FIELD[field]

    castline_per_token = per_million(route, kind, above_tier) / MILLION

    assert abs(castline_per_token - per_token) <= Decimal("1e-9"), (
        f"{route} {field}: castline {castline_per_token} vs LiteLLM {per_token} per token"
    )

"""Pricing usage with genai-prices: castline's uncached input plus cache reads and writes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from castline.budget.prices import check_priced, cost
from castline.config import DEFAULT_ROUTING
from castline.errors import ConfigError, UnpricedModel
from castline.llm.base import Usage

MILLION = Decimal(1_000_000)
SONNET = "anthropic:claude-sonnet-4-6"


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

    price = cost("gemini:gemini-2.5-flash", usage)

    assert isinstance(price, Decimal)
    assert price == by_hand(usage, "0.30", "2.50", "0", "0")


def test_opus_costs_more_than_sonnet_which_costs_more_than_haiku() -> None:
    usage = Usage(input_tokens=10_000, output_tokens=2_000)

    opus = cost("anthropic:claude-opus-4-6", usage)
    sonnet = cost(SONNET, usage)
    haiku = cost("anthropic:claude-haiku-4-5", usage)

    assert opus > sonnet > haiku > 0


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

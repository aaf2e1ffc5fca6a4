"""Pricing a call's usage with genai-prices' dated price data. An unpriced model is an error.

castline's `Usage.input_tokens` counts only uncached input (Anthropic's convention); genai-prices
expects total input including cache reads and writes, so the two are added before pricing.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

import genai_prices
from genai_prices import Usage as PriceUsage

from castline.errors import UnpricedModel
from castline.llm.base import Usage

# castline's provider names to genai-prices' provider ids.
_PRICE_PROVIDER = {"anthropic": "anthropic", "gemini": "google", "openai": "openai"}


def cost(route: str, usage: Usage) -> Decimal:
    """The list price in USD of `usage` on the model named by `route` ("provider:model")."""
    provider, _, model = route.partition(":")
    try:
        result = genai_prices.calc_price(
            PriceUsage(
                input_tokens=usage.input_tokens
                + usage.cache_read_tokens
                + usage.cache_write_tokens,
                cache_read_tokens=usage.cache_read_tokens,
                cache_write_tokens=usage.cache_write_tokens,
                output_tokens=usage.output_tokens,
            ),
            model,
            provider_id=_PRICE_PROVIDER.get(provider, provider),
        )
    except LookupError as exc:
        raise UnpricedModel(
            f"no price is known for {route!r} ({exc}); pick a priced model in the show's routing"
        ) from None
    return Decimal(result.total_price)


@lru_cache(maxsize=256)
def check_priced(route: str) -> None:
    """Raise `UnpricedModel` before a run starts if `route` cannot be priced."""
    cost(route, Usage(input_tokens=1, output_tokens=1))

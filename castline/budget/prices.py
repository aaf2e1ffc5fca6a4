"""What a call costs: genai-prices' dated data, castline's table for what it lacks, and the show's
own negotiated prices, in that order of precedence (the show's first).

Semantics castline normalises to before pricing (see `castline.llm.base.Usage`): uncached input,
cache reads and cache writes are separate counts. genai-prices expects total input including
cache traffic, so the counts are added back before it is asked. Its data carries each model's
tiers (e.g. Gemini's rate above 200K prompt tokens), applied to the whole request.

An unpriced model is an error raised before the run starts, never a silent zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache

from castline.config import ModelPrice
from castline.errors import UnpricedModel
from castline.llm.base import Usage

MILLION = Decimal(1_000_000)

# castline's provider names to genai-prices' provider ids.
PRICE_PROVIDER = {"anthropic": "anthropic", "gemini": "google", "openai": "openai"}

# genai-prices prices batch requests for the models whose batch rates it records (asked with
# `processing: batch`); for others castline applies the vendors' published batch discount to the
# list price. A show can override the discount per model.
BATCH_CONTEXT = {"processing": "batch"}
BATCH_DISCOUNT = {
    "anthropic": Decimal("0.5"),
    "gemini": Decimal("0.5"),
    "openai": Decimal("0.5"),
}

# What genai-prices does not price (USD per million units), from the vendors' price pages.
# TTS engines bill characters of text (`per_million_characters`) or tokens.
CASTLINE_PRICES: dict[str, ModelPrice] = {
    "openai:tts-1": ModelPrice(per_million_characters=Decimal("15")),
    "openai:tts-1-hd": ModelPrice(per_million_characters=Decimal("30")),
    # ElevenLabs' API: $0.10 per 1,000 characters (Multilingual v2/v3), $0.05 (Flash/Turbo)
    "elevenlabs:eleven_multilingual_v2": ModelPrice(per_million_characters=Decimal("100")),
    "elevenlabs:eleven_v3": ModelPrice(per_million_characters=Decimal("100")),
    "elevenlabs:eleven_flash_v2_5": ModelPrice(per_million_characters=Decimal("50")),
    "elevenlabs:eleven_turbo_v2_5": ModelPrice(per_million_characters=Decimal("50")),
    "espeak:espeak-ng": ModelPrice(per_million_characters=Decimal("0")),
    "piper:piper": ModelPrice(per_million_characters=Decimal("0")),
}

# Server-side web search (research.web_search), USD per 1,000, from the vendors' price pages:
# Claude's web search tool bills each search; Gemini 2.5 bills each grounded prompt, however
# many queries it ran; later Gemini models bill each query.
SEARCH_PER_THOUSAND = {"anthropic": Decimal(10), "gemini": Decimal(14)}
GROUNDED_PROMPT_PER_THOUSAND = Decimal(35)
PER_PROMPT_SEARCH_MODELS = ("gemini-2.",)

HOW_TO_OVERRIDE = (
    "add a price to the show bible, e.g.\n"
    "  prices:\n"
    '    "{route}": {{input: 3.00, output: 15.00}}   # USD per million tokens\n'
    "or route the role to a model that genai-prices knows"
)


class Pricer:
    """Prices usage for routes ("provider:model"), with the show's overrides first."""

    def __init__(self, overrides: Mapping[str, ModelPrice] | None = None) -> None:
        self.overrides = dict(overrides or {})
        # worst cases are asked for again and again (each candidate of a call's ladder, for the
        # check and for the reservation); the prices behind them do not change within a run
        self._worst: dict[tuple[str, int, int], Decimal] = {}

    def _table_price(self, route: str) -> ModelPrice | None:
        return self.overrides.get(route) or CASTLINE_PRICES.get(route)

    def _token_rates(self, route: str) -> ModelPrice | None:
        """The show's (or castline's) token rates for `route`, any rate it leaves out taken from
        genai-prices; None when the table gives no token rate (genai-prices prices it all)."""
        table = self._table_price(route)
        if table is None or all(getattr(table, f) is None for f in TOKEN_RATES):
            return None
        missing = {f: None for f in TOKEN_RATES if getattr(table, f) is None}
        if not missing:
            return table
        base = _genai_base_rates(route)
        if base is None and (table.input is None or table.output is None):
            raise UnpricedModel(
                f"the price override for {route!r} needs both input and output, since no "
                "published price is known to fill in the rest"
            )
        filled = {f: (base or {}).get(f) for f in missing}
        return table.model_copy(update=filled)

    def check(self, route: str) -> None:
        """Raise `UnpricedModel` now if `route` cannot be priced."""
        self.cost(route, Usage(input_tokens=1, output_tokens=1))

    def cost(self, route: str, usage: Usage, *, batch: bool = False) -> Decimal:
        """The price in USD of `usage` on `route`, sent through a batch API when `batch` (which
        discounts tokens, not searches)."""
        searches = self.search_cost(route, usage.web_searches)
        if not batch:
            return self._token_cost(route, usage) + searches
        table = self._table_price(route)
        explicit = table is not None and table.batch_discount is not None
        if self._token_rates(route) is None and not explicit and _genai_has_batch(route):
            return _genai_cost(route, usage, batch=True) + searches
        return self._token_cost(route, usage) * (1 - self.batch_discount(route)) + searches

    def search_cost(self, route: str, searches: int) -> Decimal:
        """What `searches` server-side web searches cost on `route`."""
        if searches <= 0:
            return Decimal(0)
        table = self._table_price(route)
        if table is not None and table.per_thousand_searches is not None:
            return table.per_thousand_searches * searches / 1000
        provider, _, model = route.partition(":")
        if provider == "gemini" and model.startswith(PER_PROMPT_SEARCH_MODELS):
            return GROUNDED_PROMPT_PER_THOUSAND / 1000
        if provider not in SEARCH_PER_THOUSAND:
            raise UnpricedModel(
                f"no web search price is known for {route!r}; add one to the show bible, e.g.\n"
                f'  prices:\n    "{route}": {{per_thousand_searches: 10.00}}   # USD per 1,000'
            )
        return SEARCH_PER_THOUSAND[provider] * searches / 1000

    def batch_discount(self, route: str) -> Decimal:
        """The share of the list price a batch saves (on models genai-prices has batch rates
        for, its own rates are used instead, which may keep cache reads at full price)."""
        table = self._table_price(route)
        if table is not None and table.batch_discount is not None:
            return table.batch_discount
        return BATCH_DISCOUNT.get(route.partition(":")[0], Decimal(0))

    def list_cost(self, route: str, usage: Usage) -> Decimal:
        return self._token_cost(route, usage) + self.search_cost(route, usage.web_searches)

    def _token_cost(self, route: str, usage: Usage) -> Decimal:
        rates = self._token_rates(route)
        if rates is not None:
            return _table_cost(rates, usage)
        return _genai_cost(route, usage)

    def characters_cost(self, route: str, characters: int) -> Decimal:
        """Price of synthesising `characters` of text on a TTS route billed per character."""
        table = self._table_price(route)
        if table is None or table.per_million_characters is None:
            raise UnpricedModel(
                f"no per-character price is known for {route!r}; add one to the show bible, "
                f'e.g.\n  prices:\n    "{route}": {{per_million_characters: 15.00}}   '
                "# USD per million characters (0 for a server of your own)"
            )
        return table.per_million_characters * characters / MILLION

    def worst_case(
        self, route: str, input_tokens: int, max_output_tokens: int, searches: int = 0
    ) -> Decimal:
        """The most a call can cost: every input token at the highest rate that could apply
        (plain, or written to the cache with the longest TTL, at the tier the size reaches),
        `max_output_tokens` of output and `searches` web searches, at list price."""
        key = (route, input_tokens, max_output_tokens)
        if key not in self._worst:
            self._worst[key] = self._worst_case(route, input_tokens, max_output_tokens)
        return self._worst[key] + self.search_cost(route, searches)

    def _worst_case(self, route: str, input_tokens: int, max_output_tokens: int) -> Decimal:
        scenarios = [
            Usage(input_tokens=input_tokens, output_tokens=max_output_tokens),
            Usage(
                cache_write_tokens=input_tokens,
                cache_write_1h_tokens=input_tokens,
                output_tokens=max_output_tokens,
            ),
            Usage(cache_write_tokens=input_tokens, output_tokens=max_output_tokens),
        ]
        return max(self._token_cost(route, usage) for usage in scenarios)

    def cache_savings(self, route: str, usage: Usage) -> Decimal:
        """What caching saved: the same prompt tokens as plain input, minus what was paid."""
        uncached = Usage(input_tokens=usage.prompt_tokens, output_tokens=usage.output_tokens)
        return self._token_cost(route, uncached) - self._token_cost(route, usage)


def _table_cost(price: ModelPrice, usage: Usage) -> Decimal:
    input_rate = price.input or Decimal(0)
    write_rate = price.cache_write if price.cache_write is not None else input_rate
    write_1h_rate = price.cache_write_1h if price.cache_write_1h is not None else write_rate
    read_rate = price.cache_read if price.cache_read is not None else input_rate
    writes_5m = usage.cache_write_tokens - usage.cache_write_1h_tokens
    total = (
        usage.input_tokens * input_rate
        + usage.cache_read_tokens * read_rate
        + writes_5m * write_rate
        + usage.cache_write_1h_tokens * write_1h_rate
        + usage.output_tokens * (price.output or Decimal(0))
    )
    return total / MILLION


TOKEN_RATES = ("input", "output", "cache_read", "cache_write", "cache_write_1h")
_GENAI_RATE = {
    "input": "input_mtok",
    "output": "output_mtok",
    "cache_read": "cache_read_mtok",
    "cache_write": "cache_write_mtok",
    "cache_write_1h": "cache_write_1h_mtok",
}


@lru_cache(maxsize=256)
def _genai_base_rates(route: str) -> dict[str, Decimal] | None:
    """genai-prices' per-million rates for `route` below any tier, or None if it has none."""
    import genai_prices  # its price data loads on first use, not when castline starts
    from genai_prices import Usage as PriceUsage

    provider, _, model = route.partition(":")
    try:
        found = genai_prices.calc_price(
            PriceUsage(input_tokens=1, output_tokens=1),
            model,
            provider_id=PRICE_PROVIDER.get(provider, provider),
        )
    except LookupError:
        return None
    rates: dict[str, Decimal] = {}
    for field, attribute in _GENAI_RATE.items():
        price = getattr(found.model_price, attribute, None)
        if price is not None:
            rates[field] = Decimal(getattr(price, "base", price))
    return rates


@lru_cache(maxsize=256)
def _genai_has_batch(route: str) -> bool:
    """Whether genai-prices records batch rates for `route` (its batch price differs)."""
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    try:
        return _genai_cost(route, usage, batch=True) != _genai_cost(route, usage)
    except UnpricedModel:
        return False


def _genai_cost(route: str, usage: Usage, *, batch: bool = False) -> Decimal:
    import genai_prices
    from genai_prices import Usage as PriceUsage

    provider, _, model = route.partition(":")
    extra = {}
    if usage.cache_write_1h_tokens:
        extra["cache_write_1h_tokens"] = usage.cache_write_1h_tokens
    try:
        result = genai_prices.calc_price(
            PriceUsage(
                input_tokens=usage.prompt_tokens,
                cache_read_tokens=usage.cache_read_tokens,
                cache_write_tokens=usage.cache_write_tokens,
                output_tokens=usage.output_tokens,
                **extra,
            ),
            model,
            provider_id=PRICE_PROVIDER.get(provider, provider),
            price_context=BATCH_CONTEXT if batch else None,
        )
    except LookupError as exc:
        raise UnpricedModel(
            f"no price is known for {route!r} ({exc}); " + HOW_TO_OVERRIDE.format(route=route)
        ) from None
    return Decimal(result.total_price)


@lru_cache(maxsize=1)
def _default() -> Pricer:
    return Pricer()


def cost(route: str, usage: Usage) -> Decimal:
    """List price of `usage` on `route` with no show overrides."""
    return _default().cost(route, usage)


def check_priced(route: str) -> None:
    """Raise `UnpricedModel` if `route` has no price (without show overrides)."""
    _default().check(route)

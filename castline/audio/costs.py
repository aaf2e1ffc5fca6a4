"""What a clip costs: per character of text, or per token (text in, audio out) from the usage
the engine reports. An offline stand-in reports no usage, so its tokens are estimated from the
text and the clip's length, to price it as the engine it stands in for."""

from __future__ import annotations

from decimal import Decimal
from math import ceil

from castline.audio.tts.base import (
    AUDIO_TOKENS_PER_SECOND,
    TOKEN_BILLED_PIECE,
    most_audio_tokens,
    pieces,
)
from castline.audio.tts.registry import Voicing
from castline.budget.prices import Pricer
from castline.llm.base import Usage
from castline.text import estimate_tokens


def estimated_usage(text: str, seconds: float) -> Usage:
    return Usage(
        input_tokens=estimate_tokens(text),
        output_tokens=ceil(seconds * AUDIO_TOKENS_PER_SECOND),
    )


def take_cost(
    pricer: Pricer, voicing: Voicing, text: str, seconds: float, usage: Usage | None
) -> Decimal:
    """The price of one synthesis of `text` that gave `seconds` of speech."""
    if voicing.billing == "characters":
        return pricer.characters_cost(voicing.priced_as, len(text))
    return pricer.list_cost(voicing.priced_as, usage or estimated_usage(text, seconds))


def ceiling(pricer: Pricer, voicing: Voicing, text: str, words_per_minute: int) -> Decimal:
    """The most one synthesis of `text` can cost: what the reservation holds per attempt."""
    if voicing.billing == "characters":
        return pricer.characters_cost(voicing.priced_as, len(text))
    parts = pieces(text, TOKEN_BILLED_PIECE)  # each request is bounded on its own
    audio = sum(most_audio_tokens(part, words_per_minute) for part in parts)
    return pricer.worst_case(voicing.priced_as, estimate_tokens(text) * 2, audio)


def check(pricer: Pricer, voicing: Voicing) -> None:
    """Raise `UnpricedModel` before the run if the voice cannot be priced."""
    ceiling(pricer, voicing, "a price check", 150)

"""Prompt-caching simulations: Anthropic's explicit breakpoints and the implicit prefix caches of
Gemini and OpenAI. Tokens are counted the castline way: four characters a token, rounded up
(`castline.text.estimate_tokens`), over the prompt's pieces joined by blank lines."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

from castline.text import estimate_tokens

SEPARATOR = "\n\n"
TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
IMPLICIT_TTL_S = 300.0
MIN_CACHE_TOKENS = 1024
# An implicit cache is looked up by the first this many characters (the minimum cacheable
# prefix), so a request is compared only with earlier requests that share at least that much.
_BUCKET_CHARS = MIN_CACHE_TOKENS * 4
_BUCKET_LIMIT = 64


@dataclass(frozen=True)
class Segment:
    """One piece of a prompt (a system block or a content block), in order. `ttl` is the TTL of
    its cache breakpoint ("5m" or "1h"), or None when the block carries no cache_control.
    `turn` is 0 for the system text and the first user message (castline's rendered prompt) and
    counts up for later messages (a repair exchange: the model's reply, then a user note).
    `system` marks the system text's pieces."""

    text: str
    ttl: str | None = None
    turn: int = 0
    system: bool = False


def join(segments: list[Segment]) -> str:
    return SEPARATOR.join(segment.text for segment in segments)


def first_turn(segments: list[Segment]) -> str:
    """The text of the prompt proper: the system text and the first user message."""
    return join([segment for segment in segments if segment.turn == 0])


def prompt_tokens(segments: list[Segment]) -> int:
    return estimate_tokens(join(segments))


def anthropic_min_tokens(model: str) -> int:
    """The shortest prefix Anthropic caches for the model."""
    return 2048 if "haiku" in model else MIN_CACHE_TOKENS


@dataclass(frozen=True)
class CacheUsage:
    """How a prompt's tokens split: read from the cache, written to it (by TTL), and the rest."""

    total: int
    read: int = 0
    write_5m: int = 0
    write_1h: int = 0

    @property
    def write(self) -> int:
        return self.write_5m + self.write_1h

    @property
    def uncached(self) -> int:
        return self.total - self.read - self.write


@dataclass
class _Entry:
    expires: float
    ttl_s: float


class ExplicitCache:
    """Anthropic: the cacheable prefixes end at the blocks that carry cache_control.

    The longest such prefix still cached is read (and its TTL refreshed); the tokens from there up
    to the last breakpoint are written, each stretch under the TTL of the breakpoint that ends it.
    A prefix shorter than the model's minimum is neither read nor written."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[bytes, _Entry] = {}

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def account(
        self, model: str, segments: list[Segment], now: float, *, store: bool = True
    ) -> CacheUsage:
        total = prompt_tokens(segments)
        minimum = anthropic_min_tokens(model)
        breakpoints: list[tuple[bytes, str, int]] = []  # key, ttl, prefix tokens
        digest = hashlib.sha256(model.encode("utf-8") + b"\0")
        for index, segment in enumerate(segments):
            if index:
                digest.update(SEPARATOR.encode("utf-8"))
            digest.update(segment.text.encode("utf-8"))
            if segment.ttl is None:
                continue
            tokens = prompt_tokens(segments[: index + 1])
            if tokens >= minimum:
                breakpoints.append((digest.copy().digest(), segment.ttl, tokens))
        with self._lock:
            hit = -1
            for position in range(len(breakpoints) - 1, -1, -1):
                key, ttl, _ = breakpoints[position]
                entry = self._entries.get(key)
                if entry is not None and entry.expires > now:
                    hit = position
                    if store:
                        entry.ttl_s = max(entry.ttl_s, TTL_SECONDS[ttl])
                        entry.expires = now + entry.ttl_s
                    break
            read = breakpoints[hit][2] if hit >= 0 else 0
            written = {"5m": 0, "1h": 0}
            previous = read
            for key, ttl, tokens in breakpoints[hit + 1 :]:
                written[ttl] += tokens - previous
                previous = tokens
                if store:
                    self._entries[key] = _Entry(now + TTL_SECONDS[ttl], TTL_SECONDS[ttl])
        return CacheUsage(total=total, read=read, write_5m=written["5m"], write_1h=written["1h"])


@dataclass
class _Prompt:
    text: str
    expires: float


class PrefixCache:
    """Gemini and OpenAI: implicit caching of the longest prefix shared with an earlier prompt to
    the same model (within the TTL), if at least `minimum` tokens, rounded down to a multiple of
    `granularity` tokens. Shared tokens are whole four-character tokens of the shared prefix."""

    def __init__(self, *, granularity: int, minimum: int = MIN_CACHE_TOKENS) -> None:
        self.granularity = granularity
        self.minimum = minimum
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], dict[bytes, _Prompt]] = {}

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()

    def account(self, model: str, text: str, now: float, *, store: bool = True) -> int:
        """The cached tokens of this prompt; remembers it for later prompts when `store`."""
        if len(text) < self.minimum * 4:
            return 0
        bucket_key = (model, text[:_BUCKET_CHARS])
        key = hashlib.sha256(text.encode("utf-8")).digest()
        with self._lock:
            bucket = self._buckets.setdefault(bucket_key, {})
            for stale in [k for k, prompt in bucket.items() if prompt.expires <= now]:
                del bucket[stale]
            shared = max((_common_prefix(text, p.text) for p in bucket.values()), default=0)
            if store:
                bucket.pop(key, None)
                bucket[key] = _Prompt(text, now + IMPLICIT_TTL_S)
                while len(bucket) > _BUCKET_LIMIT:
                    del bucket[next(iter(bucket))]
        tokens = shared // 4
        if tokens < self.minimum:
            return 0
        return tokens // self.granularity * self.granularity


def _common_prefix(a: str, b: str) -> int:
    """The length of the longest common prefix of two strings (binary search on slices)."""
    low, high = 0, min(len(a), len(b))
    if a[:high] == b[:high]:
        return high
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low

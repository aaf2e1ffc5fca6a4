"""Per-provider circuit breakers, the classification of failures, and the retry schedule.

The paid-call engine (`castline.engine.paid.attempts`) applies them to every paid request, model
call or speech take; SDK retries are turned off. Breakers are process-wide, keyed by name (a
provider's; a speech engine's is "<engine> speech"), because what they protect against (a
provider that is down) is shared by every run in the process.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from castline.config import Retries
from castline.errors import ProviderError

# Failures that say the provider itself is unwell; they trip the breaker.
TRIPPING = frozenset({"overloaded", "server_error", "timeout"})
# Failures worth another attempt: the provider's trouble, or a rate limit that passes.
RETRYABLE = TRIPPING | {"rate_limit"}
# Failures after which no model of the provider can be used in this process.
FATAL_FOR_PROVIDER = frozenset({"spend_limit", "auth"})


@dataclass
class Breaker:
    """Opens after `threshold` consecutive provider failures; while open, calls to the provider
    fail at once instead of waiting out timeouts. After `cooldown_s` one trial call is let
    through; its outcome closes or re-opens the breaker."""

    threshold: int
    cooldown_s: float
    failures: int = 0
    opened_at: float | None = None
    permanent: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def allow(self, now: float | None = None) -> str | None:
        """None if a call may go ahead; else why not."""
        now = time.monotonic() if now is None else now
        with self.lock:
            if self.permanent:
                return self.permanent
            if self.opened_at is None:
                return None
            remaining = self.cooldown_s - (now - self.opened_at)
            if remaining > 0:
                return f"circuit open after {self.failures} failures ({remaining:.0f} s left)"
            self.opened_at = None  # half open: let one trial through
            self.failures = self.threshold - 1
            return None

    def record(self, error: ProviderError | None, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self.lock:
            if error is None:
                self.failures, self.opened_at = 0, None
            elif error.kind in FATAL_FOR_PROVIDER:
                self.permanent = f"provider unusable: {error}"
            elif error.kind in TRIPPING:
                self.failures += 1
                if self.failures >= self.threshold:
                    self.opened_at = now


_breakers: dict[str, Breaker] = {}
_lock = threading.Lock()


def breaker(provider: str, retries: Retries) -> Breaker:
    with _lock:
        if provider not in _breakers:
            _breakers[provider] = Breaker(retries.breaker_threshold, retries.breaker_cooldown_s)
        return _breakers[provider]


def reset() -> None:
    """Forget every breaker (tests, and a long-lived worker between shows)."""
    with _lock:
        _breakers.clear()


def as_provider_error(exc: Exception) -> ProviderError:
    """The engine's view of any exception raised while a provider was called.

    castline's own `ProviderError` (and `MalformedOutput`) is returned as it is. Anything else
    (an SDK's or its transport's unexpected error: a `RuntimeError`, an `httpx` error) is a
    transient failure of the provider, `timeout` for a timeout and `server_error` otherwise,
    retried and fallen back like one; its message names the exception's type.
    """
    if isinstance(exc, ProviderError):
        return exc
    name = type(exc).__name__
    text = " ".join(str(exc).split())[:500] or "(no message)"
    timed_out = isinstance(exc, TimeoutError) or "timeout" in name.lower()
    return ProviderError(f"{name}: {text}", kind="timeout" if timed_out else "server_error")


def backoff(attempt: int, retries: Retries, retry_after: float | None) -> float:
    """Seconds to wait before retry number `attempt` (1-based): the server's retry-after when it
    gave one, else exponential from `base_delay_s`; never more than `max_wait_s`."""
    if retry_after is not None:
        return min(retry_after, retries.max_wait_s)
    return float(min(retries.base_delay_s * 2 ** (attempt - 1), retries.max_wait_s))

"""Circuit breakers and the retry schedule (the shared limits are tests/engine/test_limits.py)."""

from __future__ import annotations

from castline.config import Retries
from castline.errors import ProviderError
from castline.llm import resilience
from castline.llm.resilience import Breaker, backoff


def test_breaker_opens_after_consecutive_provider_failures_and_half_opens_after_cooldown() -> None:
    breaker = Breaker(threshold=3, cooldown_s=10)
    overloaded = ProviderError("529", kind="overloaded")
    for _ in range(2):
        breaker.record(overloaded, now=0)
    assert breaker.allow(now=0) is None  # two failures: still closed
    breaker.record(overloaded, now=1)
    assert "circuit open after 3 failures" in (breaker.allow(now=2) or "")
    assert breaker.allow(now=11.5) is None  # one trial call after the cooldown
    breaker.record(overloaded, now=12)
    assert breaker.allow(now=13) is not None  # the trial failed: open again
    assert breaker.allow(now=22.5) is None
    breaker.record(None, now=23)
    assert breaker.failures == 0 and breaker.allow(now=23) is None


def test_a_success_resets_the_count_and_client_errors_do_not_trip_it() -> None:
    breaker = Breaker(threshold=2, cooldown_s=10)
    breaker.record(ProviderError("500", kind="server_error"), now=0)
    breaker.record(None, now=0)
    breaker.record(ProviderError("500", kind="server_error"), now=0)
    breaker.record(ProviderError("bad", kind="invalid_request"), now=0)
    breaker.record(ProviderError("slow", kind="rate_limit"), now=0)
    assert breaker.allow(now=0) is None


def test_a_spend_limit_takes_the_provider_out_for_good() -> None:
    breaker = Breaker(threshold=5, cooldown_s=0)
    breaker.record(ProviderError("spend limit reached", kind="spend_limit"), now=0)
    assert "provider unusable" in (breaker.allow(now=1_000) or "")


def test_backoff_honours_retry_after_but_never_beyond_the_cap() -> None:
    retries = Retries(base_delay_s=0.5, max_wait_s=4)
    assert [backoff(n, retries, None) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff(1, retries, 2.5) == 2.5
    assert backoff(1, retries, 60) == 4


def test_breakers_are_shared_per_provider() -> None:
    retries = Retries()
    assert resilience.breaker("anthropic", retries) is resilience.breaker("anthropic", retries)
    assert resilience.breaker("anthropic", retries) is not resilience.breaker("gemini", retries)
    first = resilience.breaker("anthropic", retries)
    resilience.reset()
    assert resilience.breaker("anthropic", retries) is not first

"""How one paid request is attempted, whatever it buys (a model's reply, a speech take).

Before each attempt the provider's circuit breaker is asked: an open circuit fails at once, so
a provider that is down costs no timeouts, and a failure that opens it is not retried. The
request holds one of the provider's slots (`limits`), shared by every process; a failure is
classified once (`resilience.as_provider_error`) and recorded on the breaker; what may pass (a
rate limit, an overload, a server error, a timeout) is tried again after a backoff that honours
the server's retry-after, each retry an audit event. The SDKs retry nothing, so this is the only
retry policy. How long a caller keeps trying depends on whether it has somewhere else to go
(`Patience`); money is not handled here (`spend`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from castline.config import Retries, Show
from castline.engine import runtime
from castline.engine.paid.limits import Limits, slot
from castline.errors import MalformedOutput, ProviderError
from castline.llm import registry, resilience
from castline.store import Store

T = TypeVar("T")


@dataclass(frozen=True)
class Patience:
    """How long a caller keeps trying one provider before it gives up on it.

    `transient`: attempts for an overload, server error or timeout (None: `retries.max_attempts`,
    as for a rate limit); `wait_beyond_cap`: whether a retry-after longer than
    `retries.max_wait_s` is waited out for `max_wait_s` or ends the attempts at once."""

    transient: int | None
    wait_beyond_cap: bool


# A model call has a fallback chain: a transient failure is retried once, and a long
# retry-after is not waited out, so the call moves on to the next route instead.
MOVE_ON = Patience(transient=2, wait_beyond_cap=False)
# A speech take has one engine and nowhere else to go: every passing failure is retried.
PERSIST = Patience(transient=None, wait_beyond_cap=True)


@dataclass
class Attempts:
    """The attempts of one paid request on one provider, for one step of a run."""

    store: Store
    run_id: str
    step_key: str
    stage: str
    label: str  # how messages name the provider ("anthropic:claude-haiku-4-5", "openai speech")
    route: str  # the priced route, for the audit events' data
    limits: Limits
    breaker: resilience.Breaker
    retries: Retries
    patience: Patience
    requests: int = 0  # requests made through this object, over every `run`
    last_ms: float = 0.0  # how long the last request took

    @classmethod
    def of(
        cls,
        store: Store,
        show: Show,
        *,
        run_id: str,
        step_key: str,
        stage: str,
        provider: str,
        label: str,
        route: str,
        patience: Patience,
        breaker: str | None = None,
    ) -> Attempts:
        """Attempts under `provider`'s limits and the breaker named `breaker` (the provider's
        own by default)."""
        return cls(
            store=store,
            run_id=run_id,
            step_key=step_key,
            stage=stage,
            label=label,
            route=route,
            limits=Limits.of(provider, registry.settings_for(provider, show)),
            breaker=resilience.breaker(breaker or provider, show.retries),
            retries=show.retries,
            patience=patience,
        )

    def closed(self) -> str | None:
        """Why the breaker turns requests away now (an open circuit, an unusable provider), or
        None when a request may go ahead."""
        return self.breaker.allow()

    def skipped(self, why: str) -> ProviderError:
        """Record that the breaker turned the request away; the error that says so."""
        message = f"{self.label} skipped: {why}"
        self.event("call-skipped", message, route=self.route)
        return ProviderError(message, kind="overloaded")

    def run(self, request: Callable[[], T]) -> T:
        """Make `request` until it answers, or raise the classified error that ended it. A
        reply that does not validate (`MalformedOutput`) is an answer: raised at once, for the
        caller to repair or reject."""
        attempt = 0
        while True:
            attempt += 1
            why = self.closed()
            if why is not None:
                raise self.skipped(why)
            self.requests += 1
            started = time.perf_counter()
            try:
                with slot(self.store, self.limits, runtime.current_executor()):
                    answer = request()
            except MalformedOutput:
                self.last_ms = (time.perf_counter() - started) * 1000
                self.breaker.record(None)  # the provider answered
                raise
            except Exception as raised:
                exc = resilience.as_provider_error(raised)
                self.breaker.record(exc)
                wait = self.retry_in(exc, attempt)
                if wait is None or self.closed() is not None:  # no retry into an open circuit
                    if exc is raised:
                        raise
                    raise exc from raised
                self.event(
                    "call-retry",
                    f"{self.label} failed ({exc.kind}), retry {attempt} in {wait:.1f} s: {exc}",
                    route=self.route,
                    kind=exc.kind,
                    wait_s=wait,
                    attempt=attempt,
                )
                time.sleep(wait)
                continue
            self.last_ms = (time.perf_counter() - started) * 1000
            self.breaker.record(None)
            return answer

    def retry_in(self, exc: ProviderError, attempt: int) -> float | None:
        """Seconds to wait before trying again after failed attempt number `attempt`, or None
        when the failure ends the attempts."""
        if exc.kind not in resilience.RETRYABLE:
            return None
        limit = self.retries.max_attempts
        if exc.kind != "rate_limit" and self.patience.transient is not None:
            limit = min(limit, self.patience.transient)
        if attempt >= limit:
            return None
        too_long = exc.retry_after is not None and exc.retry_after > self.retries.max_wait_s
        if too_long and not self.patience.wait_beyond_cap:
            return None
        return resilience.backoff(attempt, self.retries, exc.retry_after)

    def event(self, name: str, message: str, **data: object) -> None:
        self.store.add_event(
            self.run_id, name, f"{self.step_key}: {message}", stage=self.stage, data=dict(data)
        )

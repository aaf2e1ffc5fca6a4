"""What the cloud adapters share: parsing a reply into the task's schema, classifying HTTP
failures, keeping keys out of messages, and the batch interface."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from castline.errors import ConfigError, FailureKind, MalformedOutput, ProviderError
from castline.llm.base import OutT, Provider, Result, Task, Usage


def missing_sdk(package: str, extra: str) -> ConfigError:
    return ConfigError(
        f"the {package!r} package is needed for this provider; install it with "
        f"`pip install 'castline[{extra}]'`"
    )


def parse_reply(task: Task[OutT], text: str, usage: Usage, model: str) -> Result[OutT]:
    """Validate a model's text reply against the task's schema; a reply that does not validate
    was still billed, so the error carries its usage."""
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`")
        body = body[4:] if body[:4].lower() == "json" else body
        body = body.strip()
    try:
        return Result(output=task.parse_output(json.loads(body)), usage=usage, model=model)
    except ValidationError as exc:
        # name every wrong field, so that the repair request says exactly what to fix
        fields = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or '(reply)'}: {error['msg']}"
            for error in exc.errors()
        )
        reason = f"the reply does not match the schema: {fields}"[:400]
    except (ValueError, RecursionError) as exc:
        reason = f"not JSON: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"[:400]
    raise MalformedOutput(f"{model} replied with invalid JSON: {reason}", raw=text, usage=usage)


def classify(status: int | None, message: str, error_type: str | None = None) -> FailureKind:
    """The engine's kind of failure for an HTTP status and the vendor's error text."""
    lowered = f"{message} {error_type or ''}".lower()
    if any(
        hint in lowered
        for hint in ("spend limit", "insufficient_quota", "quota_exceeded", "credit balance")
    ):
        return "spend_limit"
    if "api key not valid" in lowered or "api_key_invalid" in lowered:
        return "auth"  # Gemini answers a bad key with 400 INVALID_ARGUMENT
    if status == 429:
        return "rate_limit"
    if status == 529 or "overloaded" in lowered or status == 503 or "unavailable" in lowered:
        return "overloaded"
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if status == 408:
        return "timeout"
    if status is not None and status >= 500:
        return "server_error"
    if status is not None and 400 <= status < 500:
        return "invalid_request"
    return "error"


def redact(text: str, secret: str | None) -> str:
    """Remove a key from text that is about to become an error message or a record."""
    if secret and len(secret) >= 8:  # a real key; a one-letter test key would eat the text
        text = text.replace(secret, "[redacted]")
    return text


def failure(
    provider: str,
    model: str,
    status: int | None,
    message: str,
    *,
    error_type: str | None = None,
    retry_after: str | float | None = None,
    secret: str | None = None,
) -> ProviderError:
    kind = classify(status, message, error_type)
    wait: float | None = None
    if retry_after is not None:
        try:
            wait = max(0.0, float(retry_after))
        except ValueError:
            wait = None
    where = f"HTTP {status}" if status is not None else "no response"
    text = redact(f"{provider} {model}: {kind} ({where}): {message}", secret)
    return ProviderError(text[:600], kind=kind, retry_after=wait if kind == "rate_limit" else None)


@dataclass(frozen=True)
class BatchItem:
    custom_id: str
    task: Task[Any]
    max_tokens: int


BatchState = Literal["pending", "ended"]


class BatchProvider(Provider, ABC):
    """A provider that can also answer many tasks at half price through a batch API."""

    @abstractmethod
    def submit_batch(self, model: str, items: list[BatchItem]) -> str:
        """Create a batch and return its id (record it before polling)."""

    @abstractmethod
    def batch_state(self, batch_id: str) -> BatchState: ...

    @abstractmethod
    def batch_results(
        self, batch_id: str, items: list[BatchItem], model: str
    ) -> dict[str, Result[Any] | ProviderError]:
        """Each item's result or failure, matched by custom id."""

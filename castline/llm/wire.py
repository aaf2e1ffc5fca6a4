"""What the cloud adapters share: parsing a reply into the task's schema, classifying HTTP
failures, keeping keys out of messages, and the batch interface."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

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


def with_web_results(result: Result[OutT], pages: list[Any]) -> Result[OutT]:
    """The result with the pages its web searches returned attached to an output that has room
    for them (research findings), each URL once, in the order the searches found them."""
    if not pages or "web" not in type(result.output).model_fields:
        return result
    unique: dict[str, Any] = {}
    for page in pages:
        unique.setdefault(page.url, page)
    output = result.output.model_copy(update={"web": list(unique.values())})
    return Result(output=output, usage=result.usage, model=result.model, notes=result.notes)


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


def endpoint(url: object) -> str:
    """A URL fit for a message: scheme, host, port and path; never the user name, password or
    query, any of which may hold a key."""
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(an unreadable address)"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", "")) or "(an unknown address)"


def request_url(exc: BaseException) -> str | None:
    """The URL of the request an SDK's or httpx's connection error was raised for, if known."""
    try:
        request = getattr(exc, "request", None)
    except RuntimeError:  # httpx raises when the error carries no request
        return None
    url = getattr(request, "url", None)
    return str(url) if url is not None else None


def unreachable(
    provider: str,
    model: str,
    detail: str,
    *,
    timed_out: bool,
    url: str | None,
    configured: bool,
    timeout_s: float | None = None,
    secret: str | None = None,
) -> ProviderError:
    """A call that got no answer from the server, named by provider and address (never the key)
    with what to check. Both a timeout and a refused connection are the server's trouble, often
    passing (a local server restarting): retried, then fallen back, and counted by its breaker."""
    where = endpoint(url) if url else "its default address"
    setting = f"`providers.{provider}.base_url`"
    if configured:
        hint = f"is the server running? check {setting} in the show bible"
    else:
        hint = f"is the network up? to use another server, set {setting} in the show bible"
    kind: FailureKind = "timeout" if timed_out else "server_error"
    if timed_out:
        within = f" within {timeout_s:g} s" if timeout_s is not None else ""
        head = f"{provider} {model}: timeout (no answer{within} from {where})"
        hint += f", or raise `providers.{provider}.timeout_s` for a slow one"
    else:
        head = f"{provider} {model}: cannot connect to {where}"
    text = redact(f"{head}: {detail}; {hint}", secret)
    return ProviderError(text[:600], kind=kind)


_TRANSPORTS = frozenset({"httpx", "httpx2", "httpcore"})


def is_transport_error(exc: BaseException) -> bool:
    """Whether `exc` says the server could not be reached or did not answer: an OS connection
    error or timeout, or the transport's (httpx's, or httpx2's, which google-genai may use)."""
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    return any(
        cls.__name__ == "TransportError" and cls.__module__.split(".")[0] in _TRANSPORTS
        for cls in type(exc).__mro__
    )


def described(exc: BaseException) -> str:
    """An exception as `Type: message`, with the cause an SDK wraps (its "Connection error."
    alone says nothing about why)."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause) and str(cause) not in text:
        text += f" ({type(cause).__name__}: {' '.join(str(cause).split())})"
    return text


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

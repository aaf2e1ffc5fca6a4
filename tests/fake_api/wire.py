"""What the vendor modules share: the fault kinds, HTTP replies and request errors."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any


class Fault(Enum):
    """A failure the fake can inject. See `FakeAPI.queue` and `FakeAPI.fault_rate`."""

    RATE_LIMIT = "rate_limit"  # 429 with a retry-after header (seconds)
    OVERLOADED = "overloaded"  # Anthropic 529, Gemini 503 UNAVAILABLE, OpenAI 503
    SERVER_ERROR = "server_error"  # 500
    TIMEOUT = "timeout"  # the server waits `timeout_sleep_s` before answering
    OVERLOADED_IN_STREAM = "overloaded_in_stream"  # Anthropic streams: 200, then an error event
    MALFORMED_JSON = "malformed_json"  # a successful reply whose text is cut-off JSON
    NOT_FOUND = "not_found"  # 404: unknown model
    SPEND_LIMIT = "spend_limit"  # 429 without retry-after: a spend limit was reached
    INVALID_REQUEST = "invalid_request"  # 400
    SILENT_AUDIO = "silent_audio"  # a successful speech reply whose audio is silence


# Faults that answer with an HTTP error status (the others shape a successful reply).
ERROR_FAULTS = frozenset(
    {
        Fault.RATE_LIMIT,
        Fault.OVERLOADED,
        Fault.SERVER_ERROR,
        Fault.NOT_FOUND,
        Fault.SPEND_LIMIT,
        Fault.INVALID_REQUEST,
    }
)


@dataclass
class Response:
    """An HTTP reply. A body that is an iterator is sent with chunked transfer encoding, one
    chunk per item, flushed as it comes (server-sent events)."""

    status: int
    body: bytes | Iterator[bytes]
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return Response(status=status, body=body, headers=dict(headers or {}))


def sse(event: str | None, payload: Any) -> bytes:
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data}\n\n".encode()


class RequestError(Exception):
    """A request the fake rejects as the vendor would (400 invalid request, or 404)."""

    def __init__(self, message: str, fault: Fault = Fault.INVALID_REQUEST) -> None:
        super().__init__(message)
        self.message = message
        self.fault = fault


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + uuid.uuid4().hex[:length]


def rfc3339(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def retry_after_header(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def chunks(text: str, size: int) -> list[str]:
    return [text[start : start + size] for start in range(0, len(text), size)] or [""]

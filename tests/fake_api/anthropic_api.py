"""The Anthropic Messages API wire format (as `anthropic` 2.13 sends and parses it).

POST /v1/messages (JSON, or server-sent events with "stream": true), POST
/v1/messages/count_tokens, and the Message Batches API under /v1/messages/batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .caching import CacheUsage, Segment
from .wire import Fault, RequestError, Response, chunks, json_response, new_id, sse

MAX_BREAKPOINTS = 4
_STREAM_CHUNK = 256


def segments(body: dict[str, Any]) -> list[Segment]:
    """The prompt's pieces in order (system blocks, then every message's blocks), each with the
    TTL of the cache breakpoint it carries. Validates what the real API validates about them."""
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise RequestError("messages: at least one message is required")
    pieces: list[Segment] = []
    system = body.get("system")
    if isinstance(system, str):
        if system:
            pieces.append(Segment(system, system=True))
    elif isinstance(system, list):
        pieces.extend(_block(block, "system", 0, system=True) for block in system)
    elif system is not None:
        raise RequestError("system: Input should be a valid string or list of text blocks")
    for index, message in enumerate(body["messages"]):
        if not isinstance(message, dict) or message.get("role") not in {"user", "assistant"}:
            raise RequestError(f"messages.{index}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        if isinstance(content, str):
            if not content:
                raise RequestError(f"messages.{index}.content: text must be non-empty")
            pieces.append(Segment(content, turn=index))
        elif isinstance(content, list) and content:
            where = f"messages.{index}.content"
            pieces.extend(_block(block, where, index) for block in content)
        else:
            raise RequestError(f"messages.{index}.content: a non-empty list or string is required")
    if body.get("cache_control") is not None and pieces and pieces[-1].ttl is None:
        # automatic caching: a breakpoint on the last cacheable block
        last = pieces[-1]
        ttl = _ttl(body["cache_control"], "cache_control")
        pieces[-1] = Segment(last.text, ttl, last.turn, last.system)
    ttls = [piece.ttl for piece in pieces if piece.ttl]
    if len(ttls) > MAX_BREAKPOINTS:
        raise RequestError(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {len(ttls)}."
        )
    first_5m = next((index for index, ttl in enumerate(ttls) if ttl == "5m"), len(ttls))
    if "1h" in ttls[first_5m:]:
        raise RequestError(
            "a ttl='1h' cache_control block must not come after a ttl='5m' cache_control block"
        )
    return pieces


def _block(block: Any, where: str, turn: int, *, system: bool = False) -> Segment:
    if not isinstance(block, dict):
        raise RequestError(f"{where}: each block must be an object")
    if block.get("type") == "text":
        text = block.get("text")
        if not isinstance(text, str):
            raise RequestError(f"{where}: text blocks need a string `text`")
        if not text:
            raise RequestError(f"{where}: text content blocks must be non-empty")
    else:
        # other block types are not used by castline; count them by their JSON
        text = str({k: v for k, v in block.items() if k != "cache_control"})
    return Segment(text, _ttl(block.get("cache_control"), where), turn, system)


def _ttl(cache_control: Any, where: str) -> str | None:
    if cache_control is None:
        return None
    if not isinstance(cache_control, dict) or cache_control.get("type") != "ephemeral":
        raise RequestError(f"{where}.cache_control: type must be 'ephemeral'")
    ttl = cache_control.get("ttl", "5m")
    if ttl not in {"5m", "1h"}:
        raise RequestError(f"{where}.cache_control.ttl: Input should be '5m' or '1h'")
    return str(ttl)


def max_tokens(body: dict[str, Any]) -> int:
    value = body.get("max_tokens")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise RequestError("max_tokens: Field required (a positive integer)")
    return value


def usage(cache: CacheUsage, output_tokens: int, *, batch: bool = False) -> dict[str, Any]:
    return {
        "input_tokens": cache.uncached,
        "cache_creation_input_tokens": cache.write,
        "cache_read_input_tokens": cache.read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": cache.write_5m,
            "ephemeral_1h_input_tokens": cache.write_1h,
        },
        "output_tokens": output_tokens,
        "service_tier": "batch" if batch else "standard",
    }


def message(model: str, text: str, stop_reason: str, usage_: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage_,
    }


def stream(final: dict[str, Any], *, overloaded: bool) -> Iterator[bytes]:
    """The events of a streamed message that ends as `final`; with `overloaded`, an `error`
    event follows `message_start` and the stream ends there."""
    final_usage = final["usage"]
    start_usage = {**final_usage, "output_tokens": 1}
    start = {**final, "content": [], "stop_reason": None, "usage": start_usage}
    yield sse("message_start", {"type": "message_start", "message": start})
    if overloaded:
        error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        yield sse("error", error)
        return
    block_start = {"type": "text", "text": ""}
    event = {"type": "content_block_start", "index": 0, "content_block": block_start}
    yield sse("content_block_start", event)
    yield sse("ping", {"type": "ping"})
    for piece in chunks(final["content"][0]["text"], _STREAM_CHUNK):
        delta = {"type": "text_delta", "text": piece}
        yield sse(
            "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
        )
    yield sse("content_block_stop", {"type": "content_block_stop", "index": 0})
    delta_usage = {
        key: final_usage[key]
        for key in (
            "input_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "output_tokens",
        )
    }
    stop = {"stop_reason": final["stop_reason"], "stop_sequence": None}
    yield sse("message_delta", {"type": "message_delta", "delta": stop, "usage": delta_usage})
    yield sse("message_stop", {"type": "message_stop"})


_ERRORS: dict[Fault, tuple[int, str, str]] = {
    Fault.RATE_LIMIT: (
        429,
        "rate_limit_error",
        "This request would exceed your organization's rate limit of 50 requests per minute. "
        "Please retry after the time given in the retry-after header.",
    ),
    Fault.OVERLOADED: (529, "overloaded_error", "Overloaded"),
    Fault.OVERLOADED_IN_STREAM: (529, "overloaded_error", "Overloaded"),
    Fault.SERVER_ERROR: (500, "api_error", "Internal server error"),
    Fault.NOT_FOUND: (404, "not_found_error", "model: {model}"),
    Fault.SPEND_LIMIT: (
        429,
        "rate_limit_error",
        "You have reached your specified workspace API usage limits (spend limit). You will "
        "regain access when the limit resets or is raised.",
    ),
    Fault.INVALID_REQUEST: (400, "invalid_request_error", "invalid request"),
}


def error_object(
    fault: Fault, model: str, message: str | None = None
) -> tuple[int, dict[str, Any]]:
    status, kind, default = _ERRORS[fault]
    error: dict[str, Any] = {"type": kind, "message": message or default.format(model=model)}
    if fault is Fault.SPEND_LIMIT:
        error["details"] = {"error_code": "enforced_spend_limit_reached"}
    return status, {"type": "error", "error": error, "request_id": new_id("req_")}


def error(
    fault: Fault, model: str, message: str | None = None, retry_after: str | None = None
) -> Response:
    status, body = error_object(fault, model, message)
    headers = {"request-id": body["request_id"]}
    if fault is Fault.RATE_LIMIT and retry_after is not None:
        headers["retry-after"] = retry_after
    return json_response(status, body, headers)


def batch_object(
    batch_id: str,
    *,
    created_at: str,
    expires_at: str,
    ended_at: str | None,
    counts: dict[str, int],
    results_url: str | None,
) -> dict[str, Any]:
    return {
        "id": batch_id,
        "type": "message_batch",
        "processing_status": "ended" if ended_at else "in_progress",
        "request_counts": counts,
        "created_at": created_at,
        "expires_at": expires_at,
        "ended_at": ended_at,
        "cancel_initiated_at": None,
        "archived_at": None,
        "results_url": results_url,
    }

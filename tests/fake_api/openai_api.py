"""The OpenAI Chat Completions wire format (as `openai` 3.57 sends and parses it).

POST /v1/chat/completions, non-streaming, with `response_format` json_schema.
"""

from __future__ import annotations

import time
from typing import Any

from .caching import Segment
from .wire import Fault, RequestError, Response, json_response, new_id


def segments(body: dict[str, Any]) -> list[Segment]:
    """The prompt's pieces in order: every message's text (a list of parts gives one each)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("[] is too short - 'messages'", Fault.INVALID_REQUEST)
    pieces: list[Segment] = []
    turn = -1  # leading system messages belong to the first turn
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message:
            raise RequestError(f"Missing required parameter: 'messages[{index}].role'.")
        system = message["role"] in {"system", "developer"}
        if not system or turn >= 0:
            turn += 1
        content = message.get("content")
        if isinstance(content, str):
            pieces.append(Segment(content, turn=max(turn, 0), system=system))
        elif isinstance(content, list):
            for part in content:
                text = part.get("text") if isinstance(part, dict) else None
                value = text if isinstance(text, str) else str(part)
                pieces.append(Segment(value, turn=max(turn, 0), system=system))
        else:
            raise RequestError(f"Invalid type for 'messages[{index}].content'.")
    return pieces


def max_tokens(body: dict[str, Any]) -> int | None:
    value = body.get("max_completion_tokens", body.get("max_tokens"))
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise RequestError("Invalid 'max_completion_tokens': must be a positive integer.")
    return value


def check_response_format(body: dict[str, Any]) -> None:
    response_format = body.get("response_format")
    if response_format is None:
        return
    if not isinstance(response_format, dict):
        raise RequestError("Invalid type for 'response_format'.")
    if response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema")
        if not isinstance(schema, dict) or not isinstance(schema.get("name"), str):
            raise RequestError("Missing required parameter: 'response_format.json_schema.name'.")


def completion(
    model: str,
    text: str,
    *,
    prompt_tokens: int,
    cached_tokens: int,
    output_tokens: int,
    truncated: bool,
) -> dict[str, Any]:
    message = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": "length" if truncated else "stop",
    }
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": prompt_tokens + output_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    return {
        "id": new_id("chatcmpl-", 29),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": usage,
        "service_tier": "default",
        "system_fingerprint": "fp_fake_api",
    }


_ERRORS: dict[Fault, tuple[int, str, str | None, str]] = {
    Fault.RATE_LIMIT: (
        429,
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for {model} on requests per min (RPM): Limit 60, Used 60, "
        "Requested 1. Please try again later.",
    ),
    Fault.OVERLOADED: (
        503,
        "server_error",
        None,
        "The server is overloaded or not ready yet.",
    ),
    Fault.OVERLOADED_IN_STREAM: (
        503,
        "server_error",
        None,
        "The server is overloaded or not ready yet.",
    ),
    Fault.SERVER_ERROR: (
        500,
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    Fault.NOT_FOUND: (
        404,
        "invalid_request_error",
        "model_not_found",
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    Fault.SPEND_LIMIT: (
        429,
        "insufficient_quota",
        "insufficient_quota",
        "You exceeded your current quota (spend limit reached), please check your plan and "
        "billing details.",
    ),
    Fault.INVALID_REQUEST: (400, "invalid_request_error", None, "Invalid request."),
}


def error(
    fault: Fault, model: str, message: str | None = None, retry_after: str | None = None
) -> Response:
    status, kind, code, default = _ERRORS[fault]
    body = {
        "error": {
            "message": message or default.format(model=model),
            "type": kind,
            "param": None,
            "code": code,
        }
    }
    headers = {"x-request-id": new_id("req_", 32)}
    if fault is Fault.RATE_LIMIT and retry_after is not None:
        headers["retry-after"] = retry_after
    return json_response(status, body, headers)

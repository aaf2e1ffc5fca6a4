"""The Gemini Developer API wire format (as `google-genai` 3.6 sends and parses it).

POST /v1/models/{model}:generateContent, :countTokens and :batchGenerateContent (inline
requests), and GET /v1/batches/{id}. Any version prefix (v1, v1beta, ...) is accepted.
"""

from __future__ import annotations

from typing import Any

from castline.text import estimate_tokens

from .caching import Segment, join
from .wire import Fault, RequestError, Response, json_response, new_id

BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
BATCH_OUTPUT_TYPE = (
    "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"
)


def model_id(name: str) -> str:
    return name.removeprefix("models/")


def segments(request: dict[str, Any], *, where: str = "GenerateContentRequest") -> list[Segment]:
    """The prompt's pieces in order: the system instruction's parts, then every content's."""
    contents = request.get("contents")
    if not isinstance(contents, list) or not contents:
        raise RequestError(f"* {where}.contents: contents is not specified")
    pieces: list[Segment] = []
    system = request.get("systemInstruction")
    if system is not None:
        pieces.extend(_parts(system, f"{where}.system_instruction", turn=0, system=True))
    for index, content in enumerate(contents):
        pieces.extend(_parts(content, f"{where}.contents[{index}]", turn=index))
    return pieces


def prompt_tokens(pieces: list[Segment]) -> int:
    """Gemini tokenizes the system instruction apart from the contents: the prompt's tokens are
    those of the system text plus those of the contents (each joined by blank lines), so that
    countTokens on the contents plus an estimate of the system text gives the prompt's count."""
    system = [piece for piece in pieces if piece.system]
    contents = [piece for piece in pieces if not piece.system]
    return estimate_tokens(join(system)) + estimate_tokens(join(contents))


def _parts(content: Any, where: str, *, turn: int, system: bool = False) -> list[Segment]:
    if not isinstance(content, dict) or not isinstance(content.get("parts"), list):
        raise RequestError(f"* {where}.parts: contents.parts must not be empty.")
    if not content["parts"]:
        raise RequestError(f"* {where}.parts: contents.parts must not be empty.")
    pieces: list[Segment] = []
    for part in content["parts"]:
        if not isinstance(part, dict):
            raise RequestError(f"* {where}.parts: each part must be an object")
        text = part.get("text")
        value = text if isinstance(text, str) else str(part)
        pieces.append(Segment(value, turn=turn, system=system))
    return pieces


def count_segments(body: dict[str, Any]) -> list[Segment]:
    """What countTokens counts: `contents`, or a whole `generateContentRequest` (which may carry
    a system instruction; the SDK only sends `contents` to the Developer API)."""
    request = body.get("generateContentRequest")
    if isinstance(request, dict):
        return segments(request, where="CountTokensRequest.generate_content_request")
    return segments(body, where="CountTokensRequest")


def max_output_tokens(request: dict[str, Any]) -> int | None:
    config = request.get("generationConfig") or {}
    value = config.get("maxOutputTokens") if isinstance(config, dict) else None
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise RequestError(
            "* GenerateContentRequest.generation_config.max_output_tokens: must be positive"
        )
    return value


def response(
    model: str,
    text: str,
    *,
    prompt_tokens: int,
    cached_tokens: int,
    output_tokens: int,
    truncated: bool,
) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": output_tokens,
        "totalTokenCount": prompt_tokens + output_tokens,
        "thoughtsTokenCount": 0,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
    }
    if cached_tokens:
        usage["cachedContentTokenCount"] = cached_tokens
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached_tokens}]
    candidate = {
        "content": {"parts": [{"text": text}], "role": "model"},
        "finishReason": "MAX_TOKENS" if truncated else "STOP",
        "index": 0,
    }
    return {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": new_id("", 22),
    }


_ERRORS: dict[Fault, tuple[int, str, str]] = {
    Fault.RATE_LIMIT: (
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota: requests per minute for {model}. Please retry in 1s.",
    ),
    Fault.OVERLOADED: (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    Fault.OVERLOADED_IN_STREAM: (
        503,
        "UNAVAILABLE",
        "The model is overloaded. Please try again later.",
    ),
    Fault.SERVER_ERROR: (500, "INTERNAL", "An internal error has occurred. Please retry."),
    Fault.NOT_FOUND: (
        404,
        "NOT_FOUND",
        "models/{model} is not found for API version v1, or is not supported for "
        "generateContent. Call ListModels to see the list of available models and their "
        "supported methods.",
    ),
    Fault.SPEND_LIMIT: (
        429,
        "RESOURCE_EXHAUSTED",
        "Your project has exceeded its monthly spend limit. Raise the spend limit or wait "
        "for it to reset.",
    ),
    Fault.INVALID_REQUEST: (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
}


def error_object(fault: Fault, model: str, message: str | None = None) -> dict[str, Any]:
    code, status, default = _ERRORS[fault]
    return {"code": code, "message": message or default.format(model=model), "status": status}


def error(
    fault: Fault, model: str, message: str | None = None, retry_after: str | None = None
) -> Response:
    body = error_object(fault, model, message)
    headers: dict[str, str] = {}
    if fault is Fault.RATE_LIMIT and retry_after is not None:
        headers["retry-after"] = retry_after
        body["details"] = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after}s"}
        ]
    return json_response(body["code"], {"error": body}, headers)


def batch_requests(body: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The display name and the inlined requests of a batchGenerateContent body."""
    batch = body.get("batch")
    if not isinstance(batch, dict):
        raise RequestError("* BatchGenerateContentRequest.batch: batch is required")
    source = batch.get("inputConfig") or {}
    requests = (source.get("requests") or {}).get("requests") if isinstance(source, dict) else None
    if not isinstance(requests, list) or not requests:
        raise RequestError(
            "* BatchGenerateContentRequest.batch.input_config: inline requests are required "
            "(the fake does not read input files)"
        )
    for index, item in enumerate(requests):
        if not isinstance(item, dict) or not isinstance(item.get("request"), dict):
            raise RequestError(f"* batch.input_config.requests[{index}].request is required")
    display_name = batch.get("displayName")
    return (display_name if isinstance(display_name, str) else ""), requests


def batch_object(
    name: str,
    *,
    model: str,
    display_name: str,
    state: str,
    create_time: str,
    update_time: str,
    end_time: str | None,
    request_count: int,
    responses: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """The batch as an operation; `responses` is None while it is still pending or running."""
    count = str(request_count)
    metadata: dict[str, Any] = {
        "@type": BATCH_TYPE,
        "name": name,
        "model": f"models/{model}",
        "displayName": display_name,
        "state": state,
        "createTime": create_time,
        "updateTime": update_time,
    }
    operation: dict[str, Any] = {"name": name, "metadata": metadata}
    if responses is None:
        metadata["batchStats"] = {"requestCount": count, "pendingRequestCount": count}
        return operation
    failed = sum(1 for item in responses if "error" in item)
    metadata["endTime"] = end_time
    metadata["batchStats"] = {
        "requestCount": count,
        "successfulRequestCount": str(len(responses) - failed),
        "failedRequestCount": str(failed),
    }
    output = {"inlinedResponses": {"inlinedResponses": responses}}
    metadata["output"] = output
    operation["done"] = True
    operation["response"] = {"@type": BATCH_OUTPUT_TYPE, **output}
    return operation

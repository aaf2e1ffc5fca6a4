"""Gemini through the official `google-genai` SDK: generate_content with a response schema,
token counting and batch mode.

Gemini caches repeated prompt prefixes implicitly; castline's block order (show, then material,
then the task) is what makes those prefixes repeat. `prompt_token_count` includes cached tokens
and thinking tokens are billed as output: both are normalised into castline's `Usage`.

A research task that may search is grounded with Google Search. Gemini 2.5 does not combine
grounding with a response schema, so such a call asks for JSON through the prompt's own reply
schema; the grounding chunks come back as the findings' web pages, each query as one search.
Gemini chooses its own number of queries: the search limit is what the budget reserves.
"""

from __future__ import annotations

from typing import Any, ClassVar

from castline.config import ProviderSettings
from castline.errors import ProviderError
from castline.llm import prompts
from castline.llm.base import OutT, Repair, Result, Task, Usage
from castline.llm.tasks import WebResult
from castline.llm.wire import (
    BatchItem,
    BatchProvider,
    BatchState,
    described,
    failure,
    is_transport_error,
    missing_sdk,
    parse_reply,
    request_url,
    unreachable,
    with_web_results,
)
from castline.text import estimate_tokens

_DONE = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}


class GeminiProvider(BatchProvider):
    name: ClassVar[str] = "gemini"
    web_search: ClassVar[bool] = True

    def __init__(self, name: str, settings: ProviderSettings, api_key: str | None) -> None:
        try:
            from google import genai
            from google.genai import types
        except ImportError:  # pragma: no cover - depends on the installation
            raise missing_sdk("google-genai", "gemini") from None
        self.label = name
        self._key = api_key
        self._types = types
        # No retry_options: the SDK then makes one attempt, and castline's engine decides.
        options = types.HttpOptions(
            base_url=settings.base_url, timeout=int(settings.timeout_s * 1000)
        )
        self.client = genai.Client(api_key=api_key, http_options=options)
        self._configured = settings.base_url is not None
        self._timeout_s = settings.timeout_s
        # the SDK's own default address when the settings name none, for connection messages
        http = getattr(getattr(self.client, "_api_client", None), "_http_options", None)
        self._base_url: str | None = settings.base_url or getattr(http, "base_url", None)

    def _contents(self, task: Task[Any], repair: Repair | None) -> tuple[str, list[Any]]:
        types = self._types
        prompt = prompts.render(task)
        contents = [
            types.Content(role="user", parts=[types.Part(text=block) for block in prompt.blocks])
        ]
        if repair is not None:
            contents += [
                types.Content(role="model", parts=[types.Part(text=repair.raw or "{}")]),
                types.Content(role="user", parts=[types.Part(text=repair.instruction)]),
            ]
        return prompt.system, contents

    def _config(self, task: Task[Any], system: str, max_tokens: int) -> Any:
        types = self._types
        if task.search_limit:
            return types.GenerateContentConfig(
                system_instruction=system,
                tools=[types.Tool(google_search=types.GoogleSearch())],
                max_output_tokens=max_tokens,
            )
        return types.GenerateContentConfig(
            system_instruction=system,
            response_mime_type="application/json",
            response_json_schema=task.output_type.model_json_schema(),
            max_output_tokens=max_tokens,
        )

    def complete(
        self,
        task: Task[OutT],
        model: str,
        *,
        max_tokens: int | None = None,
        repair: Repair | None = None,
    ) -> Result[OutT]:
        system, contents = self._contents(task, repair)
        config = self._config(task, system, max_tokens or task.max_output_tokens)
        try:
            response = self.client.models.generate_content(
                model=model, contents=contents, config=config
            )
        except Exception as exc:
            raise self._failure(model, exc) from None
        return _result(task, response, model)

    def count_tokens(self, task: Task[Any], model: str) -> int | None:
        system, contents = self._contents(task, None)
        try:
            counted = self.client.models.count_tokens(model=model, contents=contents)
        except Exception:
            return None
        # The count covers the contents; the system instruction is added as an estimate.
        return int(counted.total_tokens or 0) + estimate_tokens(system)

    def _failure(self, model: str, exc: Exception) -> ProviderError:
        return failure_of(
            self.label,
            model,
            exc,
            self._key,
            base_url=self._base_url,
            configured=self._configured,
            timeout_s=self._timeout_s,
        )

    # Batch mode

    def submit_batch(self, model: str, items: list[BatchItem]) -> str:
        requests = []
        for item in items:
            system, contents = self._contents(item.task, None)
            requests.append(
                self._types.InlinedRequest(
                    contents=contents,
                    config=self._config(item.task, system, item.max_tokens),
                    metadata={"custom_id": item.custom_id},
                )
            )
        try:
            job = self.client.batches.create(model=model, src=requests)
        except Exception as exc:
            raise self._failure(model, exc) from None
        return str(job.name)

    def batch_state(self, batch_id: str) -> BatchState:
        try:
            job = self.client.batches.get(name=batch_id)
        except Exception as exc:
            raise self._failure("batch", exc) from None
        state = getattr(job.state, "name", str(job.state))
        return "ended" if state in _DONE else "pending"

    def batch_results(
        self, batch_id: str, items: list[BatchItem], model: str
    ) -> dict[str, Result[Any] | ProviderError]:
        try:
            job = self.client.batches.get(name=batch_id)
        except Exception as exc:
            raise self._failure("batch", exc) from None
        responses = list(job.dest.inlined_responses or []) if job.dest else []
        results: dict[str, Result[Any] | ProviderError] = {}
        for position, (item, entry) in enumerate(zip(items, responses, strict=False)):
            custom_id = (getattr(entry, "metadata", None) or {}).get("custom_id", item.custom_id)
            task = next((i.task for i in items if i.custom_id == custom_id), item.task)
            if entry.error is not None or entry.response is None:
                results[custom_id] = ProviderError(
                    f"{self.label} batch {batch_id} item {position}: {entry.error}"
                )
                continue
            try:
                results[custom_id] = _result(task, entry.response, model)
            except ProviderError as exc:
                results[custom_id] = exc
        return results


def failure_of(
    label: str,
    model: str,
    exc: Exception,
    key: str | None,
    *,
    base_url: str | None = None,
    configured: bool = True,
    timeout_s: float | None = None,
) -> ProviderError:
    """The engine's view of an exception the `google-genai` SDK raised. The SDK lets its
    transport's (httpx's) connection errors and timeouts through: those name the server's
    address (`base_url`, else the request's) and what to check."""
    from google.genai import errors

    if isinstance(exc, errors.APIError):
        headers = getattr(getattr(exc, "response", None), "headers", None) or {}
        return failure(
            label,
            model,
            exc.code,
            exc.message or str(exc),
            error_type=exc.status,
            retry_after=headers.get("retry-after") if hasattr(headers, "get") else None,
            secret=key,
        )
    timed_out = "timeout" in type(exc).__name__.lower() or "timed out" in str(exc).lower()
    if timed_out or is_transport_error(exc):
        return unreachable(
            label,
            model,
            described(exc),
            timed_out=timed_out,
            url=base_url or request_url(exc),
            configured=configured,
            timeout_s=timeout_s,
            secret=key,
        )
    return failure(label, model, None, f"{type(exc).__name__}: {exc}", secret=key)


def _result(task: Task[OutT], response: Any, model: str) -> Result[OutT]:
    grounding = None
    if response.candidates:
        grounding = getattr(response.candidates[0], "grounding_metadata", None)
    queries = list(getattr(grounding, "web_search_queries", None) or [])
    usage = usage_of(response.usage_metadata, searches=len(queries))
    result = parse_reply(task, response.text or "", usage, model)
    pages = [
        WebResult(url=str(chunk.web.uri), title=str(chunk.web.title or ""))
        for chunk in getattr(grounding, "grounding_chunks", None) or []
        if getattr(chunk, "web", None) is not None and chunk.web.uri
    ]
    return with_web_results(result, pages)


def usage_of(metadata: Any, *, searches: int = 0) -> Usage:
    """Gemini's usage: the prompt count includes cached tokens, thinking is billed as output."""
    if metadata is None:
        return Usage(web_searches=searches)
    prompt = int(metadata.prompt_token_count or 0)
    cached = int(metadata.cached_content_token_count or 0)
    output = int(metadata.candidates_token_count or 0) + int(metadata.thoughts_token_count or 0)
    return Usage(
        input_tokens=prompt - cached,
        cache_read_tokens=cached,
        output_tokens=output,
        web_searches=searches,
    )

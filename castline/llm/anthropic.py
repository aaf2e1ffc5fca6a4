"""Claude through the official `anthropic` SDK: streamed messages with cache breakpoints,
structured output, token counting and the Message Batches API.

A research task that may search gets Claude's server-side web search tool, capped at its search
limit; the pages it returned come back with the findings, and the searches with the usage.

Cache layout: the show block, then each material block (sources, knowledge base, outline) ends
with a cache breakpoint, so every call that shares that prefix reads it from the cache; the
task block comes last. Batches use the 1-hour TTL, since a batch can outlive five minutes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

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
    missing_sdk,
    parse_reply,
    unreachable,
    with_web_results,
)

if TYPE_CHECKING:
    import anthropic


# Claude's server-side web search tool (the version its API documents).
WEB_SEARCH_TOOL = "web_search_20250305"


class AnthropicProvider(BatchProvider):
    name: ClassVar[str] = "anthropic"
    web_search: ClassVar[bool] = True

    def __init__(self, name: str, settings: ProviderSettings, api_key: str | None) -> None:
        try:
            import anthropic
        except ImportError:  # pragma: no cover - depends on the installation
            raise missing_sdk("anthropic", "anthropic") from None
        self.label = name
        self._key = api_key
        self._sdk = anthropic
        self._cache = settings.prompt_cache
        self._configured = settings.base_url is not None
        self._timeout_s = settings.timeout_s
        self.client: anthropic.Anthropic = anthropic.Anthropic(
            api_key=api_key,
            base_url=settings.base_url,
            max_retries=0,  # castline's engine owns the retry policy
            timeout=settings.timeout_s,
        )

    def _request(
        self,
        task: Task[Any],
        model: str,
        max_tokens: int,
        *,
        ttl: str | None = None,
        repair: Repair | None = None,
    ) -> dict[str, Any]:
        prompt = prompts.render(task)
        cache: dict[str, str] = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
        content: list[dict[str, Any]] = [
            {"type": "text", "text": block, **({"cache_control": cache} if cacheable else {})}
            for block, cacheable in zip(
                prompt.blocks, [self._cache] * (len(prompt.blocks) - 1) + [False], strict=True
            )
        ]
        messages: list[dict[str, Any]] = [{"role": "user", "content": content}]
        if repair is not None:
            messages += [
                {"role": "assistant", "content": repair.raw or "{}"},
                {"role": "user", "content": repair.instruction},
            ]
        request: dict[str, Any] = {
            "model": model,
            "max_tokens": max_tokens,
            "system": [{"type": "text", "text": prompt.system}],
            "messages": messages,
            "output_config": {
                "format": {"type": "json_schema", "schema": task.output_type.model_json_schema()}
            },
        }
        if task.search_limit:
            request["tools"] = [
                {"type": WEB_SEARCH_TOOL, "name": "web_search", "max_uses": task.search_limit}
            ]
        return request

    def complete(
        self,
        task: Task[OutT],
        model: str,
        *,
        max_tokens: int | None = None,
        repair: Repair | None = None,
    ) -> Result[OutT]:
        request = self._request(task, model, max_tokens or task.max_output_tokens, repair=repair)
        try:
            if task.search_limit:  # search turns and their results arrive whole, not streamed
                message = self.client.messages.create(**request)
            else:
                with self.client.messages.stream(**request) as stream:
                    message = stream.get_final_message()
        except self._sdk.AnthropicError as exc:
            raise self._failure(model, exc) from None
        return self._result(task, message, model)

    def _result(self, task: Task[OutT], message: Any, model: str) -> Result[OutT]:
        text = "".join(block.text for block in message.content if block.type == "text")
        result = parse_reply(task, text, usage_of(message.usage), model)
        found = [
            WebResult(url=str(page.url), title=str(getattr(page, "title", "") or ""))
            for block in message.content
            if block.type == "web_search_tool_result" and isinstance(block.content, list)
            for page in block.content
        ]
        return with_web_results(result, found)

    def count_tokens(self, task: Task[Any], model: str) -> int | None:
        request = self._request(task, model, 1)
        try:
            counted = self.client.messages.count_tokens(
                model=model, system=request["system"], messages=request["messages"]
            )
        except self._sdk.AnthropicError:
            return None  # the engine then estimates, with a margin
        return int(counted.input_tokens)

    def _failure(self, model: str, exc: anthropic.AnthropicError) -> ProviderError:
        sdk = self._sdk
        if isinstance(exc, sdk.APIConnectionError):  # APITimeoutError is one too
            timed_out = isinstance(exc, sdk.APITimeoutError)
            return unreachable(
                self.label,
                model,
                described(exc),
                timed_out=timed_out,
                url=str(self.client.base_url),
                configured=self._configured,
                timeout_s=self._timeout_s,
                secret=self._key,
            )
        if isinstance(exc, sdk.APIStatusError):
            return failure(
                self.label,
                model,
                exc.status_code,
                exc.api_message or str(exc),
                error_type=exc.type,
                retry_after=exc.response.headers.get("retry-after"),
                secret=self._key,
            )
        body = getattr(exc, "body", None)
        error = body.get("error", {}) if isinstance(body, dict) else {}
        return failure(
            self.label,
            model,
            None,
            str(error.get("message") or exc),
            error_type=error.get("type"),
            secret=self._key,
        )

    # Message Batches

    def submit_batch(self, model: str, items: list[BatchItem]) -> str:
        requests = [
            {
                "custom_id": item.custom_id,
                "params": self._request(item.task, model, item.max_tokens, ttl="1h"),
            }
            for item in items
        ]
        try:
            batch = self.client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
        except self._sdk.AnthropicError as exc:
            raise self._failure(model, exc) from None
        return str(batch.id)

    def batch_state(self, batch_id: str) -> BatchState:
        try:
            batch = self.client.messages.batches.retrieve(batch_id)
        except self._sdk.AnthropicError as exc:
            raise self._failure("batch", exc) from None
        return "ended" if batch.processing_status == "ended" else "pending"

    def batch_results(
        self, batch_id: str, items: list[BatchItem], model: str
    ) -> dict[str, Result[Any] | ProviderError]:
        tasks = {item.custom_id: item.task for item in items}
        results: dict[str, Result[Any] | ProviderError] = {}
        try:
            for entry in self.client.messages.batches.results(batch_id):
                task = tasks.get(entry.custom_id)
                if task is None:
                    continue
                if entry.result.type == "succeeded":
                    try:
                        results[entry.custom_id] = self._result(task, entry.result.message, model)
                    except ProviderError as exc:
                        results[entry.custom_id] = exc
                else:
                    detail = json.dumps(entry.result.model_dump(mode="json"))[:300]
                    results[entry.custom_id] = ProviderError(
                        f"{self.label} batch {batch_id} item {entry.custom_id}: {detail}"
                    )
        except self._sdk.AnthropicError as exc:
            raise self._failure("batch", exc) from None
        return results


def usage_of(usage: Any) -> Usage:
    """Anthropic's usage, where input_tokens already excludes cache reads and writes."""
    one_hour = 0
    creation = getattr(usage, "cache_creation", None)
    if creation is not None:
        one_hour = int(getattr(creation, "ephemeral_1h_input_tokens", 0) or 0)
    server_tools = getattr(usage, "server_tool_use", None)
    return Usage(
        web_searches=int(getattr(server_tools, "web_search_requests", 0) or 0),
        input_tokens=int(usage.input_tokens or 0),
        output_tokens=int(usage.output_tokens or 0),
        cache_read_tokens=int(usage.cache_read_input_tokens or 0),
        cache_write_tokens=int(usage.cache_creation_input_tokens or 0),
        cache_write_1h_tokens=one_hour,
    )

"""Any OpenAI-compatible chat server through the official `openai` SDK: OpenAI itself, Ollama,
vLLM, llama.cpp's server, LM Studio. The endpoint and the key come from the show's `providers:`
settings; the wire format is the same for all.

Structured output is asked for with a JSON schema; a server that rejects that is asked for a
JSON object instead, and one that rejects even that gets the schema in the prompt only, with
castline's one repair attempt behind it. Each step down is logged as a warning and carried on
the call's result (`Result.notes`), so that the run's audit trail shows it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, ClassVar, Literal

from castline.config import ProviderSettings
from castline.errors import ProviderError
from castline.llm import prompts
from castline.llm.base import OutT, Provider, Repair, Result, Task, Usage
from castline.llm.wire import (
    described,
    failure,
    missing_sdk,
    parse_reply,
    redact,
    request_url,
    unreachable,
)

Format = Literal["json_schema", "json_object", "none"]
_FORMATS: tuple[Format, ...] = ("json_schema", "json_object", "none")
_ASKED_AS: dict[Format, str] = {
    "json_schema": "a JSON schema (response_format json_schema)",
    "json_object": "a JSON object (response_format json_object)",
    "none": "the schema in the prompt only (no response_format; replies are still validated)",
}

log = logging.getLogger(__name__)


class OpenAICompatibleProvider(Provider):
    name: ClassVar[str] = "openai"

    def __init__(self, name: str, settings: ProviderSettings, api_key: str | None) -> None:
        try:
            import openai
        except ImportError:  # pragma: no cover - depends on the installation
            raise missing_sdk("openai", "openai") from None
        self.label = name
        self._key = api_key
        self._sdk = openai
        self._configured = settings.base_url is not None
        self._timeout_s = settings.timeout_s
        self.format: Format = "json_schema"
        self.client = openai.OpenAI(
            api_key=api_key or "not-needed",  # local servers take any key
            base_url=settings.base_url,
            max_retries=0,
            timeout=settings.timeout_s,
        )

    def _response_format(self, task: Task[Any]) -> dict[str, Any] | None:
        if self.format == "json_schema":
            schema = task.output_type.model_json_schema()
            return {"type": "json_schema", "json_schema": {"name": task.kind, "schema": schema}}
        if self.format == "json_object":
            return {"type": "json_object"}
        return None

    def complete(
        self,
        task: Task[OutT],
        model: str,
        *,
        max_tokens: int | None = None,
        repair: Repair | None = None,
    ) -> Result[OutT]:
        prompt = prompts.render(task)
        messages: list[dict[str, str]] = [
            {"role": "system", "content": prompt.system},
            {"role": "user", "content": "\n\n".join(prompt.blocks)},
        ]
        if repair is not None:
            messages += [
                {"role": "assistant", "content": repair.raw or "{}"},
                {"role": "user", "content": repair.instruction},
            ]
        notes: list[str] = []
        while True:
            options: dict[str, Any] = {
                "max_completion_tokens": max_tokens or task.max_output_tokens
            }
            response_format = self._response_format(task)
            if response_format is not None:
                options["response_format"] = response_format
            try:
                response = self.client.chat.completions.create(
                    model=model,
                    messages=messages,  # type: ignore[arg-type]
                    **options,
                )
                break
            except self._sdk.BadRequestError as exc:
                # A server without structured output: step down once per format, then give up.
                if "response_format" in str(exc) and self.format != "none":
                    notes.append(self._step_down(model, exc))
                    continue
                raise self._failure(model, exc) from None
            except self._sdk.OpenAIError as exc:
                raise self._failure(model, exc) from None
        choice = response.choices[0] if response.choices else None
        text = (choice.message.content or "") if choice is not None else ""
        result = parse_reply(task, text, usage_of(response.usage), model)
        return replace(result, notes=(*result.notes, *notes)) if notes else result

    def _step_down(self, model: str, exc: Exception) -> str:
        """Ask this server for the next, weaker kind of structured output from now on, and say
        so: replies held only by the prompt are likelier to need a repair."""
        before = self.format
        self.format = _FORMATS[_FORMATS.index(before) + 1]
        reason = redact(" ".join(str(exc).split()), self._key)[:200]
        note = (
            f"{self.label} {model} rejected structured output as {_ASKED_AS[before]} ({reason}); "
            f"asking for {_ASKED_AS[self.format]} from now on"
        )
        log.warning("%s", note)
        return note

    def _failure(self, model: str, exc: Exception) -> ProviderError:
        return failure_of(
            self.label,
            model,
            exc,
            self._key,
            base_url=str(self.client.base_url),
            configured=self._configured,
            timeout_s=self._timeout_s,
        )


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
    """The engine's view of an exception the `openai` SDK raised. A connection failure or
    timeout names the server's address (`base_url`, else the request's) and what to check."""
    import openai

    if isinstance(exc, openai.APIConnectionError):  # APITimeoutError is one too
        timed_out = isinstance(exc, openai.APITimeoutError)
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
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        code = body.get("code") or body.get("type")
        return failure(
            label,
            model,
            exc.status_code,
            str(body.get("message") or exc.message),
            error_type=str(code) if code else None,
            retry_after=exc.response.headers.get("retry-after"),
            secret=key,
        )
    return failure(label, model, None, f"{type(exc).__name__}: {exc}", secret=key)


def usage_of(usage: Any) -> Usage:
    """OpenAI's usage: prompt_tokens includes cached tokens; reasoning is part of completion."""
    if usage is None:
        return Usage()
    details = getattr(usage, "prompt_tokens_details", None)
    cached = int(getattr(details, "cached_tokens", 0) or 0) if details is not None else 0
    return Usage(
        input_tokens=int(usage.prompt_tokens or 0) - cached,
        cache_read_tokens=cached,
        output_tokens=int(usage.completion_tokens or 0),
    )

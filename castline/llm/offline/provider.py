"""The offline provider answers every task from its inputs, and reports the tokens a real model
would have been sent and would have returned, so an offline run is also a cost forecast."""

from __future__ import annotations

import json
import os
import time
from typing import Any, ClassVar

from pydantic import ValidationError

from castline.errors import ProviderError
from castline.llm import prompts
from castline.llm.base import OutT, Provider, Repair, Result, Task, Usage
from castline.llm.offline import decisions, judging, research, writing  # noqa: F401 (solvers)
from castline.llm.offline.solvers import SOLVERS
from castline.text import estimate_tokens

LATENCY_ENV = "CASTLINE_OFFLINE_LATENCY_MS"


class OfflineProvider(Provider):
    """Solves tasks directly. `CASTLINE_OFFLINE_LATENCY_MS` simulates a model's response time."""

    name: ClassVar[str] = "offline"
    offline: ClassVar[bool] = True

    def complete(
        self,
        task: Task[OutT],
        model: str,
        *,
        max_tokens: int | None = None,
        repair: Repair | None = None,
    ) -> Result[OutT]:
        solver = SOLVERS.get(type(task))
        if solver is None:
            raise TypeError(f"the offline provider has no solver for {type(task).__name__}")
        latency_ms = float(os.environ.get(LATENCY_ENV, "0") or 0)
        if latency_ms > 0:
            time.sleep(latency_ms / 1000)
        limit = max_tokens or task.max_output_tokens
        data = _shorten(solver(task).model_dump(mode="json"), limit)
        try:
            output = task.parse_output(data)
        except ValidationError as exc:
            raise ProviderError(
                f"the reply does not fit max_tokens={limit} and stay valid ({exc.error_count()} "
                "errors once shortened)"
            ) from None
        usage = Usage(
            input_tokens=estimate_tokens(prompts.render(task).text),
            output_tokens=estimate_tokens(output.model_dump_json()),
        )
        return Result(output=output, usage=usage, model=model)

    def count_tokens(self, task: Task[Any], model: str) -> int | None:
        """Exactly the input tokens `complete` reports for the task."""
        return estimate_tokens(prompts.render(task).text)


def _shorten(data: dict[str, Any], max_tokens: int) -> dict[str, Any]:
    """Fit a reply into `max_tokens` the way a model asked for a shorter answer would: by saying
    fewer things (dropping the last items of its longest list), never by cutting one off midway.
    A reply that cannot be shortened enough fails, as a truncated model reply would."""
    while estimate_tokens(json.dumps(data, separators=(",", ":"))) > max_tokens:
        lists = [(key, value) for key, value in data.items() if isinstance(value, list) and value]
        if not lists:
            raise ProviderError(f"the reply needs more than max_tokens={max_tokens} output tokens")
        key, longest = max(lists, key=lambda item: len(json.dumps(item[1])))
        data = {**data, key: longest[:-1]}
    return data

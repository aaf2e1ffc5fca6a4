"""The provider interface: a typed task in, its parsed output and token usage out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

OutT = TypeVar("OutT", bound=BaseModel)


@dataclass(frozen=True)
class Usage:
    """Tokens one call consumed, split the way providers bill them.

    `input_tokens` is uncached input only (Anthropic's convention); cached reads and cache writes
    are counted apart, and `cache_write_1h_tokens` is the part of the writes made with the
    1-hour TTL. `output_tokens` includes thinking tokens, which are billed as output.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            cache_write_1h_tokens=self.cache_write_1h_tokens + other.cache_write_1h_tokens,
        )

    @property
    def prompt_tokens(self) -> int:
        """All input the model read: uncached, cache reads and cache writes."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens


class Task(BaseModel, Generic[OutT]):
    """A role's request: its inputs as fields, its output schema as `output_type`.

    Real providers render a task into a prompt and parse the reply into `output_type`; the offline
    provider solves it directly from the fields.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ClassVar[str]
    instructions: ClassVar[str]
    output_type: ClassVar[type[BaseModel]]
    max_output_tokens: ClassVar[int] = 4096

    def parse_output(self, data: Any) -> OutT:
        parsed: OutT = self.output_type.model_validate(data)  # type: ignore[assignment]
        return parsed


@dataclass(frozen=True)
class Repair:
    """A reply that did not validate, sent back once so the model can correct it."""

    raw: str
    error: str

    @property
    def instruction(self) -> str:
        return (
            f"That reply is not valid: {self.error}. Reply again with only the corrected JSON "
            "object, following the reply schema exactly."
        )


@dataclass(frozen=True)
class Result(Generic[OutT]):
    output: OutT
    usage: Usage
    model: str


class Provider(ABC):
    """One backend that can answer tasks. Register new ones in `castline.llm.registry`."""

    name: ClassVar[str]
    offline: ClassVar[bool] = False

    @abstractmethod
    def complete(
        self,
        task: Task[OutT],
        model: str,
        *,
        max_tokens: int | None = None,
        repair: Repair | None = None,
    ) -> Result[OutT]:
        """Answer one task with one model in at most `max_tokens` output tokens (default: the
        task's own limit); with `repair`, show the model its invalid reply and ask again. Raise
        `ProviderError` (classified by `kind`) when the call fails, `MalformedOutput` when the
        reply does not validate."""

    def count_tokens(self, task: Task[Any], model: str) -> int | None:
        """The exact input tokens of the task's prompt where the provider can count them
        (reservations then need no safety margin); None where it cannot."""
        return None

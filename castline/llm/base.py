"""The provider interface: a typed task in, its parsed output and token usage out."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

OutT = TypeVar("OutT", bound=BaseModel)


@dataclass(frozen=True)
class Usage:
    """Tokens one call consumed, split the way providers bill them.

    `input_tokens` is uncached input only (Anthropic's convention); cached reads and cache writes
    are counted apart, and `cache_write_1h_tokens` is the part of the writes made with the
    1-hour TTL. `output_tokens` includes thinking tokens, which are billed as output.
    `web_searches` are the provider's server-side searches, billed apart from tokens.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    web_searches: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            cache_write_1h_tokens=self.cache_write_1h_tokens + other.cache_write_1h_tokens,
            web_searches=self.web_searches + other.web_searches,
        )

    @property
    def prompt_tokens(self) -> int:
        """All input the model read: uncached, cache reads and cache writes."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens


# Every task class by its `kind`: filled by the classes themselves as they are defined (see
# `Task.__pydantic_init_subclass__`); read it through `Task.of_kind` or `castline.llm.tasks`.
_task_types: dict[str, type[Task[Any]]] = {}
TASK_TYPES: Mapping[str, type[Task[Any]]] = MappingProxyType(_task_types)
# The module whose task classes every run may journal; importing it completes the registry.
TASKS_MODULE = "castline.llm.tasks"


class Task(BaseModel, Generic[OutT]):
    """A role's request: its inputs as fields, its output schema as `output_type`.

    Real providers render a task into a prompt and parse the reply into `output_type`; the offline
    provider solves it directly from the fields.

    A subclass that sets `kind` registers itself under it, so a journaled call (which records only
    the kind and the fields) can be rebuilt: `Task.of_kind(kind).model_validate(fields)`. A class
    made only for a test passes `register=False` in its class statement.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ClassVar[str]
    instructions: ClassVar[str]
    output_type: ClassVar[type[BaseModel]]
    max_output_tokens: ClassVar[int] = 4096

    def __init_subclass__(cls, register: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # `Task[Out]`, the parametrised base pydantic makes, sets no `kind`: it is not a task
        if register and "kind" in cls.__dict__:
            _register(cls)

    @staticmethod
    def of_kind(kind: str) -> type[Task[Any]]:
        """The task class registered as `kind` (castline's own tasks are always found)."""
        if kind not in _task_types:
            importlib.import_module(TASKS_MODULE)
        try:
            return _task_types[kind]
        except KeyError:
            known = ", ".join(sorted(_task_types))
            raise KeyError(f"no task of kind {kind!r} (known: {known})") from None

    @property
    def search_limit(self) -> int:
        """The most server-side web searches this task may make (research only): the budget
        reserves for that many."""
        return 0

    def parse_output(self, data: Any) -> OutT:
        parsed: OutT = self.output_type.model_validate(data)  # type: ignore[assignment]
        return parsed


def _register(cls: type[Task[Any]]) -> None:
    existing = _task_types.get(cls.kind)
    if existing is not None and (existing.__module__, existing.__qualname__) != (
        cls.__module__,
        cls.__qualname__,
    ):
        raise TypeError(
            f"task kind {cls.kind!r} is declared twice: by {existing.__module__}."
            f"{existing.__qualname__} and by {cls.__module__}.{cls.__qualname__}"
        )
    _task_types[cls.kind] = cls  # the same class again (its module reloaded) replaces itself


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
    """A task's answer. `notes` are what the provider did that a user should know of, such as
    a server that made it step down to weaker structured output; the engine records each with
    the call."""

    output: OutT
    usage: Usage
    model: str
    notes: tuple[str, ...] = ()


class Provider(ABC):
    """One backend that can answer tasks. Register new ones in `castline.llm.registry`."""

    name: ClassVar[str]
    offline: ClassVar[bool] = False
    # Whether it can search the web server-side for a task with a search limit; one that cannot
    # answers from the sources alone.
    web_search: ClassVar[bool] = False

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

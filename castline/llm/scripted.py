"""A provider whose replies a test dictates: queued outputs or failures per task kind.

Kinds with nothing queued are answered by a fallback provider (the offline one by default), so a
test scripts only the call it is about. A queued string is the model's raw reply text, parsed as
a real provider parses one: text that does not validate raises `MalformedOutput`, billed.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel

from castline.errors import ScriptedFailure
from castline.llm.base import OutT, Provider, Repair, Result, Task, Usage
from castline.llm.offline import OfflineProvider
from castline.llm.wire import parse_reply

Reply = BaseModel | dict[str, Any] | str | Exception | Callable[[Task[Any]], BaseModel]
USAGE = Usage(100, 50)  # what every scripted reply is billed as


class ScriptedProvider(Provider):
    name: ClassVar[str] = "scripted"

    def __init__(self, fallback: Provider | None = None) -> None:
        self.fallback = fallback or OfflineProvider()
        self.calls: list[tuple[str, str]] = []
        self._queues: defaultdict[str, deque[Reply]] = defaultdict(deque)
        self._handlers: dict[str, Callable[[Task[Any]], BaseModel | None]] = {}
        self._lock = threading.Lock()

    def enqueue(self, kind: str, *replies: Reply) -> None:
        """Queue replies for tasks of this kind ('write', 'plan', ...), used first in first out."""
        with self._lock:
            self._queues[kind].extend(replies)

    def respond(self, kind: str, answer: Callable[[Task[Any]], BaseModel | None]) -> None:
        """Answer every task of this kind with `answer` (None: let the fallback answer)."""
        with self._lock:
            self._handlers[kind] = answer

    def fail(self, kind: str, message: str = "scripted failure", *, times: int = 1) -> None:
        self.enqueue(kind, *[ScriptedFailure(message) for _ in range(times)])

    def complete(
        self,
        task: Task[OutT],
        model: str,
        *,
        max_tokens: int | None = None,
        repair: Repair | None = None,
    ) -> Result[OutT]:
        with self._lock:
            self.calls.append((task.kind, model))
            queue = self._queues.get(task.kind)
            reply: Reply | None = queue.popleft() if queue else None
            handler = self._handlers.get(task.kind)
        if reply is None and handler is not None:
            reply = handler(task)
        if reply is None:
            return self.fallback.complete(task, model, max_tokens=max_tokens)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, str):
            return parse_reply(task, reply, USAGE, model)
        if callable(reply) and not isinstance(reply, BaseModel):
            reply = reply(task)
        data = reply.model_dump() if isinstance(reply, BaseModel) else reply
        return Result(output=task.parse_output(data), usage=USAGE, model=model)

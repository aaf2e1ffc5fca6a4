"""Turning a rendered prompt back into the castline task it was rendered from, and solving it.

`parse_task` is the inverse of `castline.llm.prompts.render` (applied to `Prompt.text`, the system
text and the blocks joined by blank lines). What the prompt does not carry is filled in: a
source's `path` is its id, its `kind` is "text" and its `sha256` is the hash of its text (see
`normalize_source`). Section boundaries inside a source are recovered from the `## heading` lines,
so a heading-less section that follows another section merges into it (castline's readers only
make a heading-less section first).
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from dataclasses import dataclass
from typing import Any

from castline.domain import Source
from castline.errors import ProviderError
from castline.llm.base import Task
from castline.llm.offline import OfflineProvider
from castline.llm.prompts import SYSTEM_PREAMBLE
from castline.llm.tasks import TASK_TYPES

_SEPARATOR = "\n\n"
_SOURCE_OPEN = re.compile(r'<source id="([^"]*)" title="([^"]*)">\n')
_MATERIAL_OPEN = re.compile(r'<material name="([a-z_]+)">\n')
_TASK_OPEN = re.compile(r"<task kind=(['\"])(.+?)\1>\n")
_UNTRUNCATED = 10**9


class PromptError(ValueError):
    """The text is not a prompt that `castline.llm.prompts.render` could have produced."""


def source_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalize_source(source: Source) -> Source:
    """The source as `parse_task` rebuilds it from a prompt (path, kind and hash are not sent)."""
    return source.model_copy(
        update={"path": source.id, "kind": "text", "sha256": source_sha256(source.text)}
    )


def parse_task(text: str) -> Task[Any]:
    """Rebuild the castline task whose rendered prompt text is `text`."""
    parser = _Parser(text)
    try:
        kind, data = parser.parse()
    except (ValueError, KeyError, IndexError) as exc:
        if isinstance(exc, PromptError):
            raise
        raise PromptError(f"not a castline prompt: {exc}") from exc
    task_type = TASK_TYPES.get(kind)
    if task_type is None:
        raise PromptError(f"unknown task kind {kind!r}")
    try:
        return task_type.model_validate(data)
    except ValueError as exc:
        raise PromptError(f"the prompt's inputs do not make a valid {kind!r} task: {exc}") from exc


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def parse(self) -> tuple[str, dict[str, Any]]:
        data: dict[str, Any] = {}
        if self.text.startswith(SYSTEM_PREAMBLE):
            self.pos = len(SYSTEM_PREAMBLE)
            self._expect(_SEPARATOR)
        if self._at("<show>\n"):
            self.pos += len("<show>\n")
            data["show"] = json.loads(self._until("\n</show>"))
            self._expect(_SEPARATOR)
        while not _TASK_OPEN.match(self.text, self.pos):
            if self._at(_SEPARATOR):
                # an empty block: `render` makes one only for an empty list of sources
                data["sources"] = []
            elif self._at("<source "):
                data["sources"] = self._sources()
            else:
                match = _MATERIAL_OPEN.match(self.text, self.pos)
                if match is None:
                    snippet = self.text[self.pos : self.pos + 40]
                    raise PromptError(f"unexpected block at offset {self.pos}: {snippet!r}")
                self.pos = match.end()
                payload = self._until("\n</material>")
                data[match.group(1)] = json.loads(html.unescape(payload))
            self._expect(_SEPARATOR)
        kind, inputs = self._task()
        overlap = set(inputs) & set(data)
        if overlap:
            raise PromptError(f"fields sent twice: {sorted(overlap)}")
        return kind, {**data, **inputs}

    def _at(self, literal: str) -> bool:
        return self.text.startswith(literal, self.pos)

    def _expect(self, literal: str) -> None:
        if not self._at(literal):
            snippet = self.text[self.pos : self.pos + 40]
            raise PromptError(f"expected {literal!r} at offset {self.pos}, found {snippet!r}")
        self.pos += len(literal)

    def _until(self, terminator: str) -> str:
        end = self.text.find(terminator, self.pos)
        if end < 0:
            raise PromptError(f"missing {terminator.strip()!r} after offset {self.pos}")
        value = self.text[self.pos : end]
        self.pos = end + len(terminator)
        return value

    def _sources(self) -> list[dict[str, Any]]:
        sources: list[dict[str, Any]] = []
        while True:
            match = _SOURCE_OPEN.match(self.text, self.pos)
            if match is None:
                raise PromptError(f"malformed <source> element at offset {self.pos}")
            self.pos = match.end()
            if self._at("\n</source>"):  # a source without sections
                body = ""
                self.pos += len("\n</source>")
            else:
                body = self._until("\n</source>")
            sections = _sections(body)
            full_text = _SEPARATOR.join(section["text"] for section in sections)
            source_id = html.unescape(match.group(1))
            sources.append(
                {
                    "id": source_id,
                    "title": html.unescape(match.group(2)),
                    "path": source_id,
                    "kind": "text",
                    "sha256": source_sha256(full_text),
                    "sections": sections,
                }
            )
            if not self._at("\n<source "):
                return sources
            self.pos += 1

    def _task(self) -> tuple[str, dict[str, Any]]:
        match = _TASK_OPEN.match(self.text, self.pos)
        if match is None:
            raise PromptError("missing the <task> block")
        kind = match.group(2)
        self.pos = match.end()
        task_type = TASK_TYPES.get(kind)
        if task_type is None:
            raise PromptError(f"unknown task kind {kind!r}")
        self._expect(task_type.instructions + "\n\nInputs:\n")
        inputs = json.loads(self._until("\n\nReply schema:\n"))
        self._until("\n</task>")
        if self.pos != len(self.text):
            raise PromptError("text after the </task> block")
        if not isinstance(inputs, dict):
            raise PromptError("the task's inputs are not a JSON object")
        return kind, inputs


def _sections(body: str) -> list[dict[str, str]]:
    """Split a source body back into sections: `## heading` starts one, and any other paragraph
    continues the section before it (section texts are paragraphs joined by blank lines)."""
    if not body:
        return []
    grouped: list[tuple[str, list[str]]] = []
    for chunk in body.split(_SEPARATOR):
        if chunk.startswith("## "):
            heading, _, first = chunk[3:].partition("\n")
            grouped.append((heading, [first]))
        elif grouped:
            grouped[-1][1].append(chunk)
        else:
            grouped.append(("", [chunk]))
    return [
        {"heading": html.unescape(heading), "text": html.unescape(_SEPARATOR.join(paragraphs))}
        for heading, paragraphs in grouped
    ]


@dataclass(frozen=True)
class Reply:
    """A model's answer to a task: the reply text, and whether it was cut off at max_tokens."""

    text: str
    truncated: bool = False


def solve(task: Task[Any], model: str, max_tokens: int | None) -> Reply:
    """Answer the task the way the offline provider does, as JSON text. A reply that cannot be
    shortened to fit `max_tokens` is cut off at that many tokens (four characters each)."""
    provider = OfflineProvider()
    try:
        result = provider.complete(task, model, max_tokens=max_tokens)
    except ProviderError:
        full = provider.complete(task, model, max_tokens=_UNTRUNCATED).output.model_dump_json()
        limit = (max_tokens or task.max_output_tokens) * 4
        return Reply(text=full[:limit], truncated=True)
    return Reply(text=result.output.model_dump_json())

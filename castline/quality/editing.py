"""A person's edit of a script under review: parsed back into turns and checked again."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from castline.config import Show
from castline.domain import KnowledgeBase, Outline, Script, Turn
from castline.errors import ConfigError
from castline.quality.gates import run_checks
from castline.quality.verdicts import blocking
from castline.store import RunRecord

_SEGMENT = re.compile(r"^##\s+(\S+)")
_TURN = re.compile(r"^([^:\[\]]{1,60}):\s+(.*?)(?:\s+\[([A-Za-z0-9, ]+)\])?\s*$")


def parse_script(text: str, title: str) -> Script:
    """Read `## segment` headers and `Speaker: text [N1, N2]` lines back into a script."""
    turns: list[Turn] = []
    segment: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or (line.lstrip().startswith("#") and not _SEGMENT.match(line)):
            continue
        header = _SEGMENT.match(line)
        if header:
            segment = header.group(1)
            continue
        turn = _TURN.match(line)
        if turn is None or segment is None:
            where = "before the first `## segment` line" if segment is None else "unreadable"
            raise ConfigError(
                f"line {number} of the edited script is {where}: {line[:80]!r}; write turns as "
                "`Speaker: text`, under `## segment` headers"
            )
        citations = [c.strip() for c in (turn.group(3) or "").split(",") if c.strip()]
        speaker, spoken = turn.group(1).strip(), turn.group(2)
        turns.append(Turn(speaker=speaker, text=spoken, segment=segment, citations=citations))
    return Script(title=title, turns=turns)


def check_edit(
    record: RunRecord,
    summary: dict[str, Any],
    script: Script,
    source_titles: Iterable[str] = (),
) -> list[str]:
    """The blocking findings of the deterministic checks on an edited script; `source_titles`
    are names the script may attribute facts to ("according to <title>"), as in the run."""
    show = Show.model_validate(record.spec["show"])
    outline = Outline.model_validate(summary["outline"])
    kb = KnowledgeBase.model_validate(summary["knowledge_base"])
    verdicts = run_checks(show, outline, script, kb, [], source_titles)
    return [finding.message for finding in blocking(verdicts)]

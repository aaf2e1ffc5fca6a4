"""A person's edit of turns in place, from the studio: the edited script is checked again by
the gates' deterministic checks (`castline.quality.editing.check_edit`, as `castline review
edit` does) and priced before anyone confirms; confirmed, an episode waiting for review is
approved as edited (`decide`), and a finished one is voiced again (`revoice`), which renders
only the clips whose text changed (the others are found in the clip cache)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from castline.audio import costs
from castline.audio.tts import Voicing
from castline.budget.prices import Pricer
from castline.config import Show
from castline.domain import Script
from castline.engine import reviews, runtime
from castline.errors import ConfigError, RunNotResumable
from castline.quality.editing import check_edit
from castline.store import RunRecord

Mode = Literal["review", "revoice"]
MAX_TURN_CHARS = 4000


@dataclass(frozen=True)
class TurnEdit:
    """An edit, checked and priced: what confirming it would do and cost at most."""

    run_id: str
    mode: Mode  # approve the reviewed script as edited, or voice the finished episode again
    script: Script
    changed: list[int]
    failing: list[str]  # blocking findings the edit brings in; confirming is refused while any
    voiced: list[int]  # the turns whose clips would be rendered
    cost_high: Decimal  # the most those clips can cost (what the ledger would reserve)
    voice: str | None  # the engine they would be voiced by, None for a text-only show

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "mode": self.mode,
            "changed": self.changed,
            "failing": self.failing,
            "voiced": self.voiced,
            "cost_high": str(self.cost_high),
            "voice": self.voice,
            "turns": [self.script.turns[i].model_dump(mode="json") for i in self.changed],
        }


def _base(record: RunRecord) -> tuple[Mode, dict[str, Any], dict[str, Any]]:
    """The script to edit and what the checks need (outline, knowledge base), by run state."""
    if record.status == "awaiting-review":
        item = reviews.review_of(record.id)
        if item["status"] != "pending":
            raise RunNotResumable(
                f"run {record.id} was already {item['status']} on review", run_id=record.id
            )
        summary = item["summary"]
        return "review", summary["script"], summary
    if record.status == "completed":
        path = Path(record.output_dir) / "episode.json"
        try:
            episode = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise RunNotResumable(
                f"run {record.id} has no readable episode.json to edit", run_id=record.id
            ) from None
        return "revoice", episode["script"], episode
    raise RunNotResumable(
        f"run {record.id} is {record.status}: only an episode waiting for review or a "
        "completed one can be edited",
        run_id=record.id,
    )


def plan(run_id: str, edits: dict[int, str]) -> TurnEdit:
    """Apply `edits` (turn index → new text) to the run's script, check it and price it."""
    record = runtime.store().get_run(run_id)
    mode, raw, summary = _base(record)
    script = Script.model_validate(raw)
    turns = list(script.turns)
    if not edits:
        raise ConfigError("no turn edited; give at least one turn's index and its new text")
    changed = []
    for index, text in sorted(edits.items()):
        if not 0 <= index < len(turns):
            raise ConfigError(f"turn {index}: the script has turns 0 to {len(turns) - 1}")
        text = " ".join(text.split())
        if not text or len(text) > MAX_TURN_CHARS:
            raise ConfigError(f"turn {index}: give 1 to {MAX_TURN_CHARS:,} characters of text")
        if text != turns[index].text:
            turns[index] = turns[index].model_copy(update={"text": text})
            changed.append(index)
    edited = script.model_copy(update={"turns": turns})
    # what the edit brought in: a finding the accepted script had already is not the edit's
    titles = [source["title"] for source in runtime.store().load_sources(run_id)]
    accepted = set(check_edit(record, summary, script, titles))
    failing = [f for f in check_edit(record, summary, edited, titles) if f not in accepted]
    show = Show.model_validate(record.spec["show"])
    voicing = Voicing(**record.spec["voicing"]) if record.spec.get("voicing") else None
    # under review nothing is voiced yet: approving voices every turn; afterwards only changes
    voiced = list(range(len(turns))) if mode == "review" else changed
    high = Decimal(0)
    if voicing is not None:
        pricer = Pricer(show.prices)
        wpm = show.episode.words_per_minute
        high = sum((costs.ceiling(pricer, voicing, turns[i].text, wpm) for i in voiced), high)
    return TurnEdit(
        run_id=record.id,
        mode=mode,
        script=edited,
        changed=changed,
        failing=failing,
        voiced=voiced if voicing is not None else [],
        cost_high=high,
        voice=voicing.priced_as if voicing is not None else None,
    )


def apply(edit: TurnEdit) -> None:
    """Carry out a checked edit (in the calling thread: it runs the rest of the episode)."""
    if edit.failing:
        raise ConfigError("the edited script still fails: " + "; ".join(edit.failing))
    if not edit.changed:
        raise ConfigError("nothing changed; edit a turn's text first")
    if edit.mode == "review":
        reviews.decide(
            edit.run_id,
            "approved",
            note=f"approved as edited in the studio (turns {', '.join(map(str, edit.changed))})",
            script=edit.script.model_dump(mode="json"),
        )
    else:
        from castline.engine.revoice import revoice

        revoice(edit.run_id, script=edit.script)

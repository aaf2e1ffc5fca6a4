"""Voicing a finished episode again: an edited script, a changed voice or engine, or a raised
budget for an episode the budget halted before its audio."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from castline.audio import costs, master
from castline.audio.tts import Voicing, plan_voicing
from castline.budget.prices import Pricer
from castline.config import Show, load_show
from castline.domain import Episode, Script
from castline.engine import runtime
from castline.engine.episodes import EventCallback, Outcome, follow
from castline.errors import ConfigError, RunNotResumable
from castline.store import RunRecord, to_nanos


def _current_voices(record: RunRecord) -> tuple[Show, Voicing]:
    """The run's show with the voices, audio settings, endpoints, prices and (if higher) budget
    the show bible has now (a changed voice or engine is why one voices again); the rest stays
    as the episode was written under. The voicing is planned again, and checked, before
    anything is spent."""
    show = Show.model_validate(record.spec["show"])
    path = Path(record.show_path)
    if path.exists():
        now = load_show(path)
        voices = {host.name: host.voices for host in now.hosts}
        hosts = [h.model_copy(update={"voices": voices.get(h.name, h.voices)}) for h in show.hosts]
        show = show.model_copy(
            update={
                "hosts": hosts,
                "audio": now.audio,
                "providers": now.providers,
                "prices": now.prices,
                "retries": now.retries,
                # a budget is only ever raised (to voice an episode it halted)
                "budget": max(show.budget, now.budget, key=lambda b: b.per_episode),
            }
        )
    if not show.audio.voice:
        raise ConfigError(
            f"{path} has `audio: {{voice: false}}`; set it to true to voice run {record.id}"
        )
    paid = record.spec.get("provider") != "offline"
    voicing = plan_voicing(show, path.parent, offline=record.offline, paid=paid)
    costs.check(Pricer(show.prices), voicing)
    master.check_music(show.audio, path.parent)
    return show, voicing


def _published_episode(path: Path) -> dict[str, Any] | None:
    try:
        episode = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return episode if isinstance(episode, dict) else None


def revoice(
    run_id: str, *, script: Script | None = None, on_event: EventCallback | None = None
) -> Outcome:
    """Voice a finished episode again, optionally with an edited script, re-rendering only the
    clips that changed and paying nothing again for research, writing or review."""
    from castline.engine import workflows

    store = runtime.store()
    record = store.get_run(run_id)
    episode_file = Path(record.output_dir) / "episode.json"
    episode = _published_episode(episode_file)
    halted_at = (episode.get("budget") or {}).get("halted_at") if episode else None
    unvoiced = record.status == "halted" and halted_at == "voice"
    if record.status != "completed" and not unvoiced:
        stopped = f" (the budget halted it in {halted_at})" if halted_at else ""
        raise RunNotResumable(
            f"run {record.id} is {record.status}{stopped}; only a completed episode, or one "
            "the budget halted before its audio, can be voiced",
            run_id=record.id,
        )
    if episode is None or "script" not in episode:
        raise RunNotResumable(
            f"run {record.id} has no published script to voice ({episode_file} is missing or "
            "unreadable); `castline resume` or produce the topic again",
            run_id=record.id,
        )
    if script is not None:
        episode["script"] = script.model_dump(mode="json")
    show, voicing = _current_voices(record)
    if record.budget is not None and show.budget.per_episode > record.budget:
        store.update_run(record.id, budget_nanos=to_nanos(show.budget.per_episode))
        store.add_event(
            record.id,
            "budget-raised",
            f"budget raised from ${record.budget} to ${show.budget.per_episode} by the show "
            "bible, to voice the episode",
        )
    attempt = 1 + sum(1 for e in store.events(record.id) if e.kind == "revoice")
    store.update_run(
        record.id,
        spec={**record.spec, "show": show.model_dump(mode="json"), "voicing": asdict(voicing)},
    )
    store.add_event(
        record.id, "revoice", f"voicing the episode again (attempt {attempt}); {voicing.reason}"
    )
    runtime.launch()
    runtime.forget(record.id)
    store.update_run(record.id, status="running", stage="voice")
    store.claim_run(record.id)
    handle = workflows.start_revoice(record.id, Episode.model_validate(episode), attempt)
    store.update_run(record.id, workflow_id=handle.workflow_id)  # what `resume` continues
    return follow(record.id, handle, on_event)

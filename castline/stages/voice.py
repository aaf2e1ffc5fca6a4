"""Voice: one durable, budgeted clip per turn, then mastering into the episode MP3.

Plain functions; `castline.workflow` makes each clip a step and runs them concurrently up to
the show's `audio.concurrency`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from castline.audio import clips, master, tags
from castline.audio.tts import get_engine
from castline.budget.ledger import Ledger, Refusal
from castline.budget.policy import Candidate, fixed
from castline.config import state_dir
from castline.domain import AudioInfo, Outline, Script
from castline.errors import BudgetRefused
from castline.fileio import write_atomic
from castline.llm.registry import Route
from castline.stages import RunContext
from castline.store import Store

MP3 = "episode.mp3"
TIMELINE = "timeline.json"


def clip_directory() -> Path:
    """Clips are shared by every run in this state directory: an unchanged turn is never
    rendered twice, even across episodes."""
    return state_dir() / "clips"


def clip_specs(ctx: RunContext, script: Script) -> list[clips.ClipSpec]:
    return clips.specs(ctx.show, script.turns, get_engine(ctx.show.audio.engine))


def voice_clip(
    store: Store, ctx: RunContext, spec: clips.ClipSpec, step_key: str
) -> dict[str, Any]:
    """Render one clip (or find it in the cache), paid for through the ledger like any call."""
    engine = get_engine(spec.engine)
    price = ctx.policy.pricer.characters_cost(engine.route, len(spec.text))
    route = Route(engine.name, engine.route.partition(":")[2], engine.route)
    path = clip_directory() / f"{spec.key}.wav"
    if path.exists():
        store.add_event(ctx.run_id, "clip-cached", f"{step_key}: unchanged, reused", stage="voice")
        return {"path": str(path), "cached": True}
    reservation = Ledger(store).reserve(
        ctx.run_id,
        ctx.policy,
        fixed([Candidate(route, 0, False, price)]),
        step_key=step_key,
        stage="voice",
        role="voice",
        task_kind="tts",
        prompt=spec.text,
        shadow=False,
    )
    if isinstance(reservation, Refusal):
        raise BudgetRefused(f"{step_key}: {reservation.message}")
    try:
        rendered = clips.render(spec, engine, clip_directory(), ctx.run_id)
    except Exception as exc:
        store.fail_call(reservation.call_id, f"{type(exc).__name__}: {exc}")
        raise
    store.finish_call(reservation.call_id, cost=price, response=str(rendered.path))
    again = " after a second try" if rendered.attempts > 1 else ""
    store.add_event(
        ctx.run_id,
        "clip-synthesized",
        f"{step_key}: {rendered.duration:.1f} s with {spec.voice}{again}",
        stage="voice",
        data={"attempts": rendered.attempts, "cost": str(price)},
    )
    return {"path": str(rendered.path), "cached": False}


def master_episode(
    ctx: RunContext, outline: Outline, script: Script, rendered: list[dict[str, Any]]
) -> tuple[AudioInfo, dict[str, Any]]:
    audio = ctx.show.audio
    specs = clip_specs(ctx, script)
    inputs = [
        master.ClipIn(s.index, s.speaker, s.segment, s.text, Path(r["path"]))
        for s, r in zip(specs, rendered, strict=True)
    ]
    base = Path(ctx.show_dir)
    done = master.master(inputs, outline, audio, base)
    directory = Path(ctx.output_dir)
    path = directory / MP3
    write_atomic(path, done.mp3)
    artwork = ctx.show.show.artwork
    tags.write_tags(
        path,
        title=script.title,
        show=ctx.show.show.title,
        hosts=ctx.show.host_names(),
        published=datetime.now(UTC).date(),
        timeline=done.timeline,
        comment=f"Produced by castline (run {ctx.run_id})",
        artwork=(base / artwork) if artwork and "://" not in artwork else None,
    )
    write_atomic(directory / TIMELINE, done.timeline.model_dump_json(indent=2))
    info = AudioInfo(
        file=MP3,
        bytes=path.stat().st_size,
        duration_s=round(done.timeline.duration, 3),
        loudness_lufs=round(done.loudness_lufs, 2),
        true_peak_db=round(done.true_peak_db, 2),
        clips=len(rendered),
        synthesized=sum(1 for r in rendered if not r["cached"]),
    )
    return info, done.timeline.model_dump(mode="json")

"""Voice: one durable, budgeted clip per turn, then mastering into the episode MP3.

Plain functions; `castline.engine.workflows` makes each clip a step and runs them concurrently up to
the show's `audio.concurrency`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from castline.audio import clips, costs, master, tags
from castline.audio.tts import Engine, Speech
from castline.audio.tts.base import joined, pieces
from castline.budget.ledger import RESTARTED, Ledger, Refusal
from castline.budget.policy import Candidate, fixed
from castline.config import ProviderSettings, state_dir
from castline.domain import AudioInfo, Outline, Script
from castline.engine import runtime
from castline.engine.paid.limits import Limits, slot
from castline.errors import StageFailed
from castline.fileio import write_atomic
from castline.llm.base import Usage
from castline.llm.registry import Route
from castline.llm.resilience import RETRYABLE, as_provider_error, backoff
from castline.stages import RunContext
from castline.store import Store

MP3 = "episode.mp3"
TIMELINE = "timeline.json"


class Clip(BaseModel):
    """A turn's clip as its step checkpoints it: where it is, whether it was already made, or
    why the budget refused it."""

    path: str | None = None
    cached: bool = False
    refused: str | None = None


def clip_directory() -> Path:
    """Clips are shared by every run in this state directory: an unchanged turn is never
    rendered twice, even across episodes."""
    return state_dir() / "clips"


def clip_specs(ctx: RunContext, script: Script) -> list[clips.ClipSpec]:
    return clips.specs(ctx.show, script.turns, ctx.voicing.build(ctx.show), Path(ctx.show_dir))


def voice_clip(store: Store, ctx: RunContext, spec: clips.ClipSpec, step_key: str) -> Clip:
    """Render one clip (or find it in the cache), paid for through the ledger like any call:
    the reservation holds two takes (a bad one is made again), the settlement what was made.
    A clip the budget cannot fit is not made: `Clip(refused=why)`."""
    with clips.exclusive(spec, clip_directory()):
        return _voice_clip(store, ctx, spec, step_key)


def _voice_clip(store: Store, ctx: RunContext, spec: clips.ClipSpec, step_key: str) -> Clip:
    voicing, pricer = ctx.voicing, ctx.policy.pricer
    # a take of this clip left in flight by a process that died may have been billed
    Ledger(store).mark_unreconciled(ctx.run_id, step_key=step_key, why=RESTARTED)
    path = clips.cached(spec, clip_directory())
    if path is not None:
        _settle_made_before_a_crash(store, ctx, spec, path, step_key)
        store.add_event(ctx.run_id, "clip-cached", f"{step_key}: unchanged, reused", stage="voice")
        return Clip(path=str(path), cached=True)
    engine = voicing.build(ctx.show)
    most = 2 * costs.ceiling(pricer, voicing, spec.text, spec.words_per_minute)
    route = Route(engine.name, engine.model, voicing.priced_as)
    reservation = Ledger(store).reserve(
        ctx.run_id,
        ctx.policy,
        fixed([Candidate(route, 0, False, most)]),
        step_key=step_key,
        stage="voice",
        role="voice",
        task_kind="tts",
        prompt=spec.text,
        shadow=voicing.shadow,
    )
    if isinstance(reservation, Refusal):  # the pipeline publishes the script, halted
        return Clip(refused=f"{step_key}: {reservation.message}")
    takes: list[tuple[str, Speech]] = []  # every request answered (each one billed)

    def speak(clip: clips.ClipSpec) -> Speech:
        # one request per piece, each retried alone: a piece already spoken is not paid twice
        made = []
        for part in pieces(clip.text, engine.max_characters):
            speech = _synthesize(store, ctx, engine, clip, part, step_key)
            takes.append((part, speech))
            made.append(speech)
        return joined(made)

    def spent() -> tuple[Decimal, Usage]:
        usage = sum((take.usage or Usage() for _, take in takes), Usage())
        paid = sum(
            (costs.take_cost(pricer, voicing, t, s.duration, s.usage) for t, s in takes),
            Decimal(0),
        )
        return paid, usage

    try:
        rendered = clips.render(spec, speak, clip_directory(), ctx.run_id)
    except Exception as exc:
        store.fail_call(reservation.call_id, f"{type(exc).__name__}: {exc}", spent=spent()[0])
        raise
    paid, usage = spent()
    store.finish_call(
        reservation.call_id,
        cost=paid,
        response=str(rendered.path),
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
    )
    Ledger(store).mark_completed_later(ctx.run_id, step_key, reservation.call_id)
    again = " after a second try" if rendered.attempts > 1 else ""
    store.add_event(
        ctx.run_id,
        "clip-synthesized",
        f"{step_key}: {rendered.duration:.1f} s with {spec.voice}{again}",
        stage="voice",
        data={"attempts": rendered.attempts, "cost": str(paid)},
    )
    return Clip(path=str(rendered.path), cached=False)


def _settle_made_before_a_crash(
    store: Store, ctx: RunContext, spec: clips.ClipSpec, path: Path, step_key: str
) -> None:
    """A clip written just before its process died was paid for. Its call was made unreconciled
    on resume and stays counted at its reservation (every take it may have billed), marked as
    found; a call an older castline released as abandoned is settled at one take's price, the
    least it cost."""
    if Ledger(store).mark_completed_later(ctx.run_id, step_key, None):
        return
    abandoned = [
        c for c in store.calls(ctx.run_id) if c.step_key == step_key and c.status == "abandoned"
    ]
    if not abandoned:
        return
    import soundfile as sf

    info = sf.info(str(path))
    seconds = info.frames / info.samplerate
    cost = costs.take_cost(ctx.policy.pricer, ctx.voicing, spec.text, seconds, None)
    store.finish_call(
        abandoned[-1].id,
        cost=cost,
        response=str(path),
        budget_note="settled on resume: the clip was made before the crash",
    )


def _synthesize(
    store: Store, ctx: RunContext, engine: Engine, spec: clips.ClipSpec, text: str, step_key: str
) -> Speech:
    """One take, within the provider's concurrency and rate limits (`providers.NAME`), retried
    with backoff on the failures that pass (rate limits, overload, server errors, timeouts);
    the engines' SDKs retry nothing, so this is the only policy."""
    retries = ctx.show.retries
    settings = ctx.show.providers.get(engine.name) or ProviderSettings()
    for attempt in range(1, retries.max_attempts + 1):
        try:
            with slot(store, Limits.of(engine.name, settings), runtime.current_executor()):
                return engine.synthesize(text, spec.voice, words_per_minute=spec.words_per_minute)
        except Exception as raised:
            exc = as_provider_error(raised)  # an SDK's unexpected error is a server error
            if exc.kind not in RETRYABLE or attempt == retries.max_attempts:
                if exc is raised:
                    raise
                raise exc from raised
            wait = backoff(attempt, retries, exc.retry_after)
            store.add_event(
                ctx.run_id,
                "attempt-failed",
                f"{step_key}: {exc} (attempt {attempt}; again in {wait:.1f} s)",
                stage="voice",
                data={"kind": exc.kind, "attempt": attempt},
            )
            time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


SHORTEST_EPISODE_SHARE = 0.6  # of the time the script's words need at the show's pace


def length_verdict(ctx: RunContext, script: Script, duration_s: float) -> str | None:
    """How the mastered length compares with the target, when it is worth saying; raises
    `StageFailed` when the audio is far shorter than its words (speech went missing)."""
    pace = ctx.voicing.build(ctx.show).pace(ctx.show.episode.words_per_minute)
    needed = script.word_count / pace * 60
    if duration_s < needed * SHORTEST_EPISODE_SHARE:
        raise StageFailed(
            "voice",
            ctx.run_id,
            f"the episode lasts {duration_s / 60:.1f} min but its {script.word_count} words need "
            f"about {needed / 60:.1f} min at {pace} words a minute: speech is missing",
        )
    target = ctx.show.episode.target_minutes * 60
    off = (duration_s - target) / target
    if abs(off) <= ctx.show.episode.length_tolerance:
        return None
    return (
        f"{duration_s / 60:.1f} min against a {target / 60:g}-min target ({off:+.0%}); the "
        f"voice speaks {script.word_count / (duration_s / 60):.0f} words a minute, the show "
        f"plans {ctx.show.episode.words_per_minute}"
    )


def master_episode(
    ctx: RunContext, outline: Outline, script: Script, rendered: list[Clip]
) -> tuple[AudioInfo, dict[str, Any]]:
    audio = ctx.show.audio
    specs = clip_specs(ctx, script)
    inputs = [
        master.ClipIn(s.index, s.speaker, s.segment, s.text, Path(str(r.path)))
        for s, r in zip(specs, rendered, strict=True)
    ]
    base = Path(ctx.show_dir)
    done = master.master(inputs, outline, audio, base)
    length_note = length_verdict(ctx, script, done.timeline.duration)  # before anything is written
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
        episode_number=ctx.number,
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
        synthesized=sum(1 for r in rendered if not r.cached),
        length_note=length_note,
    )
    return info, done.timeline.model_dump(mode="json")

"""Voice: one durable, budgeted clip per turn, then mastering into the episode MP3.

Plain functions; `castline.engine.workflows` makes each clip a step and runs them concurrently up to
the show's `audio.concurrency`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from castline.audio import clips, costs, master, tags
from castline.audio.tts import Engine, Speech
from castline.audio.tts.base import joined, pieces
from castline.budget.ledger import Ledger, Refusal
from castline.budget.policy import Candidate, fixed
from castline.config import state_dir
from castline.domain import AudioInfo, Outline, Script
from castline.engine.paid.attempts import PERSIST, Attempts
from castline.engine.paid.spend import Spend, describe
from castline.errors import ProviderError, StageFailed
from castline.fileio import write_atomic
from castline.llm.base import Usage
from castline.llm.registry import Route
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
    Ledger(store).step_started(ctx.run_id, step_key)  # a take left in flight stays counted
    path = clips.cached(spec, clip_directory())
    if path is not None:
        _settle_made_before_a_crash(store, ctx, spec, path, step_key)
        store.add_event(ctx.run_id, "clip-cached", f"{step_key}: unchanged, reused", stage="voice")
        return Clip(path=str(path), cached=True)
    engine = voicing.build(ctx.show)
    attempts = _attempts(store, ctx, engine, step_key)
    closed = attempts.closed()
    if closed is not None:  # one engine, nowhere to fall back to: the stage fails, resumable
        skipped = attempts.skipped(closed)
        raise ProviderError(
            f"{step_key}: {skipped}; resume the run (`castline resume {ctx.run_id}`) once the "
            "engine answers again, or choose another `audio.engine`",
            kind=skipped.kind,
        )
    most = 2 * costs.ceiling(pricer, voicing, spec.text, spec.words_per_minute)
    route = Route(engine.name, engine.model, voicing.priced_as)
    spend = Spend.reserve(
        store,
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
    if isinstance(spend, Refusal):  # the pipeline publishes the script, halted
        return Clip(refused=f"{step_key}: {spend.message}")
    takes: list[tuple[str, Speech]] = []  # every request answered (each one billed)

    def speak(clip: clips.ClipSpec) -> Speech:
        # one request per piece, each retried alone: a piece already spoken is not paid twice
        made = []
        for part in pieces(clip.text, engine.max_characters):
            speech = attempts.run(
                partial(engine.synthesize, part, clip.voice, words_per_minute=clip.words_per_minute)
            )
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

    with spend:
        try:
            rendered = clips.render(spec, speak, clip_directory(), ctx.run_id)
        except Exception as exc:  # the takes made were billed, good or not
            spend.release(describe(exc), spent=spent()[0])
            raise
        paid, usage = spent()
        spend.settle(paid, usage=usage, response=str(rendered.path))
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
    ledger = Ledger(store)
    if ledger.mark_completed_later(ctx.run_id, step_key, None):
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
    Spend.held(store, ctx.run_id, step_key, abandoned[-1].id).settle(
        cost,
        response=str(path),
        budget_note="settled on resume: the clip was made before the crash",
    )


def _attempts(store: Store, ctx: RunContext, engine: Engine, step_key: str) -> Attempts:
    """How a take is attempted: like a model call (the provider's slots, the show's `retries:`,
    a circuit breaker of the engine's own), but every passing failure is retried, since there
    is no other engine to fall back to."""
    return Attempts.of(
        store,
        ctx.show,
        run_id=ctx.run_id,
        step_key=step_key,
        stage="voice",
        provider=engine.name,
        label=f"{engine.name} speech",
        route=ctx.voicing.priced_as,
        patience=PERSIST,
        breaker=f"{engine.name} speech",
    )


def _synthesize(
    store: Store, ctx: RunContext, engine: Engine, spec: clips.ClipSpec, text: str, step_key: str
) -> Speech:
    """One take of one piece of `spec`'s text, attempted as every take is."""
    return _attempts(store, ctx, engine, step_key).run(
        partial(engine.synthesize, text, spec.voice, words_per_minute=spec.words_per_minute)
    )


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

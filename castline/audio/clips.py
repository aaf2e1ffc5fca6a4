"""One clip per turn, content-addressed: the same engine, voice, settings and text give the same
file, so a re-run, a resume or an edited script re-renders only what changed.

Every clip is checked after synthesis: not empty, not cut off, not silent, neither far shorter
nor far longer than its words imply at the pace the engine speaks. A bad clip is rendered once
more; a second failure names the turn, so an episode is never published with a silent gap.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from castline.audio.tts import Engine, Speech
from castline.audio.tts.base import SLOWEST_SHARE
from castline.config import Show
from castline.domain import Turn
from castline.errors import StageFailed
from castline.fileio import write_atomic

SILENCE_RMS = 0.003  # below this the clip carries no speech
SHORTEST_SHARE = 0.35  # of the duration its words imply at the engine's pace


@dataclass(frozen=True)
class ClipSpec:
    index: int
    speaker: str
    segment: str
    text: str
    engine: str  # "engine:model"
    voice: str
    words_per_minute: int

    @property
    def key(self) -> str:
        payload = json.dumps(
            [self.engine, self.voice, self.words_per_minute, " ".join(self.text.split())]
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:32]


def voice_for(show: Show, speaker: str, engine: Engine, show_dir: Path) -> str:
    for index, host in enumerate(show.hosts):
        if host.name == speaker:
            return engine.voice_of(host, index, show_dir)
    raise StageFailed("voice", "-", f"{speaker!r} is not a host of the show")


def specs(show: Show, turns: list[Turn], engine: Engine, show_dir: Path) -> list[ClipSpec]:
    """One clip per turn; voices that are files are found relative to `show_dir`."""
    return [
        ClipSpec(
            index=index,
            speaker=turn.speaker,
            segment=turn.segment,
            text=turn.text,
            engine=engine.route,
            voice=voice_for(show, turn.speaker, engine, show_dir),
            words_per_minute=engine.pace(show.episode.words_per_minute),
        )
        for index, turn in enumerate(turns)
    ]


def problem(speech: Speech, spec: ClipSpec) -> str | None:
    """Why a clip cannot go into the episode, or None."""
    if len(speech.samples) == 0:
        return "the clip is empty"
    if not speech.complete:
        return "the engine stopped before the end of the text"
    import numpy as np

    rms = float(np.sqrt(np.mean(np.square(speech.samples, dtype=np.float64))))
    if rms < SILENCE_RMS:
        return f"the clip is silent (RMS {rms:.4f})"
    words = len(spec.text.split())
    expected = words / spec.words_per_minute * 60
    lasts = f"the clip lasts {speech.duration:.1f} s but its {words} words need about"
    if speech.duration < expected * SHORTEST_SHARE:
        return f"{lasts} {expected:.1f} s"
    if speech.duration > (expected + 2) * SLOWEST_SHARE:
        return f"{lasts} {expected:.1f} s (the engine ran on)"
    return None


@dataclass(frozen=True)
class Rendered:
    path: Path
    duration: float
    attempts: int


@contextmanager
def exclusive(spec: ClipSpec, directory: Path) -> Iterator[None]:
    """One process at a time renders a given clip from a clip directory: a second one (another
    worker, a zombie of a recovered run) waits, then finds the clip made and pays nothing."""
    from filelock import FileLock

    directory.mkdir(parents=True, exist_ok=True)
    with FileLock(directory / f"{spec.key}.lock"):
        yield


def cached(spec: ClipSpec, directory: Path) -> Path | None:
    path = directory / f"{spec.key}.wav"
    return path if path.exists() else None


def render(
    spec: ClipSpec, speak: Callable[[ClipSpec], Speech], directory: Path, run_id: str
) -> Rendered:
    """Synthesise the clip for `spec` with `speak` and check it; a bad take is made once more."""
    import soundfile as sf

    path = directory / f"{spec.key}.wav"
    for attempt in (1, 2):
        speech = speak(spec)
        wrong = problem(speech, spec)
        if wrong is None:
            directory.mkdir(parents=True, exist_ok=True)
            buffer = io.BytesIO()
            sf.write(buffer, speech.samples, speech.sample_rate, format="WAV", subtype="PCM_16")
            write_atomic(path, buffer.getvalue())
            return Rendered(path, speech.duration, attempt)
    raise StageFailed(
        "voice",
        run_id,
        f"turn {spec.index} ({spec.speaker}, segment {spec.segment}) could not be voiced: "
        f"{wrong}. Its text: {spec.text[:80]!r}",
    )

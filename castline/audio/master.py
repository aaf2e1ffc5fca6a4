"""Mastering: clips joined with natural pauses, optional intro and outro music ducked under
speech, loudness normalised to the show's target, peaks limited, MP3 encoded, and the result
verified by decoding the encoded file and measuring it (not by trusting the filter's report).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import lameenc
import numpy as np
import numpy.typing as npt
import pyloudnorm
import soundfile as sf
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import resample_poly

from castline.audio.timeline import Chapter, TimedTurn, Timeline
from castline.config import Audio
from castline.domain import Outline

Samples = npt.NDArray[np.float64]
MUSIC_LEAD_S = 3.0  # music alone before speech starts, and after it ends


@dataclass(frozen=True)
class ClipIn:
    index: int
    speaker: str
    segment: str
    text: str
    path: Path


@dataclass(frozen=True)
class Mastered:
    mp3: bytes
    timeline: Timeline
    loudness_lufs: float
    true_peak_db: float


def _read(path: Path, rate: int) -> Samples:
    data, source_rate = sf.read(str(path), dtype="float64", always_2d=True)
    mono: Samples = data.mean(axis=1)
    if source_rate != rate:
        common = gcd(rate, source_rate)
        mono = resample_poly(mono, rate // common, source_rate // common)
    return mono


def assemble(clips: list[ClipIn], outline: Outline, audio: Audio) -> tuple[Samples, Timeline]:
    """Speech with pauses (longer between segments), and where every turn lands."""
    rate = audio.sample_rate
    pieces: list[Samples] = []
    turns: list[TimedTurn] = []
    position = 0
    previous: str | None = None
    for clip in clips:
        if previous is not None:
            pause = audio.segment_pause_s if clip.segment != previous else audio.turn_pause_s
            pieces.append(np.zeros(int(pause * rate)))
            position += int(pause * rate)
        samples = _read(clip.path, rate)
        pieces.append(samples)
        turns.append(
            TimedTurn(
                index=clip.index,
                speaker=clip.speaker,
                segment=clip.segment,
                text=clip.text,
                start=position / rate,
                end=(position + len(samples)) / rate,
            )
        )
        position += len(samples)
        previous = clip.segment
    speech: Samples = np.concatenate(pieces) if pieces else np.zeros(0)
    titles = {s.id: s.title for s in outline.segments}
    chapters = []
    for segment in dict.fromkeys(t.segment for t in turns):
        own = [t for t in turns if t.segment == segment]
        chapters.append(
            Chapter(
                segment=segment,
                title=titles.get(segment, segment),
                start=own[0].start,
                end=own[-1].end,
            )
        )
    return speech, Timeline(turns=turns, chapters=chapters, duration=len(speech) / rate)


def _shift(timeline: Timeline, offset: float, duration: float) -> Timeline:
    return Timeline(
        turns=[
            t.model_copy(update={"start": t.start + offset, "end": t.end + offset})
            for t in timeline.turns
        ],
        chapters=[
            c.model_copy(update={"start": c.start + offset if i else 0.0, "end": c.end + offset})
            for i, c in enumerate(timeline.chapters)
        ],
        duration=duration,
    )


def _ducked_bed(
    music: Samples, length: int, speech_start: int, speech_end: int, audio: Audio, rate: int
) -> Samples:
    """Music looped or cut to `length`, at the music gain, lowered by the ducking amount while
    speech plays, with half-second ramps."""
    repeats = int(np.ceil(length / max(len(music), 1)))
    bed = np.tile(music, repeats)[:length] * 10 ** (audio.music_gain_db / 20)
    gain = np.ones(length)
    duck = 10 ** (audio.ducking_db / 20)
    ramp = int(0.5 * rate)
    gain[speech_start:speech_end] = duck
    for start, end, upward in (
        (speech_start - ramp, speech_start, False),
        (speech_end, speech_end + ramp, True),
    ):
        lo, hi = max(0, start), min(length, end)
        if hi > lo:
            curve = np.linspace(duck, 1.0, hi - lo) if upward else np.linspace(1.0, duck, hi - lo)
            gain[lo:hi] = curve
    fade = min(ramp, length)
    gain[-fade:] *= np.linspace(1.0, 0.0, fade)
    return np.asarray(bed * gain)


def with_music(
    speech: Samples, timeline: Timeline, audio: Audio, base: Path
) -> tuple[Samples, Timeline]:
    rate = audio.sample_rate
    lead = int(MUSIC_LEAD_S * rate) if audio.intro_music else 0
    tail = int(MUSIC_LEAD_S * rate) if audio.outro_music else 0
    if not lead and not tail:
        return speech, timeline
    total = np.zeros(lead + len(speech) + tail)
    total[lead : lead + len(speech)] += speech
    if audio.intro_music:
        music = _read(base / audio.intro_music, rate)
        span = min(len(total), lead + min(len(speech), 10 * rate))
        total[:span] += _ducked_bed(music, span, lead, span, audio, rate)
    if audio.outro_music:
        music = _read(base / audio.outro_music, rate)
        start = max(0, lead + len(speech) - 10 * rate)
        total[start:] += _ducked_bed(
            music, len(total) - start, 0, lead + len(speech) - start, audio, rate
        )
    return total, _shift(timeline, lead / rate, len(total) / rate)


_BLOCK_S = 0.01  # limiter and peak search work on 10 ms blocks


def _block_peaks(samples: Samples, size: int) -> Samples:
    padded = np.pad(np.abs(samples), (0, (-len(samples)) % size))
    return np.asarray(padded.reshape(-1, size).max(axis=1))


def true_peak_db(samples: Samples, rate: int) -> float:
    """Inter-sample peak estimated by 4x oversampling, as BS.1770 describes, only around the
    loudest blocks (where the true peak must be), so that a long episode is measured quickly."""
    if len(samples) == 0:
        return float("-inf")
    size = max(1, int(_BLOCK_S * rate))
    peaks = _block_peaks(samples, size)
    loudest = float(peaks.max())
    if loudest <= 0:
        return float("-inf")
    # oversampling raises a peak by a few dB at most: the maximum lies among the loudest blocks
    candidates = np.argsort(peaks)[-256:]
    candidates = candidates[peaks[candidates] >= loudest / 2]
    peak = loudest
    for block in candidates:
        start, stop = max(0, (block - 1) * size), min(len(samples), (block + 2) * size)
        peak = max(peak, float(np.max(np.abs(resample_poly(samples[start:stop], 4, 1)))))
    return 20 * float(np.log10(peak))


def limit(samples: Samples, rate: int, ceiling_db: float) -> Samples:
    """Bring peaks under the ceiling with a smooth gain envelope: each block's reduction is held
    over its neighbours (look-ahead), smoothed over 50 ms, and interpolated between blocks."""
    size = max(1, int(_BLOCK_S * rate))
    peaks = _block_peaks(samples, size) * 1.12  # room for inter-sample peaks (about 1 dB)
    wanted = np.minimum(1.0, 10 ** (ceiling_db / 20) / np.maximum(peaks, 1e-9))
    held = minimum_filter1d(wanted, size=3)
    smooth = np.minimum(held, uniform_filter1d(held, size=5))
    centres = (np.arange(len(smooth)) + 0.5) * size
    gain = np.interp(np.arange(len(samples)), centres, smooth)
    return np.asarray(samples * np.minimum(gain, np.repeat(held, size)[: len(samples)]))


def normalise(samples: Samples, audio: Audio) -> Samples:
    """Gain to the loudness target, then limit peaks with room for the encoder's overshoot, then
    make up the little loudness the limiter took (limiting again if that raised a peak)."""
    meter = pyloudnorm.Meter(audio.sample_rate)
    ceiling = audio.true_peak_db - 1.5
    gained = samples * 10 ** ((audio.loudness_lufs - meter.integrated_loudness(samples)) / 20)
    limited = limit(gained, audio.sample_rate, ceiling)
    makeup = audio.loudness_lufs - meter.integrated_loudness(limited)
    if makeup > 0.1:
        limited = limit(limited * 10 ** (makeup / 20), audio.sample_rate, ceiling)
    return np.asarray(limited)


def encode(samples: Samples, audio: Audio) -> bytes:
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(audio.bitrate_kbps)
    encoder.set_in_sample_rate(audio.sample_rate)
    encoder.set_channels(audio.channels)
    encoder.set_quality(5)  # LAME's standard speed/quality point; speech needs no more
    pcm = np.clip(samples, -1.0, 1.0)
    if audio.channels == 2:
        pcm = np.repeat(pcm[:, None], 2, axis=1).reshape(-1)
    return bytes(encoder.encode((pcm * 32767).astype(np.int16).tobytes()) + encoder.flush())


@dataclass(frozen=True)
class Measurement:
    loudness_lufs: float
    true_peak_db: float
    duration_s: float


def measure(mp3: bytes) -> Measurement:
    """Loudness, true peak and duration of the encoded file as a player decodes it (the
    encoder's padding makes it a little longer than the samples that went in)."""
    decoded, rate = sf.read(io.BytesIO(mp3), dtype="float64", always_2d=True)
    mono = decoded.mean(axis=1)
    return Measurement(
        loudness_lufs=pyloudnorm.Meter(rate).integrated_loudness(mono),
        true_peak_db=true_peak_db(mono, rate),
        duration_s=len(mono) / rate,
    )


def master(clips: list[ClipIn], outline: Outline, audio: Audio, base: Path) -> Mastered:
    speech, timeline = assemble(clips, outline, audio)
    mixed, timeline = with_music(speech, timeline, audio, base)
    finished = normalise(mixed, audio)
    mp3 = encode(finished, audio)
    measured = measure(mp3)
    over = measured.true_peak_db - audio.true_peak_db
    if over > 0 or abs(measured.loudness_lufs - audio.loudness_lufs) > 0.5:
        # verified on the encoded file, which is what listeners get; correct once from it
        finished = finished * 10 ** ((audio.loudness_lufs - measured.loudness_lufs) / 20)
        finished = limit(finished, audio.sample_rate, audio.true_peak_db - 1.5 - max(over, 0))
        mp3 = encode(finished, audio)
        measured = measure(mp3)
    return Mastered(
        mp3=mp3,
        timeline=timeline.model_copy(update={"duration": measured.duration_s}),
        loudness_lufs=measured.loudness_lufs,
        true_peak_db=measured.true_peak_db,
    )

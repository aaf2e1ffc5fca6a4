"""Mastering: clips joined with natural pauses, optional intro and outro music ducked under
speech, loudness normalised to the show's target, peaks limited, MP3 encoded, and the result
verified by decoding the encoded file and measuring it (not by trusting the filter's report).

A 20-minute episode is 53 million samples, so memory is spent with care: samples are float32
(ample for 16-bit output), the episode is changed in place, and whatever is made per sample on
the way (gain envelopes, loudness filtering, PCM for the encoder) is made a chunk at a time. At
most two whole-episode arrays exist at once, such as the episode and its decoded MP3 (three for
a moment while a stereo MP3 is decoded).

numpy, scipy, pyloudnorm, soundfile and lameenc are imported by the functions that use them, so
that planning a run (`check_music`) and the command line do not pay for the audio stack.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import TYPE_CHECKING

from castline.audio import xing
from castline.audio.timeline import Chapter, TimedTurn, Timeline
from castline.config import Audio
from castline.domain import Outline
from castline.errors import MusicFileError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Samples = npt.NDArray[np.float32]

MUSIC_LEAD_S = 3.0  # music alone before speech starts, and after it ends
_CHUNK = 1 << 18  # samples per step of the per-sample work (about 6 s at 44.1 kHz)


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
    import numpy as np
    import soundfile as sf
    from scipy.signal import resample_poly

    data, source_rate = sf.read(str(path), dtype="float32", always_2d=True)
    mono: Samples = data.mean(axis=1, dtype=np.float32)
    if source_rate != rate:
        common = gcd(rate, source_rate)
        mono = resample_poly(mono, rate // common, source_rate // common)
    return mono


def _music(base: Path, name: str, field: str, rate: int) -> Samples:
    import soundfile as sf

    path = base / name
    try:
        return _read(path, rate)
    except sf.LibsndfileError as exc:  # libsndfile says "System error." for a missing file
        raise _unreadable(field, path, exc) from None


def _unreadable(field: str, path: Path, exc: Exception) -> MusicFileError:
    reason = "no such file" if not path.is_file() else f"not readable audio ({exc})"
    return MusicFileError(field, path, reason)


def check_music(audio: Audio, base: Path) -> None:
    """Raise `MusicFileError` now, before anything is spent, if a music file cannot be read."""
    if not (audio.intro_music or audio.outro_music):
        return
    import soundfile as sf

    for field, name in (
        ("audio.intro_music", audio.intro_music),
        ("audio.outro_music", audio.outro_music),
    ):
        if name:
            try:
                sf.info(str(base / name))
            except sf.LibsndfileError as exc:
                raise _unreadable(field, base / name, exc) from None


def assemble(clips: list[ClipIn], outline: Outline, audio: Audio) -> tuple[Samples, Timeline]:
    """Speech with pauses (longer between segments), and where every turn lands."""
    import numpy as np

    rate = audio.sample_rate
    pieces: list[Samples] = []
    turns: list[TimedTurn] = []
    position = 0
    previous: str | None = None
    for clip in clips:
        if previous is not None:
            pause = audio.segment_pause_s if clip.segment != previous else audio.turn_pause_s
            pieces.append(np.zeros(int(pause * rate), dtype=np.float32))
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
    speech: Samples = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
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
    import numpy as np

    repeats = int(np.ceil(length / max(len(music), 1)))
    bed = np.tile(music, repeats)[:length] * np.float32(10 ** (audio.music_gain_db / 20))
    gain = np.ones(length, dtype=np.float32)
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
    gain[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return bed * gain


def with_music(
    speech: Samples, timeline: Timeline, audio: Audio, base: Path
) -> tuple[Samples, Timeline]:
    import numpy as np

    rate = audio.sample_rate
    lead = int(MUSIC_LEAD_S * rate) if audio.intro_music else 0
    tail = int(MUSIC_LEAD_S * rate) if audio.outro_music else 0
    if not lead and not tail:
        return speech, timeline
    total = np.zeros(lead + len(speech) + tail, dtype=np.float32)
    total[lead : lead + len(speech)] = speech
    if audio.intro_music:
        music = _music(base, audio.intro_music, "audio.intro_music", rate)
        span = min(len(total), lead + min(len(speech), 10 * rate))
        total[:span] += _ducked_bed(music, span, lead, span, audio, rate)
    if audio.outro_music:
        music = _music(base, audio.outro_music, "audio.outro_music", rate)
        start = max(0, lead + len(speech) - 10 * rate)
        total[start:] += _ducked_bed(
            music, len(total) - start, 0, lead + len(speech) - start, audio, rate
        )
    return total, _shift(timeline, lead / rate, len(total) / rate)


def integrated_loudness(samples: Samples, rate: int) -> float:
    """Integrated loudness in LUFS, as pyloudnorm measures it (ITU-R BS.1770-4: K-weighting,
    400 ms blocks every 100 ms, absolute and relative gates), but filtered a chunk at a time:
    pyloudnorm holds several float64 copies of the whole signal, gigabytes for an episode."""
    import numpy as np
    import pyloudnorm
    from numpy.lib.stride_tricks import sliding_window_view
    from scipy.signal import lfilter

    quarter = round(0.1 * rate)  # blocks start every 100 ms and span four of these
    blocks = round((len(samples) / rate - 0.4) / 0.1) + 1
    if blocks < 1:
        return float("-inf")  # shorter than one block
    stages = [(f.b, f.a, f.passband_gain) for f in pyloudnorm.Meter(rate)._filters.values()]
    states = [np.zeros(len(a) - 1) for _, a, _ in stages]
    energies: list[npt.NDArray[np.float64]] = []  # of the weighted signal, per 100 ms
    step = quarter * max(1, _CHUNK // quarter)
    for start in range(0, len(samples), step):
        chunk = samples[start : start + step].astype(np.float64)
        for i, (b, a, gain) in enumerate(stages):
            chunk, states[i] = lfilter(b, a, chunk, zi=states[i])
            chunk *= gain
        chunk = np.pad(chunk, (0, -len(chunk) % quarter))
        energies.append(np.square(chunk).reshape(-1, quarter).sum(axis=1))
    energy = np.concatenate([*energies, np.zeros(3)])
    power = sliding_window_view(energy, 4)[:blocks].sum(axis=1) / (0.4 * rate)
    with np.errstate(divide="ignore"):
        loudness = -0.691 + 10 * np.log10(power)
    audible = power[loudness >= -70]  # the absolute gate
    if len(audible) == 0:
        return float("-inf")
    relative = -0.691 + 10 * np.log10(audible.mean()) - 10
    gated = power[(loudness > relative) & (loudness > -70)]
    if len(gated) == 0:
        return float("-inf")
    return float(-0.691 + 10 * np.log10(gated.mean()))


_BLOCK_S = 0.01  # limiter and peak search work on 10 ms blocks


def _block_peaks(samples: Samples, size: int) -> npt.NDArray[np.float64]:
    """The largest magnitude in each block (the last one may be short), without an abs() copy
    of the whole signal."""
    import numpy as np

    whole = len(samples) // size * size
    blocks = samples[:whole].reshape(-1, size)
    peaks = np.maximum(blocks.max(axis=1), -blocks.min(axis=1))
    if whole < len(samples):
        peaks = np.append(peaks, np.abs(samples[whole:]).max())
    return np.asarray(peaks, dtype=np.float64)


def true_peak_db(samples: Samples, rate: int) -> float:
    """Inter-sample peak estimated by 4x oversampling, as BS.1770 describes, only around the
    loudest blocks (where the true peak must be), so that a long episode is measured quickly."""
    import numpy as np
    from scipy.signal import resample_poly

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


def limit(samples: Samples, rate: int, ceiling_db: float) -> None:
    """Bring peaks under the ceiling, in place, with a smooth gain envelope: each block's
    reduction is held over its neighbours (look-ahead), smoothed over 50 ms, and interpolated
    between blocks. The envelope is made a chunk at a time; whole, it would be several times
    the size of the episode."""
    import numpy as np
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    size = max(1, int(_BLOCK_S * rate))
    peaks = _block_peaks(samples, size) * 1.12  # room for inter-sample peaks (about 1 dB)
    wanted = np.minimum(1.0, 10 ** (ceiling_db / 20) / np.maximum(peaks, 1e-9))
    held = minimum_filter1d(wanted, size=3)
    smooth = np.minimum(held, uniform_filter1d(held, size=5))
    centres = (np.arange(len(smooth)) + 0.5) * size
    step = size * max(1, _CHUNK // size)  # whole blocks per chunk
    for start in range(0, len(samples), step):
        stop = min(start + step, len(samples))
        gain = np.interp(np.arange(start, stop), centres, smooth)
        own = held[start // size : -(-stop // size)]
        samples[start:stop] *= np.minimum(gain, np.repeat(own, size)[: stop - start])


def normalise(samples: Samples, audio: Audio) -> None:
    """In place: gain to the loudness target, then limit peaks with room for the encoder's
    overshoot, then make up the little loudness the limiter took (limiting again if that raised
    a peak). Silence stays silence."""
    import numpy as np

    rate = audio.sample_rate
    ceiling = audio.true_peak_db - 1.5
    loudness = integrated_loudness(samples, rate)
    if not np.isfinite(loudness):
        return
    samples *= np.float32(10 ** ((audio.loudness_lufs - loudness) / 20))
    limit(samples, rate, ceiling)
    makeup = audio.loudness_lufs - integrated_loudness(samples, rate)
    if makeup > 0.1:
        samples *= np.float32(10 ** (makeup / 20))
        limit(samples, rate, ceiling)


_LAME_QUALITY = 5  # LAME's standard speed/quality point; speech needs no more


def encode(samples: Samples, audio: Audio) -> bytes:
    """MP3, fed to LAME a chunk at a time (its output does not depend on how it is fed), at
    the show's sample rate (LAME would resample stereo at 64 or 96 kbps to 24 or 32 kHz), with
    an Info frame in front that states its length, seek table, and encoder delay and padding."""
    import lameenc
    import numpy as np

    encoder = lameenc.Encoder()
    encoder.set_bit_rate(audio.bitrate_kbps)
    encoder.set_in_sample_rate(audio.sample_rate)
    encoder.set_out_sample_rate(audio.sample_rate)
    encoder.set_channels(audio.channels)
    encoder.set_quality(_LAME_QUALITY)
    frames: list[bytes] = []
    for start in range(0, len(samples), _CHUNK):
        pcm = (np.clip(samples[start : start + _CHUNK], -1.0, 1.0) * 32767).astype(np.int16)
        if audio.channels == 2:
            pcm = np.repeat(pcm, 2)  # interleaved: the same signal left and right
        frames.append(bytes(encoder.encode(pcm.tobytes())))
    frames.append(bytes(encoder.flush()))
    return xing.with_info_frame(
        b"".join(frames), samples=len(samples), source_rate=audio.sample_rate, quality=_LAME_QUALITY
    )


@dataclass(frozen=True)
class Measurement:
    loudness_lufs: float
    true_peak_db: float
    duration_s: float


def _decode(mp3: bytes) -> tuple[Samples, int]:
    """The encoded file as a player decodes it, folded to mono; stereo a block at a time, so
    that both channels are never held whole."""
    import numpy as np
    import soundfile as sf

    with sf.SoundFile(io.BytesIO(mp3)) as decoded:
        rate = int(decoded.samplerate)
        if decoded.channels == 1:
            return decoded.read(dtype="float32"), rate
        blocks = []
        while len(block := decoded.read(_CHUNK, dtype="float32", always_2d=True)):
            blocks.append(block.mean(axis=1, dtype=np.float32))
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32), rate


def measure(mp3: bytes) -> Measurement:
    """Loudness, true peak and duration of the encoded file as a player decodes it (one that
    reads the LAME tag, as libsndfile's mpg123 does, plays exactly the samples that went in)."""
    mono, rate = _decode(mp3)
    return Measurement(
        loudness_lufs=integrated_loudness(mono, rate),
        true_peak_db=true_peak_db(mono, rate),
        duration_s=len(mono) / rate,
    )


def master(clips: list[ClipIn], outline: Outline, audio: Audio, base: Path) -> Mastered:
    import numpy as np

    episode, timeline = assemble(clips, outline, audio)
    episode, timeline = with_music(episode, timeline, audio, base)  # frees the speech alone
    normalise(episode, audio)
    mp3 = encode(episode, audio)
    measured = measure(mp3)
    over = measured.true_peak_db - audio.true_peak_db
    missed = abs(measured.loudness_lufs - audio.loudness_lufs) > 0.5
    if np.isfinite(measured.loudness_lufs) and (over > 0 or missed):
        # verified on the encoded file, which is what listeners get; correct once from it
        episode *= np.float32(10 ** ((audio.loudness_lufs - measured.loudness_lufs) / 20))
        limit(episode, audio.sample_rate, audio.true_peak_db - 1.5 - max(over, 0))
        mp3 = encode(episode, audio)
        measured = measure(mp3)
    return Mastered(
        mp3=mp3,
        timeline=timeline.model_copy(update={"duration": measured.duration_s}),
        loudness_lufs=measured.loudness_lufs,
        true_peak_db=measured.true_peak_db,
    )

"""Mastering on synthetic signals: pauses and timings, the music bed and its ducking, loudness
and peaks of the encoded file as a player decodes it, clear errors for missing music, and a
bounded peak memory."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyloudnorm
import pytest
import soundfile as sf
from mutagen.mp3 import MP3
from scipy.signal import resample_poly

from castline.audio import master
from castline.audio.master import MUSIC_LEAD_S, ClipIn
from castline.audio.timeline import Chapter, TimedTurn, Timeline
from castline.config import Audio, database_url
from castline.domain import Outline, Segment
from castline.engine import episodes
from castline.errors import ConfigError, MusicFileError
from castline.store import Store

RATE = 44100
Signal = npt.NDArray[np.float64]

OUTLINE = Outline(
    title="Test",
    summary="A synthetic episode.",
    segments=[
        Segment(id="intro", kind="intro", title="Welcome", goal="open", target_words=50),
        Segment(id="body", kind="body", title="The middle", goal="explain", target_words=50),
        Segment(id="outro", kind="outro", title="Goodbye", goal="close", target_words=50),
    ],
)


def _speechlike(seconds: float, seed: int, rate: int = RATE, level: float = 0.1) -> Signal:
    """Noise and a tone under a syllable-rate envelope: speech's crest factor and pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    envelope = (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t + seed)) ** 2
    voice = rng.standard_normal(len(t)) + 2 * np.sin(2 * np.pi * (150 + 20 * seed) * t)
    return level * envelope * voice / 2


def _tone(seconds: float, amplitude: float, rate: int = RATE) -> Signal:
    return amplitude * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)


def _write(path: Path, samples: Signal, rate: int = RATE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, rate, subtype="FLOAT")
    return path


def _rms_db(samples: npt.NDArray[np.floating]) -> float:
    return 20 * float(np.log10(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))))


def _window(samples: npt.NDArray[np.floating], start_s: float, stop_s: float) -> Signal:
    return np.asarray(samples[int(start_s * RATE) : int(stop_s * RATE)], dtype=np.float64)


def _oversampled_peak_db(samples: npt.NDArray[np.floating]) -> float:
    """True peak by 4x oversampling of the whole signal: the reference for short signals."""
    return 20 * float(np.log10(np.max(np.abs(resample_poly(samples.astype(np.float64), 4, 1)))))


def _clips(tmp_path: Path, layout: list[tuple[str, float, int]]) -> list[ClipIn]:
    """One WAV clip per (segment, seconds, sample rate)."""
    return [
        ClipIn(
            index=i,
            speaker="Maya" if i % 2 == 0 else "Theo",
            segment=segment,
            text=f"turn {i}",
            path=_write(tmp_path / "clips" / f"{i}.wav", _speechlike(seconds, i, rate), rate),
        )
        for i, (segment, seconds, rate) in enumerate(layout)
    ]


# --- assembly -------------------------------------------------------------------------------


@pytest.mark.parametrize(("turn_pause", "segment_pause"), [(0.35, 1.0), (0.1, 2.5)])
def test_pauses_sit_between_turns_and_segments_where_the_timeline_says(
    tmp_path: Path, turn_pause: float, segment_pause: float
) -> None:
    layout = [("intro", 0.8, RATE), ("intro", 0.5, RATE), ("body", 1.2, RATE), ("outro", 0.3, RATE)]
    clips = _clips(tmp_path, layout)
    audio = Audio(turn_pause_s=turn_pause, segment_pause_s=segment_pause)

    speech, timeline = master.assemble(clips, OUTLINE, audio)

    expected_pauses = [
        0,
        int(turn_pause * RATE),
        int(segment_pause * RATE),
        int(segment_pause * RATE),
    ]
    position = 0
    for clip, turn, pause in zip(clips, timeline.turns, expected_pauses, strict=True):
        gap = speech[position : position + pause]
        assert len(gap) == pause and not gap.any()  # silence, exactly as long as configured
        position += pause
        samples, _ = sf.read(str(clip.path), dtype="float32")
        assert turn.start == position / RATE
        assert turn.end == (position + len(samples)) / RATE
        np.testing.assert_array_equal(speech[position : position + len(samples)], samples)
        position += len(samples)
        assert (turn.index, turn.speaker, turn.segment) == (clip.index, clip.speaker, clip.segment)
    assert len(speech) == position and timeline.duration == position / RATE
    assert speech.dtype == np.float32
    assert [(c.segment, c.title) for c in timeline.chapters] == [
        ("intro", "Welcome"),
        ("body", "The middle"),
        ("outro", "Goodbye"),
    ]
    turns = timeline.turns
    assert [(c.start, c.end) for c in timeline.chapters] == [
        (turns[0].start, turns[1].end),
        (turns[2].start, turns[2].end),
        (turns[3].start, turns[3].end),
    ]


def test_clips_at_another_rate_are_resampled_and_timed_by_their_new_length(
    tmp_path: Path,
) -> None:
    clips = _clips(tmp_path, [("intro", 1.0, 22050), ("mystery", 0.5, 48000)])

    speech, timeline = master.assemble(clips, OUTLINE, Audio())

    first, second = timeline.turns
    assert (first.start, first.end) == (0.0, 1.0)
    assert second.start == 1.0 + 1.0  # a segment pause: the segment changed
    assert second.end == pytest.approx(2.5, abs=1 / RATE)
    assert len(speech) / RATE == timeline.duration == second.end
    assert timeline.chapters[1].title == "mystery"  # a segment the outline lacks keeps its id


# --- music ----------------------------------------------------------------------------------

MUSIC_AMPLITUDE = 0.5
SPEECH_S = 30.0  # long enough that the intro's bed and the outro's do not overlap


def _music_show(
    tmp_path: Path, amplitude: float = MUSIC_AMPLITUDE, **settings: object
) -> tuple[Audio, Path]:
    """A show directory with a 2-second 440 Hz tone as intro and outro music (it loops
    seamlessly: 880 whole periods)."""
    base = tmp_path / "show"
    _write(base / "music" / "intro.wav", _tone(2.0, amplitude))
    _write(base / "music" / "outro.wav", _tone(2.0, amplitude))
    defaults: dict[str, object] = {
        "intro_music": "music/intro.wav",
        "outro_music": "music/outro.wav",
        "music_gain_db": -18.0,
        "ducking_db": -12.0,
    }
    return Audio.model_validate(defaults | settings), base


def _speech_timeline(samples: int) -> Timeline:
    turn = TimedTurn(index=0, speaker="Maya", segment="intro", text="hi", start=0.0, end=20.0)
    chapter = Chapter(segment="intro", title="Welcome", start=0.0, end=20.0)
    return Timeline(turns=[turn], chapters=[chapter], duration=samples / RATE)


@pytest.mark.parametrize(("gain_db", "ducking_db"), [(-18.0, -12.0), (-10.0, -20.0)])
def test_music_plays_alone_then_ducks_under_speech_and_fades_out(
    tmp_path: Path, gain_db: float, ducking_db: float
) -> None:
    audio, base = _music_show(tmp_path, music_gain_db=gain_db, ducking_db=ducking_db)
    silence = np.zeros(int(SPEECH_S * RATE), dtype=np.float32)  # the bed alone is what we hear

    bed, _ = master.with_music(silence, _speech_timeline(len(silence)), audio, base)

    lead = MUSIC_LEAD_S
    end = lead + SPEECH_S  # speech ends here; the outro plays on for MUSIC_LEAD_S
    assert len(bed) == int((end + MUSIC_LEAD_S) * RATE)
    alone = _rms_db(_tone(1.0, MUSIC_AMPLITUDE)) + gain_db
    ducked = alone + ducking_db
    # whole numbers of periods in every window, so the tone's RMS is exact
    assert _rms_db(_window(bed, 0.5, 2.0)) == pytest.approx(alone, abs=0.05)
    assert _rms_db(_window(bed, lead + 0.5, lead + 9.0)) == pytest.approx(ducked, abs=0.05)
    assert not _window(bed, lead + 10.0, end - 10.0).any()  # no music in the middle
    assert _rms_db(_window(bed, end - 9.0, end - 0.5)) == pytest.approx(ducked, abs=0.05)
    assert _rms_db(_window(bed, end + 0.6, end + 2.4)) == pytest.approx(alone, abs=0.05)

    ramp_down = [
        _rms_db(_window(bed, lead - 0.5 + k / 20, lead - 0.45 + k / 20)) for k in range(10)
    ]
    ramp_up = [_rms_db(_window(bed, end + k / 20, end + 0.05 + k / 20)) for k in range(10)]
    assert ramp_down == sorted(ramp_down, reverse=True) and ramp_up == sorted(ramp_up)
    assert ducked < min(ramp_down) and max(ramp_down) < alone
    assert ducked < min(ramp_up) and max(ramp_up) < alone
    for fade_end in (lead + 10.0, end + MUSIC_LEAD_S):  # the intro's bed, then the outro's
        fade = [
            _rms_db(_window(bed, fade_end - 0.5 + k / 20, fade_end - 0.45 + k / 20))
            for k in range(10)
        ]
        assert fade == sorted(fade, reverse=True) and fade[-1] < fade[0] - 15
    assert abs(bed[-1]) < 1e-3


def test_speech_is_mixed_unchanged_over_the_bed_and_the_timeline_moves_by_the_lead(
    tmp_path: Path,
) -> None:
    audio, base = _music_show(tmp_path)
    speech = _speechlike(SPEECH_S, 1).astype(np.float32)
    timeline = _speech_timeline(len(speech))

    mixed, shifted = master.with_music(speech, timeline, audio, base)
    bed, _ = master.with_music(np.zeros_like(speech), timeline, audio, base)

    lead = int(MUSIC_LEAD_S * RATE)
    np.testing.assert_allclose(mixed - bed, np.pad(speech, (lead, lead)), atol=1e-6)
    assert shifted.turns[0].start == MUSIC_LEAD_S and shifted.turns[0].end == 20.0 + MUSIC_LEAD_S
    assert shifted.chapters[0].start == 0.0  # the first chapter opens with the music
    assert shifted.chapters[0].end == 20.0 + MUSIC_LEAD_S
    assert shifted.duration == len(mixed) / RATE == SPEECH_S + 2 * MUSIC_LEAD_S


def test_only_an_intro_adds_no_tail_and_short_music_loops(tmp_path: Path) -> None:
    base = tmp_path / "show"
    # half a second of music, stereo at 48 kHz: folded to mono, resampled, looped
    tone = _tone(0.5, MUSIC_AMPLITUDE, rate=48000)
    _write(base / "jingle.wav", np.stack([tone, tone], axis=1), 48000)
    audio = Audio(intro_music="jingle.wav", music_gain_db=-6.0)
    silence = np.zeros(int(SPEECH_S * RATE), dtype=np.float32)

    bed, timeline = master.with_music(silence, _speech_timeline(len(silence)), audio, base)

    assert len(bed) == int((MUSIC_LEAD_S + SPEECH_S) * RATE)
    assert timeline.turns[0].start == MUSIC_LEAD_S
    expected = _rms_db(_tone(1.0, MUSIC_AMPLITUDE)) - 6.0
    for second in (0.0, 1.0):  # the music is half a second long: these are its repeats
        assert _rms_db(_window(bed, second + 0.1, second + 0.9)) == pytest.approx(expected, abs=0.1)
    assert not bed[int((MUSIC_LEAD_S + 10.0) * RATE) :].any()


def test_no_music_leaves_speech_and_timeline_alone(tmp_path: Path) -> None:
    speech = _speechlike(2.0, 3).astype(np.float32)
    timeline = _speech_timeline(len(speech))

    mixed, same = master.with_music(speech, timeline, Audio(), tmp_path)

    assert mixed is speech and same == timeline


@pytest.mark.parametrize("field", ["intro_music", "outro_music"])
def test_a_missing_music_file_names_the_field_and_the_file(tmp_path: Path, field: str) -> None:
    audio, base = _music_show(tmp_path, **{field: "music/missing.wav"})
    clips = _clips(tmp_path, [("intro", 1.0, RATE)])

    with pytest.raises(MusicFileError) as raised:
        master.master(clips, OUTLINE, audio, base)

    message = str(raised.value)
    assert f"audio.{field}" in message and str(base / "music" / "missing.wav") in message
    assert "no such file" in message
    assert isinstance(raised.value, ConfigError)
    assert raised.value.path == base / "music" / "missing.wav"


def test_music_that_is_not_audio_is_a_clear_error(tmp_path: Path) -> None:
    audio, base = _music_show(tmp_path)
    (base / "music" / "intro.wav").write_text("not a sound")

    with pytest.raises(MusicFileError, match=r"audio\.intro_music: .*intro\.wav: not readable"):
        master.with_music(np.zeros(RATE, dtype=np.float32), _speech_timeline(RATE), audio, base)


def test_a_show_with_a_missing_music_file_is_refused_before_anything_is_spent(
    short_show: tuple[Path, Path],
) -> None:
    show, source = short_show
    show.write_text(show.read_text() + "\naudio: {outro_music: music/outro.wav}\n")

    with pytest.raises(MusicFileError, match=r"audio\.outro_music: .*outro\.wav: no such file"):
        episodes.produce(show, "A topic", [source])

    assert Store(database_url()).list_runs() == []


# --- loudness and peaks ---------------------------------------------------------------------


@pytest.mark.parametrize("rate", [22050, 44100])
def test_loudness_is_measured_as_pyloudnorm_measures_it(rate: int) -> None:
    # 15 s spans several of the meter's chunks; the quiet stretch exercises the gates
    signal = np.concatenate(
        [_speechlike(6.0, 1, rate), np.zeros(3 * rate), _speechlike(6.3, 2, rate, level=0.02)]
    )

    ours = master.integrated_loudness(signal.astype(np.float32), rate)

    assert ours == pytest.approx(pyloudnorm.Meter(rate).integrated_loudness(signal), abs=0.01)


def test_silence_and_sub_block_signals_have_no_loudness() -> None:
    assert master.integrated_loudness(np.zeros(RATE, dtype=np.float32), RATE) == float("-inf")
    assert master.integrated_loudness(np.ones(100, dtype=np.float32), RATE) == float("-inf")


def test_true_peak_finds_the_inter_sample_peak() -> None:
    # a tone at a quarter of the sample rate, sampled 45 degrees off its crests: every sample
    # is at 0.707 of the real peak (-3 dB), which oversampling recovers
    t = np.arange(RATE)
    signal = (0.5 * np.sin(np.pi / 2 * t + np.pi / 4)).astype(np.float32)

    measured = master.true_peak_db(signal, RATE)

    assert 20 * np.log10(np.max(np.abs(signal))) == pytest.approx(20 * np.log10(0.5) - 3, abs=0.1)
    # oversampling short windows around the loudest blocks errs high at their edges, never low
    assert _oversampled_peak_db(signal) - 0.05 <= measured <= _oversampled_peak_db(signal) + 1.0
    assert measured >= 20 * np.log10(0.5) - 0.1


def test_limit_brings_peaks_under_the_ceiling_and_leaves_the_rest_alone() -> None:
    quiet = _tone(3.0, 0.1)
    signal = quiet.copy()
    burst = slice(int(1.5 * RATE), int(1.6 * RATE))
    signal[burst] = _speechlike(0.1, 4, level=2.0)  # peaks far above full scale
    limited = signal.astype(np.float32)

    master.limit(limited, RATE, -3.0)

    assert _oversampled_peak_db(limited) <= -3.0
    away = np.r_[0 : int(1.4 * RATE), int(1.7 * RATE) : len(signal)]
    np.testing.assert_allclose(limited[away], quiet[away], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("target", "ceiling"), [(-16.0, -1.0), (-19.0, -2.0), (-23.0, -1.0)])
def test_normalise_reaches_the_target_with_peaks_under_the_ceiling(
    target: float, ceiling: float
) -> None:
    audio = Audio(loudness_lufs=target, true_peak_db=ceiling)
    # speech far too quiet, with a few loud clicks: gain alone would push them over
    signal = _speechlike(20.0, 5, level=0.01)
    for second in (4, 9, 15):
        signal[second * RATE : second * RATE + 64] += 0.2
    samples = signal.astype(np.float32)

    master.normalise(samples, audio)

    assert pyloudnorm.Meter(RATE).integrated_loudness(samples.astype(np.float64)) == (
        pytest.approx(target, abs=0.5)
    )
    # samples under the limiter's ceiling (1.5 dB of room for the encoder, 1 dB more for
    # inter-sample peaks), and inter-sample peaks, even of steps, well under the show's
    assert 20 * np.log10(np.max(np.abs(samples))) <= ceiling - 1.5 - 0.95
    assert _oversampled_peak_db(samples) <= ceiling - 0.5


def test_normalise_leaves_silence_silent() -> None:
    samples = np.zeros(5 * RATE, dtype=np.float32)

    master.normalise(samples, Audio())

    assert not samples.any()


# --- the encoded episode --------------------------------------------------------------------

LAYOUT = [
    ("intro", 2.5, 22050),
    ("intro", 3.0, 22050),
    ("body", 4.0, 44100),
    ("body", 2.0, 22050),
    ("outro", 3.0, 44100),
]


def _decoded(mp3: bytes) -> tuple[npt.NDArray[np.float64], int]:
    data, rate = sf.read(io.BytesIO(mp3), dtype="float64", always_2d=True)
    return data, rate


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"channels": 2},
        {"channels": 2, "bitrate_kbps": 192},
        {"bitrate_kbps": 64, "sample_rate": 22050},
        {"bitrate_kbps": 96, "loudness_lufs": -19.0, "true_peak_db": -2.0},
    ],
    ids=["mono-128", "stereo-128", "stereo-192", "mono-64-22k", "mono-96-19lufs"],
)
def test_the_encoded_episode_meets_its_targets_as_decoded(
    tmp_path: Path, settings: dict[str, object]
) -> None:
    audio = Audio.model_validate(settings)
    clips = _clips(tmp_path, LAYOUT)
    _, assembled = master.assemble(clips, OUTLINE, audio)

    done = master.master(clips, OUTLINE, audio, tmp_path)

    decoded, rate = _decoded(done.mp3)
    assert rate == audio.sample_rate and decoded.shape[1] == audio.channels
    meter = pyloudnorm.Meter(rate)
    for channel in decoded.T:  # each channel (both carry the same programme) at the target
        assert meter.integrated_loudness(channel) == pytest.approx(audio.loudness_lufs, abs=1.0)
        assert _oversampled_peak_db(channel) <= audio.true_peak_db
    mono = decoded.mean(axis=1)
    assert done.loudness_lufs == pytest.approx(meter.integrated_loudness(mono), abs=0.01)
    assert done.true_peak_db == pytest.approx(_oversampled_peak_db(mono), abs=0.1)
    assert done.timeline.duration == len(decoded) / rate
    # the LAME tag lets the decoder drop the encoder's delay and padding: not a sample more
    assert len(decoded) == round(assembled.duration * rate)
    assert MP3(io.BytesIO(done.mp3)).info.length == done.timeline.duration
    assert done.timeline.turns == assembled.turns and done.timeline.chapters == assembled.chapters


def test_an_episode_with_music_meets_its_targets_and_starts_after_the_lead(
    tmp_path: Path,
) -> None:
    audio, base = _music_show(tmp_path, amplitude=0.1)  # music a little under the speech
    clips = _clips(tmp_path, LAYOUT)
    _, assembled = master.assemble(clips, OUTLINE, audio)

    done = master.master(clips, OUTLINE, audio, base)

    decoded, rate = _decoded(done.mp3)
    mono = decoded.mean(axis=1)
    assert pyloudnorm.Meter(rate).integrated_loudness(mono) == pytest.approx(-16.0, abs=1.0)
    assert _oversampled_peak_db(mono) <= -1.0
    assert [t.start for t in done.timeline.turns] == [
        t.start + MUSIC_LEAD_S for t in assembled.turns
    ]
    assert done.timeline.chapters[0].start == 0.0
    assert done.timeline.duration == pytest.approx(assembled.duration + 2 * MUSIC_LEAD_S, abs=1e-4)
    # the music alone before speech: a steady, audible tone (no speech in it yet), then speech
    alone = [_rms_db(_window(mono, k / 2, k / 2 + 0.5)) for k in range(4)]
    assert max(alone) - min(alone) < 0.3 and -40 < min(alone) < -6
    assert _rms_db(_window(mono, MUSIC_LEAD_S, MUSIC_LEAD_S + 2.0)) > max(alone)


# --- memory ---------------------------------------------------------------------------------


def test_mastering_holds_at_most_two_copies_of_the_episode(tmp_path: Path) -> None:
    """Peak memory, as tracemalloc traces numpy's allocations, against the episode's size in
    float32: the episode and its decoded MP3, plus chunks. (Whole-episode float64 copies, as
    mastering once made, take this to over ten times the size.)"""
    seconds = 150
    clips = _clips(tmp_path, [("body", seconds / 10, RATE)] * 10)
    audio = Audio(turn_pause_s=0.0)
    episode_bytes = seconds * RATE * 4

    tracemalloc.start()
    try:
        master.master(clips, OUTLINE, audio, tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < 2.5 * episode_bytes

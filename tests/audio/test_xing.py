"""The Info header and LAME tag of the encoded episode, read three ways: by this test's own
parse of the bytes (against the published layout, not castline's code), by mutagen as players'
libraries read it, and by libsndfile's mpg123 decoder, which trims the encoder's delay and
padding by the tag: if the tag is wrong, the decoded samples do not line up with the input."""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import lameenc
import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
from mutagen.mp3 import MP3, BitrateMode

from castline.audio import master, xing
from castline.config import Audio
from castline.errors import RunError

Signal = npt.NDArray[np.float32]

SETTINGS = [
    {},
    {"channels": 2},
    {"channels": 2, "bitrate_kbps": 64},  # the smallest MPEG-1 frame (208 B) that holds the tag
    {"channels": 2, "bitrate_kbps": 96},
    {"bitrate_kbps": 192},
    {"sample_rate": 22050, "bitrate_kbps": 64},  # MPEG-2: 576 samples a frame
    {"sample_rate": 22050, "channels": 2, "bitrate_kbps": 128},
]
IDS = ["mono-128", "stereo-128", "stereo-64", "stereo-96", "mono-192", "mono-64-22k", "stereo-22k"]


def _crc16_arc(data: bytes) -> int:
    """CRC-16 as LAME computes it (polynomial x^16 + x^15 + x^2 + 1, reflected, from 0),
    bit by bit: an implementation independent of the one castline uses."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def test_the_reference_crc_is_crc16_arc() -> None:
    assert _crc16_arc(b"123456789") == 0xBB3D  # the catalogue's check value


@dataclass(frozen=True)
class Frame:
    offset: int
    length: int
    samples: int
    side_info: int
    bitrate_kbps: int
    sample_rate: int
    protected: bool
    padded: bool
    mode: int


def _frames(stream: bytes) -> list[Frame]:
    """Every frame, walked by the lengths its headers give (ISO 11172-3 / 13818-3)."""
    frames = []
    offset = 0
    while offset < len(stream):
        (word,) = struct.unpack_from(">I", stream, offset)
        assert word >> 21 == 0x7FF, f"no frame sync at {offset}"
        mpeg1 = (word >> 19) & 3 == 3
        table = (
            [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]
            if mpeg1
            else [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160]
        )
        kbps = table[(word >> 12) & 15]
        rate = ([44100, 48000, 32000] if mpeg1 else [22050, 24000, 16000])[(word >> 10) & 3]
        padded = bool((word >> 9) & 1)
        samples = 1152 if mpeg1 else 576
        mono = (word >> 6) & 3 == 3
        side_info = (17 if mono else 32) if mpeg1 else (9 if mono else 17)
        length = samples // 8 * kbps * 1000 // rate + padded
        protected = not (word >> 16) & 1
        frames.append(
            Frame(offset, length, samples, side_info, kbps, rate, protected, padded, word >> 6 & 3)
        )
        offset += length
    assert offset == len(stream)
    return frames


@dataclass(frozen=True)
class InfoTag:
    tag: bytes
    flags: int
    frames: int
    bytes: int
    toc: list[int]
    quality: int
    version: bytes
    method: int
    bitrate: int
    delay: int
    padding: int
    stereo_mode: int
    music_length: int
    music_crc: int
    tag_crc: int
    crc_covers: bytes


def _info(frame: bytes, side_info: int) -> InfoTag:
    at = 4 + side_info
    tag, flags, frames, total = struct.unpack_from(">4sIII", frame, at)
    toc = list(frame[at + 16 : at + 116])
    (quality,) = struct.unpack_from(">I", frame, at + 116)
    lame = at + 120
    delay_padding = int.from_bytes(frame[lame + 21 : lame + 24], "big")
    music_length, music_crc, tag_crc = struct.unpack_from(">IHH", frame, lame + 28)
    return InfoTag(
        tag=tag,
        flags=flags,
        frames=frames,
        bytes=total,
        toc=toc,
        quality=quality,
        version=frame[lame : lame + 9],
        method=frame[lame + 9] & 0x0F,
        bitrate=frame[lame + 20],
        delay=delay_padding >> 12,
        padding=delay_padding & 0xFFF,
        stereo_mode=(frame[lame + 24] >> 2) & 7,
        music_length=music_length,
        music_crc=music_crc,
        tag_crc=tag_crc,
        crc_covers=frame[: lame + 34],
    )


def _programme(seconds: float, rate: int) -> tuple[Signal, int]:
    """Quiet speech-like noise with one click, at a length that is no whole number of frames;
    and where the click is."""
    rng = np.random.default_rng(7)
    samples = (0.05 * rng.standard_normal(int(seconds * rate) + 333)).astype(np.float32)
    click = len(samples) // 3
    samples[click] = 0.95
    return samples, click


@pytest.mark.parametrize("settings", SETTINGS, ids=IDS)
def test_the_info_frame_states_the_stream_exactly(
    tmp_path: Path, settings: dict[str, object]
) -> None:
    audio = Audio.model_validate(settings)
    rate = audio.sample_rate
    programme, click = _programme(4.0, rate)

    mp3 = master.encode(programme, audio)

    info_frame, *audio_frames = _frames(mp3)
    assert {f.sample_rate for f in audio_frames} == {rate}  # not resampled by LAME
    assert info_frame.bitrate_kbps == audio_frames[0].bitrate_kbps  # CBR throughout
    assert not info_frame.protected and not info_frame.padded
    assert not any(mp3[4 : 4 + info_frame.side_info])  # no audio: silence to a plain decoder
    info = _info(mp3[: info_frame.length], info_frame.side_info)
    assert info.tag == b"Info" and info.flags == 0xF
    assert info.frames == len(audio_frames)
    assert info.bytes == info.music_length == len(mp3)
    spf = info_frame.samples
    assert info.delay == 576 and 0 <= info.padding < 2 * spf + 576
    assert info.frames * spf - info.delay - info.padding == len(programme)  # to the sample
    assert info.version == b"LAME4.0 \0" and info.method == 1  # CBR
    assert info.bitrate == audio.bitrate_kbps
    # the tag's stereo mode is the frames' (mono 0; stereo 1 or joint stereo 3)
    assert info.stereo_mode == {3: 0, 0: 1, 1: 3}[audio_frames[0].mode]
    assert (audio_frames[0].mode == 3) == (audio.channels == 1)
    assert info.quality == 100 - 10 * 4 - 5  # LAME's indicator for -q 5 at its default -V 4
    assert info.tag_crc == _crc16_arc(info.crc_covers)
    assert info.music_crc == _crc16_arc(mp3[info_frame.length :])
    # the seek table: for each percent of the time, the byte (in 256ths) where that frame is
    assert info.toc == sorted(info.toc) and len(info.toc) == 100
    for percent in range(100):
        frame = audio_frames[percent * len(audio_frames) // 100]
        assert info.toc[percent] == 256 * frame.offset // len(mp3)

    path = tmp_path / "episode.mp3"
    path.write_bytes(mp3)
    stated = MP3(str(path)).info
    assert not stated.sketchy and stated.bitrate_mode == BitrateMode.CBR
    assert stated.encoder_info == "LAME 4.0.0"
    assert stated.length == len(programme) / rate  # from the frame count, delay and padding
    assert (stated.sample_rate, stated.channels) == (rate, audio.channels)

    decoded, decoded_rate = sf.read(io.BytesIO(mp3), dtype="float32", always_2d=True)
    assert decoded_rate == rate and len(decoded) == len(programme)  # trimmed by the tag
    assert int(np.argmax(np.abs(decoded[:, 0]))) == click  # and in step with the input


def test_the_seek_table_lands_within_a_frame_of_each_percent() -> None:
    """A player seeking to minute m of an episode reads the byte the table gives for m's
    percentage: it must be the frame that plays then, give or take one."""
    audio = Audio()
    programme, _ = _programme(60.0, audio.sample_rate)

    mp3 = master.encode(programme, audio)

    info_frame, *audio_frames = _frames(mp3)
    info = _info(mp3[: info_frame.length], info_frame.side_info)
    assert info.toc[0] == 0  # the Info frame is under 1/256 of a minute's bytes
    starts = [f.offset for f in audio_frames]
    for percent in range(100):
        byte = info.toc[percent] * info.bytes // 256
        landed = int(np.searchsorted(starts, byte, side="right")) - 1
        wanted = percent * len(audio_frames) // 100
        assert abs(landed - wanted) <= 1 + len(audio_frames) // 256, percent


def test_the_version_stated_is_the_encoders_own() -> None:
    """LAME stamps its version into the spare bits of quiet frames; the tag must name that
    one (the constant changes when lameenc ships another LAME)."""
    mp3 = master.encode(np.zeros(5 * 44100, dtype=np.float32), Audio())

    first = _frames(mp3)[0].length

    stamp = re.escape(xing.LAME_VERSION.rstrip()) + rb"[^0-9.]"  # then LAME's fill pattern
    assert re.search(stamp, mp3[first:])


def test_a_stream_that_is_not_mpeg_audio_is_refused() -> None:
    with pytest.raises(RunError, match="no MPEG-1/2 Layer III frame header at byte 0"):
        xing.with_info_frame(b"RIFF" + bytes(400), samples=100, source_rate=44100, quality=5)


def test_a_cut_stream_or_a_wrong_sample_count_is_refused() -> None:
    audio = Audio()
    programme, _ = _programme(2.0, audio.sample_rate)
    stream = master.encode(programme, audio)
    bare = stream[_frames(stream)[0].length :]

    with pytest.raises(RunError, match="last frame is cut short"):
        xing.with_info_frame(bare[:-10], samples=len(programme), source_rate=44100, quality=5)
    with pytest.raises(RunError, match="cannot hold"):
        xing.with_info_frame(bare, samples=len(programme) * 2, source_rate=44100, quality=5)
    with pytest.raises(RunError, match="resampled the episode from 48000 Hz to 44100 Hz"):
        xing.with_info_frame(bare, samples=len(programme), source_rate=48000, quality=5)
    assert xing.with_info_frame(bare, samples=len(programme), source_rate=44100, quality=5) == (
        stream
    )


def test_a_frame_too_small_for_the_tag_is_refused() -> None:
    """32 kbps stereo MPEG-1 frames are 104 bytes; the Info header needs 192 (LAME itself
    then writes none). castline's bitrates start at 64 kbps, where it fits."""
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(32)
    encoder.set_in_sample_rate(44100)
    encoder.set_out_sample_rate(44100)
    encoder.set_channels(2)
    pcm = np.zeros(2 * 44100 * 2, dtype=np.int16).tobytes()
    stream = bytes(encoder.encode(pcm)) + bytes(encoder.flush())

    with pytest.raises(RunError, match="a 32 kbps frame is too small for the Info header"):
        xing.with_info_frame(stream, samples=2 * 44100, source_rate=44100, quality=5)

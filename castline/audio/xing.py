"""The Info (Xing) header and LAME tag in the first frame of the episode's MP3.

Without them a player knows neither how long the episode is nor where a minute lies in the
file: it guesses from the file size and the first frame's bitrate (ID3 tags and cover art
included), and one tool was 2.7 s off. Nor does it know how many samples the encoder added
before and after the programme, so it cannot play the episode gapless or time it exactly.

LAME writes this frame itself only when it can go back and rewrite the file's start, which
lameenc's streaming interface never does: it turns the tag off (`lame_set_bWriteVbrTag(0)`) and
exposes neither `lame_get_lametag_frame` nor the encoder delay. So the frame is built here,
field by field as LAME's `VbrTag.c` builds it (http://gabriel.mp3-tech.org/mp3infotag.html),
from the encoded frames and the number of samples that went in. Settings lameenc does not
report (lowpass, ATH type, noise shaping, psychoacoustic flags, preset) are left at 0.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from fastcrc import crc16

from castline.errors import RunError

# the version string of the LAME lameenc 1.9 builds in (its get_lame_very_short_version());
# LAME also stamps "LAME4.0" into the stream's spare bits, and a test checks the two agree
LAME_VERSION = b"LAME4.0 "
ENCODER_DELAY = 576  # samples LAME puts before the first input sample (its ENCDELAY)
LAME_VBR_Q = 4  # LAME's default VBR quality, which its quality indicator counts even for CBR
TOC_ENTRIES = 100

_BITRATES_KBPS = {
    True: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1
    False: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2
}
_SAMPLE_RATES = {True: (44100, 48000, 32000), False: (22050, 24000, 16000)}
_XING_FLAGS = 0x1 | 0x2 | 0x4 | 0x8  # frames, bytes, TOC and quality indicator present
_LAME_TAG_SIZE = 36  # version string to tag CRC
_XING_SIZE = 4 + 4 + 4 + 4 + TOC_ENTRIES + 4
_STEREO_MODE = {0: 1, 1: 3, 2: 2, 3: 0}  # frame header's channel mode -> LAME tag's


@dataclass(frozen=True)
class FrameHeader:
    """The four-byte header of an MPEG-1 or MPEG-2 Layer III frame."""

    raw: bytes
    mpeg1: bool
    bitrate_kbps: int
    sample_rate: int
    padded: bool
    mode: int  # 0 stereo, 1 joint stereo, 2 dual channel, 3 mono

    @property
    def samples(self) -> int:
        return 1152 if self.mpeg1 else 576

    @property
    def length(self) -> int:
        """Bytes in the frame, this header included."""
        return (self.samples // 8) * self.bitrate_kbps * 1000 // self.sample_rate + self.padded

    @property
    def side_info(self) -> int:
        mono = self.mode == 3
        if self.mpeg1:
            return 17 if mono else 32
        return 9 if mono else 17


def read_header(data: bytes, offset: int) -> FrameHeader:
    """The frame header at `offset`; `RunError` if there is none (not LAME's output)."""
    if offset + 4 > len(data):
        raise RunError(f"the encoded MP3 ends in a partial frame header at byte {offset}")
    raw = data[offset : offset + 4]
    (word,) = struct.unpack(">I", raw)
    version, layer = (word >> 19) & 3, (word >> 17) & 3
    bitrate, rate = (word >> 12) & 15, (word >> 10) & 3
    if word >> 21 != 0x7FF or version not in (2, 3) or layer != 1 or rate == 3:
        raise RunError(
            f"the encoded MP3 has no MPEG-1/2 Layer III frame header at byte {offset} "
            f"({raw.hex()}); the encoder's output cannot be described"
        )
    mpeg1 = version == 3
    if bitrate in (0, 15):
        raise RunError(f"the encoded MP3 has a free-format or invalid bitrate at byte {offset}")
    return FrameHeader(
        raw=raw,
        mpeg1=mpeg1,
        bitrate_kbps=_BITRATES_KBPS[mpeg1][bitrate],
        sample_rate=_SAMPLE_RATES[mpeg1][rate],
        padded=bool((word >> 9) & 1),
        mode=(word >> 6) & 3,
    )


def frames(stream: bytes) -> list[tuple[int, FrameHeader]]:
    """Where each frame of a bare MPEG stream starts, and its header; the stream must end on
    a frame boundary."""
    found = []
    position = 0
    while position < len(stream):
        header = read_header(stream, position)
        found.append((position, header))
        position += header.length
    if position != len(stream):
        raise RunError(f"the encoded MP3's last frame is cut short ({position - len(stream)} B)")
    return found


def _toc(offsets: list[int], first: int, total: int) -> bytes:
    """For each whole percent of the playing time, where in the stream that frame starts,
    in 256ths of the stream's bytes (the Xing table players seek with)."""
    frames = len(offsets)
    return bytes(
        min(255, 256 * (first + offsets[percent * frames // TOC_ENTRIES]) // total)
        for percent in range(TOC_ENTRIES)
    )


def _source_frequency(rate: int) -> int:
    """The LAME tag's two-bit code for the input's sample rate, as LAME assigns it."""
    if rate <= 32000:
        return 0
    if rate == 48000:
        return 2
    return 3 if rate > 48000 else 1


def with_info_frame(stream: bytes, *, samples: int, source_rate: int, quality: int) -> bytes:
    """`stream` (LAME's CBR output for `samples` samples per channel at `source_rate`, fed
    at LAME quality `quality`) with an Info frame in front: frame count, byte count, seek
    table, and LAME's tag with the encoder delay and padding, so that decoders that read it
    play exactly the samples that went in."""
    found = frames(stream)
    if not found:
        return stream
    offsets = [offset for offset, _ in found]
    first = found[0][1]
    bitrates = {header.bitrate_kbps for _, header in found}
    if first.sample_rate != source_rate:
        raise RunError(
            f"LAME resampled the episode from {source_rate} Hz to {first.sample_rate} Hz; "
            "its delay and padding could not be stated"
        )
    padding = len(offsets) * first.samples - ENCODER_DELAY - samples
    if not 0 <= padding < 1 << 12:
        raise RunError(
            f"{len(offsets)} MP3 frames cannot hold {samples} samples after LAME's delay "
            f"({padding} samples of padding); the encoded stream is incomplete"
        )
    # the Info frame copies the first frame's header, unpadded and without a CRC; its side
    # information is all zeros, so a decoder that ignores the tag plays one frame of silence
    (word,) = struct.unpack(">I", first.raw)
    header = FrameHeader(
        raw=struct.pack(">I", (word | 0x10000) & ~0x200),
        mpeg1=first.mpeg1,
        bitrate_kbps=first.bitrate_kbps,
        sample_rate=first.sample_rate,
        padded=False,
        mode=first.mode,
    )
    start = 4 + header.side_info
    if start + _XING_SIZE + _LAME_TAG_SIZE > header.length:
        raise RunError(
            f"a {header.bitrate_kbps} kbps frame is too small for the Info header; "
            "choose a higher audio.bitrate_kbps"
        )
    total = header.length + len(stream)
    constant = len(bitrates) == 1
    xing = (
        (b"Info" if constant else b"Xing")
        + struct.pack(">III", _XING_FLAGS, len(offsets), total)
        + _toc(offsets, header.length, total)
        + struct.pack(">I", max(0, 100 - 10 * LAME_VBR_Q - quality))
    )
    frequency = _source_frequency(source_rate)
    lame = (
        LAME_VERSION.ljust(9, b"\0")
        + bytes([1 if constant else 0, 0])  # revision 0 and method (1: CBR); lowpass unknown
        + bytes(8)  # peak and replay gains: not measured by LAME here
        + bytes([0, min(255, first.bitrate_kbps)])  # flags and ATH unknown; the bitrate
        + (ENCODER_DELAY << 12 | padding).to_bytes(3, "big")
        + bytes([frequency << 6 | _STEREO_MODE[first.mode] << 2, 0])  # misc; MP3 gain 0
        + struct.pack(">HIH", 0, total, crc16.arc(stream))  # preset; music length and CRC
    )
    body = header.raw + bytes(header.side_info) + xing + lame
    body += struct.pack(">H", crc16.arc(body))
    return body + bytes(header.length - len(body)) + stream

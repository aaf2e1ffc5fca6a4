"""The TTS engine interface.

An engine turns one turn's text into mono speech. Engines are built from a setup (the name the
show uses, the model, the endpoint settings and the key), so one engine class serves every
server that speaks its wire format: `api: openai` also reaches a local OpenAI-compatible speech
server.
"""

from __future__ import annotations

import importlib.util
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from math import ceil
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from castline.config import Host, ProviderSettings
from castline.llm.base import Usage
from castline.llm.wire import missing_sdk

if TYPE_CHECKING:  # numpy is imported where samples are made, not to plan or price a run
    import numpy as np
    import numpy.typing as npt

# How a vendor bills speech: per character of text, or per token (text in, audio out).
Billing = Literal["characters", "tokens"]
NORMAL_WORDS_PER_MINUTE = 150  # the pace cloud voices speak at with speed 1.0
AUDIO_TOKENS_PER_SECOND = 32  # how token-billed engines count speech (Gemini's published rate)
SLOWEST_SHARE = 3.0  # a clip may last this many times what its words imply, and no more
TOKEN_BILLED_PIECE = 4000  # characters per request of a token-billed engine


def most_audio_tokens(text: str, words_per_minute: int) -> int:
    """The audio tokens a token-billed engine may return for `text`: what bounds its output
    (so a clip can never cost more than its reservation holds)."""
    seconds = (len(text.split()) / words_per_minute * 60 + 2) * SLOWEST_SHARE
    return ceil(seconds * AUDIO_TOKENS_PER_SECOND)


@dataclass(frozen=True)
class Speech:
    """Mono audio as float32 samples in [-1, 1], what the vendor billed for it (token-billed
    engines only), and whether the engine said all of the text."""

    samples: npt.NDArray[np.float32]
    sample_rate: int
    usage: Usage | None = None
    complete: bool = True  # False: the engine stopped before the end of the text

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def pcm16(data: bytes, sample_rate: int, usage: Usage | None = None) -> Speech:
    """Speech from raw little-endian 16-bit PCM, the format every cloud engine can send."""
    import numpy as np

    samples = np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2")
    return Speech(samples.astype(np.float32) / 32768.0, sample_rate, usage)


@dataclass(frozen=True)
class EngineSetup:
    name: str  # as the show names the engine (`audio.engine`)
    model: str  # `audio.model`, or the engine's default
    settings: ProviderSettings
    api_key: str | None = field(repr=False)  # never in a message or a log


class Engine(ABC):
    """One way to speak. Class attributes describe the engine before it is built (so a run can
    be planned and priced without a key); instances speak."""

    default_model: ClassVar[str]
    billing: ClassVar[Billing] = "characters"
    key_variables: ClassVar[tuple[str, ...]] = ()  # where its key is looked for; () needs none
    sdk: ClassVar[tuple[str, str, str] | None] = None  # (module, package, castline extra)
    max_characters: ClassVar[int] = 4000  # the longest text one request may carry
    # The speed factors (of the normal 150 words a minute) the engine can be asked for; an
    # engine with no speed setting speaks at its own pace: (1.0, 1.0).
    speed_range: ClassVar[tuple[float, float]] = (0.0, float("inf"))

    def __init__(self, setup: EngineSetup) -> None:
        self.name = setup.name
        self.model = setup.model

    @classmethod
    def pace(cls, words_per_minute: int) -> int:
        """The pace the engine speaks at when asked for `words_per_minute`: what a clip's
        length is judged against."""
        low, high = cls.speed_range
        return round(
            min(
                max(words_per_minute, NORMAL_WORDS_PER_MINUTE * low), NORMAL_WORDS_PER_MINUTE * high
            )
        )

    @classmethod
    def check_available(cls) -> None:
        """Raise `ConfigError` now if the engine's SDK is not installed, before a run spends."""
        if cls.sdk is None:
            return
        try:
            found = importlib.util.find_spec(cls.sdk[0]) is not None
        except ModuleNotFoundError:  # the parent package of a dotted name is missing
            found = False
        if not found:
            raise missing_sdk(cls.sdk[1], cls.sdk[2])

    @property
    def route(self) -> str:
        """What its speech is priced as ("provider:model")."""
        return f"{self.name}:{self.model}"

    @abstractmethod
    def synthesize(self, text: str, voice: str, *, words_per_minute: int) -> Speech:
        """Speak `text` with `voice`; raise `ProviderError` when the engine fails."""

    @abstractmethod
    def default_voice(self, host_index: int) -> str:
        """A distinct voice for the n-th host when the show names none."""

    @classmethod
    def check_voices(cls, name: str, hosts: list[Host], show_dir: Path) -> None:
        """Raise `ConfigError` when these hosts cannot be voiced as `audio.engine: NAME` (voice
        files are relative to `show_dir`); called when a run is planned, so a show that cannot
        be voiced fails before anything is spent."""
        return  # by default every host has a voice: the show's, or a distinct default

    def voice_of(self, host: Host, host_index: int, show_dir: Path) -> str:
        """The voice `host` speaks with: the show's choice for this engine, or a default.
        `show_dir` (the show bible's directory) is for engines whose voices are files."""
        return host.voices.get(self.name) or self.default_voice(host_index)


_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")


def pieces(text: str, limit: int) -> list[str]:
    """`text` cut at sentence ends (or, for a run-on sentence, at spaces) into pieces of at most
    `limit` characters, so a long turn fits an engine's request limit without cutting a word."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return [text]
    result: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        words = sentence.split(" ") if len(sentence) > limit else [sentence]
        for word in words:
            joined = f"{current} {word}" if current else word
            if len(joined) <= limit:
                current = joined
                continue
            if current:
                result.append(current)
            current = word[:limit]
    if current:
        result.append(current)
    return result


def speed_for(words_per_minute: int, low: float, high: float) -> float:
    """The speed factor that makes a voice speaking at the normal pace reach the show's."""
    return round(min(high, max(low, words_per_minute / NORMAL_WORDS_PER_MINUTE)), 2)


def joined(parts: list[Speech]) -> Speech:
    """Pieces of one turn, back to back, with their usage added up."""
    if len(parts) == 1:
        return parts[0]
    import numpy as np

    usage = None
    for part in parts:
        if part.usage is not None:
            usage = part.usage if usage is None else usage + part.usage
    samples = np.concatenate([part.samples for part in parts]).astype(np.float32)
    complete = all(part.complete and len(part.samples) for part in parts)
    return Speech(samples, parts[0].sample_rate, usage, complete)

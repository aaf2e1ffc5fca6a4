"""Piper: neural voices that run offline on the CPU (onnxruntime), free, through the optional
`piper-tts` package. There is no built-in voice: each host names a Piper voice model, a
`NAME.onnx` file with its `NAME.onnx.json` beside it, as the rhasspy/piper-voices collection
ships them. Models are loaded once per path (loading takes seconds) and shared by every clip."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from castline.audio.tts.base import NORMAL_WORDS_PER_MINUTE, Engine, EngineSetup, Speech
from castline.config import Host
from castline.errors import ConfigError, ProviderError
from castline.llm.wire import missing_sdk

if TYPE_CHECKING:
    from piper import PiperVoice

# Piper's pace is the phoneme length scale: 1.0 is the voice's own pace (about 150 words a
# minute), 2.0 twice as slow. Beyond these bounds the voices stop sounding like speech.
SLOWEST, FASTEST = 2.0, 0.5
WHERE_VOICES_ARE = (
    "Piper voices (a .onnx model with its .onnx.json) come from the rhasspy/piper-voices "
    "collection, e.g. en_US-lessac-medium.onnx"
)


def length_scale(words_per_minute: int) -> float:
    """The length scale that makes a voice speaking at the normal pace reach the show's."""
    return round(min(SLOWEST, max(FASTEST, NORMAL_WORDS_PER_MINUTE / words_per_minute)), 3)


def _field(name: str, host: Host, host_index: int) -> str:
    return f"hosts[{host_index}].voices.{name} (host {host.name!r})"


def _no_voice(name: str, fields: list[str]) -> ConfigError:
    return ConfigError(
        f"`audio.engine: {name}` has no built-in voice: set {', '.join(fields)} to the path of "
        f"a Piper voice model (relative to the show bible), e.g. `voices: {{{name}: "
        f"voices/en_US-lessac-medium.onnx}}`. {WHERE_VOICES_ARE}"
    )


def _model_path(name: str, host: Host, host_index: int, show_dir: Path) -> Path:
    where = _field(name, host, host_index)
    if not host.voices.get(name):
        raise _no_voice(name, [where])
    path = (show_dir / Path(host.voices[name]).expanduser()).resolve()
    for needed in (path, Path(f"{path}.json")):
        if not needed.is_file():
            raise ConfigError(
                f"{where}: the Piper voice file {needed} does not exist (a model "
                f"NAME.onnx needs its NAME.onnx.json beside it). {WHERE_VOICES_ARE}"
            )
    return path


class PiperEngine(Engine):
    default_model: ClassVar[str] = "piper"
    sdk = ("piper", "piper-tts", "piper")
    speed_range = (1 / SLOWEST, 1 / FASTEST)

    def __init__(self, setup: EngineSetup) -> None:
        super().__init__(setup)
        try:
            from piper import PiperVoice, SynthesisConfig
        except ImportError:
            raise missing_sdk("piper-tts", "piper") from None
        self._load_voice = PiperVoice.load
        self._config = SynthesisConfig
        self._voices: dict[str, PiperVoice] = {}
        self._lock = threading.Lock()

    @classmethod
    def check_voices(cls, name: str, hosts: list[Host], show_dir: Path) -> None:
        missing = [_field(name, h, i) for i, h in enumerate(hosts) if not h.voices.get(name)]
        if missing:
            raise _no_voice(name, missing)
        for index, host in enumerate(hosts):
            _model_path(name, host, index, show_dir)

    def voice_of(self, host: Host, host_index: int, show_dir: Path) -> str:
        """The absolute path of the host's voice model, checked to exist with its config."""
        return str(_model_path(self.name, host, host_index, show_dir))

    def default_voice(self, host_index: int) -> str:
        raise _no_voice(self.name, [f"hosts[{host_index}].voices.{self.name}"])

    def synthesize(self, text: str, voice: str, *, words_per_minute: int) -> Speech:
        import numpy as np

        model = self._voice(voice)
        settings = self._config(length_scale=length_scale(words_per_minute))
        try:
            chunks = [chunk.audio_float_array for chunk in model.synthesize(text, settings)]
        except Exception as exc:
            raise ProviderError(f"piper could not speak {text[:60]!r} with {voice}: {exc}") from exc
        samples = np.concatenate(chunks) if chunks else np.zeros(0)
        return Speech(samples.astype(np.float32), model.config.sample_rate)

    def _voice(self, path: str) -> PiperVoice:
        """The model at `path`, loaded on first use; one lock, so a model is never loaded twice."""
        with self._lock:
            if path not in self._voices:
                self._voices[path] = self._open(Path(path))
            return self._voices[path]

    def _open(self, path: Path) -> PiperVoice:
        for needed in (path, Path(f"{path}.json")):
            if not needed.is_file():
                raise ConfigError(f"the Piper voice file {needed} does not exist")
        try:
            return self._load_voice(path)
        except Exception as exc:
            raise ConfigError(
                f"the Piper voice model {path} cannot be loaded ({type(exc).__name__}: {exc}); "
                f"is it a Piper voice with a matching .onnx.json? {WHERE_VOICES_ARE}"
            ) from None

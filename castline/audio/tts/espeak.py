"""eSpeak NG through the shared library the `espeakng-loader` wheel ships: offline, free, no
system package. The library keeps global state, so calls are serialised."""

from __future__ import annotations

import ctypes
import threading
from typing import TYPE_CHECKING, Any, ClassVar

from castline.audio.tts.base import Engine, EngineSetup, Speech
from castline.errors import ConfigError, ProviderError

if TYPE_CHECKING:
    import numpy as np

_SYNCHRONOUS = 2  # AUDIO_OUTPUT_SYNCHRONOUS
_UTF8 = 1  # espeakCHARS_UTF8
_RATE = 1  # espeakRATE
# Distinct voices for up to four hosts: variants of two accents.
DEFAULT_VOICES = ("en-us+f3", "en+m3", "en-us+m4", "en-gb-x-rp+f4")
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _Library:
    """The espeak-ng library: one per process, since it holds one voice, one callback and one
    output buffer for everyone."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError:  # pragma: no cover - a core dependency
            raise ConfigError(
                "the espeakng-loader package is missing; reinstall castline"
            ) from None
        self._lock = threading.Lock()
        self._lib: Any = ctypes.cdll.LoadLibrary(espeakng_loader.get_library_path())
        self._lib.espeak_Initialize.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        data = str(espeakng_loader.get_data_path()).encode()
        self.sample_rate = int(self._lib.espeak_Initialize(_SYNCHRONOUS, 0, data, 0))
        if self.sample_rate <= 0:
            raise ProviderError("espeak-ng could not start (its data files are missing?)")
        self._chunks: list[np.ndarray[Any, Any]] = []
        self._callback = _CALLBACK(self._collect)  # kept alive as long as the engine
        self._lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav: Any, count: int, _events: Any) -> int:
        import numpy as np

        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0

    def speak(self, text: str, voice: str, *, words_per_minute: int) -> Speech:
        import numpy as np

        encoded = text.encode("utf-8")
        with self._lock:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ConfigError(
                    f"espeak-ng has no voice {voice!r}; use a name like 'en-us+f3', 'en+m3' or "
                    "'en-gb-x-rp' (a language, then +variant)"
                )
            self._lib.espeak_SetParameter(_RATE, int(words_per_minute), 0)
            self._chunks = []
            status = self._lib.espeak_Synth(encoded, len(encoded) + 1, 0, 0, 0, _UTF8, None, None)
            self._lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        if status != 0:
            raise ProviderError(f"espeak-ng failed on {text[:60]!r} (status {status})")
        samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        return Speech((samples.astype(np.float32) / 32768.0), self.sample_rate)


_library: _Library | None = None
_library_lock = threading.Lock()


def _shared() -> _Library:
    global _library
    with _library_lock:
        if _library is None:
            _library = _Library()
        return _library


class EspeakEngine(Engine):
    default_model: ClassVar[str] = "espeak-ng"
    speed_range = (80 / 150, 450 / 150)  # espeak-ng speaks 80 to 450 words a minute

    def __init__(self, setup: EngineSetup) -> None:
        super().__init__(setup)
        self._library = _shared()

    def default_voice(self, host_index: int) -> str:
        return DEFAULT_VOICES[host_index % len(DEFAULT_VOICES)]

    def synthesize(self, text: str, voice: str, *, words_per_minute: int) -> Speech:
        return self._library.speak(text, voice, words_per_minute=words_per_minute)

"""The TTS engine interface and its registry."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from castline.errors import ProviderNotFound


@dataclass(frozen=True)
class Speech:
    """Mono audio as float32 samples in [-1, 1]."""

    samples: npt.NDArray[np.float32]
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


class Engine(ABC):
    name: ClassVar[str]
    # What the engine's use is priced as, per character, in the budget (castline's price table).
    route: ClassVar[str]

    @abstractmethod
    def synthesize(self, text: str, voice: str, *, words_per_minute: int) -> Speech:
        """Speak `text` with `voice`; raise `ProviderError` when the engine fails."""

    @abstractmethod
    def default_voice(self, host_index: int) -> str:
        """A distinct voice for the n-th host when the show names none."""


_engines: dict[str, Callable[[], Engine]] = {}
_instances: dict[str, Engine] = {}
_lock = threading.Lock()


def register_engine(name: str, factory: Callable[[], Engine]) -> None:
    with _lock:
        _engines[name] = factory
        _instances.pop(name, None)


def get_engine(name: str) -> Engine:
    with _lock:
        if name not in _instances:
            factory = _engines.get(name)
            if factory is None:
                known = ", ".join(sorted(_engines))
                raise ProviderNotFound(
                    f"no TTS engine named {name!r} (available: {known}); set `audio.engine`"
                )
            _instances[name] = factory()
        return _instances[name]

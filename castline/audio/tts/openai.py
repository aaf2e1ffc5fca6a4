"""OpenAI's speech endpoint through the official `openai` SDK, and any server that speaks it
(a local OpenAI-compatible TTS server is `api: openai` with its `base_url`). Raw 24 kHz PCM is
asked for, so no decoder is involved; the show's pace is reached with the `speed` setting."""

from __future__ import annotations

from typing import ClassVar

from castline.audio.tts.base import Engine, EngineSetup, Speech, joined, pcm16, pieces, speed_for
from castline.errors import ProviderError
from castline.llm.openai_compat import failure_of
from castline.llm.wire import missing_sdk

SAMPLE_RATE = 24_000  # what `response_format: pcm` gives
DEFAULT_VOICES = ("nova", "onyx", "shimmer", "echo")  # distinct, and spoken by every model


class OpenAISpeechEngine(Engine):
    default_model: ClassVar[str] = "tts-1-hd"
    sdk = ("openai", "openai", "openai")
    key_variables: ClassVar[tuple[str, ...]] = ("OPENAI_API_KEY",)
    max_characters: ClassVar[int] = 4096
    speed_range = (0.25, 4.0)

    def __init__(self, setup: EngineSetup) -> None:
        super().__init__(setup)
        try:
            import openai
        except ImportError:  # pragma: no cover - a core dependency
            raise missing_sdk("openai", "openai") from None
        self._key = setup.api_key
        # no SDK retries: the voice stage retries, and records every attempt
        self.client = openai.OpenAI(
            api_key=setup.api_key or "not-needed",  # a local server takes any key
            base_url=setup.settings.base_url,
            max_retries=0,
            timeout=setup.settings.timeout_s,
        )

    def default_voice(self, host_index: int) -> str:
        return DEFAULT_VOICES[host_index % len(DEFAULT_VOICES)]

    def synthesize(self, text: str, voice: str, *, words_per_minute: int) -> Speech:
        speed = speed_for(words_per_minute, *self.speed_range)
        return joined([self._speak(piece, voice, speed) for piece in pieces(text, 4096)])

    def _speak(self, text: str, voice: str, speed: float) -> Speech:
        try:
            reply = self.client.audio.speech.create(
                model=self.model, voice=voice, input=text, response_format="pcm", speed=speed
            )
            data = reply.read()
        except Exception as exc:
            raise failure_of(self.name, self.model, exc, self._key) from None
        if not data:
            raise ProviderError(f"{self.name} {self.model}: an empty reply", kind="server_error")
        return pcm16(data, SAMPLE_RATE)

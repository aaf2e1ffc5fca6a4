"""ElevenLabs through its official SDK (`pip install 'castline[elevenlabs]'`). Voices are
ElevenLabs voice ids; raw 24 kHz PCM is asked for, so no decoder is involved."""

from __future__ import annotations

from typing import Any, ClassVar

from castline.audio.tts.base import (
    Engine,
    EngineSetup,
    Speech,
    joined,
    pcm16,
    pieces,
    speed_for,
)
from castline.errors import ProviderError
from castline.llm.wire import failure, missing_sdk

SAMPLE_RATE = 24_000
OUTPUT_FORMAT = "pcm_24000"
# Premade voices of the ElevenLabs library: Rachel, Adam, Bella, Antoni.
DEFAULT_VOICES = (
    "21m00Tcm4TlvDq8ikWAM",
    "pNInz6obpgDQGcFmaJgB",
    "EXAVITQu4vr4xnSDxMaL",
    "ErXwobaYiN019PkySvjV",
)


class ElevenLabsEngine(Engine):
    default_model: ClassVar[str] = "eleven_multilingual_v2"
    sdk = ("elevenlabs", "elevenlabs", "elevenlabs")
    key_variables: ClassVar[tuple[str, ...]] = ("ELEVENLABS_API_KEY",)
    max_characters: ClassVar[int] = 5000
    speed_range = (0.7, 1.2)  # what `voice_settings.speed` accepts

    def __init__(self, setup: EngineSetup) -> None:
        super().__init__(setup)
        try:
            from elevenlabs.client import ElevenLabs
            from elevenlabs.core.api_error import ApiError
            from elevenlabs.types.voice_settings import VoiceSettings
        except ImportError:
            raise missing_sdk("elevenlabs", "elevenlabs") from None
        self._key = setup.api_key
        self._api_error = ApiError
        self._settings = VoiceSettings
        self.client = ElevenLabs(
            api_key=setup.api_key,
            base_url=setup.settings.base_url or "https://api.elevenlabs.io",
            timeout=setup.settings.timeout_s,
        )

    def default_voice(self, host_index: int) -> str:
        return DEFAULT_VOICES[host_index % len(DEFAULT_VOICES)]

    def synthesize(self, text: str, voice: str, *, words_per_minute: int) -> Speech:
        speed = speed_for(words_per_minute, *self.speed_range)
        parts = pieces(text, self.max_characters)
        return joined([self._speak(part, voice, speed) for part in parts])

    def _speak(self, text: str, voice: str, speed: float) -> Speech:
        # at the normal pace the voice's own stored settings are left alone (`...` is the SDK's
        # "not sent")
        settings: Any = self._settings(speed=speed) if speed != 1.0 else ...
        try:
            stream = self.client.text_to_speech.convert(
                voice,
                text=text,
                model_id=self.model,
                output_format=OUTPUT_FORMAT,
                request_options={"max_retries": 0},  # the voice stage retries
                voice_settings=settings,
            )
            data = b"".join(stream)
        except Exception as exc:
            raise self._failure(exc) from None
        if not data:
            raise ProviderError(f"{self.name} {self.model}: an empty reply", kind="server_error")
        return pcm16(data, SAMPLE_RATE)

    def _failure(self, exc: Exception) -> ProviderError:
        if isinstance(exc, self._api_error):
            body: Any = exc.body
            detail = body.get("detail") if isinstance(body, dict) else None
            if isinstance(detail, dict):
                status, message = detail.get("status"), str(detail.get("message") or detail)
            else:
                status, message = None, str(detail or body)
            headers = exc.headers or {}
            return failure(
                self.name,
                self.model,
                exc.status_code,
                message,
                error_type=str(status) if status else None,
                retry_after=headers.get("retry-after"),
                secret=self._key,
            )
        kind = "timeout" if "timeout" in type(exc).__name__.lower() else None
        if kind:
            return ProviderError(f"{self.name} {self.model}: timeout", kind="timeout")
        return failure(
            self.name, self.model, None, f"{type(exc).__name__}: {exc}", secret=self._key
        )

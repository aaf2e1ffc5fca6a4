"""Gemini's speech models through `google-genai`: `generate_content` asking for audio, one
prebuilt voice per host. Billed per token (text in, audio out), so every clip is settled from
the usage the reply reports.

Each turn is its own request even though Gemini can voice two speakers at once: one clip per
turn is what lets an edited turn be re-voiced alone and the transcript carry exact times.
"""

from __future__ import annotations

import base64
from typing import Any, ClassVar

from castline.audio.tts.base import (
    TOKEN_BILLED_PIECE,
    Engine,
    EngineSetup,
    Speech,
    joined,
    most_audio_tokens,
    pcm16,
    pieces,
)
from castline.llm.gemini import failure_of, usage_of
from castline.llm.wire import missing_sdk

SAMPLE_RATE = 24_000  # Gemini speaks 16-bit PCM at 24 kHz
DEFAULT_VOICES = ("Kore", "Puck", "Aoede", "Charon")


class GeminiSpeechEngine(Engine):
    default_model: ClassVar[str] = "gemini-3.8-flash-tts"
    sdk = ("google.genai", "google-genai", "gemini")
    billing = "tokens"
    key_variables: ClassVar[tuple[str, ...]] = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    max_characters: ClassVar[int] = TOKEN_BILLED_PIECE
    speed_range = (1.0, 1.0)  # no speed setting: it speaks at its own pace

    def __init__(self, setup: EngineSetup) -> None:
        super().__init__(setup)
        try:
            from google import genai
            from google.genai import types
        except ImportError:  # pragma: no cover - a core dependency
            raise missing_sdk("google-genai", "gemini") from None
        self._key = setup.api_key
        self._types = types
        options = types.HttpOptions(
            base_url=setup.settings.base_url, timeout=int(setup.settings.timeout_s * 1000)
        )
        self.client = genai.Client(api_key=setup.api_key, http_options=options)

    def default_voice(self, host_index: int) -> str:
        return DEFAULT_VOICES[host_index % len(DEFAULT_VOICES)]

    def synthesize(self, text: str, voice: str, *, words_per_minute: int) -> Speech:
        parts = pieces(text, self.max_characters)
        return joined([self._speak(part, voice, words_per_minute) for part in parts])

    def _speak(self, text: str, voice: str, words_per_minute: int) -> Speech:
        types = self._types
        config = types.GenerateContentConfig(
            response_modalities=["AUDIO"],
            # the bound the clip's reservation was made for
            max_output_tokens=most_audio_tokens(text, words_per_minute),
            speech_config=types.SpeechConfig(
                voice_config=types.VoiceConfig(
                    prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=voice)
                )
            ),
        )
        try:
            reply = self.client.models.generate_content(
                model=self.model, contents=text, config=config
            )
        except Exception as exc:
            raise failure_of(self.name, self.model, exc, self._key) from None
        # a reply without audio, or cut at the token limit, was billed all the same: it is a
        # bad take (checked, billed, made once more), not a failed request
        speech = pcm16(_audio(reply), SAMPLE_RATE, usage_of(reply.usage_metadata))
        stopped = [str(c.finish_reason) for c in reply.candidates or []]
        if not len(speech.samples) or any("MAX_TOKENS" in reason for reason in stopped):
            return Speech(speech.samples, SAMPLE_RATE, speech.usage, complete=False)
        return speech


def _audio(reply: Any) -> bytes:
    for candidate in reply.candidates or []:
        for part in getattr(candidate.content, "parts", None) or []:
            inline = getattr(part, "inline_data", None)
            if inline is not None and inline.data:
                data = inline.data
                return data if isinstance(data, bytes) else base64.b64decode(data)
    return b""

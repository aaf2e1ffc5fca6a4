"""The speech endpoints: OpenAI's `/v1/audio/speech`, ElevenLabs' `/v1/text-to-speech/{voice}`
and Gemini's `generateContent` asked for audio.

The audio is a stand-in voice: one voiced burst per word (a fundamental set by the voice, with
harmonics and a syllable envelope), at 150 words a minute times the requested speed, as 16-bit
PCM at 24 kHz. Deterministic, so a test can compare clips; never silent unless the SILENT_AUDIO
fault asks for it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from math import ceil
from typing import Any

import numpy as np
import soundfile as sf

from castline.text import estimate_tokens

from .wire import Fault, RequestError, Response, json_response, new_id

SAMPLE_RATE = 24_000
WORDS_PER_MINUTE = 150
GEMINI_AUDIO_TOKENS_PER_SECOND = 25
OPENAI_MAX_INPUT = 4096
ELEVENLABS_MAX_INPUT = 5000


def voice_pcm(text: str, voice: str, *, speed: float = 1.0, silent: bool = False) -> bytes:
    """The stand-in voice speaking `text`: 16-bit little-endian PCM at `SAMPLE_RATE`."""
    words = text.split()
    seconds_per_word = 60 / (WORDS_PER_MINUTE * speed)
    per_word = int(seconds_per_word * SAMPLE_RATE)
    voiced = int(per_word * 0.8)
    pitch = 95 + int(hashlib.sha256(voice.encode()).hexdigest()[:4], 16) % 140
    t = np.arange(voiced) / SAMPLE_RATE
    envelope = np.sin(np.pi * np.arange(voiced) / voiced) ** 2
    signal = np.zeros(per_word * len(words), dtype=np.float64)
    if not silent:
        for index, word in enumerate(words):
            f0 = pitch * (1 + 0.04 * (len(word) % 5))
            burst = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in (1, 2, 3))
            start = index * per_word
            signal[start : start + voiced] = 0.3 * envelope * burst
    return (np.clip(signal, -1, 1) * 32767).astype("<i2").tobytes()


def wav(pcm: bytes) -> bytes:
    buffer = io.BytesIO()
    samples = np.frombuffer(pcm, dtype="<i2")
    sf.write(buffer, samples, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _seconds(pcm: bytes) -> float:
    return len(pcm) / 2 / SAMPLE_RATE


# OpenAI ---------------------------------------------------------------------------------------


def openai_speech(body: dict[str, Any], fault: Fault | None) -> Response:
    text, voice = body.get("input"), body.get("voice")
    if not isinstance(text, str) or not text.strip():
        raise RequestError("'input' is required")
    if len(text) > OPENAI_MAX_INPUT:
        raise RequestError(f"'input' is longer than {OPENAI_MAX_INPUT} characters")
    if not isinstance(voice, str) or not voice:
        raise RequestError("'voice' is required")
    speed = float(body.get("speed") or 1.0)
    if not 0.25 <= speed <= 4.0:
        raise RequestError("'speed' must be between 0.25 and 4.0")
    pcm = voice_pcm(text, voice, speed=speed, silent=fault is Fault.SILENT_AUDIO)
    fmt = body.get("response_format") or "mp3"
    if fmt == "pcm":
        return Response(200, pcm, content_type="application/octet-stream")
    if fmt == "wav":
        return Response(200, wav(pcm), content_type="audio/wav")
    raise RequestError(f"fake_api serves response_format pcm and wav, not {fmt!r}")


# ElevenLabs -----------------------------------------------------------------------------------

_ELEVENLABS_ERRORS: dict[Fault, tuple[int, str, str]] = {
    Fault.RATE_LIMIT: (429, "too_many_concurrent_requests", "Too many concurrent requests."),
    Fault.OVERLOADED: (503, "system_busy", "The system is experiencing heavy traffic."),
    Fault.SERVER_ERROR: (500, "internal_error", "An internal error occurred."),
    Fault.NOT_FOUND: (404, "model_not_found", "A model with model ID {model} does not exist."),
    Fault.SPEND_LIMIT: (401, "quota_exceeded", "This request exceeds your quota."),
    Fault.INVALID_REQUEST: (400, "invalid_request", "The request is invalid."),
}


def error(
    fault: Fault, model: str, message: str | None = None, retry_after: str | None = None
) -> Response:
    """An ElevenLabs error: `{"detail": {"status": ..., "message": ...}}`."""
    status, code, default = _ELEVENLABS_ERRORS[fault]
    body = {"detail": {"status": code, "message": message or default.format(model=model)}}
    headers = {"request-id": new_id("", 20)}
    if fault is Fault.RATE_LIMIT and retry_after is not None:
        headers["retry-after"] = retry_after
    return json_response(status, body, headers)


def elevenlabs_speech(
    body: dict[str, Any], voice: str, output_format: str, fault: Fault | None
) -> Response:
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise RequestError("'text' is required")
    if len(text) > ELEVENLABS_MAX_INPUT:
        raise RequestError(f"'text' is longer than {ELEVENLABS_MAX_INPUT} characters")
    if output_format != f"pcm_{SAMPLE_RATE}":
        raise RequestError(f"fake_api serves output_format pcm_{SAMPLE_RATE}, not {output_format}")
    speed = float((body.get("voice_settings") or {}).get("speed") or 1.0)
    if not 0.7 <= speed <= 1.2:
        raise RequestError("voice_settings.speed must be between 0.7 and 1.2")
    pcm = voice_pcm(text, voice, speed=speed, silent=fault is Fault.SILENT_AUDIO)
    return Response(200, pcm, content_type="audio/pcm", headers={"request-id": new_id("", 20)})


# Gemini ---------------------------------------------------------------------------------------


def wants_audio(body: bytes) -> bool:
    try:
        config = json.loads(body or b"{}").get("generationConfig") or {}
    except (ValueError, AttributeError):
        return False
    return "AUDIO" in (config.get("responseModalities") or [])


def _field(parent: dict[str, Any], camel: str) -> dict[str, Any]:
    """A nested object by its JSON name or its proto name, as Google's servers accept both."""
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
    value = parent.get(camel) or parent.get(snake) or {}
    return value if isinstance(value, dict) else {}


def gemini_speech(body: dict[str, Any], model: str, fault: Fault | None) -> Response:
    texts = [
        part.get("text", "")
        for content in body.get("contents") or []
        for part in content.get("parts") or []
    ]
    text = " ".join(t for t in texts if t)
    if not text.strip():
        raise RequestError("contents must carry the text to speak")
    config = _field(body, "generationConfig")
    voice = _field(_field(_field(config, "speechConfig"), "voiceConfig"), "prebuiltVoiceConfig")
    voice = voice.get("voiceName") or voice.get("voice_name")
    if not voice:
        raise RequestError("speechConfig.voiceConfig.prebuiltVoiceConfig.voiceName is required")
    pcm = voice_pcm(text, voice, silent=fault is Fault.SILENT_AUDIO)
    prompt = estimate_tokens(text)
    audio = ceil(_seconds(pcm) * GEMINI_AUDIO_TOKENS_PER_SECOND)
    finish = "STOP"
    limit = config.get("maxOutputTokens") or config.get("max_output_tokens")
    if isinstance(limit, int) and audio > limit:  # the speech stops where the tokens run out
        samples = int(limit / GEMINI_AUDIO_TOKENS_PER_SECOND * SAMPLE_RATE)
        pcm, audio, finish = pcm[: samples * 2], limit, "MAX_TOKENS"
    payload = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {
                            "inlineData": {
                                "mimeType": f"audio/L16;codec=pcm;rate={SAMPLE_RATE}",
                                "data": base64.b64encode(pcm).decode(),
                            }
                        }
                    ],
                },
                "finishReason": finish,
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": prompt,
            "candidatesTokenCount": audio,
            "totalTokenCount": prompt + audio,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
            "candidatesTokensDetails": [{"modality": "AUDIO", "tokenCount": audio}],
        },
        "modelVersion": model,
        "responseId": new_id(""),
    }
    return json_response(200, payload)

"""Text-to-speech engines behind one interface, picked by the show's `audio.engine`."""

from castline.audio.tts.base import Engine, EngineSetup, Speech
from castline.audio.tts.elevenlabs import ElevenLabsEngine
from castline.audio.tts.espeak import EspeakEngine
from castline.audio.tts.gemini import GeminiSpeechEngine
from castline.audio.tts.openai import OpenAISpeechEngine
from castline.audio.tts.piper import PiperEngine
from castline.audio.tts.registry import Voicing, build, plan_voicing, register_engine

__all__ = [
    "Engine",
    "EngineSetup",
    "Speech",
    "Voicing",
    "build",
    "plan_voicing",
    "register_engine",
]

register_engine("espeak", EspeakEngine)
register_engine("piper", PiperEngine)
register_engine("openai", OpenAISpeechEngine)
register_engine("elevenlabs", ElevenLabsEngine)
register_engine("gemini", GeminiSpeechEngine)

"""Text-to-speech engines behind one interface, picked by name from the show's `audio.engine`."""

from castline.audio.tts.base import Engine, Speech, get_engine, register_engine

__all__ = ["Engine", "Speech", "get_engine", "register_engine"]

from castline.audio.tts.espeak import EspeakEngine

register_engine("espeak", EspeakEngine)

"""The cloud speech engines through their real SDKs against the local fake API: the audio they
return, the pace they ask for, long turns split, usage where it is billed, failures classified
and keys kept out of every message."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from castline.audio.clips import ClipSpec, problem
from castline.audio.tts import Engine, Speech, build
from castline.audio.tts.base import most_audio_tokens, pieces
from castline.config import ProviderSettings, Show, load_show
from castline.errors import MissingCredentials, ProviderError
from tests.conftest import EXAMPLE
from tests.fake_api import FakeAPI, Fault

KEYS = {
    "openai": ("OPENAI_API_KEY", "sk-proj-fake-speech-5521aa"),
    "elevenlabs": ("ELEVENLABS_API_KEY", "el-fake-speech-key-90c1d2"),
    "gemini": ("GEMINI_API_KEY", "AIzaFakeSpeechKey0099zz"),
}
ENDPOINT = {"openai": "openai.speech", "elevenlabs": "elevenlabs.speech", "gemini": "gemini.speech"}
SENTENCE = "Cities run hot because asphalt and roofs store the sun's heat all day long."


@pytest.fixture
def fake() -> Iterator[FakeAPI]:
    with FakeAPI() as api:
        api.retry_after_s = 0.5
        yield api
        assert api.internal_errors == []


def engine(name: str, fake: FakeAPI, monkeypatch: pytest.MonkeyPatch) -> Engine:
    variable, key = KEYS[name]
    monkeypatch.setenv(variable, key)
    base = f"{fake.url}/v1" if name == "openai" else fake.url
    show = load_show(EXAMPLE / "show.yaml")
    wired = show.model_copy(update={"providers": {name: ProviderSettings(base_url=base)}})
    return build(name, None, wired)


@pytest.mark.parametrize("name", sorted(KEYS))
def test_an_engine_speaks_the_text_at_the_pace_asked(
    name: str, fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    speaker = engine(name, fake, monkeypatch)
    speech = speaker.synthesize(SENTENCE, speaker.default_voice(0), words_per_minute=150)

    words = len(SENTENCE.split())
    assert speech.sample_rate == 24_000
    assert speech.duration == pytest.approx(words / 150 * 60, rel=0.02)
    assert float(np.sqrt(np.mean(speech.samples**2))) > 0.05
    assert fake.stats.requests[ENDPOINT[name]] == 1
    faster = speaker.synthesize(SENTENCE, speaker.default_voice(0), words_per_minute=165)
    sent = fake.log[-1].json()
    if name == "gemini":  # no speed setting: it speaks at its own pace, and says so
        assert speaker.pace(165) == 150 and faster.duration == pytest.approx(speech.duration)
    else:
        assert speaker.pace(165) == 165
        assert faster.duration == pytest.approx(speech.duration * 150 / 165, rel=0.02)
        speed = sent["speed"] if name == "openai" else sent["voice_settings"]["speed"]
        assert speed == 1.1
    if name == "elevenlabs":  # at the normal pace the voice's stored settings are left alone
        normal = next(e.json() for e in fake.log if e.endpoint == "elevenlabs.speech")
        assert "voice_settings" not in normal


def test_each_engine_says_what_pace_it_can_reach() -> None:
    from castline.audio.tts.elevenlabs import ElevenLabsEngine
    from castline.audio.tts.espeak import EspeakEngine
    from castline.audio.tts.gemini import GeminiSpeechEngine
    from castline.audio.tts.openai import OpenAISpeechEngine

    assert [EspeakEngine.pace(w) for w in (60, 150, 300)] == [80, 150, 300]
    assert [OpenAISpeechEngine.pace(w) for w in (60, 150, 300)] == [60, 150, 300]
    assert [ElevenLabsEngine.pace(w) for w in (60, 150, 300)] == [105, 150, 180]
    assert [GeminiSpeechEngine.pace(w) for w in (60, 150, 300)] == [150, 150, 150]


@pytest.mark.parametrize("name", sorted(KEYS))
def test_hosts_get_distinct_voices(
    name: str, fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    speaker = engine(name, fake, monkeypatch)
    first, second = speaker.default_voice(0), speaker.default_voice(1)
    assert first != second
    a = speaker.synthesize(SENTENCE, first, words_per_minute=150)
    b = speaker.synthesize(SENTENCE, second, words_per_minute=150)
    assert not np.array_equal(a.samples, b.samples)


def test_gemini_reports_the_tokens_it_bills_and_the_others_none(
    fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    speech = engine("gemini", fake, monkeypatch).synthesize(SENTENCE, "Kore", words_per_minute=150)
    assert speech.usage is not None
    assert speech.usage.output_tokens == int(np.ceil(speech.duration * 25))
    assert speech.usage.input_tokens > 0
    other = engine("openai", fake, monkeypatch).synthesize(SENTENCE, "nova", words_per_minute=150)
    assert other.usage is None


def test_gemini_output_is_bounded_by_what_the_reservation_assumed(
    fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    speech = engine("gemini", fake, monkeypatch).synthesize(SENTENCE, "Kore", words_per_minute=150)
    sent = fake.log[-1].json()["generationConfig"]
    assert sent["maxOutputTokens"] == most_audio_tokens(SENTENCE, 150)
    assert speech.usage is not None and speech.usage.output_tokens < sent["maxOutputTokens"]


def test_gemini_speech_cut_at_its_token_limit_is_an_incomplete_take(
    fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from castline.audio.tts import gemini

    speaker = engine("gemini", fake, monkeypatch)
    monkeypatch.setattr(gemini, "most_audio_tokens", lambda text, pace: 40)
    speech = speaker.synthesize(SENTENCE, "Kore", words_per_minute=150)

    assert not speech.complete and speech.usage is not None and speech.usage.output_tokens == 40
    spec = ClipSpec(0, "Alex", "intro", SENTENCE, speaker.route, "Kore", 150)
    assert problem(speech, spec) == "the engine stopped before the end of the text"


def test_the_fake_cuts_gemini_speech_at_max_output_tokens(fake: FakeAPI) -> None:
    from google import genai
    from google.genai import types

    client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=fake.url))
    config = types.GenerateContentConfig(
        response_modalities=["AUDIO"],
        max_output_tokens=50,
        speech_config=types.SpeechConfig(
            voice_config=types.VoiceConfig(
                prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name="Kore")
            )
        ),
    )
    reply = client.models.generate_content(model="m", contents=SENTENCE, config=config)
    assert reply.usage_metadata is not None
    assert reply.usage_metadata.candidates_token_count == 50
    assert reply.candidates and reply.candidates[0].finish_reason == "MAX_TOKENS"


def test_a_turn_longer_than_a_request_is_spoken_in_pieces(
    fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_turn = " ".join([SENTENCE] * 80)  # about 6,000 characters; OpenAI takes 4,096
    speech = engine("openai", fake, monkeypatch).synthesize(long_turn, "nova", words_per_minute=150)
    sent = [entry.json()["input"] for entry in fake.log if entry.endpoint == "openai.speech"]
    assert len(sent) == 2 and all(len(text) <= 4096 for text in sent)
    assert " ".join(sent) == long_turn
    assert speech.duration == pytest.approx(len(long_turn.split()) / 150 * 60, rel=0.02)


def test_pieces_cut_at_sentence_ends_then_at_spaces() -> None:
    sentences = "One two three. Four five six! Seven eight nine?"
    assert pieces(sentences, 30) == ["One two three. Four five six!", "Seven eight nine?"]
    run_on = "word " * 30
    cut = pieces(run_on, 40)
    assert all(len(piece) <= 40 for piece in cut) and len(cut) == 4
    assert " ".join(cut) == " ".join(run_on.split())
    assert pieces("short", 40) == ["short"]


@pytest.mark.parametrize(
    ("name", "fault", "kind"),
    [
        ("openai", Fault.RATE_LIMIT, "rate_limit"),
        ("openai", Fault.SPEND_LIMIT, "spend_limit"),
        ("elevenlabs", Fault.RATE_LIMIT, "rate_limit"),
        ("elevenlabs", Fault.SPEND_LIMIT, "spend_limit"),
        ("elevenlabs", Fault.OVERLOADED, "overloaded"),
        ("gemini", Fault.RATE_LIMIT, "rate_limit"),
        ("gemini", Fault.SERVER_ERROR, "server_error"),
        ("gemini", Fault.NOT_FOUND, "not_found"),
    ],
)
def test_failures_are_classified_for_the_retry_policy_and_never_show_the_key(
    name: str, fault: Fault, kind: str, fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    speaker = engine(name, fake, monkeypatch)
    fake.queue(fault, path=ENDPOINT[name])
    with pytest.raises(ProviderError) as raised:
        speaker.synthesize(SENTENCE, speaker.default_voice(0), words_per_minute=150)
    assert raised.value.kind == kind
    assert KEYS[name][1] not in str(raised.value)
    assert fake.stats.requests[ENDPOINT[name]] == 1  # the SDK did not retry on its own
    if kind == "rate_limit" and name != "gemini":
        assert raised.value.retry_after == 0.5


def test_an_engine_without_its_key_says_which_variable_to_set() -> None:
    show: Show = load_show(EXAMPLE / "show.yaml")
    with pytest.raises(MissingCredentials, match="ELEVENLABS_API_KEY"):
        build("elevenlabs", None, show)


def test_a_clip_far_longer_than_its_words_is_a_bad_take() -> None:
    spec = ClipSpec(0, "Alex", "intro", SENTENCE, "openai:tts-1", "nova", 150)
    words = len(SENTENCE.split())
    runaway = Speech(np.full(24_000 * 60, 0.2, dtype=np.float32), 24_000)  # a minute
    assert problem(runaway, spec) == (
        f"the clip lasts 60.0 s but its {words} words need about {words * 60 / 150:.1f} s "
        "(the engine ran on)"
    )

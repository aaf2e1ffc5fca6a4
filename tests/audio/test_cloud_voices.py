"""Episodes voiced by cloud engines through the fake API: every clip billed exactly (per
character, or per token from the usage the reply reports), transient failures retried, a
silent clip made again and billed twice or failing the run with the turn named (and resumed
from there once the engine speaks again), and a show
whose engine has no key voiced offline or refused before anything is spent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from castline.audio.tts.elevenlabs import ElevenLabsEngine
from castline.config import database_url
from castline.domain import Script
from castline.engine import episodes, revoice, runtime
from castline.errors import ConfigError, MissingCredentials, StageFailed, UnpricedModel
from castline.stages import voice
from castline.store import CallRecord, Store, calls
from tests.fake_api import FakeAPI, Fault

TOPIC = "How castline turns sources into an episode"
MILLION = Decimal(1_000_000)


@pytest.fixture
def fake() -> Iterator[FakeAPI]:
    with FakeAPI() as api:
        api.retry_after_s = 0.05
        yield api
        assert api.internal_errors == []


def voiced_by(show: Path, yaml: str) -> None:
    show.write_text(show.read_text() + "\n" + yaml)


def voiced_by_openai(
    show: Path,
    fake: FakeAPI,
    monkeypatch: pytest.MonkeyPatch,
    *,
    provider: str = "",
    audio: str = "",
) -> None:
    """The show voiced by OpenAI's speech endpoint on the fake, with a key set."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-fake-voices-1234")
    voiced_by(
        show,
        f'providers:\n  openai: {{base_url: "{fake.url}/v1"{provider}}}\n'
        f"audio: {{engine: openai{audio}}}\n",
    )


def voice_calls(run_id: str) -> list[CallRecord]:
    return [c for c in Store(database_url()).calls(run_id) if c.stage == "voice"]


def test_openai_voices_the_episode_and_each_clip_costs_its_characters(
    short_show: tuple[Path, Path], fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    show, source = short_show
    voiced_by_openai(show, fake, monkeypatch)

    outcome = episodes.produce(show, TOPIC, [source])

    assert outcome.status == "completed"
    calls = voice_calls(outcome.run_id)
    assert len(calls) == fake.stats.requests["openai.speech"] > 10
    for call in calls:
        assert call.priced_as == "openai:tts-1-hd" and not call.shadow
        assert call.cost == Decimal(len(call.prompt)) * 30 / MILLION  # $30 per million characters
    voices = {entry.json()["voice"] for entry in fake.log if entry.endpoint == "openai.speech"}
    assert voices == {"nova", "onyx"}  # the scaffolded show's two hosts


def test_the_providers_concurrency_caps_its_speech_requests(
    short_show: tuple[Path, Path], fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    show, source = short_show
    fake.latency_ms = 20  # requests overlap unless something holds them apart
    voiced_by_openai(show, fake, monkeypatch, provider=", concurrency: 1", audio=", concurrency: 4")
    outcome = episodes.produce(show, TOPIC, [source])
    assert outcome.status == "completed"
    assert fake.stats.requests["openai.speech"] > 10
    assert fake.stats.peak_in_flight["openai.speech"] == 1


def test_gemini_clips_are_settled_from_the_tokens_the_reply_reports(
    short_show: tuple[Path, Path], fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    show, source = short_show
    monkeypatch.setenv("GEMINI_API_KEY", "AIzaFakeVoicesKey00771")
    voiced_by(
        show,
        f'providers:\n  gemini: {{base_url: "{fake.url}"}}\n'
        "audio: {engine: gemini, model: gemini-2.5-flash-preview-tts}\n"
        # no role on Gemini's language models: the text is written offline, the voice is paid
        "routing: {evaluator_secondary: [anthropic:claude-haiku-4-5]}\n",
    )
    outcome = episodes.produce(show, TOPIC, [source])

    assert outcome.status == "completed"
    calls = voice_calls(outcome.run_id)
    assert len(calls) == fake.stats.requests["gemini.speech"]
    for call in calls:
        assert call.input_tokens > 0 and call.output_tokens > 0
        # published: $0.50 per million text tokens in, $10 per million audio tokens out
        expected = (Decimal(call.input_tokens) * Decimal("0.5") + call.output_tokens * 10) / MILLION
        assert call.cost == expected


def test_rate_limits_are_waited_out_and_every_attempt_recorded(
    short_show: tuple[Path, Path], fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    show, source = short_show
    monkeypatch.setenv("ELEVENLABS_API_KEY", "el-fake-voices-key-5566")
    voiced_by(
        show,
        f'providers:\n  elevenlabs: {{base_url: "{fake.url}"}}\naudio: {{engine: elevenlabs}}\n',
    )
    fake.queue(Fault.RATE_LIMIT, times=2, path="elevenlabs.speech")

    outcome = episodes.produce(show, TOPIC, [source])

    assert outcome.status == "completed"
    store = Store(database_url())
    failed = [e for e in store.events(outcome.run_id) if e.kind == "call-retry"]
    assert len(failed) == 2 and all(e.stage == "voice" for e in failed)
    calls = voice_calls(outcome.run_id)
    assert fake.stats.requests["elevenlabs.speech"] == len(calls) + 2
    assert all(c.cost == Decimal(len(c.prompt)) * 100 / MILLION for c in calls)


@pytest.mark.parametrize(("silences", "recovers"), [(1, True), (2, False)])
def test_a_silent_clip_is_made_again_and_billed_or_the_run_fails_naming_the_turn(
    short_show: tuple[Path, Path],
    fake: FakeAPI,
    monkeypatch: pytest.MonkeyPatch,
    silences: int,
    recovers: bool,
) -> None:
    show, source = short_show
    voiced_by_openai(show, fake, monkeypatch, audio=", concurrency: 1")
    fake.queue(Fault.SILENT_AUDIO, times=silences, path="openai.speech")

    if recovers:
        outcome = episodes.produce(show, TOPIC, [source])
        assert outcome.status == "completed"
        store = Store(database_url())
        retried = [e for e in store.events(outcome.run_id) if "second try" in e.message]
        assert len(retried) == 1
        first = next(c for c in voice_calls(outcome.run_id) if c.step_key == "voice.turn.0")
        assert first.cost == 2 * Decimal(len(first.prompt)) * 30 / MILLION  # both takes billed
        return
    with pytest.raises(StageFailed, match=r"turn 0 \(Alex, segment intro\) could not be voiced"):
        episodes.produce(show, TOPIC, [source])
    [run] = Store(database_url()).list_runs()
    assert run.status == "failed" and not (Path(run.output_dir) / "episode.mp3").exists()
    [failed] = [c for c in voice_calls(run.id) if c.status == "failed"]
    assert failed.step_key == "voice.turn.0" and failed.reserved == 0
    assert failed.cost == 2 * Decimal(len(failed.prompt)) * 30 / MILLION
    made = fake.stats.requests["openai.speech"]

    # the engine speaks again: the run resumes at its voice stage, each turn voiced once more
    resumed = episodes.resume(run.id)

    assert resumed.status == "completed"
    ok = [c.step_key for c in voice_calls(run.id) if c.status == "ok"]
    assert fake.stats.requests["openai.speech"] == made + len(ok)
    assert "voice.turn.0" in ok and len(ok) == len(set(ok))
    assert not [
        c for c in Store(database_url()).calls(run.id) if c.stage != "voice" and c.id > failed.id
    ]


def test_an_offline_run_voices_with_espeak_priced_as_the_configured_engine(
    short_show: tuple[Path, Path],
) -> None:
    show, source = short_show
    voiced_by(show, "audio: {engine: openai, model: tts-1}\n")

    outcome = episodes.produce(show, TOPIC, [source])

    assert outcome.status == "completed"
    calls = voice_calls(outcome.run_id)
    assert calls and all(c.shadow and c.priced_as == "openai:tts-1" for c in calls)
    assert all(c.provider == "espeak" for c in calls)
    assert all(c.cost == Decimal(len(c.prompt)) * 15 / MILLION for c in calls)


def test_a_run_forced_offline_never_pays_for_speech_even_with_a_key(
    short_show: tuple[Path, Path], fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    show, source = short_show
    voiced_by_openai(show, fake, monkeypatch)

    outcome = episodes.produce(show, TOPIC, [source], provider="offline")

    assert outcome.status == "completed"
    assert fake.stats.requests["openai.speech"] == 0
    calls = voice_calls(outcome.run_id)
    assert calls and all(c.shadow and c.provider == "espeak" for c in calls)


def test_an_engine_whose_sdk_is_missing_is_refused_before_spending(
    short_show: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    show, source = short_show
    monkeypatch.setenv("ELEVENLABS_API_KEY", "el-fake-voices-key-5566")
    monkeypatch.setattr(ElevenLabsEngine, "sdk", ("not_installed_sdk", "elevenlabs", "elevenlabs"))
    voiced_by(show, "audio: {engine: elevenlabs}\n")

    with pytest.raises(ConfigError, match=r"pip install 'castline\[elevenlabs\]'"):
        episodes.produce(show, TOPIC, [source])
    assert Store(database_url()).list_runs() == []


def test_a_live_run_whose_engine_has_no_key_is_refused_before_spending(
    short_show: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    show, source = short_show
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake-voices-0000")
    monkeypatch.setenv("GEMINI_API_KEY", "AIzaFakeVoicesKey00771")
    voiced_by(show, "audio: {engine: elevenlabs}\n")
    with pytest.raises(MissingCredentials, match="ELEVENLABS_API_KEY"):
        episodes.produce(show, TOPIC, [source])
    assert Store(database_url()).list_runs() == []


def test_a_local_openai_compatible_speech_server_is_free_only_by_an_explicit_price(
    short_show: tuple[Path, Path], fake: FakeAPI
) -> None:
    show, source = short_show
    voiced_by(
        show,
        f'providers:\n  kokoro: {{api: openai, base_url: "{fake.url}/v1", api_key_env: ""}}\n'
        "audio: {engine: kokoro, model: kokoro-v1}\n",
    )
    with pytest.raises(UnpricedModel, match="kokoro:kokoro-v1"):
        episodes.produce(show, TOPIC, [source])

    voiced_by(show, 'prices:\n  "kokoro:kokoro-v1": {per_million_characters: 0}\n')
    outcome = episodes.produce(show, TOPIC, [source])
    assert outcome.status == "completed"
    assert all(c.cost == 0 and not c.shadow for c in voice_calls(outcome.run_id))
    assert fake.stats.requests["openai.speech"] == len(voice_calls(outcome.run_id))


def test_speech_the_budget_cannot_fit_halts_the_run_until_a_larger_budget_voices_it(
    short_show: tuple[Path, Path], fake: FakeAPI, monkeypatch: pytest.MonkeyPatch, ledger_only: None
) -> None:
    show, source = short_show
    # the text costs about $0.29 (shadow), its speech about $0.08 more
    show.write_text(show.read_text().replace("per_episode: 33.25", "per_episode: 0.33"))
    voiced_by_openai(show, fake, monkeypatch)

    outcome = episodes.produce(show, TOPIC, [source])

    assert outcome.status == "halted" and outcome.output_dir is not None
    assert (outcome.output_dir / "script.md").exists()
    assert not (outcome.output_dir / "episode.mp3").exists()
    store = Store(database_url())
    refused = [c for c in store.calls(outcome.run_id) if c.stage == "voice" and c.status != "ok"]
    assert refused and all(c.cost == 0 and c.reserved == 0 for c in refused)
    episode = json.loads((outcome.output_dir / "episode.json").read_text())
    assert episode["budget"]["halted_at"] == "voice" and episode["audio"] is None
    assert any("the episode's audio" in item for item in episode["budget"]["skipped"])
    totals = sum((c.cost for c in store.calls(outcome.run_id)), Decimal(0))
    assert totals <= Decimal("0.33")

    # a larger budget in the show bible lets the halted episode be voiced, text not paid again
    show.write_text(show.read_text().replace("per_episode: 0.33", "per_episode: 1.00"))
    text_calls = [c.id for c in store.calls(outcome.run_id) if c.stage != "voice"]

    voiced = revoice.revoice(outcome.run_id)

    assert voiced.status == "completed"
    assert (outcome.output_dir / "episode.mp3").exists()
    assert [c.id for c in store.calls(outcome.run_id) if c.stage != "voice"] == text_calls
    episode = json.loads((outcome.output_dir / "episode.json").read_text())
    assert episode["budget"]["halted_at"] is None and episode["accepted"] is True
    assert store.get_run(outcome.run_id).budget == Decimal("1.00")


def test_a_clip_made_just_before_a_crash_is_billed_when_the_run_finds_it(
    short_show: tuple[Path, Path], fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    show, source = short_show
    voiced_by_openai(show, fake, monkeypatch)
    outcome = episodes.produce(show, TOPIC, [source])
    assert outcome.output_dir is not None
    store = Store(database_url())
    first = voice_calls(outcome.run_id)[0]
    # the process died after the clip was written and before its call was settled; the
    # resume released the call as abandoned, unpaid
    with store.engine.begin() as connection:
        connection.execute(
            calls.update().where(calls.c.id == first.id).values(status="abandoned", cost_nanos=0)
        )
    ctx = runtime.context(outcome.run_id)
    script = Script.model_validate(
        json.loads((outcome.output_dir / "episode.json").read_text())["script"]
    )
    spec = next(
        s for s in voice.clip_specs(ctx, script) if f"voice.turn.{s.index}" == first.step_key
    )
    made = fake.stats.requests["openai.speech"]

    voice.voice_clip(store, ctx, spec, first.step_key)

    settled = next(c for c in store.calls(outcome.run_id) if c.id == first.id)
    assert settled.status == "ok" and settled.cost == first.cost
    assert fake.stats.requests["openai.speech"] == made  # found, not made again

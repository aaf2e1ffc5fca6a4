"""Piper through the real piper-tts code (its espeak phonemizer, onnxruntime) with a tiny voice
model built here: a graph that sounds one tone per phoneme id for a fixed number of samples
(times the length scale), so what comes out follows what went in. Whole episodes are voiced with
it; a show without Piper voices, or with a missing model file, gets an error naming the host."""

from __future__ import annotations

import json
import math
import shutil
import sys
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from castline.audio.tts import Engine, EngineSetup, build
from castline.audio.tts.piper import PiperEngine, length_scale
from castline.config import Host, ProviderSettings, database_url, load_show
from castline.engine import episodes
from castline.errors import ConfigError
from castline.store import Store
from tests.conftest import EXAMPLE

SAMPLE_RATE = 22_050
SAMPLES_PER_ID = 512  # at length scale 1.0
TOPIC = "How castline turns sources into an episode"
SHORT = "Cities run hot."
LONG = "Cities run hot. Asphalt and roofs store the sun's heat all day, and give it back at night."


def write_voice(path: Path) -> Path:
    """A Piper voice model (`path` and `path.json`) whose audio is a tone per phoneme id."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("piper")
    from piper.phoneme_ids import DEFAULT_PHONEME_ID_MAP

    helper, numpy_helper, types = onnx.helper, onnx.numpy_helper, onnx.TensorProto

    def constant(name: str, value: Any, dtype: Any) -> Any:
        return numpy_helper.from_array(np.array(value, dtype=dtype), name)

    node = helper.make_node
    nodes = [
        node("Shape", ["input"], ["shape"]),
        node("Gather", ["shape", "one"], ["ids_count"], axis=0),
        node("Gather", ["scales", "one"], ["length_scale"], axis=0),  # [noise, length, noise_w]
        node("Mul", ["length_scale", "per_id"], ["per_id_scaled"]),
        node("Add", ["per_id_scaled", "half"], ["per_id_rounded"]),
        node("Cast", ["per_id_rounded"], ["samples_per_id"], to=types.INT64),
        node("Mul", ["ids_count", "samples_per_id"], ["total"]),
        node("Range", ["zero", "total", "one"], ["t"]),
        node("Div", ["t", "samples_per_id"], ["position"]),
        node("Gather", ["input", "position"], ["ids"], axis=1),
        node("Cast", ["ids"], ["ids_float"], to=types.FLOAT),
        node("Mul", ["ids_float", "hz_per_id"], ["id_hz"]),
        node("Add", ["id_hz", "base_hz"], ["hz"]),
        node("Cast", ["t"], ["t_float"], to=types.FLOAT),
        node("Mul", ["t_float", "radians_per_sample"], ["radians"]),
        node("Mul", ["hz", "radians"], ["phase"]),
        node("Sin", ["phase"], ["tone"]),
        node("Mul", ["tone", "amplitude"], ["quieter"]),
        node("Reshape", ["quieter", "audio_shape"], ["output"]),
    ]
    constants = [
        constant("zero", 0, np.int64),
        constant("one", 1, np.int64),
        constant("per_id", SAMPLES_PER_ID, np.float32),
        constant("half", 0.5, np.float32),
        constant("hz_per_id", 5.0, np.float32),
        constant("base_hz", 120.0, np.float32),
        constant("radians_per_sample", 2 * math.pi / SAMPLE_RATE, np.float32),
        constant("amplitude", 0.5, np.float32),
        constant("audio_shape", [1, 1, -1], np.int64),
    ]
    graph = helper.make_graph(
        nodes,
        "tone-per-phoneme",
        [
            helper.make_tensor_value_info("input", types.INT64, [1, "phoneme_ids"]),
            helper.make_tensor_value_info("input_lengths", types.INT64, [1]),
            helper.make_tensor_value_info("scales", types.FLOAT, [3]),
        ],
        [helper.make_tensor_value_info("output", types.FLOAT, [1, 1, "samples"])],
        constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by any onnxruntime piper-tts accepts
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    config = {
        "audio": {"sample_rate": SAMPLE_RATE},
        "espeak": {"voice": "en-us"},
        "phoneme_type": "espeak",
        "num_symbols": 1 + max(i for ids in DEFAULT_PHONEME_ID_MAP.values() for i in ids),
        "num_speakers": 1,
        "phoneme_id_map": DEFAULT_PHONEME_ID_MAP,
    }
    Path(f"{path}.json").write_text(json.dumps(config))
    return path


@pytest.fixture
def voice(tmp_path: Path) -> Path:
    return write_voice(tmp_path / "voices" / "tone.onnx")


@pytest.fixture
def engine(voice: Path) -> Engine:
    return build("piper", None, load_show(EXAMPLE / "show.yaml"))


def rms(samples: np.ndarray[Any, Any]) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def test_piper_speaks_at_the_models_rate_and_longer_text_lasts_longer(
    engine: Engine, voice: Path
) -> None:
    short = engine.synthesize(SHORT, str(voice), words_per_minute=150)
    long = engine.synthesize(LONG, str(voice), words_per_minute=150)

    assert engine.route == "piper:piper"
    assert short.sample_rate == long.sample_rate == SAMPLE_RATE
    assert short.samples.dtype == np.float32 and rms(short.samples) > 0.3
    assert len(short.samples) % SAMPLES_PER_ID == 0  # whole phoneme ids, as the model made them
    # ids = phonemes plus padding: about ten per word
    assert 5 * len(SHORT.split()) <= len(short.samples) / SAMPLES_PER_ID <= 20 * len(SHORT.split())
    assert long.duration > 4 * short.duration
    assert np.max(np.abs(long.samples)) <= 1.0


def test_the_shows_pace_becomes_the_length_scale(engine: Engine, voice: Path) -> None:
    normal = engine.synthesize(SHORT, str(voice), words_per_minute=150)
    slow = engine.synthesize(SHORT, str(voice), words_per_minute=100)
    fast = engine.synthesize(SHORT, str(voice), words_per_minute=300)

    assert len(slow.samples) == len(normal.samples) * 3 // 2  # length scale 1.5
    assert len(fast.samples) == len(normal.samples) // 2  # length scale 0.5
    assert (length_scale(150), length_scale(120), length_scale(30), length_scale(900)) == (
        1.0,
        1.25,
        2.0,  # never slower than half the voice's pace
        0.5,  # nor faster than twice it
    )


def test_a_model_is_loaded_once_however_many_clips_use_it_at_once(
    voice: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from piper import PiperVoice

    loads: list[str] = []
    real_load = PiperVoice.load

    def counted(path: Any, *args: Any, **kwargs: Any) -> PiperVoice:
        loads.append(str(path))
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(PiperVoice, "load", counted)
    speaker = PiperEngine(EngineSetup("piper", "piper", ProviderSettings(), None))
    results: list[np.ndarray[Any, Any]] = []

    def speak() -> None:
        speech = speaker.synthesize(SHORT, str(voice), words_per_minute=150)
        results.append(speech.samples)

    threads = [threading.Thread(target=speak) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert loads == [str(voice)]
    assert len(results) == 6 and all(np.array_equal(r, results[0]) for r in results)


def with_piper_voices(show: Path, alex: str | None, sam: str | None) -> None:
    text = show.read_text()
    if alex is not None:
        text = text.replace("espeak: en-us+f3", f"espeak: en-us+f3\n      piper: {alex}")
    if sam is not None:
        text = text.replace("espeak: en-us+m3", f"espeak: en-us+m3\n      piper: {sam}")
    show.write_text(text + "\naudio: {engine: piper}\n")


def test_an_episode_voiced_by_piper_completes_and_its_clips_cost_nothing(
    short_show: tuple[Path, Path], voice: Path
) -> None:
    show, source = short_show
    shutil.copytree(voice.parent, show.parent / "voices")
    # one relative to the show bible, one absolute
    with_piper_voices(show, "voices/tone.onnx", str(voice))

    outcome = episodes.produce(show, TOPIC, [source])

    assert outcome.status == "completed" and outcome.output_dir is not None
    assert (outcome.output_dir / "episode.mp3").stat().st_size > 10_000
    store = Store(database_url())
    calls = [c for c in store.calls(outcome.run_id) if c.stage == "voice"]
    assert len(calls) > 10
    assert all(c.priced_as == "piper:piper" and not c.shadow for c in calls)
    assert all(c.cost == Decimal(0) for c in calls)
    voiced = [e.message for e in store.events(outcome.run_id) if e.kind == "clip-synthesized"]
    assert len(voiced) == len(calls)
    in_show_dir = str((show.parent / "voices" / "tone.onnx").resolve())
    assert {in_show_dir, str(voice)} == {m.split(" with ")[1] for m in voiced}


def test_a_show_without_piper_voices_is_refused_before_a_run_starts(
    short_show: tuple[Path, Path],
) -> None:
    show, source = short_show
    with_piper_voices(show, "voices/alex.onnx", None)  # Sam has none

    with pytest.raises(ConfigError) as refused:
        episodes.produce(show, TOPIC, [source])

    message = str(refused.value)
    assert "hosts[1].voices.piper (host 'Sam')" in message and "Alex" not in message
    assert "rhasspy/piper-voices" in message
    assert Store(database_url()).list_runs() == []


def test_a_missing_model_file_stops_the_run_before_it_starts_naming_the_file_and_host(
    short_show: tuple[Path, Path], voice: Path
) -> None:
    show, source = short_show
    with_piper_voices(show, str(voice), "voices/sam.onnx")

    with pytest.raises(ConfigError) as failed:
        episodes.produce(show, TOPIC, [source])

    missing = (show.parent / "voices" / "sam.onnx").resolve()
    assert f"hosts[1].voices.piper (host 'Sam'): the Piper voice file {missing} does not " in (
        str(failed.value)
    )
    assert Store(database_url()).list_runs() == []


def test_a_model_needs_its_config_beside_it(engine: Engine, voice: Path, tmp_path: Path) -> None:
    alone = tmp_path / "alone" / "tone.onnx"
    alone.parent.mkdir()
    shutil.copy(voice, alone)
    host = Host(name="Alex", persona="curious", voices={"piper": "alone/tone.onnx"})

    with pytest.raises(ConfigError, match=r"hosts\[0\]\.voices\.piper \(host 'Alex'\)") as error:
        engine.voice_of(host, 0, tmp_path)

    assert f"{alone}.json does not exist" in str(error.value)
    assert engine.voice_of(host.model_copy(update={"voices": {"piper": str(voice)}}), 0, tmp_path)


def test_a_file_that_is_no_voice_model_is_a_config_error(engine: Engine, tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    Path(f"{broken}.json").write_text("{}")

    with pytest.raises(ConfigError, match=r"the Piper voice model .*broken\.onnx cannot be loaded"):
        engine.synthesize(SHORT, str(broken), words_per_minute=150)


def test_without_piper_tts_the_error_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "piper", None)  # as if it were not installed

    with pytest.raises(ConfigError, match=r"pip install 'castline\[piper\]'"):
        PiperEngine(EngineSetup("piper", "piper", ProviderSettings(), None))


def test_a_host_without_a_voice_is_an_error_not_a_guess(engine: Engine, tmp_path: Path) -> None:
    host = Host(name="Robin", persona="skeptical", voices={"espeak": "en+m3"})

    with pytest.raises(ConfigError, match=r"set hosts\[2\]\.voices\.piper \(host 'Robin'\) to"):
        engine.voice_of(host, 2, tmp_path)
    with pytest.raises(ConfigError, match=r"set hosts\[2\]\.voices\.piper to"):
        engine.default_voice(2)

"""The one attempt policy of every paid request (`Attempts`): retries as the caller's patience
allows, and a circuit breaker that model calls and speech clips both honour: consecutive
provider failures open it, and while it is open nothing is asked of the provider and nothing is
reserved; a model call falls back, a clip (one engine) fails with an error that says what to
do."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from castline.audio import clips
from castline.audio.tts import Speech, Voicing
from castline.budget.policy import BudgetPolicy
from castline.budget.prices import Pricer
from castline.config import Retries, Show, load_show
from castline.engine.paid import calls
from castline.engine.paid.attempts import MOVE_ON, PERSIST, Attempts, Patience
from castline.errors import ProviderError
from castline.llm import registry, resilience
from castline.llm.registry import Route, Routing
from castline.llm.scripted import ScriptedProvider
from castline.stages import RunContext, voice
from castline.store import Store
from tests.conftest import EXAMPLE
from tests.llm.realistic import realistic_tasks
from tests.runs import add_run

RUN = "attempts"
DOWN = ProviderError("503 Service Unavailable", kind="server_error")


def _show(**retries: Any) -> Show:
    show = load_show(EXAMPLE / "show.yaml")
    policy = Retries(base_delay_s=0, max_wait_s=0.01, **retries)
    return show.model_copy(update={"retries": policy})


def _store(tmp_path: Path, show: Show) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'attempts.db'}")
    add_run(
        store,
        RUN,
        budget=show.budget.per_episode,
        offline=False,
        spec={"show": show.model_dump(mode="json")},
    )
    return store


def _attempts(store: Store, show: Show, patience: Patience) -> Attempts:
    return Attempts.of(
        store,
        show,
        run_id=RUN,
        step_key="s",
        stage="write",
        provider="flaky",
        label="flaky:m",
        route="anthropic:claude-haiku-4-5",
        patience=patience,
    )


class _Failing:
    """A request that raises what is queued, then answers."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.made = 0

    def __call__(self) -> str:
        self.made += 1
        if self.failures:
            raise self.failures.pop(0)
        return "answer"


# --- the retry rules -------------------------------------------------------------------------


@pytest.mark.parametrize(("patience", "made"), [(MOVE_ON, 2), (PERSIST, 3)])
def test_a_transient_failure_is_retried_as_long_as_the_callers_patience(
    tmp_path: Path, patience: Patience, made: int
) -> None:
    show = _show(breaker_threshold=10)
    store = _store(tmp_path, show)
    request = _Failing(DOWN, DOWN, DOWN)

    with pytest.raises(ProviderError, match="503"):
        _attempts(store, show, patience).run(request)

    assert request.made == made
    retries = [e for e in store.events(RUN) if e.kind == "call-retry"]
    assert len(retries) == made - 1 and all(e.data["kind"] == "server_error" for e in retries)


@pytest.mark.parametrize(("patience", "answered"), [(MOVE_ON, False), (PERSIST, True)])
def test_a_retry_after_beyond_the_cap_ends_a_model_call_but_is_waited_out_by_speech(
    tmp_path: Path, patience: Patience, answered: bool
) -> None:
    show = _show()
    store = _store(tmp_path, show)
    slow = ProviderError("429", kind="rate_limit", retry_after=60)
    request = _Failing(slow)

    if answered:
        assert _attempts(store, show, patience).run(request) == "answer"
    else:
        with pytest.raises(ProviderError, match="429"):
            _attempts(store, show, patience).run(request)
    assert request.made == (2 if answered else 1)


def test_an_unexpected_exception_is_classified_once_and_chained(tmp_path: Path) -> None:
    show = _show()
    store = _store(tmp_path, show)
    request = _Failing(ConnectionError("reset"), ConnectionError("reset"))

    with pytest.raises(ProviderError, match="ConnectionError: reset") as raised:
        _attempts(store, show, MOVE_ON).run(request)

    assert raised.value.kind == "server_error"
    assert isinstance(raised.value.__cause__, ConnectionError)


def test_the_breaker_stops_the_retries_once_it_opens(tmp_path: Path) -> None:
    show = _show(breaker_threshold=2, max_attempts=5)
    store = _store(tmp_path, show)
    request = _Failing(*[DOWN] * 5)

    with pytest.raises(ProviderError, match="503"):
        _attempts(store, show, PERSIST).run(request)
    assert request.made == 2  # not five
    assert len([e for e in store.events(RUN) if e.kind == "call-retry"]) == 1

    with pytest.raises(ProviderError, match="flaky:m skipped: circuit open after 2 failures"):
        _attempts(store, show, PERSIST).run(request)
    assert request.made == 2
    [skipped] = [e for e in store.events(RUN) if e.kind == "call-skipped"]
    assert skipped.data["route"] == "anthropic:claude-haiku-4-5"


# --- speech clips have a breaker ---------------------------------------------------------------


class _Engine:
    """A speech engine that fails while `down`, then speaks a second of tone."""

    name = "fakevoice"
    model = "m"
    max_characters = 4000

    def __init__(self) -> None:
        self.down = True
        self.requests = 0

    def synthesize(self, text: str, voice: str, *, words_per_minute: int) -> Speech:
        self.requests += 1
        if self.down:
            raise DOWN
        return Speech(np.full(24_000, 0.1, dtype=np.float32), 24_000)


def _clip(index: int) -> clips.ClipSpec:
    return clips.ClipSpec(index, "Ana", "intro", f"Hello there, number {index}.", "x", "v", 150)


def test_speech_opens_the_breaker_after_consecutive_failures_and_then_skips_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    show = _show()  # three attempts a take, a breaker that opens after three failures
    store = _store(tmp_path, show)
    engine = _Engine()
    monkeypatch.setattr(Voicing, "build", lambda self, show: engine)
    voicing = Voicing("fakevoice", "m", "openai:tts-1", "characters", False, "test")
    ctx = RunContext(RUN, show, "t", [], Routing({}, False, "test"), "out", planned_voicing=voicing)

    with pytest.raises(ProviderError, match="503"):
        voice.voice_clip(store, ctx, _clip(0), "voice.turn.0")
    assert engine.requests == 3
    [first] = store.calls(RUN)
    assert (first.status, first.reserved, first.cost) == ("failed", 0, 0)

    # the circuit is open: the next clip asks nothing of the engine and reserves nothing
    with pytest.raises(ProviderError) as raised:
        voice.voice_clip(store, ctx, _clip(1), "voice.turn.1")
    message = str(raised.value)
    assert message.startswith("voice.turn.1: fakevoice speech skipped: circuit open after 3")
    assert f"castline resume {RUN}" in message
    assert engine.requests == 3 and len(store.calls(RUN)) == 1
    [skipped] = [e for e in store.events(RUN) if e.kind == "call-skipped"]
    assert skipped.stage == "voice" and skipped.data["route"] == "openai:tts-1"
    # the model calls' breaker of a provider of that name is another one
    assert resilience.breaker("fakevoice", show.retries).allow() is None

    # after the cool-down one trial goes through; the engine answers and the clip is made
    breaker = resilience.breaker("fakevoice speech", show.retries)
    assert breaker.opened_at is not None
    breaker.opened_at -= show.retries.breaker_cooldown_s + 1
    engine.down = False
    made = voice.voice_clip(store, ctx, _clip(1), "voice.turn.1")

    assert made.path is not None and not made.cached
    assert engine.requests == 4 and breaker.failures == 0
    _, second = store.calls(RUN)
    assert (second.status, second.reserved) == ("ok", 0)
    assert second.cost == Decimal(len(_clip(1).text)) * 15 / 1_000_000


# --- model calls skip an open route and fall back ----------------------------------------------


class _Flaky(ScriptedProvider):
    name = "flaky"


def test_model_calls_open_a_routes_breaker_across_calls_and_then_fall_back_without_asking(
    tmp_path: Path,
) -> None:
    show = _show()
    store = _store(tmp_path, show)
    flaky = _Flaky()
    registry.use(flaky)
    flaky.enqueue("write", *[DOWN] * 3)
    route = Route("flaky", "claude-haiku-4-5", "anthropic:claude-haiku-4-5")
    fallback = Route("offline", "claude-sonnet-4-6", "anthropic:claude-sonnet-4-6")
    policy = BudgetPolicy(show.budget, Pricer(show.prices))
    task = realistic_tasks()["intro"]

    def call(step_key: str) -> calls.CallOutcome:
        spec = calls.CallSpec(RUN, step_key, "write", "writer", [route], [fallback], False, show)
        return calls.execute(store, spec, task, policy)

    first = call("write.1")  # two failures (retried once), then the fallback
    second = call("write.2")  # the third failure opens the circuit: no retry, the fallback
    assert len(flaky.calls) == 3
    third = call("write.3")  # skipped before anything is reserved on it

    assert len(flaky.calls) == 3
    assert {first.route, second.route, third.route} == {fallback.priced_as}
    on_route = [c for c in store.calls(RUN) if c.provider == "flaky"]
    assert [(c.step_key, c.status, c.reserved) for c in on_route] == [
        ("write.1", "failed", 0),
        ("write.2", "failed", 0),
    ]
    [skipped] = [e.message for e in store.events(RUN) if e.kind == "call-skipped"]
    assert skipped.startswith("write.3: anthropic:claude-haiku-4-5 skipped: circuit open")
    retried = [e.message for e in store.events(RUN) if e.kind == "call-retry"]
    assert len(retried) == 1 and retried[0].startswith("write.1: ")  # none into the open circuit

"""An SDK's unexpected exception in the other paid paths: a batch that cannot be created or read,
and a speech engine. Each is classified like a provider error (a message that names it), and no
reservation is left in flight: released when nothing was billed, counted as unreconciled when the
provider may have billed it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from castline.audio import clips
from castline.audio.tts import Speech
from castline.budget.ledger import Ledger, Reservation
from castline.budget.policy import Candidate, fixed
from castline.config import Retries, load_show
from castline.engine.paid import batches
from castline.errors import MalformedOutput, ProviderError
from castline.llm import registry
from castline.llm.base import Result, Task, Usage
from castline.llm.offline import OfflineProvider
from castline.llm.registry import Route, Routing
from castline.llm.wire import BatchItem, BatchProvider, BatchState
from castline.stages import RunContext, voice
from castline.store import Store
from tests.conftest import EXAMPLE
from tests.llm.realistic import realistic_tasks
from tests.runs import add_run

RUN = "failures"
ROUTE = Route("fakebatch", "claude-haiku-4-5", "anthropic:claude-haiku-4-5")
BAD = Usage(input_tokens=300, output_tokens=40)


class FakeBatches(BatchProvider):
    """Answers batches with the offline provider's replies, or raises what a test sets."""

    name: ClassVar[str] = "fakebatch"

    def __init__(self) -> None:
        self.on_submit: Exception | None = None
        self.on_results: Exception | None = None
        self.invalid: set[str] = set()  # custom ids answered with a reply that does not validate

    def complete(self, task: Task[Any], model: str, **options: Any) -> Result[Any]:
        return OfflineProvider().complete(task, model)

    def submit_batch(self, model: str, items: list[BatchItem]) -> str:
        if self.on_submit is not None:
            raise self.on_submit
        return "batch-1"

    def batch_state(self, batch_id: str) -> BatchState:
        return "ended"

    def batch_results(
        self, batch_id: str, items: list[BatchItem], model: str
    ) -> dict[str, Result[Any] | ProviderError]:
        if self.on_results is not None:
            raise self.on_results
        results: dict[str, Result[Any] | ProviderError] = {}
        for item in items:
            if item.custom_id in self.invalid:
                results[item.custom_id] = MalformedOutput("not JSON", raw="{", usage=BAD)
            else:
                results[item.custom_id] = self.complete(item.task, model)
        return results


def _context(tmp_path: Path) -> tuple[Store, RunContext]:
    show = load_show(EXAMPLE / "show.yaml")
    show = show.model_copy(update={"retries": Retries(base_delay_s=0, max_wait_s=0)})
    store = Store(f"sqlite:///{tmp_path / 'failures.db'}")
    add_run(store, RUN, budget=show.budget.per_episode, spec={"show": show.model_dump(mode="json")})
    routing = Routing(routes={"researcher": [ROUTE]}, offline=True, reason="test")
    ctx = RunContext(
        run_id=RUN, show=show, topic="t", sources=[], routing=routing, output_dir="out"
    )
    return store, ctx


@pytest.fixture
def provider() -> FakeBatches:
    fake = FakeBatches()
    registry.use(fake)
    return fake


def _tasks() -> dict[str, Task[Any]]:
    research = realistic_tasks()["research"]
    return {"research.question.0": research, "research.question.1": research}


def test_a_batch_an_sdk_fails_to_create_releases_its_reservations(
    tmp_path: Path, provider: FakeBatches
) -> None:
    store, ctx = _context(tmp_path)
    provider.on_submit = ConnectionError()

    with pytest.raises(ProviderError, match=r"ConnectionError: \(no message\)") as raised:
        batches.submit(store, ctx, "research", "researcher", "research", _tasks())

    assert raised.value.kind == "server_error"
    made = store.calls(RUN)
    assert [(c.status, c.reserved) for c in made] == [("failed", 0), ("failed", 0)]
    assert all(c.error == "batch not created: ConnectionError: (no message)" for c in made)
    assert store.run_cost(RUN) == 0


def test_a_batch_whose_results_cannot_be_read_stays_counted_until_they_can(
    tmp_path: Path, provider: FakeBatches
) -> None:
    store, ctx = _context(tmp_path)
    tasks = _tasks()
    submitted = batches.submit(store, ctx, "research", "researcher", "research", tasks)
    held = {c.id: c.reserved for c in store.calls(RUN)}
    provider.on_results = RuntimeError("stream ended early")

    with pytest.raises(ProviderError, match="RuntimeError: stream ended early"):
        batches.collect(store, ctx, "researcher", "research", submitted, tasks)

    made = store.calls(RUN)  # the batch ran: it may have been billed
    assert [c.status for c in made] == ["unreconciled", "unreconciled"]
    assert {c.id: c.unreconciled for c in made} == held
    assert all("RuntimeError: stream ended early" in (c.error or "") for c in made)
    assert store.run_cost(RUN) == sum(held.values(), Decimal(0))

    # read again (the resumed run's collect): the replies reconcile the calls, and an invalid
    # one is paid for, recorded as rejected with its tokens
    provider.on_results = None
    provider.invalid = {"research-question-1"}
    outcomes = batches.collect(store, ctx, "researcher", "research", submitted, tasks)

    good, bad = store.calls(RUN)
    assert good.status == "ok" and good.reserved == 0 and good.error is None
    made = outcomes["research.question.0"]
    assert made is not None and made.output is not None
    assert outcomes["research.question.1"] is None  # made again on its own
    rejected = ctx.policy.pricer.cost(ROUTE.priced_as, BAD, batch=True)
    assert (bad.status, bad.reserved, bad.cost, bad.rejected_replies) == ("failed", 0, rejected, 1)
    assert (bad.input_tokens, bad.output_tokens) == (300, 40)
    assert store.run_cost(RUN) == good.cost + rejected


class _Engine:
    """A speech engine whose SDK raises what the test queues, then speaks."""

    name = "fakevoice"

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.requests = 0

    def synthesize(self, text: str, voice: str, *, words_per_minute: int) -> Speech:
        self.requests += 1
        if self.failures:
            raise self.failures.pop(0)
        return Speech(np.full(2400, 0.1, dtype=np.float32), 24_000)


SPEC = clips.ClipSpec(0, "Ana", "intro", "Hello there.", "fakevoice:m", "v", 150)


def test_a_speech_sdk_error_is_retried_as_a_server_error(tmp_path: Path) -> None:
    store, ctx = _context(tmp_path)
    engine = _Engine(RuntimeError("socket closed"))

    speech = voice._synthesize(store, ctx, engine, SPEC, SPEC.text, "voice.turn.0")  # type: ignore[arg-type]

    assert engine.requests == 2 and speech.duration == 0.1
    [failed] = [e for e in store.events(RUN) if e.kind == "call-retry"]
    assert failed.data["kind"] == "server_error" and "RuntimeError: socket closed" in failed.message


def test_a_speech_sdk_error_that_persists_is_raised_as_a_provider_error(tmp_path: Path) -> None:
    store, ctx = _context(tmp_path)
    engine = _Engine(*[RuntimeError("socket closed")] * ctx.show.retries.max_attempts)

    with pytest.raises(ProviderError, match="RuntimeError: socket closed") as raised:
        voice._synthesize(store, ctx, engine, SPEC, SPEC.text, "voice.turn.0")  # type: ignore[arg-type]

    assert raised.value.kind == "server_error"
    assert engine.requests == ctx.show.retries.max_attempts


def test_a_clip_found_after_a_crash_leaves_its_unreconciled_call_counted(tmp_path: Path) -> None:
    store, ctx = _context(tmp_path)
    ledger = Ledger(store)
    speech = Route("fakevoice", "m", "openai:tts-1")
    held = ledger.reserve(
        RUN,
        ctx.policy,
        fixed([Candidate(speech, 0, False, Decimal("0.02"))]),
        step_key="voice.turn.0",
        stage="voice",
        role="voice",
        task_kind="tts",
        prompt=SPEC.text,
        shadow=True,
    )
    assert isinstance(held, Reservation)
    ledger.mark_unreconciled(RUN)  # the process died after writing the clip, before settling

    voice._settle_made_before_a_crash(store, ctx, SPEC, tmp_path / "clip.wav", "voice.turn.0")

    [call] = store.calls(RUN)
    assert (call.status, call.unreconciled) == ("unreconciled", Decimal("0.02"))
    assert call.error is not None and "completed later from a recorded reply" in call.error
    assert store.run_cost(RUN) == Decimal("0.02")

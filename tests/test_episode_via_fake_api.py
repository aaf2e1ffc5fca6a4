"""The example episode through the real SDKs, against the local fake of the vendors' APIs:
exact costs, prompt caching, faults, batches across a crash, and keys kept secret."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from castline.config import database_url
from castline.engine import episodes
from castline.errors import MissingCredentials
from castline.store import Store
from tests.conftest import EXAMPLE_SOURCES, EXAMPLE_TOPIC
from tests.fake_api import FakeAPI, Fault

KEYS = {
    "ANTHROPIC_API_KEY": "sk-ant-fake-4c7e1d9a2b3f5061",
    "GEMINI_API_KEY": "AIzaFakeGeminiKey0042kj",
    "OPENAI_API_KEY": "sk-proj-fake-openai-77aa31",
}
# Published USD per million tokens: input, 5-minute cache write, cache read, output.
RATES = {
    "anthropic:claude-sonnet-4-6": (3, Decimal("3.75"), Decimal("0.30"), 15),
    "anthropic:claude-opus-4-6": (5, Decimal("6.25"), Decimal("0.50"), 25),
    "anthropic:claude-haiku-4-5": (1, Decimal("1.25"), Decimal("0.10"), 5),
    # below Gemini's 200K-token tier; Gemini bills no cache writes
    "gemini:gemini-2.5-pro": (Decimal("1.25"), Decimal("1.25"), Decimal("0.125"), 10),
}


@pytest.fixture
def fake() -> Iterator[FakeAPI]:
    with FakeAPI() as api:
        api.retry_after_s = 0.05
        api.timeout_sleep_s = 3.0  # a TIMEOUT fault outlasts the faults test's 2 s client timeout
        yield api
        assert api.internal_errors == []


def wire(
    show: Path,
    fake: FakeAPI,
    monkeypatch: pytest.MonkeyPatch,
    timeout_s: float = 10,
    **extra: str,
) -> Path:
    """Point the show's providers at the fake and give them keys.

    The client timeout is generous by default: on a loaded CI machine concurrent judges can
    wait more than a second for the fake, and a spurious timeout changes which model answered."""
    for variable, value in KEYS.items():
        monkeypatch.setenv(variable, value)
    cache = extra.get("prompt_cache", "true")
    show.write_text(
        show.read_text()
        + f"""
providers:
  anthropic: {{base_url: "{fake.url}", timeout_s: {timeout_s}, prompt_cache: {cache}}}
  gemini: {{base_url: "{fake.url}", timeout_s: {timeout_s}}}
  openai: {{base_url: "{fake.url}/v1", timeout_s: {timeout_s}}}
retries: {{base_delay_s: 0.01, max_wait_s: 1, breaker_cooldown_s: 0.2}}
"""
        + extra.get("more", "")
    )
    return show


def test_episode_through_the_real_sdks_costs_exactly_the_published_prices(
    show_copy: Path, fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome = episodes.produce(wire(show_copy, fake, monkeypatch), EXAMPLE_TOPIC, EXAMPLE_SOURCES)

    assert outcome.status == "completed" and not outcome.offline
    store = Store(database_url())
    made = [c for c in store.calls(outcome.run_id) if c.status == "ok"]
    assert made and {c.provider for c in made} == {"anthropic", "gemini"}
    assert {c.priced_as for c in made if c.role == "evaluator_secondary"} == {
        "gemini:gemini-2.5-pro"
    }
    for call in made:
        uncached, write, read, output = RATES[call.priced_as]
        by_hand = (
            call.input_tokens * uncached
            + call.cache_write_tokens * write
            + call.cache_read_tokens * read
            + call.output_tokens * output
        ) / Decimal(1_000_000)
        assert call.cost == by_hand, call.step_key
    assert outcome.cost == sum((c.cost for c in made), Decimal(0))
    # what the fake reported is what castline recorded
    for vendor in ("anthropic", "gemini"):
        served = fake.stats.tokens[vendor]
        ours = [c for c in made if c.provider == vendor]
        assert served["cache_read"] == sum(c.cache_read_tokens for c in ours)
        assert served["output"] == sum(c.output_tokens for c in ours)
    # the default layout reads most input from the cache
    assert fake.stats.cache_hit_share("anthropic") >= 0.6


def test_caching_disabled_reads_nothing_from_the_cache_and_costs_more(
    show_copy: Path, fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = episodes.produce(wire(show_copy, fake, monkeypatch), EXAMPLE_TOPIC, EXAMPLE_SOURCES)
    fake.reset_cache()
    fake.stats.reset()
    plain_show = show_copy.parent.parent / "plain" / "show.yaml"
    plain_show.parent.mkdir()
    plain_show.write_text(
        show_copy.read_text().replace("prompt_cache: true", "prompt_cache: false")
    )

    plain = episodes.produce(plain_show, EXAMPLE_TOPIC, EXAMPLE_SOURCES)

    assert fake.stats.tokens["anthropic"]["cache_read"] == 0
    assert plain.cost > cached.cost * Decimal("1.5")


def test_twenty_percent_faults_the_episode_completes_within_budget_with_every_retry_logged(
    show_copy: Path, fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.fault_rate(
        0.2,
        kinds=[
            Fault.RATE_LIMIT,
            Fault.OVERLOADED,
            Fault.SERVER_ERROR,
            Fault.OVERLOADED_IN_STREAM,
            Fault.MALFORMED_JSON,
            Fault.TIMEOUT,
        ],
    )

    show = wire(show_copy, fake, monkeypatch, timeout_s=2)
    outcome = episodes.produce(show, EXAMPLE_TOPIC, EXAMPLE_SOURCES)

    assert outcome.status == "completed"
    assert sum(fake.stats.faults.values()) >= 5
    store = Store(database_url())
    assert outcome.cost <= outcome.budget
    assert all(c.reserved == 0 for c in store.calls(outcome.run_id))
    events = store.events(outcome.run_id)
    handled = Counter(e.kind for e in events)
    assert handled["call-retry"] + handled["fallback"] + handled["call-repair"] >= 5
    for event in events:
        if event.kind in {"call-retry", "fallback"}:
            assert event.data["kind"] in event.message and event.data["route"]
    # a billed invalid reply counts as spend even though its call failed or was repaired
    assert store.run_cost(outcome.run_id) == sum(
        (c.cost for c in store.calls(outcome.run_id)), Decimal(0)
    )


def test_a_retired_model_falls_back_with_a_warning(
    show_copy: Path, fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.retired = {"claude-opus-4-6"}

    outcome = episodes.produce(wire(show_copy, fake, monkeypatch), EXAMPLE_TOPIC, EXAMPLE_SOURCES)

    assert outcome.status == "completed"
    store = Store(database_url())
    warnings = [e for e in store.events(outcome.run_id) if e.kind == "model-not-found"]
    assert warnings and "anthropic:claude-opus-4-6" in warnings[0].message
    writers = {
        c.priced_as for c in store.calls(outcome.run_id) if c.role == "writer" and c.status == "ok"
    }
    assert writers == {"anthropic:claude-sonnet-4-6"}


def test_keys_never_reach_the_store_the_logs_or_the_reports(
    show_copy: Path,
    fake: FakeAPI,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    fake.queue(Fault.RATE_LIMIT, times=2)
    fake.queue(Fault.INVALID_REQUEST, times=1, path="anthropic.count_tokens")
    outcome = episodes.produce(wire(show_copy, fake, monkeypatch), EXAMPLE_TOPIC, EXAMPLE_SOURCES)
    assert outcome.status == "completed"

    home = Path(os.environ["CASTLINE_HOME"])
    written = [*home.rglob("*"), *Path(str(outcome.output_dir)).rglob("*")]
    captured = capfd.readouterr()
    for secret in KEYS.values():
        for path in written:
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path
        assert secret not in captured.out and secret not in captured.err


@pytest.mark.slow
def test_a_crash_while_a_batch_is_in_flight_reconnects_to_the_same_batch(
    show_copy: Path, fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.batch_delay_s = 3
    show = wire(show_copy, fake, monkeypatch, more="research: {batch: true}\n")
    command = [sys.executable, "-m", "castline", "produce", str(show), "--topic", EXAMPLE_TOPIC]
    for source in EXAMPLE_SOURCES:
        command += ["--source", str(source)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = Store(database_url())
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and fake.stats.batch_creations == 0:
            assert process.poll() is None, "the run ended before its batch was created"
            time.sleep(0.02)
        time.sleep(0.3)  # polling the batch now
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    [run] = store.list_runs()
    assert fake.stats.batch_creations == 1 and run.status == "running"

    resumed = subprocess.run(
        [sys.executable, "-m", "castline", "resume", run.id],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert resumed.returncode == 0, resumed.stderr
    assert fake.stats.batch_creations == 1  # reconnected, not created again
    assert store.get_run(run.id).status == "completed"
    research = [c for c in store.calls(run.id) if c.step_key.startswith("research.question.")]
    assert research and all(c.batch for c in research if c.status == "ok")
    assert max(Counter(c.step_key for c in research if c.status == "ok").values()) == 1


def test_a_key_is_needed_only_for_the_roles_the_run_calls(
    show_copy: Path, fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    show = wire(show_copy, fake, monkeypatch)
    monkeypatch.delenv("OPENAI_API_KEY")  # no role routes to OpenAI: nothing is missing

    outcome = episodes.produce(show, EXAMPLE_TOPIC, EXAMPLE_SOURCES)

    assert outcome.status == "completed" and not outcome.offline
    assert fake.stats.requests["openai.chat"] == 0
    monkeypatch.delenv("GEMINI_API_KEY")  # the second evaluator needs it: stop before spending
    with pytest.raises(MissingCredentials, match=r"evaluator_secondary.*GEMINI_API_KEY"):
        episodes.produce(show, EXAMPLE_TOPIC, EXAMPLE_SOURCES)

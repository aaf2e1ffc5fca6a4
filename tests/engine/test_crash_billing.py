"""The ledger's view of a crash is conservative: a call in flight when `castline produce` is
killed may have been billed, so it is counted at its reservation until a reply proves
otherwise, and the money the run reports bounds what the provider really served."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from castline.config import database_url
from castline.store import Store
from tests.conftest import EXAMPLE_SOURCES, EXAMPLE_TOPIC
from tests.fake_api import FakeAPI
from tests.test_episode_via_fake_api import RATES, wire

pytestmark = pytest.mark.slow


def _served_cost(fake: FakeAPI) -> Decimal:
    """What the fake's vendors would bill for everything they answered, at published prices."""
    total = Decimal(0)
    for model, served in fake.stats.by_model.items():
        uncached, write, read, output = RATES[model]
        plain = served["input"] - served["cache_read"] - served["cache_write"]
        total += (
            plain * uncached
            + served["cache_write"] * write
            + served["cache_read"] * read
            + served["output"] * output
        ) / Decimal(1_000_000)
    return total


def test_a_call_in_flight_at_a_kill_is_counted_at_its_reservation(
    show_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeAPI(latency_ms=400) as fake:
        show = wire(show_copy, fake, monkeypatch, timeout_s=5)
        command = [sys.executable, "-m", "castline", "produce", str(show), "-t", EXAMPLE_TOPIC]
        for source in EXAMPLE_SOURCES:
            command += ["--source", str(source)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        store = Store(database_url())
        try:
            deadline = time.monotonic() + 120
            while True:  # a writer's request is being answered: kill the client mid-call
                assert process.poll() is None and time.monotonic() < deadline
                runs = store.list_runs()
                writing = runs and any(
                    c.stage == "write" and c.status == "ok" for c in store.calls(runs[0].id)
                )
                if writing and sum(fake.stats.in_flight.values()) > 0:
                    break
                time.sleep(0.01)
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait(timeout=30)
        time.sleep(0.6)  # the fake finishes answering (and billing) the dead client's request
        [run] = store.list_runs()
        in_flight = [c for c in store.calls(run.id) if c.status == "started"]
        assert in_flight, "no call was in flight at the kill"
        billed_before_resume = _served_cost(fake)

        resumed = subprocess.run(
            [sys.executable, "-m", "castline", "resume", run.id],
            env=os.environ,
            capture_output=True,
            text=True,
            timeout=300,
        )

        assert resumed.returncode == 0, resumed.stderr
        calls = store.calls(run.id)
        crashed = [c for c in calls if c.id in {call.id for call in in_flight}]
        assert all(c.status == "unreconciled" for c in crashed)
        assert all(  # still counted at what was reserved for them before the kill
            c.reserved == before.reserved for c, before in zip(crashed, in_flight, strict=True)
        )
        settled = sum((c.cost for c in calls), Decimal(0))  # replies paid for, kept or not
        doubtful = sum((c.reserved for c in crashed), Decimal(0))
        served = _served_cost(fake)
        assert served > billed_before_resume  # the resumed run paid for its own calls
        # every settled call was served and billed, and whatever the dead client's request cost
        # the provider, the run's cost covers it: the ledger's view bounds the real bill
        assert settled < served <= settled + doubtful
        assert store.run_cost(run.id) == settled + doubtful
        assert store.run_cost(run.id) <= run.budget

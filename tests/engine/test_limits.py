"""Per-provider limits that hold across processes: never more requests in flight than the
provider's concurrency, never more in a minute than its rate, and no slot lost to a crash."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import threading
import time

import pytest
import sqlalchemy as sa

from castline.engine.executors import Executors
from castline.engine.paid.limits import Limits, slot, take
from castline.store import Store, executors, provider_slots


def _hold_slots(url: str, threads: int, holds: int) -> None:
    store = Store(url)
    limits = Limits("anthropic", concurrency=2, per_minute=None)

    def work() -> None:
        for _ in range(holds):
            with slot(store, limits):
                time.sleep(0.01)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def _most_at_once(store: Store) -> int:
    """The peak number of slots held at one instant, from the rows alone."""
    with store.engine.begin() as connection:
        rows = connection.execute(
            sa.select(provider_slots.c.acquired_at, provider_slots.c.released_at)
        ).all()
    moments = sorted([(a, 1) for a, _ in rows] + [(r, -1) for _, r in rows])
    held = most = 0
    for _, change in moments:  # a release at the same instant as an acquire comes first
        held += change
        most = max(most, held)
    return most


def test_two_processes_never_hold_more_than_the_provider_s_concurrency(
    database_url_param: str,
) -> None:
    Store(database_url_param)  # migrated once, before the processes race
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_hold_slots, args=(database_url_param, 3, 4)) for _ in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    store = Store(database_url_param)
    with store.engine.begin() as connection:
        count = connection.execute(sa.select(sa.func.count()).select_from(provider_slots))
        assert count.scalar_one() == 24
    assert _most_at_once(store) == 2


def test_the_rate_counts_the_last_sixty_seconds(tmp_path: object) -> None:
    store = Store(f"sqlite:///{tmp_path}/limits.db")
    limits = Limits("openai", concurrency=10, per_minute=3)
    for moment in (100.0, 110.0, 120.0):
        taken, _, _ = take(store, limits, now=moment)
        assert taken is not None

    refused, wait, _ = take(store, limits, now=130.0)

    assert refused is None and wait == pytest.approx(30.0)  # the first leaves the window at 160
    assert take(store, limits, now=160.5)[0] is not None


def test_a_slot_held_by_a_process_that_died_is_taken_back_at_once(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(f"sqlite:///{tmp_path}/limits.db")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True,
                          capture_output=True, check=True)  # fmt: skip
    with store.engine.begin() as connection:
        connection.execute(
            executors.insert().values(
                id="dead", host=__import__("socket").gethostname(), pid=int(gone.stdout),
                kind="worker", started_at=time.time(), heartbeat_at=time.time(),
            )
        )  # fmt: skip
    assert not Executors(store).alive("dead")
    limits = Limits("gemini", concurrency=1, per_minute=None)
    held, _, _ = take(store, limits, holder="dead")
    assert held is not None

    def no_waiting(seconds: float) -> None:
        raise AssertionError(f"waited {seconds} s for a slot a dead process held")

    monkeypatch.setattr(time, "sleep", no_waiting)
    with slot(store, limits, holder="alive"):  # at once, not after the 15-minute lease
        taken = True
    assert taken
    with store.engine.begin() as connection:
        released = connection.execute(
            sa.select(provider_slots.c.released_at).where(provider_slots.c.id == held)
        ).scalar_one()
    assert released is not None

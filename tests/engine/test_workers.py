"""Queued episodes and `castline worker` processes: a worker killed mid-episode has its episode
finished by another, with nothing paid twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from castline.engine import episodes, runtime
from castline.engine.recovery import tree
from tests.conftest import EXAMPLE_SOURCES, EXAMPLE_TOPIC

pytestmark = pytest.mark.slow


def _worker(home: Path, latency_ms: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CASTLINE_HOME": str(home),
        "CASTLINE_OFFLINE_LATENCY_MS": str(latency_ms),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "castline", "worker", "--concurrency", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _query(db: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(db, timeout=10) as connection:
        return connection.execute(sql, args).fetchall()


def _exists(db: Path, sql: str) -> bool:
    try:
        return bool(_query(db, sql))
    except sqlite3.OperationalError:  # the store is being created
        return False


def _wait(condition: object, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_an_enqueued_episode_waits_for_a_worker_and_resume_runs_it_here(
    show_copy: Path,
) -> None:
    run_id = episodes.enqueue(show_copy, EXAMPLE_TOPIC, EXAMPLE_SOURCES)

    store = runtime.store()
    assert store.get_run(run_id).status == "queued"
    [root] = tree(run_id)
    assert root.status == "ENQUEUED" and root.queue_name == "castline-episodes"
    assert store.calls(run_id) == []  # nothing is spent before a worker (or resume) takes it

    outcome = episodes.resume(run_id)  # no worker: this process runs it

    assert outcome.status == "completed"
    assert store.get_run(run_id).status == "completed"


def test_a_killed_worker_s_episode_is_finished_by_the_survivor(
    show_copy: Path, isolated: Path
) -> None:
    db = isolated / "castline.db"
    first = _worker(isolated, latency_ms=60)
    second: subprocess.Popen[bytes] | None = None
    try:
        _wait(lambda: _exists(db, "SELECT 1 FROM executors"), "the first worker")
        run_id = episodes.enqueue(show_copy, EXAMPLE_TOPIC, EXAMPLE_SOURCES)
        runtime.shutdown()  # this test process is not a worker: it only looks at the store
        _wait(
            lambda: (
                _query(
                    db,
                    "SELECT count(*) FROM calls WHERE run_id = ? AND status = 'ok' "
                    "AND step_key LIKE 'write.%'",
                    run_id,
                )[0][0]
                >= 1
            ),
            "the first worker to write",
        )
        [(pid,)] = _query(db, "SELECT pid FROM runs WHERE id = ?", run_id)
        assert pid == first.pid
        second = _worker(isolated, latency_ms=0)
        _wait(lambda: len(_query(db, "SELECT 1 FROM executors")) >= 2, "the second worker")
        last_event = _query(db, "SELECT max(id) FROM events WHERE run_id = ?", run_id)[0][0]

        os.killpg(first.pid, signal.SIGKILL)
        killed_at = time.time()
        first.wait(timeout=30)

        _wait(
            lambda: _query(db, "SELECT status FROM runs WHERE id = ?", run_id)[0][0] == "completed",
            "the survivor to finish the episode",
        )
        [(resumed_at,)] = _query(
            db,
            "SELECT min(ts) FROM events WHERE run_id = ? AND id > ? AND kind = 'call'",
            run_id,
            last_event,
        )
        assert isinstance(resumed_at, float)
        print(f"progress again {resumed_at - killed_at:.2f} s after the kill")
        [(owner,)] = _query(db, "SELECT pid FROM runs WHERE id = ?", run_id)
        assert owner == second.pid
        kinds = [kind for (kind,) in _query(db, "SELECT kind FROM events WHERE run_id = ?", run_id)]
        assert "recovered" in kinds
        ok = _query(db, "SELECT step_key FROM calls WHERE run_id = ? AND status = 'ok'", run_id)
        repeated = [k for k, n in Counter(key for (key,) in ok).items() if n > 1]
        assert repeated == []
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)


def test_produce_with_queue_only_queues_the_episode(show_copy: Path) -> None:
    from click.testing import CliRunner

    from castline.cli import cli

    args = ["produce", str(show_copy), "--topic", EXAMPLE_TOPIC, "--queue"]
    for source in EXAMPLE_SOURCES:
        args += ["--source", str(source)]
    result = CliRunner().invoke(cli, args)

    assert result.exit_code == 0, result.output
    assert "queued run" in result.output
    [run] = runtime.store().list_runs()
    assert run.status == "queued" and runtime.store().calls(run.id) == []
    assert "queued" in CliRunner().invoke(cli, ["runs"]).output

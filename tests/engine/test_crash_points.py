"""SIGKILL a real `castline produce` at points chosen by its progress, in every stage and each
fan-out, then resume it once from a new process: it must finish, pay for no completed step
twice, and publish the same text as a run that was never interrupted."""

from __future__ import annotations

import fnmatch
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from castline.store import Store
from tests.conftest import EXAMPLE, EXAMPLE_SOURCES, EXAMPLE_TOPIC

pytestmark = pytest.mark.slow

# The text an editor reads; each must be identical to an uninterrupted run's, but for the times
# of chapters: espeak-ng's clips vary by a few milliseconds from one process to the next,
# interrupted or not, so a chapter may start a second apart. (Timed captions are not compared.)
TEXT_OUTPUTS = ["script.md", "transcript.txt", "show-notes.md", "quality-report.json"]
CHAPTER_TIME = re.compile(r"^- \d\d:\d\d(:\d\d)? ", re.MULTILINE)
SOURCES = EXAMPLE_SOURCES[:2]  # two sources and six minutes keep each trial to seconds


@dataclass(frozen=True)
class Point:
    """Kill once `count` events match: of `kind`, with a message starting with `prefix`
    (`count` 0: one for every turn of the script, so the last clip has just been made)."""

    name: str
    kind: str
    count: int = 1
    prefix: str = ""
    stage: str | None = None
    voiced: bool = False  # text-only episodes are quicker; only the audio points need voice

    def reached(self, db: Path) -> bool:
        query = "SELECT count(*) FROM events WHERE kind LIKE ? AND message LIKE ?"
        args: list[object] = [self.kind, f"{self.prefix}%"]
        if self.stage is not None:
            query += " AND stage = ?"
            args.append(self.stage)
        try:
            with sqlite3.connect(db, timeout=5) as connection:
                found: int = connection.execute(query, args).fetchone()[0]
                voicing = connection.execute(
                    "SELECT message FROM events WHERE message LIKE 'voicing % turns'"
                ).fetchall()
        except sqlite3.Error:  # not created yet, or busy: look again
            return False
        if self.count == 0:
            return bool(voicing) and found >= int(voicing[0][0].split()[1])
        return found >= self.count


POINTS = [
    Point("created", "created"),
    Point("research-questions", "call", prefix="research.questions"),
    Point("fan-out-decision", "decision", stage="research"),
    Point("research-fan-out", "call", count=3, prefix="research.question."),
    Point("knowledge-base", "knowledge-base"),
    Point("plan", "call", prefix="plan.outline"),
    Point("write", "call", count=2, prefix="write."),
    Point("review-checks", "verdicts"),
    Point("review-judges", "call", count=3, stage="review"),
    Point("voice-start", "stage", stage="voice", voiced=True),
    Point("clips-few", "clip-synthesized", count=3, voiced=True),
    Point("clips-half", "clip-synthesized", count=15, voiced=True),
    Point("mastering", "clip-%", count=0, voiced=True),  # synthesized or cached
    Point("publish", "stage", prefix="publishing", voiced=True),
    Point("published", "published", voiced=True),
]


def _show(directory: Path, voiced: bool) -> Path:
    directory.mkdir(parents=True)
    show = directory / "show.yaml"
    text = (EXAMPLE / "show.yaml").read_text().replace("target_minutes: 20", "target_minutes: 6")
    show.write_text(text if voiced else text + "\naudio: {voice: false}\n")
    return show


def _produce_command(show: Path) -> list[str]:
    command = [sys.executable, "-m", "castline", "produce", str(show), "--topic", EXAMPLE_TOPIC]
    for source in SOURCES:
        command += ["--source", str(source)]
    return command


def _env(home: Path, latency_ms: int = 0) -> dict[str, str]:
    return {
        **os.environ,
        "CASTLINE_HOME": str(home),
        "CASTLINE_OFFLINE_LATENCY_MS": str(latency_ms),
    }


def _episode_dir(show: Path) -> Path:
    [found] = [p for p in (show.parent / "episodes").iterdir() if p.is_dir()]
    return found


def _texts(directory: Path) -> dict[str, str]:
    run_suffix = directory.name.rsplit("-", 1)[-1]
    texts = {}
    for name in TEXT_OUTPUTS:
        text = re.sub(r"\b[0-9a-f]{12}\b", "RUN", (directory / name).read_text())
        texts[name] = CHAPTER_TIME.sub("- MM:SS ", text.replace(run_suffix, "RUN"))
    return texts


def _produce_and_kill(show: Path, home: Path, point: Point, reached: Callable[[], bool]) -> None:
    """Start `castline produce`, and SIGKILL its process group the moment `point` is reached."""
    process = subprocess.Popen(
        _produce_command(show),
        env=_env(home, latency_ms=40),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not reached():
            assert process.poll() is None, f"the run ended before reaching {point.name}"
            assert time.monotonic() < deadline, f"{point.name} never reached"
            time.sleep(0.005)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, dict[str, str]]:
    """What an uninterrupted run publishes, text only and voiced."""
    made = {}
    for voiced in (False, True):
        root = tmp_path_factory.mktemp("reference")
        show = _show(root / "show", voiced)
        done = subprocess.run(
            _produce_command(show), env=_env(root / "home"), capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        made[voiced] = _texts(_episode_dir(show))
    return made


@pytest.mark.parametrize("point", POINTS, ids=[p.name for p in POINTS])
def test_a_kill_at_any_point_is_finished_by_one_resume(
    point: Point, tmp_path: Path, references: dict[bool, dict[str, str]]
) -> None:
    home, show = tmp_path / "home", _show(tmp_path / "show", point.voiced)
    db = home / "castline.db"
    _produce_and_kill(show, home, point, lambda: point.reached(db))
    with sqlite3.connect(db) as connection:
        [(run_id, status_at_kill)] = connection.execute("SELECT id, status FROM runs").fetchall()
        paid_before = dict(
            connection.execute(
                "SELECT id, finished_at FROM calls WHERE run_id = ? AND status = 'ok'", (run_id,)
            ).fetchall()
        )

    resumed = subprocess.run(
        [sys.executable, "-m", "castline", "resume", run_id],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )

    if status_at_kill == "completed":  # killed as it exited: one resume says there is nothing to do
        assert "already finished" in resumed.stderr
    else:
        assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    with sqlite3.connect(db) as connection:
        [(status,)] = connection.execute("SELECT status FROM runs").fetchall()
        ok = connection.execute(
            "SELECT id, step_key, finished_at FROM calls WHERE run_id = ? AND status = 'ok'",
            (run_id,),
        ).fetchall()
    assert status == "completed"
    repeated = [key for key, n in Counter(key for _, key, _ in ok).items() if n > 1]
    assert repeated == []  # no completed paid step was paid for again
    finished = {call_id: at for call_id, _, at in ok}
    assert all(finished[call_id] == at for call_id, at in paid_before.items())
    assert _texts(_episode_dir(show)) == references[point.voiced]


@pytest.mark.parametrize(
    "point",
    [p for p in POINTS if p.name in {"research-fan-out", "clips-few"}],
    ids=lambda p: p.name,
)
def test_on_postgres_a_kill_in_a_fan_out_is_finished_by_one_resume(
    point: Point, tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same, with the run store and DBOS's workflows in one Postgres database, as workers on
    several machines share them."""
    monkeypatch.setenv("CASTLINE_DATABASE_URL", postgres_url)
    home, show = tmp_path / "home", _show(tmp_path / "show", point.voiced)
    store = Store(postgres_url)
    _produce_and_kill(show, home, point, lambda: _reached(store, point))
    [run] = store.list_runs()

    resumed = subprocess.run(
        [sys.executable, "-m", "castline", "resume", run.id],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert store.get_run(run.id).status == "completed"
    ok = Counter(c.step_key for c in store.calls(run.id) if c.status == "ok")
    assert max(ok.values()) == 1


def _reached(store: Store, point: Point) -> bool:
    events = [
        e
        for run in store.list_runs()
        for e in store.events(run.id)
        if fnmatch.fnmatch(e.kind, point.kind.replace("%", "*"))
        and e.message.startswith(point.prefix)
        and (point.stage is None or e.stage == point.stage)
    ]
    return len(events) >= point.count

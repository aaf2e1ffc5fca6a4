"""The production line end to end: offline episode, failure and resume, crash and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from castline.config import database_url
from castline.engine import episodes, inspection, preflight
from castline.errors import RunNotFound, RunNotResumable, StageFailed
from castline.llm import registry
from castline.llm.scripted import ScriptedProvider
from castline.store import Store
from tests.conftest import EXAMPLE_SOURCES, EXAMPLE_TOPIC


def _ok_counts(store: Store, run_id: str) -> Counter[str]:
    return Counter(c.step_key for c in store.calls(run_id) if c.status == "ok")


def test_offline_example_episode_is_grounded_and_on_length(show_copy: Path) -> None:
    outcome = episodes.produce(show_copy, EXAMPLE_TOPIC, EXAMPLE_SOURCES)

    assert outcome.status == "completed" and outcome.offline
    episode = json.loads((outcome.output_dir / "episode.json").read_text())
    turns = episode["script"]["turns"]
    notes = {n["id"]: n for n in episode["knowledge_base"]["notes"]}
    sources = {s["id"]: " ".join(sec["text"] for sec in s["sections"]) for s in episode["sources"]}
    # target 20 minutes at 150 words a minute, within 15 %
    words = sum(len(t["text"].split()) for t in turns)
    assert 3000 * 0.85 <= words <= 3000 * 1.15
    assert outcome.words == words
    # two hosts alternate: no host speaks more than 60 % of turns, both speak
    speakers = Counter(t["speaker"] for t in turns)
    assert set(speakers) == {"Maya", "Theo"}
    assert max(speakers.values()) / len(turns) < 0.6
    # every factual turn cites a note, and every note quotes its source verbatim
    cited = [t for t in turns if t["citations"]]
    assert len(cited) > 40
    for turn in cited:
        for note_id in turn["citations"]:
            note = notes[note_id]
            assert note["quote"][1:] in turn["text"]  # the first letter may be lowercased
            assert " ".join(note["quote"].split()) in " ".join(sources[note["source_id"]].split())
    for turn in turns:
        if not turn["citations"]:
            assert all(n["quote"][1:] not in turn["text"] for n in notes.values())
    # all three sources are used, and the forbidden phrase planted in one was revised away
    assert {notes[c]["source_id"] for t in cited for c in t["citations"]} == set(sources)
    script = (outcome.output_dir / "script.md").read_text()
    assert "silver bullet" not in script.lower()
    assert "offline" in script and "offline" in (outcome.output_dir / "show-notes.md").read_text()
    assert "not medical advice" in (outcome.output_dir / "transcript.txt").read_text()
    # the outline's segments all appear, in order
    segment_order = [s["id"] for s in episode["outline"]["segments"]]
    seen = list(dict.fromkeys(t["segment"] for t in turns))
    assert seen == segment_order


def test_every_call_is_recorded_with_prompt_usage_and_shadow_cost(show_copy: Path) -> None:
    outcome = episodes.produce(show_copy, EXAMPLE_TOPIC, EXAMPLE_SOURCES)
    store = Store(database_url())
    calls = store.calls(outcome.run_id)

    assert calls and all(c.status == "ok" for c in calls)
    assert max(_ok_counts(store, outcome.run_id).values()) == 1
    for call in calls:
        assert call.provider == "offline" and call.shadow
        assert call.prompt and call.response
        assert call.input_tokens > 0 and call.output_tokens > 0 and call.cost > 0
    writer = [c for c in calls if c.role == "writer"]
    assert {c.priced_as for c in writer} == {"anthropic:claude-opus-4-6"}
    assert sum((c.cost for c in calls), start=outcome.cost * 0) == outcome.cost
    kinds = [e.kind for e in store.events(outcome.run_id)]
    assert kinds[0] == "created" and kinds[-1] == "completed"
    decisions = [e for e in store.events(outcome.run_id) if e.kind == "decision"]
    assert decisions[0].data["rationale"]
    assert any(d.data.get("action") == "revise" for d in decisions)


def test_failed_stage_resumes_without_repeating_finished_steps(show_copy: Path) -> None:
    scripted = ScriptedProvider()
    registry.use(scripted)
    # every model of the writer's chain, then the fallback model, fails on the third segment
    scripted.enqueue("write", lambda task: registry.get("offline").complete(task, "x").output)
    scripted.enqueue("write", lambda task: registry.get("offline").complete(task, "x").output)
    scripted.fail("write", "overloaded", times=3)

    with pytest.raises(StageFailed, match="write") as failure:
        episodes.produce(show_copy, EXAMPLE_TOPIC, EXAMPLE_SOURCES, provider="scripted")
    run_id = failure.value.run_id
    assert run_id is not None
    store = Store(database_url())
    assert store.get_run(run_id).status == "failed"
    before = _ok_counts(store, run_id)
    assert before["write.intro"] == 1 and before["write.s1"] == 1 and "write.s2" not in before
    failed = [c for c in store.calls(run_id) if c.status == "failed"]
    assert [c.priced_as for c in failed] == [
        "anthropic:claude-opus-4-6",
        "anthropic:claude-sonnet-4-6",
        "anthropic:claude-haiku-4-5",
    ]

    later = preflight.create_run(show_copy, "Cool roofs", EXAMPLE_SOURCES[:1])

    outcome = episodes.resume(run_id)

    assert outcome.status == "completed"
    after = _ok_counts(store, run_id)
    assert max(after.values()) == 1
    assert set(before) <= set(after) and "write.outro" in after
    assert [kind for kind, _ in scripted.calls].count("questions") == 1
    # the resumed run keeps the number it was created with; the failed run still held it
    assert outcome.number == 1 and store.get_run(later).number == 2
    assert outcome.output_dir is not None
    assert json.loads((outcome.output_dir / "episode.json").read_text())["number"] == 1


def test_a_failed_run_whose_number_was_given_again_is_not_resumed(show_copy: Path) -> None:
    scripted = ScriptedProvider()
    registry.use(scripted)
    scripted.fail("write", "overloaded", times=3)  # the writer chain and the fallback
    with pytest.raises(StageFailed) as failure:
        episodes.produce(show_copy, EXAMPLE_TOPIC, EXAMPLE_SOURCES, provider="scripted")
    failed = failure.value.run_id
    assert failed is not None
    taker = preflight.create_run(show_copy, "Cool roofs", EXAMPLE_SOURCES[:1], number=1)

    with pytest.raises(RunNotResumable, match=f"number 1 was given to run {taker}"):
        episodes.resume(failed)
    assert Store(database_url()).get_run(failed).status == "failed"


def test_resume_rejects_finished_and_unknown_runs(show_copy: Path) -> None:
    outcome = episodes.produce(show_copy, EXAMPLE_TOPIC, EXAMPLE_SOURCES)
    with pytest.raises(RunNotResumable, match="already finished"):
        episodes.resume(outcome.run_id)
    with pytest.raises(RunNotFound):
        episodes.resume("does-not-exist")


@pytest.mark.slow
def test_sigkill_during_write_then_resume_repeats_no_completed_step(show_copy: Path) -> None:
    env = {**os.environ, "CASTLINE_OFFLINE_LATENCY_MS": "120"}
    command = [
        sys.executable,
        "-m",
        "castline",
        "produce",
        str(show_copy),
        "--topic",
        EXAMPLE_TOPIC,
    ]
    for source in EXAMPLE_SOURCES:
        command += ["--source", str(source)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    store = Store(database_url())
    deadline = time.monotonic() + 60
    run_id = None
    try:
        while time.monotonic() < deadline:
            runs = store.list_runs()
            if runs:
                run_id = runs[0].id
                written = [
                    c for c in store.calls(run_id) if c.stage == "write" and c.status == "ok"
                ]
                if len(written) >= 2:
                    break
            assert process.poll() is None, "the run finished before it could be killed"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert run_id is not None
    before = {c.id: c for c in store.calls(run_id) if c.status == "ok"}
    assert any(c.stage == "write" for c in before.values())
    assert not any(c.stage == "publish" for c in before.values())
    record = store.get_run(run_id)
    assert record.status == "running" and inspection.display_status(record) == "interrupted"

    resumed = subprocess.run(
        [sys.executable, "-m", "castline", "resume", run_id],
        env={k: v for k, v in os.environ.items() if k != "CASTLINE_OFFLINE_LATENCY_MS"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert resumed.returncode == 0, resumed.stderr
    after = store.calls(run_id)
    ok = Counter(c.step_key for c in after if c.status == "ok")
    assert max(ok.values()) == 1, [key for key, n in ok.items() if n > 1]
    for call_id, call in before.items():  # every call finished before the kill is untouched
        assert next(c for c in after if c.id == call_id).finished_at == call.finished_at
    record = store.get_run(run_id)
    assert record.status == "completed"
    episode = json.loads((Path(record.output_dir) / "episode.json").read_text())
    segments = [s["id"] for s in episode["outline"]["segments"]]
    assert all(ok[f"write.{segment}"] == 1 for segment in segments)
    assert {t["segment"] for t in episode["script"]["turns"]} == set(segments)
    assert any(e.kind == "resumed" for e in store.events(run_id))
    # the ledger after the crash: nothing still in flight, nothing settled twice; a call in
    # flight at the kill may have been billed, so it stays counted at its reservation
    # (unreconciled), marked once its step completed in the resumed run
    doubtful = [c for c in after if c.status == "unreconciled"]
    assert all(c.reserved > 0 and "completed later" in (c.error or "") for c in doubtful)
    assert all(c.reserved == 0 for c in after if c.status != "unreconciled")
    settled = sum((c.cost for c in after if c.status == "ok"), Decimal(0))
    assert store.run_cost(run_id) == settled + sum((c.reserved for c in doubtful), Decimal(0))
    assert store.run_cost(run_id) <= record.budget


@pytest.mark.slow
def test_two_resumes_at_once_finish_the_run_once(show_copy: Path) -> None:
    command = [sys.executable, "-m", "castline", "produce", str(show_copy), "-t", EXAMPLE_TOPIC]
    for source in EXAMPLE_SOURCES:
        command += ["--source", str(source)]
    env = {**os.environ, "CASTLINE_OFFLINE_LATENCY_MS": "120"}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    store = Store(database_url())
    try:
        deadline = time.monotonic() + 60
        while not (runs := store.list_runs()) or not any(
            c.stage == "write" and c.status == "ok" for c in store.calls(runs[0].id)
        ):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    [run] = store.list_runs()

    resumes = [
        subprocess.Popen(
            [sys.executable, "-m", "castline", "resume", run.id],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    errors = [r.communicate(timeout=180)[1] for r in resumes]
    ended = [(r.returncode, error) for r, error in zip(resumes, errors, strict=True)]

    assert sorted(code for code, _ in ended) == [0, 2], ended
    [(_, refused)] = [(code, err) for code, err in ended if code != 0]
    assert any(why in refused for why in ("being resumed", "being run by", "still running in"))
    assert store.get_run(run.id).status == "completed"
    assert max(_ok_counts(store, run.id).values()) == 1


def test_a_resume_takes_up_the_routing_fixed_in_the_show_bible(show_copy: Path) -> None:
    """Fix the cause, then resume: a run started before its routing was corrected takes up
    the show bible's routing when it resumes, and says so; what the episode says stays."""
    run_id = preflight.create_run(show_copy, EXAMPLE_TOPIC, EXAMPLE_SOURCES)
    show_copy.write_text(
        show_copy.read_text().replace("target_minutes: 20", "target_minutes: 5")
        + "\nrouting:\n  writer: ['anthropic:claude-sonnet-4-6']\n"
    )

    outcome = episodes.resume(run_id)

    store = Store(database_url())
    writes = [c for c in store.calls(run_id) if c.step_key.startswith("write.")]
    assert outcome.status == "completed"
    assert writes and {c.priced_as for c in writes} == {"anthropic:claude-sonnet-4-6"}
    [rerouted] = [e for e in store.events(run_id) if e.kind == "rerouted"]
    assert rerouted.data["routing"]["writer"] == ["offline (anthropic:claude-sonnet-4-6)"]
    run = store.get_run(run_id)
    assert run.spec["show"]["episode"]["target_minutes"] == 20  # the episode is as started

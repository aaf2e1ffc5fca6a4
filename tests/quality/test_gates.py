"""Planted defects, each caught by the right gate, revised away, and only where it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from castline.cli import cli
from castline.config import database_url
from castline.domain import Turn
from castline.engine import episodes, reviews, runtime
from castline.llm import registry
from castline.llm.base import Task
from castline.llm.offline import OfflineProvider
from castline.llm.scripted import ScriptedProvider
from castline.llm.tasks import JudgeTask, Judgment, SegmentDraft, WriteSegmentTask
from castline.store import Store
from tests.conftest import EXAMPLE_SOURCES, EXAMPLE_TOPIC

OFFLINE = OfflineProvider()


def _written(task: WriteSegmentTask) -> list[Turn]:
    output = OFFLINE.complete(task, "m").output
    assert isinstance(output, SegmentDraft)
    return output.turns


def _plant(segment: str, change: Callable[[list[Turn]], list[Turn]]) -> ScriptedProvider:
    """A writer that plants a defect in one segment; everything else is the offline provider."""
    scripted = ScriptedProvider()

    def write(task: Task[Any]) -> SegmentDraft | None:
        assert isinstance(task, WriteSegmentTask)
        if task.segment.id != segment:
            return None
        return SegmentDraft(turns=change(_written(task)))

    scripted.respond("write", write)
    registry.use(scripted)
    return scripted


def _run(show: Path) -> tuple[episodes.Outcome, dict[str, Any], Store]:
    outcome = episodes.produce(show, EXAMPLE_TOPIC, EXAMPLE_SOURCES, provider="scripted")
    assert outcome.output_dir is not None
    episode = json.loads((outcome.output_dir / "episode.json").read_text())
    return outcome, episode, Store(database_url())


def _caught_then_confined(
    episode: dict[str, Any],
    store: Store,
    run_id: str,
    gate: str,
    criterion: str,
    segment: str,
    *,
    also: set[tuple[str, str]] | None = None,
) -> None:
    first = episode["quality"]["rounds"][0]
    failing = [v for v in first["verdicts"] if not v["passed"]]
    assert {(v["gate"], v["criterion"]) for v in failing} == {(gate, criterion), *(also or set())}
    assert {f["segment"] for v in failing for f in v["findings"]} == {segment}
    assert first["revised"] == [segment]
    polished = [c.step_key for c in store.calls(run_id) if c.stage == "polish"]
    assert polished == [f"polish.1.{segment}"]  # the revision touched that segment only
    last = episode["quality"]["rounds"][-1]
    assert all(v["passed"] for v in last["verdicts"])
    assert episode["accepted"] and episode["quality"]["decision"] == "accepted"


def _turn(speaker: str, text: str, segment: str) -> Turn:
    return Turn(speaker=speaker, text=text, segment=segment)


def _without_silver_bullet(show: Path) -> Path:
    """The example show forbids "silver bullet", which one source uses; allow it here so that
    each test plants exactly one defect."""
    show.write_text(show.read_text().replace("    - silver bullet\n", ""))
    return show


def test_a_forbidden_phrase_is_caught_by_compliance_and_revised_away(show_copy: Path) -> None:
    _plant("s2", lambda turns: [*turns, _turn("Maya", "Cool roofs are a game changer.", "s2")])
    outcome, episode, store = _run(_without_silver_bullet(show_copy))
    _caught_then_confined(episode, store, outcome.run_id, "compliance", "forbidden-phrases", "s2")
    assert "game changer" not in (outcome.output_dir / "script.md").read_text().lower()


def test_a_missing_disclaimer_is_caught_by_compliance_and_added(show_copy: Path) -> None:
    _plant("outro", lambda turns: [t for t in turns if "medical advice" not in t.text])
    outcome, episode, store = _run(_without_silver_bullet(show_copy))
    _caught_then_confined(episode, store, outcome.run_id, "compliance", "disclaimers", "outro")
    assert "not medical advice" in (outcome.output_dir / "transcript.txt").read_text()


def test_an_invented_statistic_is_caught_by_content_and_removed(show_copy: Path) -> None:
    invented = "Cool roofs cut heat deaths by 47 percent in every city that tried them."
    _plant("s1", lambda turns: [*turns, _turn("Theo", invented, "s1")])
    outcome, episode, store = _run(_without_silver_bullet(show_copy))
    _caught_then_confined(episode, store, outcome.run_id, "content", "groundedness", "s1")
    first = episode["quality"]["rounds"][0]
    grounded = next(v for v in first["verdicts"] if v["criterion"] == "groundedness")
    assert invented in grounded["findings"][0]["message"]
    assert invented not in (outcome.output_dir / "transcript.txt").read_text()


def test_an_off_persona_turn_is_caught_by_style_and_removed(show_copy: Path) -> None:
    off = "Honestly, I never trust measurements; numbers bore me."
    _plant("s3", lambda turns: [*turns, _turn("Maya", off, "s3")])
    outcome, episode, store = _run(_without_silver_bullet(show_copy))
    _caught_then_confined(episode, store, outcome.run_id, "style", "persona", "s3")
    assert off not in (outcome.output_dir / "transcript.txt").read_text()


def test_a_segment_repeated_from_an_earlier_episode_is_caught_and_rewritten(
    show_copy: Path,
) -> None:
    show = _without_silver_bullet(show_copy)
    # two ten-minute episodes from the same sources: enough for both without repeating
    show.write_text(show.read_text().replace("target_minutes: 20", "target_minutes: 10"))
    first, earlier, _ = _run(show)
    assert earlier["accepted"]
    copied = [Turn(**t) for t in earlier["script"]["turns"] if t["segment"] == "s2"]
    _plant("s2", lambda turns: [t.model_copy(update={"segment": "s2"}) for t in copied])

    outcome, episode, store = _run(show)

    # the copied turns quote no note of this episode: claims the deterministic check leaves to
    # the judges (never blocked for their wording alone), and both judges find them unsupported
    _caught_then_confined(
        episode,
        store,
        outcome.run_id,
        "integration",
        "repetition",
        "s2",
        also={("content", "accuracy")},
    )
    [judged] = [e for e in store.events(outcome.run_id) if e.kind == "claims-judged"][:1]
    assert judged.data["flagged"] and judged.data["round"] == 0
    grounded = next(
        v for v in episode["quality"]["rounds"][0]["verdicts"] if v["criterion"] == "groundedness"
    )
    assert grounded["passed"]
    assert {f["segment"] for f in grounded["findings"]} == {"s2"}
    assert {f["check"] for f in grounded["findings"]} == {"claim-to-verify"}
    repeated = next(
        v for v in episode["quality"]["rounds"][0]["verdicts"] if v["criterion"] == "repetition"
    )
    assert first.run_id in repeated["findings"][0]["message"]
    final = {t["text"] for t in episode["script"]["turns"] if t["segment"] == "s2"}
    assert not final & {t.text for t in copied if t.citations}


def _disagree_on_tone(task: Task[Any]) -> Judgment | None:
    assert isinstance(task, JudgeTask)
    if task.criterion != "tone":
        return None
    score = 0.95 if task.evaluator == "primary" else 0.40
    return Judgment(score=score, reason=f"{task.evaluator} thinks {score}")


def test_evaluators_who_disagree_send_the_episode_to_a_person_who_approves_it_later(
    show_copy: Path,
) -> None:
    show = _without_silver_bullet(show_copy)
    show.write_text(
        show.read_text().replace(
            "max_revision_rounds: 2", "max_revision_rounds: 2\n  escalation: human"
        )
    )
    scripted = ScriptedProvider()
    scripted.respond("judge", _disagree_on_tone)
    registry.use(scripted)

    outcome = episodes.produce(show, EXAMPLE_TOPIC, EXAMPLE_SOURCES, provider="scripted")

    assert outcome.status == "awaiting-review" and outcome.output_dir is None
    store = Store(database_url())
    assert store.get_run(outcome.run_id).status == "awaiting-review"
    listing = CliRunner().invoke(cli, ["review"], catch_exceptions=False)
    assert outcome.run_id in listing.output and "tone" in listing.output
    shown = CliRunner().invoke(cli, ["review", "show", outcome.run_id], catch_exceptions=False)
    assert "primary thinks 0.95" in shown.output and "Maya:" in shown.output
    runtime.shutdown()  # the producing process is gone; a new one takes the decision

    approved = subprocess.run(
        [sys.executable, "-m", "castline", "review", "approve", outcome.run_id, "--note", "fine"],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )

    assert approved.returncode == 0, approved.stdout + approved.stderr
    record = store.get_run(outcome.run_id)
    assert record.status == "completed"
    episode = json.loads((Path(record.output_dir) / "episode.json").read_text())
    assert episode["quality"]["human"] == "approved"
    assert episode["quality"]["decision"] == "approved by a person"
    tone = next(c for c in episode["quality"]["rounds"][0]["consensus"] if c["criterion"] == "tone")
    assert tone["decision"] == "escalate" and tone["resolved_by"] == "human"
    calls = [c.step_key for c in store.calls(outcome.run_id)]
    assert len(calls) == len(set(calls))  # nothing paid for twice across the restart
    kinds = [e.kind for e in store.events(outcome.run_id)]
    assert "awaiting-review" in kinds and "review-decided" in kinds and kinds[-1] == "completed"


def test_with_a_tiebreaker_the_disagreement_is_settled_by_a_third_model(show_copy: Path) -> None:
    scripted = ScriptedProvider()
    scripted.respond("judge", _disagree_on_tone)
    registry.use(scripted)

    outcome, episode, store = _run(_without_silver_bullet(show_copy))

    tone = next(c for c in episode["quality"]["rounds"][0]["consensus"] if c["criterion"] == "tone")
    assert tone["resolved_by"] == "tiebreaker" and "tiebreaker" in tone["scores"]
    tiebreak = [c for c in store.calls(outcome.run_id) if c.role == "evaluator_tiebreaker"]
    assert [c.step_key for c in tiebreak] == ["review.0.tone.tiebreaker"]
    assert outcome.status == "completed"
    assert {a["gate"] for a in episode["quality"]["agreement"]} >= {"style", "content"}
    style = next(a for a in episode["quality"]["agreement"] if a["gate"] == "style")
    assert style["agreement_rate"] == 0.0 and style["mean_absolute_difference"] == pytest.approx(
        0.55
    )


def test_an_unanswered_review_is_decided_by_the_show_policy_after_the_timeout(
    show_copy: Path,
) -> None:
    show = _without_silver_bullet(show_copy)
    show.write_text(
        show.read_text().replace(
            "max_revision_rounds: 2",
            "max_revision_rounds: 2\n  escalation: human\n  review_timeout_hours: 1\n"
            "  on_timeout: reject",
        )
    )
    scripted = ScriptedProvider()
    scripted.respond("judge", _disagree_on_tone)
    registry.use(scripted)
    outcome = episodes.produce(show, EXAMPLE_TOPIC, EXAMPLE_SOURCES, provider="scripted")
    assert outcome.status == "awaiting-review"
    requested = reviews.review_of(outcome.run_id)["requested_at"]

    assert reviews.apply_review_timeouts(now=requested + 1800) == []  # half an hour: waits
    decided = reviews.apply_review_timeouts(now=requested + 3601)

    assert decided == [(outcome.run_id, "rejected")]
    record = Store(database_url()).get_run(outcome.run_id)
    assert record.status == "rejected"
    episode = json.loads((Path(record.output_dir) / "episode.json").read_text())
    assert episode["quality"]["human"] == "rejected" and not episode["accepted"]

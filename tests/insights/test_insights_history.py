"""A show's history: which runs count, per-episode figures, trends, recurring gate failures
and the recommendations learnt across episodes (triggered, and not)."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from castline.config import database_url
from castline.errors import UsageError
from castline.insights import show_history
from castline.store import Store
from tests.insights.episodes import FORBIDDEN, publish_episode

SONNET = "anthropic:claude-sonnet-4-6"


@pytest.fixture
def store() -> Store:
    return Store(database_url())


def test_episodes_are_the_shows_published_runs_oldest_first(store: Store, tmp_path: Path) -> None:
    publish_episode(store, tmp_path, "a1", number=1)
    publish_episode(store, tmp_path, "b1", show="Another Show")
    publish_episode(store, tmp_path, "a2", number=2, published=False)  # failed before publishing
    publish_episode(store, tmp_path, "a3", show="  heat   CHECK ", number=3)
    history = show_history(store, "heat check")
    assert [e.run_id for e in history.episodes] == ["a1", "a3"]
    first = history.episodes[0]
    assert first.cost == Decimal("1.25")
    assert first.polish_cost == Decimal("0.25")
    assert first.polish_s == pytest.approx(3.0, abs=0.01)
    assert first.audio_s == 600.0
    assert first.cost_per_minute == Decimal("0.125")
    assert first.revision_rounds == 1
    assert first.scores == {"compliance": 1.0, "style": 1.0}  # the last round's
    assert [(f.gate, f.criterion, f.reason) for f in first.first_failures] == [
        ("compliance", "forbidden-phrases", FORBIDDEN)
    ]


def test_an_unknown_show_names_the_shows_there_are(store: Store, tmp_path: Path) -> None:
    publish_episode(store, tmp_path, "a1")
    with pytest.raises(UsageError, match=re.escape("no runs of the show 'Nope' in this run store; "
                                                   "shows with runs: Heat Check")):  # fmt: skip
        show_history(store, "Nope")


def test_a_gate_failing_every_episode_is_a_retrospective(store: Store, tmp_path: Path) -> None:
    for n, polish in enumerate(["0.20", "0.30", "0.40"], start=1):
        publish_episode(store, tmp_path, f"e{n}", number=n, polish_cost=Decimal(polish))
    history = show_history(store, "Heat Check")
    [recurring] = history.recurring
    assert (recurring.gate, recurring.criterion, recurring.failed, recurring.of) == (
        "compliance", "forbidden-phrases", 3, 3
    )  # fmt: skip
    [found] = [r for r in history.recommendations if r.kind == "recurring-gate-failure"]
    assert found.saving_usd == Decimal("0.3")  # the mean revision cost an episode
    assert found.saving_s == pytest.approx(3.0, abs=0.05)
    assert found.evidence["episodes"] == ["e1", "e2", "e3"]
    assert found.evidence["reasons"] == [FORBIDDEN]
    assert "all 3 of the show's last 3 episodes" in found.message


def test_a_gate_that_passed_once_is_recurring_but_not_a_retrospective(
    store: Store, tmp_path: Path
) -> None:
    publish_episode(store, tmp_path, "e1", number=1)
    publish_episode(store, tmp_path, "e2", number=2, fails=False)
    publish_episode(store, tmp_path, "e3", number=3)
    history = show_history(store, "Heat Check")
    assert [(r.criterion, r.failed, r.of) for r in history.recurring] == [
        ("forbidden-phrases", 2, 3)
    ]
    assert [r.kind for r in history.recommendations] == []


def test_two_failing_episodes_are_not_yet_a_pattern(store: Store, tmp_path: Path) -> None:
    publish_episode(store, tmp_path, "e1", number=1)
    publish_episode(store, tmp_path, "e2", number=2)
    assert show_history(store, "Heat Check").recommendations == []


def test_only_the_window_of_recent_episodes_counts(store: Store, tmp_path: Path) -> None:
    publish_episode(store, tmp_path, "e1", number=1, fails=False)
    for n in range(2, 5):
        publish_episode(store, tmp_path, f"e{n}", number=n)
    assert show_history(store, "Heat Check", window=4).recommendations == []
    [found] = show_history(store, "Heat Check", window=3).recommendations
    assert found.evidence["episodes"] == ["e2", "e3", "e4"]


def test_trends_compare_recent_episodes_with_the_ones_before(store: Store, tmp_path: Path) -> None:
    for n, cost in enumerate(["1", "1", "3", "3"], start=1):
        publish_episode(store, tmp_path, f"e{n}", number=n, research_cost=Decimal(cost),
                        polish_cost=Decimal(0), fails=n <= 2)  # fmt: skip
    trends = {t.metric: t for t in show_history(store, "Heat Check").trends}
    assert (trends["cost_usd"].recent, trends["cost_usd"].previous) == (3.0, 1.0)
    assert trends["cost_usd"].change == 2.0
    assert trends["cost_usd"].episodes == 2
    assert trends["cost_per_minute_usd"].recent == pytest.approx(0.3)
    assert trends["first_round_failures"].change == -1.0
    assert trends["revision_rounds"].previous == 1.0


def test_one_episode_has_no_trend(store: Store, tmp_path: Path) -> None:
    publish_episode(store, tmp_path, "e1")
    assert show_history(store, "Heat Check").trends == []


def test_a_moved_quality_report_falls_back_to_the_audit_trail(store: Store, tmp_path: Path) -> None:
    publish_episode(store, tmp_path, "e1")
    (tmp_path / "e1" / "quality-report.json").unlink()
    verdict = {"gate": "compliance", "criterion": "length", "evaluator": "deterministic",
               "score": 0.0, "passed": False, "reason": "too short"}  # fmt: skip
    store.add_event("e1", "verdicts", "round 0", stage="review",
                    data={"round": 0, "verdicts": [verdict]})  # fmt: skip
    store.add_event("e1", "decision", "revise s3", stage="review",
                    data={"round": 0, "revise": ["s3"]})  # fmt: skip
    [episode] = show_history(store, "Heat Check").episodes
    assert [(f.criterion, f.reason) for f in episode.first_failures] == [("length", "too short")]
    assert episode.revision_rounds == 1


def test_run_level_findings_that_recur_are_summed_across_episodes(
    store: Store, tmp_path: Path
) -> None:
    from tests.insights.journal import add_call

    for n in (1, 2):
        publish_episode(store, tmp_path, f"e{n}", number=n, fails=False)
        # the run's own prices (no show bible here: castline's): $3/M input, half off batched
        add_call(store, f"e{n}", priced_as=SONNET, input_tokens=100_000, cost=Decimal("0.3"))
    history = show_history(store, "Heat Check")
    [found] = history.recommendations
    assert found.kind == "batch-research"
    assert found.evidence["saving_total_usd"] == Decimal("0.3")
    assert found.saving_usd == Decimal("0.15")  # an episode
    assert found.message.startswith("In 2 of the last 2 episodes")


def test_a_judged_criterion_fails_by_its_consensus() -> None:
    from castline.domain import ConsensusRecord, QualityReport, QualityRound, Verdict
    from castline.insights.history import first_round_failures

    def judged(criterion: str, primary: bool, secondary: bool) -> list[Verdict]:
        return [
            Verdict(gate="content", criterion=criterion, evaluator=name, score=0.5,
                    passed=passed, reason=f"{name} on {criterion}")
            for name, passed in (("primary", primary), ("secondary", secondary))
        ]  # fmt: skip

    verdicts = judged("accuracy", True, False) + judged("coherence", True, False)
    consensus = [
        ConsensusRecord(gate="content", criterion="accuracy", scores={}, decision="fail",
                        passed=False),
        ConsensusRecord(gate="content", criterion="coherence", scores={}, decision="pass",
                        passed=True),
    ]  # fmt: skip
    report = QualityReport(rounds=[QualityRound(round=0, verdicts=verdicts, consensus=consensus)])
    [failure] = first_round_failures(report)
    assert (failure.criterion, failure.reason) == ("accuracy", "secondary on accuracy")

"""Published episodes of a show written into a store as a run leaves them: calls, the
`mastered` and `published` events, and the quality report file recorded as an artifact."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from castline.domain import QualityReport, QualityRound, Verdict
from castline.store import Store
from tests.insights.journal import add_call, new_run

FORBIDDEN = 'turn 12 uses the forbidden phrase "silver bullet"'


def quality(*, fails: bool, revised: bool = True) -> QualityReport:
    """Two rounds: the first fails compliance/forbidden-phrases when `fails`, the second
    passes."""
    first = [
        Verdict(gate="compliance", criterion="forbidden-phrases", evaluator="deterministic",
                score=0.9 if fails else 1.0, passed=not fails, reason=FORBIDDEN if fails else "ok"),
        Verdict(gate="style", criterion="tone", evaluator="primary", score=0.8, passed=True,
                reason="fine"),
    ]  # fmt: skip
    second = [v.model_copy(update={"score": 1.0, "passed": True}) for v in first]
    rounds = [QualityRound(round=0, verdicts=first, revised=["s2"] if fails and revised else [])]
    if fails:
        rounds.append(QualityRound(round=1, verdicts=second))
    return QualityReport(rounds=rounds, decision="accepted")


def publish_episode(
    store: Store,
    tmp_path: Path,
    run_id: str,
    *,
    show: str = "Heat Check",
    number: int = 1,
    research_cost: Decimal = Decimal(1),
    polish_cost: Decimal = Decimal("0.25"),
    fails: bool = True,
    audio_s: float | None = 600.0,
    published: bool = True,
) -> str:
    new_run(store, run_id, show_title=show, spec={"number": number}, status="completed")
    add_call(store, run_id, cost=research_cost, batch=True)
    if polish_cost:
        add_call(store, run_id, stage="polish", role="polisher", cost=polish_cost, seconds=3.0)
    if audio_s is not None:
        audio = {"file": "episode.mp3", "bytes": 1, "duration_s": audio_s, "loudness_lufs": -16,
                 "true_peak_db": -1.5, "clips": 3, "synthesized": 3}  # fmt: skip
        store.add_event(run_id, "mastered", "mastered", stage="voice", data={"audio": audio})
    path = tmp_path / run_id / "quality-report.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(quality(fails=fails).model_dump_json())
    store.add_artifact(run_id, "quality-report.json", str(path), "0" * 64, 1)
    if published:
        store.add_event(run_id, "published", "3 files written", stage="publish")
    return run_id

"""A show's history in the run store: each published episode's cost, audio length, quality and
revisions, the trends across them, and the recommendations that only history can make (the
seed's automated retrospectives: a gate that fails episode after episode is fixed upstream).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from statistics import fmean
from typing import Any

from pydantic import ValidationError

from castline.config import title_key
from castline.domain import Episode, QualityReport, Verdict
from castline.errors import UsageError
from castline.insights.recommendations import (
    Recommendation,
    RunFacts,
    ranked,
    recommend,
    run_pricer,
)
from castline.store import RunRecord, Store

WINDOW = 5  # trends compare the last WINDOW episodes with the WINDOW before them
MIN_RECURRING = 3  # episodes a gate must fail in a row before it is called recurring
QUALITY_FILE = "quality-report.json"
_ALL_RUNS = 1_000_000


@dataclass(frozen=True)
class GateFailure:
    gate: str
    criterion: str
    reason: str


@dataclass(frozen=True)
class EpisodeStats:
    """One published episode as its run measured it."""

    run_id: str
    number: int | None
    title: str
    status: str
    created_at: float
    shadow: bool
    cost: Decimal
    polish_cost: Decimal
    polish_s: float
    audio_s: float | None
    scores: dict[str, float]  # gate: mean score in the last review round
    first_failures: list[GateFailure]  # what failed the first review round
    revision_rounds: int
    recommendations: list[Recommendation] = field(default_factory=list)

    @property
    def cost_per_minute(self) -> Decimal | None:
        if not self.audio_s:
            return None
        return self.cost / Decimal(str(self.audio_s / 60))

    @property
    def quality(self) -> float | None:
        return fmean(self.scores.values()) if self.scores else None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["cost"] = str(self.cost)
        data["polish_cost"] = str(self.polish_cost)
        per_minute = self.cost_per_minute
        data["cost_per_minute"] = (
            str(per_minute.quantize(Decimal("0.000001"))) if per_minute else None
        )
        data["quality"] = self.quality
        data["recommendations"] = [r.as_json() for r in self.recommendations]
        return data


@dataclass(frozen=True)
class Trend:
    """A figure's mean over the last episodes against the ones before them."""

    metric: str
    recent: float
    previous: float
    episodes: int  # in each window

    @property
    def change(self) -> float:
        return self.recent - self.previous

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "change": self.change}


@dataclass(frozen=True)
class Recurring:
    """A criterion that failed the first review in `failed` of the last `of` episodes."""

    gate: str
    criterion: str
    failed: int
    of: int
    reasons: list[str]  # most frequent first
    runs: list[str]


@dataclass(frozen=True)
class ShowHistory:
    show: str
    episodes: list[EpisodeStats]  # oldest first
    trends: list[Trend]
    recurring: list[Recurring]
    recommendations: list[Recommendation]

    @property
    def total_cost(self) -> Decimal:
        return sum((e.cost for e in self.episodes), Decimal(0))

    def as_json(self) -> dict[str, Any]:
        return {
            "show": self.show,
            "episodes": [e.as_json() for e in self.episodes],
            "total_cost": str(self.total_cost),
            "trends": [t.as_json() for t in self.trends],
            "recurring": [asdict(r) for r in self.recurring],
            "recommendations": [r.as_json() for r in self.recommendations],
        }


def show_history(
    store: Store, show: str, *, current: Episode | None = None, window: int = WINDOW
) -> ShowHistory:
    """The show's published episodes (by title, case-insensitively), oldest first. `current`
    is an episode being published now: its own quality report stands in for the file that
    is not recorded yet. Raises `UsageError` when the store has no run of the show."""
    key = title_key(show)
    every = store.list_runs(_ALL_RUNS)
    runs = [r for r in reversed(every) if title_key(r.show_title) == key]
    if not runs:
        known = sorted({r.show_title for r in every})
        listed = f"; shows with runs: {', '.join(known)}" if known else "; the store has no runs"
        raise UsageError(f"no runs of the show {show!r} in this run store{listed}")
    episodes = []
    for record in runs:
        stats = _episode(
            store, record, current if current and current.run_id == record.id else None
        )
        if stats is not None:
            episodes.append(stats)
    recent = episodes[-window:]
    recurring = recurring_failures(recent)
    return ShowHistory(
        show=runs[-1].show_title,
        episodes=episodes,
        trends=trends(episodes, window),
        recurring=recurring,
        recommendations=history_recommendations(recent, recurring),
    )


def _episode(store: Store, record: RunRecord, current: Episode | None) -> EpisodeStats | None:
    events = store.events(record.id)
    if current is None and not any(e.kind == "published" for e in events):
        return None
    facts = RunFacts(record, store.calls(record.id), events, run_pricer(record))
    quality = current.quality if current is not None else _quality(store, record)
    audio = next((e.data.get("audio") for e in reversed(events) if e.kind == "mastered"), None)
    if current is not None and current.audio is not None:
        audio = current.audio.model_dump()
    polish = [c for c in facts.calls if c.stage == "polish"]
    title = (current.script.title if current else None) or record.episode_title or record.topic
    return EpisodeStats(
        run_id=record.id,
        number=record.number,
        title=title,
        status=record.status,
        created_at=record.created_at,
        shadow=record.offline,
        cost=store.run_cost(record.id),
        polish_cost=sum((c.cost for c in polish), Decimal(0)),
        polish_s=sum((c.finished_at or c.started_at) - c.started_at for c in polish),
        audio_s=float(audio["duration_s"]) if isinstance(audio, dict) else None,
        scores=_scores(quality),
        first_failures=first_round_failures(quality),
        revision_rounds=sum(1 for r in quality.rounds if r.revised),
        recommendations=recommend(facts),
    )


def _quality(store: Store, record: RunRecord) -> QualityReport:
    """The quality report the run published, or (moved or deleted) what the audit trail kept:
    the deterministic checks of each round and the revisions the decisions asked for."""
    for artifact in store.artifacts(record.id):
        if artifact.name == QUALITY_FILE:
            try:
                return QualityReport.model_validate_json(Path(artifact.path).read_text("utf-8"))
            except (OSError, ValidationError, json.JSONDecodeError):
                break
    rounds: dict[int, dict[str, Any]] = {}
    for event in store.events(record.id):
        if event.kind == "verdicts":
            rounds.setdefault(int(event.data.get("round", 0)), {})["verdicts"] = event.data.get(
                "verdicts", []
            )
        elif event.kind == "decision" and event.data.get("revise"):
            rounds.setdefault(int(event.data.get("round", 0)), {})["revised"] = event.data["revise"]
    return QualityReport.model_validate(
        {
            "rounds": [
                {"round": n, "verdicts": r.get("verdicts", []), "revised": r.get("revised", [])}
                for n, r in sorted(rounds.items())
            ]
        }
    )


def _scores(quality: QualityReport) -> dict[str, float]:
    if not quality.rounds:
        return {}
    by_gate: dict[str, list[float]] = {}
    for verdict in quality.rounds[-1].verdicts:
        by_gate.setdefault(verdict.gate, []).append(verdict.score)
    return {gate: round(fmean(scores), 4) for gate, scores in by_gate.items()}


def first_round_failures(quality: QualityReport) -> list[GateFailure]:
    """What failed the first review round: a judged criterion by its evaluators' consensus
    (one evaluator failing it is not a failure when the consensus passed it), a check by its
    verdict; the reason is a failing verdict's."""
    if not quality.rounds:
        return []
    first = quality.rounds[0]
    judged = {(c.gate, c.criterion): c.passed for c in first.consensus}
    verdicts: dict[tuple[str, str], list[Verdict]] = {}
    for verdict in first.verdicts:
        verdicts.setdefault((verdict.gate, verdict.criterion), []).append(verdict)
    failures = []
    for (gate, criterion), given in verdicts.items():
        passed = judged.get((gate, criterion), all(v.passed for v in given))
        if not passed:
            reason = next((v.reason for v in given if not v.passed), given[0].reason)
            failures.append(GateFailure(gate, criterion, reason))
    return failures


def trends(episodes: list[EpisodeStats], window: int = WINDOW) -> list[Trend]:
    """The last `window` episodes against the `window` before them (halves of the history
    when it is shorter); none with fewer than two episodes."""
    if len(episodes) < 2:
        return []
    size = min(window, len(episodes) // 2)
    recent, previous = episodes[-size:], episodes[-2 * size : -size]
    metrics = {
        "cost_usd": lambda e: float(e.cost),
        "cost_per_minute_usd": lambda e: float(e.cost_per_minute) if e.cost_per_minute else None,
        "quality": lambda e: e.quality,
        "revision_rounds": lambda e: float(e.revision_rounds),
        "first_round_failures": lambda e: float(len(e.first_failures)),
    }
    found = []
    for name, measure in metrics.items():
        now = [v for v in map(measure, recent) if v is not None]
        before = [v for v in map(measure, previous) if v is not None]
        if now and before:
            found.append(Trend(name, round(fmean(now), 6), round(fmean(before), 6), size))
    return found


def recurring_failures(episodes: list[EpisodeStats]) -> list[Recurring]:
    """Criteria that failed the first review in more than one of `episodes`, most often
    first."""
    failing: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for episode in episodes:
        for failure in episode.first_failures:
            failing.setdefault((failure.gate, failure.criterion), []).append(
                (episode.run_id, failure.reason)
            )
    found = [
        Recurring(
            gate=gate,
            criterion=criterion,
            failed=len(seen),
            of=len(episodes),
            reasons=[reason for reason, _ in Counter(r for _, r in seen).most_common()],
            runs=[run for run, _ in seen],
        )
        for (gate, criterion), seen in failing.items()
        if len(seen) > 1
    ]
    return sorted(found, key=lambda r: (-r.failed, r.gate, r.criterion))


def history_recommendations(
    episodes: list[EpisodeStats], recurring: list[Recurring]
) -> list[Recommendation]:
    """What the show should change, learnt from its last episodes: a gate failing every one of
    them (fix it where the script is written, not in revision), and each run-level
    recommendation with what it cost across the episodes it recurred in."""
    found = []
    for failure in recurring:
        if failure.failed < MIN_RECURRING or failure.failed < failure.of:
            continue
        hit = [e for e in episodes if e.run_id in failure.runs]
        polish = sum((e.polish_cost for e in hit), Decimal(0)) / len(hit)
        seconds = fmean(e.polish_s for e in hit)
        found.append(
            Recommendation(
                kind="recurring-gate-failure",
                message=(
                    f"{failure.gate}/{failure.criterion} failed the first review in all "
                    f"{failure.of} of the show's last {failure.of} episodes (most often: "
                    f"{failure.reasons[0]!r}). Fix it where the script is made, in the show "
                    "bible's rules or brand voice, instead of in revision: revising cost "
                    f"${polish:.4f} and {seconds:.1f} s an episode."
                ),
                saving_usd=polish,
                saving_s=round(seconds, 3),
                evidence={
                    "gate": failure.gate,
                    "criterion": failure.criterion,
                    "episodes": failure.runs,
                    "reasons": failure.reasons,
                },
            )
        )
    by_kind: dict[str, list[tuple[EpisodeStats, Recommendation]]] = {}
    for episode in episodes:
        for rec in episode.recommendations:
            by_kind.setdefault(rec.kind, []).append((episode, rec))
    for kind, seen in by_kind.items():
        runs = sorted({e.run_id for e, _ in seen})
        if len(runs) < 2:
            continue
        total = sum((r.saving_usd or Decimal(0) for _, r in seen), Decimal(0))
        latest = seen[-1][1]
        found.append(
            Recommendation(
                kind=latest.kind,
                message=(
                    f"In {len(runs)} of the last {len(episodes)} episodes ({kind}), "
                    f"${total:.4f} in all; the latest: {latest.message}"
                ),
                saving_usd=total / len(runs),
                evidence={"episodes": runs, "saving_total_usd": total, "latest": latest.evidence},
            )
        )
    return ranked(found)

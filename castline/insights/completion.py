"""The completion report of one episode: what it cost and where, how it was judged and
revised, what the audio measured, and what to change next time (from this run and the show's
history). `castline.insights.html` renders it as report.html."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from statistics import fmean

from castline.budget.report import CostReport, cost_report
from castline.domain import Episode
from castline.errors import UsageError
from castline.insights.history import ShowHistory, show_history
from castline.insights.recommendations import Recommendation, RunFacts, ranked, recommend
from castline.store import Store


@dataclass(frozen=True)
class CompletionReport:
    episode: Episode
    cost: CostReport
    recommendations: list[Recommendation]  # this run's and the show history's, largest first
    history: ShowHistory | None

    @property
    def cache_read_share(self) -> float:
        """The share of the prompt tokens models read from their cache."""
        rows = self.cost.by_model
        prompt = sum(r.input_tokens + r.cache_read_tokens + r.cache_write_tokens for r in rows)
        return sum(r.cache_read_tokens for r in rows) / prompt if prompt else 0.0

    @property
    def gates(self) -> list[str]:
        seen: dict[str, None] = {}
        for record in self.episode.quality.rounds:
            for verdict in record.verdicts:
                seen.setdefault(verdict.gate, None)
        return list(seen)

    def gate_scores(self) -> list[tuple[int, dict[str, float]]]:
        """Each review round's mean score per gate."""
        rounds = []
        for record in self.episode.quality.rounds:
            by_gate: dict[str, list[float]] = {}
            for verdict in record.verdicts:
                by_gate.setdefault(verdict.gate, []).append(verdict.score)
            rounds.append((record.round, {g: fmean(s) for g, s in by_gate.items()}))
        return rounds

    @property
    def saving_usd(self) -> Decimal:
        return sum((r.saving_usd or Decimal(0) for r in self.recommendations), Decimal(0))


def completion_report(store: Store, episode: Episode) -> CompletionReport:
    """Gather the report of `episode` (being published now) from the store."""
    facts = RunFacts.load(store, episode.run_id)
    found = recommend(facts)
    try:
        history: ShowHistory | None = show_history(store, episode.show_title, current=episode)
    except UsageError:  # the run is not in this store under its show's title
        history = None
    if history is not None:
        # a finding that recurred across episodes is reported once, with what it cost in all
        learnt = {r.kind for r in history.recommendations}
        found = [r for r in found if r.kind not in learnt] + history.recommendations
    return CompletionReport(
        episode=episode,
        cost=cost_report(store, facts.run.id),
        recommendations=ranked(found),
        history=history,
    )

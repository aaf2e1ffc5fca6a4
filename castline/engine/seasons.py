"""Many episodes of one show as a batch: every input checked and every episode forecast before
anything is spent, then queued for workers under one total cap that the ledger enforces across
them (each episode keeps its own budget too)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from castline.budget.estimate import Forecast, estimate
from castline.engine import preflight, runtime
from castline.errors import ConfigError
from castline.season import PlannedEpisode, Season, load_season


@dataclass(frozen=True)
class PlannedRun:
    episode: PlannedEpisode
    sources: list[Path | str]
    forecast: Forecast


@dataclass(frozen=True)
class SeasonPlan:
    show_path: Path
    season_path: Path
    runs: list[PlannedRun]
    cap: Decimal  # the batch's total budget

    @property
    def expected(self) -> Decimal:
        return sum((run.forecast.expected for run in self.runs), Decimal(0))

    @property
    def high(self) -> Decimal:
        return sum((run.forecast.high for run in self.runs), Decimal(0))


def plan_season(show_path: Path, season_path: Path, *, provider: str | None = None) -> SeasonPlan:
    """Check the batch file, every episode's inputs (as `produce` would, keys included) and
    forecast each episode; refuse a batch whose expected cost does not fit its cap."""
    season: Season = load_season(season_path)
    base = Path(season_path).parent
    planned = []
    for position, episode in enumerate(season.episodes, start=1):
        sources = season.source_paths(episode, base)
        try:
            prepared = preflight.prepare(
                show_path, episode.topic, sources, provider=provider, number=episode.number
            )
            forecast = estimate(show_path, episode.topic, sources)
        except ConfigError as exc:
            raise ConfigError(
                f"{season_path}: episode {position} ({episode.topic!r}): {exc}"
            ) from exc
        planned.append(PlannedRun(episode, sources, forecast))
    per_episode = prepared.show.budget.per_episode
    cap = season.budget if season.budget is not None else per_episode * len(planned)
    plan = SeasonPlan(Path(show_path), Path(season_path), planned, cap)
    if plan.expected > cap:
        raise ConfigError(
            f"{season_path}: the batch ({len(planned)} episode(s)) is forecast at "
            f"${plan.expected:.2f} (up to ${plan.high:.2f}), more than the batch budget "
            f"${cap:.2f}; raise `budget:` in the batch file or drop episodes"
        )
    return plan


def start_season(plan: SeasonPlan, *, provider: str | None = None) -> list[str]:
    """Record a group with the batch's cap and queue every episode in it; return the run ids."""
    store = runtime.store()
    group_id = store.create_group(str(plan.season_path.resolve()), plan.cap)
    run_ids = []
    for run in plan.runs:
        run_id = preflight.create_run(
            plan.show_path,
            run.episode.topic,
            run.sources,
            provider=provider,
            number=run.episode.number,
            queued=True,
            group=group_id,
        )
        run_ids.append(run_id)
    from castline.engine import queue

    for run_id in run_ids:
        queue.enqueue_run(run_id)
    return run_ids

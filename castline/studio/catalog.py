"""The store seen as a studio sees it: shows, each with its episodes, summed and summarised.

A show is every run recorded under one title (case-insensitively, as episode numbering counts
them); its id in URLs is a short hash of that title, so no title text ever lands in a path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from castline.config import title_key
from castline.engine.inspection import display_status
from castline.errors import UsageError
from castline.store import RunRecord, Store

# Every run the store holds: list_runs takes a limit, and a studio lists them all.
ALL_RUNS = 10**9


def show_id(title: str) -> str:
    """A show's id in the studio's URLs: stable across its episodes, and only hex."""
    return hashlib.sha256(title_key(title).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ShowSummary:
    id: str
    title: str
    show_path: str  # the bible its latest episode was made from
    episodes: int
    completed: int
    cost: Decimal
    budget: Decimal
    offline: bool  # every episode so far was offline: the cost is a shadow cost
    latest_at: float

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "show_path": self.show_path,
            "episodes": self.episodes,
            "completed": self.completed,
            "cost": str(self.cost),
            "budget": str(self.budget),
            "offline": self.offline,
            "latest_at": self.latest_at,
        }


def episode_json(record: RunRecord, cost: Decimal) -> dict[str, Any]:
    """One run as a row of a show's episode list."""
    return {
        "id": record.id,
        "number": record.number,
        "title": record.episode_title or record.topic,
        "topic": record.topic,
        "status": display_status(record),
        "stage": record.stage,
        "cost": str(cost),
        "budget": str(record.budget) if record.budget is not None else None,
        "offline": record.offline,
        "created_at": record.created_at,
        "finished_at": record.finished_at,
    }


def _episodes(store: Store) -> list[RunRecord]:
    """Every episode run, newest first (a `castline check` records a run that is not one)."""
    return [r for r in store.list_runs(ALL_RUNS) if not r.spec.get("check")]


def shows(store: Store) -> list[ShowSummary]:
    """The shows in the store, the one with the newest episode first."""
    costs = store.costs()
    grouped: dict[str, list[RunRecord]] = {}
    for record in _episodes(store):
        grouped.setdefault(show_id(record.show_title), []).append(record)
    return [
        ShowSummary(
            id=key,
            title=records[0].show_title,
            show_path=records[0].show_path,
            episodes=len(records),
            completed=sum(r.status == "completed" for r in records),
            cost=sum((costs.get(r.id, Decimal(0)) for r in records), Decimal(0)),
            budget=sum((r.budget or Decimal(0) for r in records), Decimal(0)),
            offline=all(r.offline for r in records),
            latest_at=records[0].created_at,
        )
        for key, records in grouped.items()
    ]


def episodes(
    store: Store, key: str, *, limit: int = 200, offset: int = 0
) -> tuple[str, int, list[dict[str, Any]]]:
    """A show's title, its number of episodes and its episodes, newest first, `limit` from
    `offset`. Only the listed runs' costs are summed (the store sums each run's calls)."""
    records = [r for r in _episodes(store) if show_id(r.show_title) == key]
    if not records:
        raise UsageError(f"no show with id {key!r} in the store; GET /api/shows lists them")
    page = records[offset : offset + limit]
    costs = store.costs() if len(page) > len(records) // 2 else None
    rows = [
        episode_json(r, costs.get(r.id, Decimal(0)) if costs is not None else store.run_cost(r.id))
        for r in page
    ]
    return records[0].show_title, len(records), rows

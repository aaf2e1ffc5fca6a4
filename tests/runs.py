"""A run row made directly in a store, for tests that need one without going through preflight."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from castline.store import Store, to_nanos

COLUMNS: dict[str, Any] = {
    "show_title": "S",
    "show_path": "s.yaml",
    "topic": "t",
    "status": "running",
    "offline": True,
    "routing_reason": "test",
    "spec": {},
    "output_dir": "out",
}


def add_run(
    store: Store, run_id: str = "r1", *, budget: Decimal = Decimal("33.25"), **columns: Any
) -> str:
    """Create run `run_id` with a budget of `budget` dollars; `columns` replace the defaults
    (`COLUMNS`) or add others (`group_id`). Returns the run's id."""
    store.create_run(**{**COLUMNS, **columns, "id": run_id, "budget_nanos": to_nanos(budget)})
    return run_id

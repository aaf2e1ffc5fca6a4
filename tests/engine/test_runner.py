"""The pipeline under budget pressure: degrade, skip what code can stand in for, halt with what
exists, and say why."""

from __future__ import annotations

import json
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import pytest
from dbos import DBOS

from castline.config import database_url
from castline.engine import episodes, inspection
from castline.errors import ConfigError
from castline.store import Store
from tests.conftest import EXAMPLE_SOURCES, EXAMPLE_TOPIC


def _with_budget(show: Path, amount: str) -> Path:
    show.write_text(show.read_text().replace("per_episode: 33.25", f"per_episode: {amount}"))
    return show


def _fan_outs(run_id: str) -> list[bool]:
    """Each fan-out's decision, in order: whether its calls ran concurrently."""
    steps = DBOS.list_workflow_steps(run_id)
    return [s["output"] for s in steps if s["function_name"] == "castline.fit_together"]


def test_default_budget_does_not_degrade(show_copy: Path) -> None:
    outcome = episodes.produce(show_copy, EXAMPLE_TOPIC, EXAMPLE_SOURCES)

    assert outcome.status == "completed" and outcome.budget_mode == "normal"
    assert outcome.skipped == [] and outcome.halted_at is None
    assert outcome.budget == Decimal("33.25") and outcome.cost < Decimal("2")
    store = Store(database_url())
    assert not [e for e in store.events(outcome.run_id) if e.kind.startswith("budget-")]
    assert all(c.budget_note is None and not c.batch for c in store.calls(outcome.run_id))
    record = store.get_run(outcome.run_id)
    assert Decimal(0) < record.peak_reserved <= record.budget
    fan_outs = _fan_outs(outcome.run_id)  # research, then the judges of each review round
    assert len(fan_outs) >= 2 and all(fan_outs)  # all concurrent


def test_a_budget_the_forecast_cannot_fit_is_refused_before_the_run(show_copy: Path) -> None:
    with pytest.raises(ConfigError, match=r"the budget \$0.50 cannot cover this episode"):
        episodes.produce(_with_budget(show_copy, "0.50"), EXAMPLE_TOPIC, EXAMPLE_SOURCES)
    assert Store(database_url()).list_runs() == []


def test_fifty_cent_budget_skips_what_it_cannot_fit_and_says_why(
    show_copy: Path, ledger_only: None
) -> None:
    outcome = episodes.produce(_with_budget(show_copy, "0.50"), EXAMPLE_TOPIC, EXAMPLE_SOURCES)

    store = Store(database_url())
    assert outcome.cost <= Decimal("0.50")
    # research questions are given up, and the episode is written from the material that fit
    skipped_research = [i for i in outcome.skipped if i.startswith("research question")]
    assert len(skipped_research) == 4
    # one after another (they cannot all fit at once), so which fit never depends on timing
    research = [c for c in store.calls(outcome.run_id) if c.step_key.startswith("research.q")]
    spans = sorted((c.started_at, c.finished_at or c.started_at) for c in research)
    assert len(spans) > 1 and all(end <= nxt for (_, end), (nxt, _) in pairwise(spans))
    assert _fan_outs(outcome.run_id)[0] is False
    assert outcome.status == "completed" and outcome.halted_at is None
    refusals = [e for e in store.events(outcome.run_id) if e.kind == "budget-refused"]
    assert refusals and all(
        Decimal(e.data["cheapest"]) > Decimal(e.data["headroom"]) for e in refusals
    )
    refused = [c for c in store.calls(outcome.run_id) if c.status == "refused"]
    assert len(refused) == len(refusals)  # every refusal is also a recorded call
    assert outcome.output_dir is not None
    episode = json.loads((outcome.output_dir / "episode.json").read_text())
    assert episode["budget"]["skipped"] == outcome.skipped
    assert episode["budget"]["halted_at"] is None
    assert episode["accepted"]
    detail = inspection.describe(outcome.run_id)
    assert detail.record.status == "completed"
    assert sum((c.cost for c in detail.calls), Decimal(0)) == outcome.cost


def test_a_budget_too_small_for_any_research_halts_before_writing(
    show_copy: Path, ledger_only: None
) -> None:
    outcome = episodes.produce(_with_budget(show_copy, "0.01"), EXAMPLE_TOPIC, EXAMPLE_SOURCES)

    assert outcome.status == "halted" and outcome.halted_at == "research"
    assert outcome.output_dir is None and outcome.words == 0
    assert outcome.cost <= Decimal("0.01")
    store = Store(database_url())
    assert [c.status for c in store.calls(outcome.run_id)] == ["refused"]

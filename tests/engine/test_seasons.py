"""`castline batch`: many episodes of a show, forecast first, under one total cap that the ledger
enforces across them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from castline.budget.ledger import Ledger, Refusal, Reservation
from castline.budget.policy import BudgetPolicy, Candidate, fixed
from castline.budget.prices import Pricer
from castline.cli import cli
from castline.config import Budget
from castline.engine import runtime
from castline.llm.registry import Route
from castline.store import Store, calls, runs
from tests.conftest import EXAMPLE_SOURCES, EXAMPLE_TOPIC
from tests.runs import add_run


def _season(tmp_path: Path, budget: str | None, topics: list[str]) -> Path:
    lines = [f"budget: {budget}"] if budget is not None else []
    lines.append("episodes:")
    for topic in topics:
        lines += [f"  - topic: {topic}", "    sources:"]
        lines += [f"      - {source}" for source in EXAMPLE_SOURCES]
    path = tmp_path / "season.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_dry_run_forecasts_every_episode_and_queues_nothing(
    show_copy: Path, tmp_path: Path
) -> None:
    season = _season(tmp_path, None, [EXAMPLE_TOPIC, "Cool roofs and who pays for them"])

    result = CliRunner().invoke(cli, ["batch", str(show_copy), str(season), "--dry-run"])

    assert result.exit_code == 0, result.output
    assert "total" in result.output and "Cool roofs" in result.output
    assert "batch budget $66.50" in " ".join(result.output.split())  # two episodes' budgets
    assert runtime.store().list_runs() == []


def test_a_batch_whose_forecast_exceeds_its_budget_is_refused_before_anything_runs(
    show_copy: Path, tmp_path: Path
) -> None:
    season = _season(tmp_path, "0.10", [EXAMPLE_TOPIC])

    result = CliRunner().invoke(cli, ["batch", str(show_copy), str(season)])

    assert result.exit_code == 2
    assert "more than the batch budget $0.10" in " ".join(result.output.split())
    assert runtime.store().list_runs() == []


def test_a_batch_file_with_an_unknown_key_names_its_line(show_copy: Path, tmp_path: Path) -> None:
    season = tmp_path / "season.yaml"
    season.write_text("episodes:\n  - topic: x\n    sources: [a.md]\n    numbr: 3\n")

    result = CliRunner().invoke(cli, ["batch", str(show_copy), str(season)])

    assert result.exit_code == 2
    assert "line 4: episodes.0.numbr: unknown key 'numbr'" in " ".join(result.output.split())


def test_a_batch_runs_its_episodes_under_its_cap(show_copy: Path, tmp_path: Path) -> None:
    season = _season(tmp_path, "60", [EXAMPLE_TOPIC, "What actually cools a city at night"])

    result = CliRunner().invoke(cli, ["batch", str(show_copy), str(season), "-c", "2"])

    store = runtime.store()
    batch_runs = store.list_runs()
    assert len(batch_runs) == 2, result.output
    assert {run.group_id for run in batch_runs} != {None}
    assert len({run.group_id for run in batch_runs}) == 1
    assert all(run.status in {"completed", "rejected"} for run in batch_runs), result.output
    assert sum((store.run_cost(run.id) for run in batch_runs), Decimal(0)) <= Decimal(60)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_ledger_holds_a_batch_s_cap_across_its_runs(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'ledger.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    store = Store(url)
    group = store.create_group("season", Decimal("1.00"))
    for run_id in ("a", "b"):
        add_run(
            store,
            run_id,
            show_title="s",
            show_path="s",
            routing_reason="",
            spec="{}",
            output_dir="o",
            group_id=group,
        )
    policy = BudgetPolicy(Budget(), Pricer({}))
    ledger = Ledger(store)
    route = Route(provider="offline", model="m", priced_as="anthropic:claude-sonnet-4-5")
    outcomes: list[Reservation | Refusal] = []
    for i in range(8):  # each call's worst case is $0.30; the runs alternate
        outcomes.append(
            ledger.reserve(
                "ab"[i % 2],
                policy,
                fixed([Candidate(route, 0, False, Decimal("0.30"))]),
                step_key=f"call.{i}",
                stage="write",
                role="writer",
                task_kind="write",
                prompt="",
                shadow=True,
            )
        )

    granted = [o for o in outcomes if isinstance(o, Reservation)]
    refused = [o for o in outcomes if isinstance(o, Refusal)]
    assert len(granted) == 3  # $0.90 of the batch's $1.00; a fourth would make $1.20
    assert refused and "the batch's budget $1.00" in refused[0].message
    with store.engine.begin() as connection:  # the money, counted by plain SQL
        committed = connection.execute(
            sa.select(sa.func.sum(calls.c.cost_nanos + calls.c.reserved_nanos))
            .select_from(calls.join(runs, calls.c.run_id == runs.c.id))
            .where(runs.c.group_id == group)
        ).scalar_one()
    assert committed == 900_000_000

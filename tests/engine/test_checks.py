"""`castline check --judge`: the show's evaluators on any script, reserved, recorded and priced
like a run's calls."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from castline.checking import check_script, parse_script
from castline.config import database_url
from castline.engine import checks
from castline.sources import read_sources
from castline.store import Store
from tests.hostile import assert_refused, invoke
from tests.test_checking import FAITHFUL, NOTE
from tests.test_episode_via_fake_api import FakeAPI, fake, wire

__all__ = ["fake"]  # the fake API's fixture, used below

JUDGED = {"legal-risk", "tone", "coherence", "accuracy"}
# the oak's water turned around: every figure and name is the note's, so only a judge sees it
DISTORTED = FAITHFUL.replace(
    "**Theo:** And a grown oak can breathe out hundreds of litres of water on a hot afternoon.",
    "**Theo:** And on a hot afternoon a grown oak barely gives off any water at all, so it "
    "hardly cools anything.",
)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {name: tmp_path / f"{name}.md" for name in ("note", "faithful", "distorted")}
    for name, text in (("note", NOTE), ("faithful", FAITHFUL), ("distorted", DISTORTED)):
        paths[name].write_text(text)
    return paths


def _check(files: dict[str, Path], script: str, show: Path, *more: str) -> dict[str, object]:
    result = invoke(
        "check", str(files[script]), "--source", str(files["note"]), "--show", str(show),
        "--judge", "--gate", "content", "--json", *more,
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    report: dict[str, object] = json.loads(result.output)
    report["exit_code"] = result.exit_code
    return report


def _statuses(report: dict[str, object]) -> dict[str, str]:
    return {c["criterion"]: c["status"] for c in report["criteria"]}  # type: ignore[attr-defined, index]


def test_offline_evaluators_judge_the_content_gate_and_the_check_is_recorded(
    files: dict[str, Path], show_copy: Path
) -> None:
    faithful = _check(files, "faithful", show_copy, "--provider", "offline")
    distorted = _check(files, "distorted", show_copy, "--provider", "offline")

    assert _statuses(faithful) == {
        "groundedness": "passed", "coherence": "passed", "accuracy": "passed"
    }  # fmt: skip
    assert faithful["exit_code"] == 0 and faithful["shadow_cost"] is True
    # the deterministic check lets the turned-around claim through; both judges catch it
    assert _statuses(distorted)["groundedness"] == "passed"
    assert _statuses(distorted)["accuracy"] == "failed" and distorted["exit_code"] == 1
    [accuracy] = [c for c in distorted["criteria"] if c["criterion"] == "accuracy"]  # type: ignore[attr-defined]
    assert {f["segment"] for f in accuracy["findings"]} == {"shade"}
    assert "barely gives off any water" in accuracy["reason"]

    store = Store(database_url())
    record = store.get_run(str(distorted["run_id"]))
    assert record.status == "completed" and record.offline
    made = store.calls(record.id)
    # content's two judged criteria, by both evaluators, as a run would record them
    assert sorted(c.step_key for c in made) == [
        "check.accuracy.primary", "check.accuracy.secondary",
        "check.coherence.primary", "check.coherence.secondary",
    ]  # fmt: skip
    assert all(c.status == "ok" and c.response for c in made)
    assert Decimal(str(distorted["cost"])) == sum((c.cost for c in made), Decimal(0))
    # a check is not an episode: nothing to resume
    resumed = invoke("resume", record.id)
    assert resumed.exit_code != 0 and "is a `castline check`" in resumed.output
    assert store.get_run(record.id).status == "completed"


def test_through_the_vendors_apis_every_judgment_is_reserved_priced_and_recorded(
    files: dict[str, Path], show_copy: Path, fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    show = wire(show_copy, fake, monkeypatch)
    script = parse_script(files["faithful"].read_text(), files["faithful"])
    sources = read_sources([files["note"]])

    report = checks.judged(show, check_script(script, sources), sources)

    statuses = {r.criterion: r.status for r in report.criteria if r.criterion in JUDGED}
    assert set(statuses) == JUDGED and "skipped" not in statuses.values()
    assert report.run_id is not None and not report.shadow
    made = Store(database_url()).calls(report.run_id)
    routes = {c.step_key.rsplit(".", 1)[1]: c.priced_as for c in made}
    assert routes["primary"].startswith("anthropic:") and routes["secondary"].startswith("gemini:")
    assert all(c.cost > 0 and c.input_tokens > 0 for c in made)
    assert report.cost == sum((c.cost for c in made), Decimal(0)) > 0


def test_a_budget_too_small_for_the_judges_skips_them_and_says_why(
    files: dict[str, Path], show_copy: Path, fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    show = wire(show_copy, fake, monkeypatch)
    show.write_text(show.read_text().replace("per_episode: 33.25", "per_episode: 0.01"))

    report = _check(files, "faithful", show)

    assert Decimal(str(report["cost"])) <= Decimal("0.01")
    made = Store(database_url()).calls(str(report["run_id"]))
    refused = {c.step_key.split(".")[1] for c in made if c.status == "refused"}
    assert refused, "a cent cannot pay for both evaluators of every criterion"
    for criterion in report["criteria"]:  # type: ignore[attr-defined]
        if criterion["criterion"] in refused:
            assert criterion["status"] == "skipped"
            assert "the budget refused it" in criterion["reason"]
    # what did fit was made the cheaper way the budget allows, and says so
    assert all("instead of" in (c.budget_note or "") for c in made if c.status == "ok")


@pytest.mark.parametrize(
    ("more", "names"),
    [
        (["--judge"], ["--judge", "--show show.yaml"]),
        (["--provider", "offline"], ["--judge", "--show"]),
    ],
)
def test_judging_without_a_show_bible_is_refused(
    files: dict[str, Path], more: list[str], names: list[str]
) -> None:
    result = invoke("check", str(files["faithful"]), "--source", str(files["note"]), *more)
    assert_refused(result, *names)
    assert Store(database_url()).list_runs() == []

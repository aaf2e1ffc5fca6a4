"""The studio's API over real runs: shows and episodes from the store, the forecast, an episode
started from the API and completed by a `castline worker` process, its events streamed (and
resumed from Last-Event-ID), and a person's review decision continuing an escalated run."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from castline.budget.estimate import estimate
from castline.engine import episodes, runtime
from castline.engine.inspection import audit_trail, describe
from castline.insights import show_history
from castline.insights.html import stats_html
from castline.llm import registry
from castline.llm.base import Task
from castline.llm.scripted import ScriptedProvider
from castline.llm.tasks import JudgeTask, Judgment
from castline.studio import uploads as studio_uploads
from tests.conftest import EXAMPLE, EXAMPLE_SOURCES, EXAMPLE_TOPIC
from tests.studio.conftest import AUTH, HEAT_CHECK, stop, uploads, wait_for, worker

pytestmark = pytest.mark.slow


def _stream(client: TestClient, run_id: str, **headers: str) -> list[dict[str, Any]]:
    """The run's server-sent events, parsed, until the server ends the stream."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    with client.stream(
        "GET", f"/api/runs/{run_id}/stream", headers={**AUTH, **headers}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line:
                if current:
                    events.append(current)
                current = {}
            elif not line.startswith(":"):
                field, _, value = line.partition(":")
                current[field] = json.loads(value) if field == "data" else value.strip()
    return events


def test_shows_and_episodes_come_from_the_store_with_their_costs(
    client: TestClient, show_copy: Path
) -> None:
    first = episodes.produce(show_copy, EXAMPLE_TOPIC, EXAMPLE_SOURCES)
    second = episodes.produce(show_copy, "How cool roofs cool a city", EXAMPLE_SOURCES[:1])
    store = runtime.store()

    [show] = client.get("/api/shows", headers=AUTH).json()["shows"]
    assert show["id"] == HEAT_CHECK and show["title"] == "Heat Check"
    assert show["episodes"] == 2 and show["completed"] == [first.status, second.status].count(
        "completed"
    )
    assert Decimal(show["cost"]) == store.run_cost(first.run_id) + store.run_cost(second.run_id)
    rows = client.get(f"/api/shows/{HEAT_CHECK}/episodes", headers=AUTH).json()["episodes"]
    assert [r["id"] for r in rows] == [second.run_id, first.run_id]  # newest first
    assert [r["number"] for r in rows] == [2, 1]
    assert rows[1]["status"] == first.status and rows[1]["stage"] == "done"
    assert Decimal(rows[1]["cost"]) == store.run_cost(first.run_id)
    assert Decimal(rows[1]["budget"]) == Decimal("33.25") and rows[1]["offline"] is True
    paged = client.get(f"/api/shows/{HEAT_CHECK}/episodes?limit=1&offset=1", headers=AUTH)
    assert [r["id"] for r in paged.json()["episodes"]] == [first.run_id]

    # `castline stats`, as JSON and as its page with charts (sandboxed like a download)
    stats = client.get(f"/api/shows/{HEAT_CHECK}/stats", headers=AUTH)
    history = show_history(store, "Heat Check")
    assert stats.json() == json.loads(json.dumps(history.as_json(), default=str))
    page = client.get(f"/api/shows/{HEAT_CHECK}/stats.html", headers=AUTH)
    drawn = stats_html(history)  # the same page (matplotlib names its SVG ids at random)
    assert page.status_code == 200 and page.text.count("<svg") == drawn.count("<svg")
    assert page.text[:2000] == drawn[:2000]
    assert page.headers["content-security-policy"].startswith("sandbox")
    assert client.get("/api/shows/nope/stats", headers=AUTH).status_code == 404

    # the run and its audit trail are what `castline runs show --json` and `runs logs` give
    detail = client.get(f"/api/runs/{first.run_id}", headers=AUTH).json()
    assert detail == json.loads(json.dumps(describe(first.run_id).as_json(), default=str))
    trail = client.get(f"/api/runs/{first.run_id}/events", headers=AUTH).json()["events"]
    assert trail == json.loads(json.dumps(audit_trail(first.run_id), default=str))
    later = client.get(f"/api/runs/{first.run_id}/events?after={trail[5]['id']}", headers=AUTH)
    assert later.json()["events"] == trail[6:]


def test_the_forecast_is_castline_estimate_and_takes_a_target_length(
    client: TestClient, show_copy: Path
) -> None:
    form = {"show": HEAT_CHECK, "topic": EXAMPLE_TOPIC, "target_minutes": "6"}
    forecast = client.post("/api/estimate", data=form, files=uploads(), headers=AUTH)
    assert forecast.status_code == 200, forecast.text
    body = forecast.json()
    assert body["target_minutes"] == 6
    assert Decimal(body["low"]) <= Decimal(body["expected"]) <= Decimal(body["high"])
    assert Decimal(body["budget"]) == Decimal("33.25")
    derived = show_copy.with_name(".show.studio-6min.yaml")  # beside the bible, so paths hold
    expected = estimate(derived, EXAMPLE_TOPIC, EXAMPLE_SOURCES[:2])
    assert Decimal(body["expected"]) == expected.expected
    assert {r["stage"] for r in body["rows"]} == {r.stage for r in expected.rows}
    assert body["words"] < estimate(show_copy, EXAMPLE_TOPIC, EXAMPLE_SOURCES[:2]).words
    assert runtime.store().list_runs() == []  # a forecast records no run
    assert studio_uploads.original_bible(derived) == show_copy
    assert studio_uploads.bible_for(derived, 7).name == ".show.studio-7min.yaml"  # not of the copy
    assert studio_uploads.bible_for(derived, None) == show_copy


def test_an_episode_started_from_the_api_is_run_by_a_worker_and_streamed(
    client: TestClient, isolated: Path
) -> None:
    form = {"show": HEAT_CHECK, "topic": EXAMPLE_TOPIC}
    started = client.post("/api/episodes", data=form, files=uploads(), headers=AUTH)
    assert started.status_code == 201, started.text
    body = started.json()
    run_id = body["run_id"]
    assert body["status"] == "queued"
    assert body["workers"]["running"] == 0 and "castline worker" in body["workers"]["hint"]
    store = runtime.store()
    assert store.calls(run_id) == []  # nothing spent before a worker takes it
    assert len(store.load_sources(run_id)) == 2  # kept by the run; the upload folder is gone

    process = worker(isolated)
    try:
        wait_for(
            lambda: client.get("/api/shows", headers=AUTH).json()["workers"]["running"] == 1,
            "the worker to register",
        )
        events = _stream(client, run_id)  # from the start, while the worker runs it
    finally:
        stop(process)
    assert store.get_run(run_id).status == "completed"
    audit = [e for e in events if e["event"] == "audit"]
    trail = audit_trail(run_id)
    assert [int(e["id"]) for e in audit] == [e["id"] for e in trail]
    assert [e["data"]["kind"] for e in audit] == [e["kind"] for e in trail]
    states = [e["data"] for e in events if e["event"] == "state"]
    assert states[-1]["status"] == "completed"
    assert Decimal(states[-1]["cost"]) == store.run_cost(run_id)
    assert len({s["stage"] for s in states}) >= 1
    assert events[-1]["event"] == "end" and events[-1]["data"]["status"] == "completed"

    # a reload continues where the page left off: nothing repeated, nothing missed
    middle = audit[len(audit) // 2]["id"]
    resumed = _stream(client, run_id, **{"Last-Event-ID": middle})
    again = [int(e["id"]) for e in resumed if e["event"] == "audit"]
    assert again == [e["id"] for e in trail if e["id"] > int(middle)]
    assert resumed[-1]["event"] == "end"


def _disagree_on_tone(task: Task[Any]) -> Judgment | None:
    assert isinstance(task, JudgeTask)
    if task.criterion != "tone":
        return None
    score = 0.95 if task.evaluator == "primary" else 0.40
    return Judgment(score=score, reason=f"{task.evaluator} thinks {score}")


def escalated(show_copy: Path) -> str:
    """An episode waiting for a person: its evaluators disagree on tone (as tests/quality)."""
    text = show_copy.read_text().replace("    - silver bullet\n", "")
    show_copy.write_text(
        text.replace("max_revision_rounds: 2", "max_revision_rounds: 2\n  escalation: human")
    )
    scripted = ScriptedProvider()
    scripted.respond("judge", _disagree_on_tone)
    registry.use(scripted)
    outcome = episodes.produce(show_copy, EXAMPLE_TOPIC, EXAMPLE_SOURCES, provider="scripted")
    assert outcome.status == "awaiting-review"
    return outcome.run_id


@pytest.mark.parametrize(("verdict", "ends"), [("approve", "completed"), ("reject", "rejected")])
def test_an_escalated_episode_is_decided_from_the_review_queue(
    client: TestClient, show_copy: Path, verdict: str, ends: str
) -> None:
    run_id = escalated(show_copy)
    [waiting] = client.get("/api/review", headers=AUTH).json()["waiting"]
    assert waiting["run_id"] == run_id and waiting["topic"] == EXAMPLE_TOPIC
    [tone] = [e for e in waiting["escalated"] if e["criterion"] == "tone"]
    assert tone["scores"] == {"primary": 0.95, "secondary": 0.40}
    assert tone["reasons"]["secondary"] == "secondary thinks 0.4"
    assert any(turn["speaker"] == "Maya" for turn in waiting["script"]["turns"])

    decided = client.post(
        f"/api/review/{run_id}/{verdict}", json={"note": "checked by the studio"}, headers=AUTH
    )
    assert decided.status_code == 202, decided.text
    store = runtime.store()
    wait_for(lambda: store.get_run(run_id).status == ends, f"the run to be {ends}")
    client.app.state.studio.settle(timeout=60)  # type: ignore[attr-defined]
    assert client.get("/api/review", headers=AUTH).json()["waiting"] == []
    decision = [e for e in store.events(run_id) if e.kind == "review-decided"]
    assert "checked by the studio" in decision[0].message
    again = client.post(f"/api/review/{run_id}/approve", headers=AUTH)
    assert again.status_code == 409 and "already" in again.json()["error"]
    bad = client.post(f"/api/review/{run_id}/maybe", headers=AUTH)
    assert bad.status_code == 422


def test_editing_a_turn_of_a_finished_episode_voices_only_that_turn_again(
    client: TestClient, tmp_path: Path
) -> None:
    show = tmp_path / "voiced" / "show.yaml"
    show.parent.mkdir()
    show.write_text(
        (EXAMPLE / "show.yaml").read_text().replace("target_minutes: 20", "target_minutes: 5")
    )
    outcome = episodes.produce(show, EXAMPLE_TOPIC, EXAMPLE_SOURCES[:2])
    assert outcome.status == "completed" and outcome.output_dir is not None
    before = json.loads((outcome.output_dir / "episode.json").read_text())["script"]["turns"]
    index = next(i for i, t in enumerate(before) if len(t["text"].split()) > 12)
    edited = before[index]["text"] + " That is the part most people never hear about."
    path = f"/api/runs/{outcome.run_id}/edit"

    plan = client.post(path + "/preview", json={"turns": {index: edited}}, headers=AUTH)
    assert plan.status_code == 200, plan.text
    body = plan.json()
    assert body["mode"] == "revoice" and body["changed"] == [index] and body["voiced"] == [index]
    assert body["failing"] == [] and body["voice"] and Decimal(body["cost_high"]) >= 0
    assert body["turns"][0]["text"] == edited
    forbidden = before[index]["text"] + " Cool roofs are a silver bullet."
    refused = client.post(path, json={"turns": {index: forbidden}}, headers=AUTH)
    assert refused.status_code == 422 and "silver bullet" in " ".join(refused.json()["failing"])
    assert client.post(path, json={"turns": {999: "x"}}, headers=AUTH).status_code == 400

    store = runtime.store()
    first = max(e.id for e in store.events(outcome.run_id))
    confirmed = client.post(path, json={"turns": {index: edited}}, headers=AUTH)
    assert confirmed.status_code == 202, confirmed.text
    client.app.state.studio.settle(timeout=120)  # type: ignore[attr-defined]
    assert store.get_run(outcome.run_id).status == "completed"
    after = [e.kind for e in store.events(outcome.run_id, after=first)]
    assert after.count("clip-synthesized") == 1  # only the edited turn was voiced again
    assert after.count("clip-cached") == len(before) - 1
    published = json.loads((outcome.output_dir / "episode.json").read_text())
    assert published["script"]["turns"][index]["text"] == edited


def test_editing_a_turn_under_review_approves_the_edited_script(
    client: TestClient, show_copy: Path
) -> None:
    run_id = escalated(show_copy)
    script = client.get("/api/review", headers=AUTH).json()["waiting"][0]["script"]
    edited = script["turns"][2]["text"] + " We checked this one twice."
    path = f"/api/runs/{run_id}/edit"
    plan = client.post(path + "/preview", json={"turns": {"2": edited}}, headers=AUTH).json()
    assert plan["mode"] == "review" and plan["changed"] == [2] and plan["failing"] == []
    assert plan["voice"] is None and plan["voiced"] == []  # a text-only show voices nothing
    assert client.post(path, json={"turns": {"2": edited}}, headers=AUTH).status_code == 202
    client.app.state.studio.settle(timeout=120)  # type: ignore[attr-defined]
    record = runtime.store().get_run(run_id)
    assert record.status == "completed"
    episode = json.loads((Path(record.output_dir) / "episode.json").read_text())
    assert episode["script"]["turns"][2]["text"] == edited
    assert episode["quality"]["human"] == "approved"

"""Web search as a research tool, through the real SDKs against the fake of both vendors: the
searches are capped, reserved and priced per search, the pages they found are fetched through
the URL guard and kept with the run, and notes cite them by URL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from castline.budget.estimate import estimate
from castline.budget.policy import BudgetPolicy
from castline.budget.prices import Pricer
from castline.budget.report import usage_of
from castline.config import Budget, database_url
from castline.domain import Source
from castline.engine import episodes
from castline.llm.registry import Route
from castline.store import CallRecord, Store
from tests.conftest import EXAMPLE_SOURCES, EXAMPLE_TOPIC
from tests.fake_api import FakeAPI, WebPage
from tests.test_episode_via_fake_api import wire

PAGES = [
    WebPage(
        "heat-island-study",
        "Urban heat island study",
        (
            "Cities run hot because asphalt and roofs absorb sunlight and release the heat at "
            "night, a measured effect of up to 7 degrees in dense districts.",
            "Trees cool the streets around them by shading and evaporation, and a survey of "
            "37 cities found tree cover lowered summer afternoon temperatures by 2 degrees.",
        ),
    ),
    WebPage(
        "cool-roofs-costs",
        "Who pays for cool roofs",
        (
            "Cool roofs reflect most sunlight, and a city programme paid for white coatings on "
            "1,200 public buildings at a cost of 9 dollars per square metre.",
        ),
    ),
]
SEARCHING = "research: {web_search: true, searches_per_question: 3, allow_private_urls: true}\n"
GEMINI_RESEARCH = "routing:\n  researcher: ['gemini:gemini-2.5-pro']\n"


@pytest.fixture
def fake() -> Iterator[FakeAPI]:
    with FakeAPI() as api:
        api.web_pages = list(PAGES)
        yield api
        assert api.internal_errors == []


def _research_calls(store: Store, run_id: str) -> list[CallRecord]:
    return [
        c
        for c in store.calls(run_id)
        if c.status == "ok" and c.step_key.startswith("research.question.")
    ]


def _token_cost(pricer: Pricer, call: CallRecord) -> Decimal:
    tokens = replace(usage_of(call), web_searches=0)
    return pricer.cost(call.priced_as, tokens, batch=call.batch)


def test_claude_searches_are_capped_priced_per_search_and_cited_by_url(
    show_copy: Path, fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    show = wire(show_copy, fake, monkeypatch, more=SEARCHING)
    outcome = episodes.produce(show, EXAMPLE_TOPIC, EXAMPLE_SOURCES)

    assert outcome.status == "completed"
    store = Store(database_url())
    research = _research_calls(store, outcome.run_id)
    assert research and all(c.web_searches == 2 for c in research)  # the fake runs 2 of 3
    assert fake.stats.searches["anthropic"] == sum(c.web_searches for c in research)
    pricer = Pricer()
    for call in research:  # $10 per 1,000 searches, on top of the tokens
        assert call.cost == _token_cost(pricer, call) + Decimal("0.02")
    sent = [
        json.loads(entry.body)
        for entry in fake.log
        if entry.endpoint == "anthropic.messages" and b"web_search" in entry.body
    ]
    assert sent and all(
        body["tools"] == [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]
        for body in sent
    )
    sources = {s["id"]: s for s in store.load_sources(outcome.run_id)}
    web = {sid: s for sid, s in sources.items() if s.get("url")}
    assert {s["url"] for s in web.values()} <= {f"{fake.url}/web/{p.path}" for p in PAGES}
    assert web and all(s["retrieved_at"] for s in web.values())
    kb = json.loads((Path(str(outcome.output_dir)) / "episode.json").read_text())["knowledge_base"]
    cited = {note["source_id"] for note in kb["notes"]}
    assert cited & set(web), "no note cites a searched page"
    for note in kb["notes"]:
        if note["source_id"] in web:  # its quote is on the fetched page
            page_text = " ".join(s["text"] for s in web[note["source_id"]]["sections"])
            assert " ".join(note["quote"].split()) in " ".join(page_text.split())
    episode = json.loads((Path(str(outcome.output_dir)) / "episode.json").read_text())
    assert {s["id"] for s in episode["sources"]} >= set(web)
    for page in web.values():  # what show notes cite it as: its URL and retrieval date
        reference = Source.model_validate(page).reference
        assert reference == f"{page['url']}, retrieved {page['retrieved_at'][:10]}"


def test_gemini_grounding_is_priced_per_grounded_prompt(
    show_copy: Path, fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    show = wire(show_copy, fake, monkeypatch, more=SEARCHING + GEMINI_RESEARCH)
    outcome = episodes.produce(show, EXAMPLE_TOPIC, EXAMPLE_SOURCES)

    assert outcome.status == "completed"
    store = Store(database_url())
    research = _research_calls(store, outcome.run_id)
    assert research and {c.priced_as for c in research} == {"gemini:gemini-2.5-pro"}
    assert all(c.web_searches == 2 for c in research)
    pricer = Pricer()
    for call in research:  # Gemini 2.5: $35 per 1,000 grounded prompts, whatever the queries
        assert call.cost == _token_cost(pricer, call) + Decimal("0.035")
    grounded = [
        json.loads(entry.body)
        for entry in fake.log
        if entry.endpoint == "gemini.generate" and b"googleSearch" in entry.body
    ]
    # grounding and a response schema do not go together on Gemini 2.5
    assert grounded and all("responseJsonSchema" not in b["generationConfig"] for b in grounded)
    web = [s for s in store.load_sources(outcome.run_id) if s.get("url")]
    assert web and all(s["id"].startswith("W") for s in web)


def test_searches_the_budget_cannot_fit_are_refused_before_any_search(
    show_copy: Path, fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    dear = (
        "prices:\n"
        '  "anthropic:claude-sonnet-4-6": {per_thousand_searches: 20000}\n'
        '  "anthropic:claude-haiku-4-5": {per_thousand_searches: 20000}\n'
    )  # $20 a search, 3 a question: no research question fits a $33.25 budget
    show = wire(show_copy, fake, monkeypatch, more=SEARCHING + dear)
    outcome = episodes.produce(show, EXAMPLE_TOPIC, EXAMPLE_SOURCES)

    assert outcome.status != "completed"
    assert fake.stats.searches["anthropic"] == 0
    store = Store(database_url())
    assert _research_calls(store, outcome.run_id) == []
    refusals = [e.message for e in store.events(outcome.run_id) if "skipped research" in e.message]
    assert refusals and "this call needs at least $60.0" in refusals[0]  # 3 searches: $60


def test_the_search_cap_and_its_price_are_in_every_research_reservation() -> None:
    policy = BudgetPolicy(Budget(), Pricer())
    route = Route("anthropic", "claude-sonnet-4-6", "anthropic:claude-sonnet-4-6")
    plain, searching = (
        policy.candidates(
            mode="normal",
            role="researcher",
            kind="research",
            chain=[route],
            fallback=[],
            input_tokens=10_000,
            max_tokens=4_000,
            searches=searches,
        )[0].worst_case
        for searches in (0, 3)
    )
    assert searching - plain == Decimal("0.03")


def test_the_forecast_counts_every_search_a_question_may_make(
    show_copy: Path, fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    show = wire(show_copy, fake, monkeypatch, more=SEARCHING)
    searching = estimate(show, EXAMPLE_TOPIC, EXAMPLE_SOURCES)
    show.write_text(show.read_text().replace("web_search: true", "web_search: false"))
    plain = estimate(show, EXAMPLE_TOPIC, EXAMPLE_SOURCES)

    [before] = [r for r in plain.rows if r.stage == "research"]
    [after] = [r for r in searching.rows if r.stage == "research"]
    questions = before.calls - 3  # besides the questions, the fan-out and the synthesis calls
    assert after.high - before.high == questions * Decimal("0.03")  # 3 searches at $0.01
    assert after.expected - before.expected == questions * Decimal("0.03")


def test_pages_the_guard_refuses_are_not_cited_and_the_run_goes_on(
    show_copy: Path, fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    show = wire(show_copy, fake, monkeypatch, more="research: {web_search: true}\n")
    outcome = episodes.produce(show, EXAMPLE_TOPIC, EXAMPLE_SOURCES)

    assert outcome.status == "completed"
    store = Store(database_url())
    assert not [s for s in store.load_sources(outcome.run_id) if s.get("url")]
    fetched = [e for e in store.events(outcome.run_id) if e.kind == "web-pages"]
    assert fetched and "0 of" in fetched[0].message and "loopback" in fetched[0].message
    assert any(e.kind == "notes-dropped" for e in store.events(outcome.run_id))


def test_offline_web_search_says_it_needs_a_provider_and_researches_the_sources(
    show_copy: Path,
) -> None:
    show_copy.write_text(show_copy.read_text() + "research: {web_search: true}\n")
    outcome = episodes.produce(show_copy, EXAMPLE_TOPIC, EXAMPLE_SOURCES)

    assert outcome.status == "completed"
    events = Store(database_url()).events(outcome.run_id)
    off = [e.message for e in events if e.kind == "web-search-off"]
    assert off and "needs a provider" in off[0] and "offline" in off[0]

"""Each run-level recommendation on a run built to trigger it and on runs built not to, with
the saving worked out by hand from the round-number prices in `journal.PRICES`."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from castline.budget.prices import Pricer
from castline.insights import RunFacts, recommend
from castline.insights.recommendations import (
    batch_research,
    cache_layout,
    max_tokens,
    voice_engine,
)
from castline.store import Store
from tests.insights.journal import MODEL, PRICES, add_call, facts, new_run


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'journal.db'}")
    new_run(store)
    return store


def test_research_at_list_price_could_have_been_batched(store: Store) -> None:
    for _ in range(3):  # each: 100k input at $2/M + 10k output at $10/M = $0.30
        add_call(store, "r1", input_tokens=100_000, output_tokens=10_000)
    add_call(store, "r1", stage="write", role="writer", input_tokens=100_000)  # not research
    [found] = batch_research(facts(store))
    assert found.kind == "batch-research"
    assert found.saving_usd == Decimal("0.45")  # half of $0.90
    assert found.evidence["calls"] == 3
    assert found.evidence["list_cost"] == Decimal("0.9")
    assert "research: {batch: true}" in found.message


def test_batched_research_and_other_stages_are_not_flagged(store: Store) -> None:
    for _ in range(3):
        add_call(store, "r1", input_tokens=100_000, output_tokens=10_000, batch=True)
    add_call(store, "r1", stage="write", role="writer", input_tokens=100_000)
    add_call(store, "r1", input_tokens=100_000, status="failed")  # nothing was answered
    assert batch_research(facts(store)) == []


def test_research_on_a_model_without_a_batch_discount_is_not_flagged(store: Store) -> None:
    add_call(store, "r1", input_tokens=100_000, output_tokens=10_000)
    no_discount = PRICES[MODEL].model_copy(update={"batch_discount": Decimal(0)})
    flat = RunFacts(store.get_run("r1"), store.calls("r1"), [], Pricer({MODEL: no_discount}))
    assert batch_research(flat) == []


def test_cache_written_again_and_never_read_is_a_missed_layout(store: Store) -> None:
    for _ in range(4):
        add_call(store, "r1", stage="write", cache_write_tokens=50_000, output_tokens=1_000)
    [found] = cache_layout(facts(store))
    # 150k tokens written again at $2.50/M instead of read at $0.20/M: $0.345; and the first
    # write's premium over plain input, never used: 50k x $0.50/M = $0.025
    assert found.saving_usd == Decimal("0.37")
    assert found.evidence["cache_write_tokens"] == 200_000
    assert found.evidence["cache_read_tokens"] == 0
    assert found.evidence["cache_read_share"] == 0.0


def test_a_cache_written_once_and_read_back_is_not_flagged(store: Store) -> None:
    add_call(store, "r1", stage="write", cache_write_tokens=50_000)
    for _ in range(3):
        add_call(store, "r1", stage="write", cache_read_tokens=50_000, input_tokens=500)
    add_call(store, "r1", stage="plan", input_tokens=20_000)  # no cache at all
    assert cache_layout(facts(store)) == []


def test_a_cache_read_less_than_written_counts_only_the_rewrites(store: Store) -> None:
    for _ in range(3):
        add_call(store, "r1", stage="write", cache_write_tokens=40_000)
    add_call(store, "r1", stage="write", cache_read_tokens=40_000)
    [found] = cache_layout(facts(store))
    assert found.saving_usd == Decimal("0.184")  # 80k rewritten x ($2.50 - $0.20)/M
    assert found.evidence["cache_read_share"] == 0.25


def test_replies_cut_off_at_max_tokens(store: Store) -> None:
    capped = add_call(
        store,
        "r1",
        stage="write",
        role="writer",
        max_tokens=1_000,
        output_tokens=2_000,  # two attempts, each stopped at the limit
        rejected_replies=1,
        rejected_cost=Decimal("0.01"),
        seconds=8.0,
    )
    add_call(store, "r1", stage="write", role="writer", max_tokens=1_000, output_tokens=500)
    [found] = max_tokens(facts(store))
    assert found.kind == "max-tokens"
    assert found.saving_usd == Decimal("0.01")
    assert found.saving_s == pytest.approx(4.0, abs=0.01)  # the rejected half of 8 s
    assert found.evidence["calls"] == [capped]
    assert found.evidence["max_tokens"] == [1_000]
    assert "1 of 2 writer calls in write" in found.message


def test_a_call_that_failed_after_every_reply_was_cut_off(store: Store) -> None:
    failed = add_call(
        store, "r1", stage="research", role="researcher", status="failed", max_tokens=500,
        output_tokens=1_000, rejected_replies=2, rejected_cost=Decimal("0.02"), seconds=6.0,
    )  # fmt: skip
    [found] = max_tokens(facts(store))
    assert found.evidence["calls"] == [failed]
    assert found.saving_usd == Decimal("0.02")
    assert found.saving_s == pytest.approx(6.0, abs=0.01)  # every attempt was wasted


def test_a_limit_lowered_by_the_budget_says_so(store: Store) -> None:
    add_call(
        store, "r1", stage="plan", role="planner", max_tokens=800, output_tokens=800,
        budget_note="output capped at 800 tokens",
    )  # fmt: skip
    [found] = max_tokens(facts(store))
    assert found.saving_usd == Decimal(0)
    assert "The budget lowered the limit (output capped at 800 tokens)" in found.message


def test_replies_under_their_limit_are_not_flagged(store: Store) -> None:
    add_call(store, "r1", stage="write", max_tokens=1_000, output_tokens=999)
    # two attempts averaging under the limit: the cut-off one cannot be told apart
    add_call(store, "r1", stage="write", max_tokens=1_000, output_tokens=1_500, rejected_replies=1)
    add_call(store, "r1", stage="write", output_tokens=5_000)  # no limit recorded
    assert max_tokens(facts(store)) == []


def _clips(store: Store, takes: list[int], route: str = "cheap:tts") -> None:
    for n, attempts in enumerate(takes):
        text = "x" * 100_000  # $1.00 a take at $10 per million characters
        key = add_call(
            store, "r1", stage="voice", role="voice", task_kind="tts", priced_as=route,
            prompt=text, cost=Decimal(attempts), step_key=f"voice.turn.{n}",
        )  # fmt: skip
        store.add_event(
            "r1", "clip-synthesized", f"{key}: 40.0 s with v1", stage="voice",
            data={"attempts": attempts, "cost": str(attempts)},
        )  # fmt: skip


def test_a_voice_engine_whose_retakes_cost_more_than_a_dearer_engine(store: Store) -> None:
    _clips(store, [2, 2, 2])
    [found] = voice_engine(facts(store))
    # paid $6.00, $3.00 of it for takes made again; dear:tts takes 300k characters once for
    # $3.60 (12/M), so retries ($3.00) cost more than the price difference ($0.60)
    assert found.kind == "voice-engine"
    assert found.evidence["alternative"] == "dear:tts"
    assert found.evidence["retakes"] == 3
    assert found.evidence["retries_cost"] == Decimal(3)
    assert found.saving_usd == Decimal("2.4")


def test_a_voice_engine_without_retakes_is_not_flagged(store: Store) -> None:
    _clips(store, [1, 1, 1])
    assert voice_engine(facts(store)) == []


def test_retakes_cheaper_than_the_price_difference_are_not_flagged(store: Store) -> None:
    _clips(store, [2, 1, 1])  # $1.00 of retakes; no engine priced within $1.00 of $3.00
    without_dear = {k: v for k, v in PRICES.items() if k != "dear:tts"}
    run = store.get_run("r1")
    assert (
        voice_engine(RunFacts(run, store.calls("r1"), store.events("r1"), Pricer(without_dear)))
        == []
    )
    # with dear:tts ($3.60 for the same text) the same retakes are worth switching for
    [found] = voice_engine(facts(store))
    assert found.saving_usd == Decimal("0.4")


def test_recommend_ranks_by_saving_and_serialises(store: Store) -> None:
    for _ in range(3):
        add_call(store, "r1", input_tokens=100_000, output_tokens=10_000)
    _clips(store, [2, 2, 2])
    found = recommend(facts(store))
    assert [r.kind for r in found] == ["voice-engine", "batch-research"]
    data = json.loads(json.dumps([r.as_json() for r in found]))
    assert data[0]["saving_usd"] == "2.4"
    assert data[1]["evidence"]["list_cost"] == "0.9"


def test_a_clean_run_has_nothing_to_recommend(store: Store) -> None:
    add_call(store, "r1", input_tokens=1_000, batch=True, max_tokens=4_000, output_tokens=100)
    add_call(store, "r1", stage="write", cache_write_tokens=10_000, max_tokens=4_000)
    add_call(store, "r1", stage="write", cache_read_tokens=10_000, max_tokens=4_000)
    _clips(store, [1, 1])
    assert recommend(facts(store)) == []

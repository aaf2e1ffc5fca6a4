"""The local embedding model: meaning where wording differs, the same answer every time, and a
lexical fallback that says so."""

from __future__ import annotations

import pytest

from castline.config import load_show
from castline.domain import Note, Script, Turn
from castline.llm.offline.judging import verify_claim
from castline.llm.tasks import ClaimToVerify
from castline.quality import semantic
from castline.quality.style import brand_voice
from tests.conftest import EXAMPLE

NOTE = "The council voted seven to two to approve the new bike lanes on Main Street."


@pytest.mark.usefixtures("meaning")
def test_a_paraphrase_is_close_and_an_unrelated_sentence_is_not() -> None:
    paraphrase = semantic.similarity(NOTE, "Bike lanes on Main Street were approved in a 7-2 vote.")
    unrelated = semantic.similarity(NOTE, "Jazz grew out of blues and ragtime in New Orleans.")

    assert paraphrase is not None and unrelated is not None
    assert paraphrase > 0.7 > 0.2 > unrelated
    assert semantic.similarity(NOTE, NOTE) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.usefixtures("meaning")
def test_the_same_texts_give_the_same_vectors(monkeypatch: pytest.MonkeyPatch) -> None:
    embedder = semantic.model()
    assert embedder is not None
    monkeypatch.setattr(semantic, "_CACHED", 4)
    first = embedder.vectors([NOTE, "Another sentence about cycling."])
    embedder.vectors([f"filler {i}" for i in range(5)])  # more than are kept: evicts both
    again = embedder.vectors([NOTE, "Another sentence about cycling."])
    assert (first == again).all()


@pytest.mark.usefixtures("meaning")
def test_the_primary_offline_judge_recognises_a_paraphrase_in_other_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    notes = {"n1": Note(id="n1", claim=NOTE, source_id="s", quote=NOTE, question=0)}
    claim = ClaimToVerify(
        id="c1",
        segment="s1",
        turn=0,
        text="Cyclists won: by a seven-two margin, local politicians backed fresh cycle routes "
        "on the high street.",
        notes=["n1"],
    )
    unrelated = claim.model_copy(update={"text": "Jazz grew out of blues and ragtime."})

    assert verify_claim(claim, notes, "primary").verdict == "supported"
    assert verify_claim(unrelated, notes, "primary").verdict == "not-found"
    monkeypatch.setenv(semantic.ENV, "off")  # by words alone, it shares too few with its note
    assert verify_claim(claim, notes, "primary").verdict == "not-found"


@pytest.mark.usefixtures("meaning")
def test_brand_voice_is_measured_by_meaning_and_says_so() -> None:
    show = load_show(EXAMPLE / "show.yaml")
    script = Script(
        title="t",
        turns=[
            Turn(speaker="Maya", text=line, segment="s1") for line in show.brand_voice.sample_lines
        ],
    )

    verdict = brand_voice(show, script)

    assert semantic.NAME in verdict.reason and "semantic similarity" in verdict.reason
    assert verdict.score > 0.9


def test_without_the_model_the_measure_is_lexical_and_named() -> None:
    assert semantic.model() is None  # the tests switch it off unless they ask for it
    assert semantic.similarity("a", "b") is None
    assert semantic.measure() == semantic.LEXICAL
    show = load_show(EXAMPLE / "show.yaml")
    script = Script(
        title="t", turns=[Turn(speaker="Maya", text="Hello there, friends.", segment="s1")]
    )
    assert "lexical term-frequency cosine" in brand_voice(show, script).reason

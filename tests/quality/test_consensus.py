"""Consensus claim by claim: a claim is revised only when every evaluator finds it wrong."""

from __future__ import annotations

from castline.llm.tasks import ClaimJudgment, ClaimToVerify, Judgment
from castline.quality.consensus import judged_claims

CLAIMS = [
    ClaimToVerify(id=f"c{i}", segment=f"s{i}", turn=i, text=f"claim {i}", notes=["n1"])
    for i in (1, 2, 3, 4)
]


def _judgment(*verdicts: str) -> Judgment:
    return Judgment(
        score=0.5,
        reason="r",
        claims=[
            ClaimJudgment(id=f"c{i}", verdict=v, note="n1", evidence="the note")  # type: ignore[arg-type]
            for i, v in enumerate(verdicts, start=1)
            if v != "-"
        ],
    )


def test_only_claims_every_evaluator_finds_wrong_are_flagged() -> None:
    judgments = {
        "primary": _judgment("contradicted", "supported", "not-found", "contradicted"),
        "secondary": _judgment("not-found", "supported", "supported", "-"),
    }

    flagged, disputed = judged_claims(CLAIMS, judgments)

    assert [(f.segment, f.turn, f.subject, f.check) for f in flagged] == [
        ("s1", 1, "claim 1", "accuracy")
    ]
    assert "every evaluator found contradicted (n1: 'the note')" in flagged[0].message
    # one says wrong, the other right; or one left it out
    assert disputed == ["c3", "c4"]


def test_without_claims_nothing_is_flagged() -> None:
    assert judged_claims([], {"primary": _judgment(), "secondary": _judgment()}) == ([], [])

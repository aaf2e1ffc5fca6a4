"""Benchmark: how well the content gate's claim checks tell faithful claims from wrong ones.

On a labelled set (`bench/data/claims.json`: notes quoted from openly licensed texts, and
claims written as podcast hosts say them, each labelled supported, contradicted or not-found),
every claim is checked against all the notes, citing the notes it cites. Printed:

- ROC AUC of each measure's score for "this claim is wrong" (1.0 separates perfectly, 0.5 is
  chance): the lexical support alone (1 - share of the claim's terms in its best note), and the
  claim check (a blocked claim ranks above every unblocked one, then by lexical support);
- the false-block rate: the share of faithful claims the gate blocks (the goal is at most 10 %);
- recall: the share of wrong claims blocked, by kind (the goal is at least 90 % on changed and
  invented facts), and where it fails.

    python bench/bench_claims.py [bench/data/claims.json] [--runs 5] [--misses]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from castline.domain import Note, Script, Turn
from castline.llm.offline.judging import verify_claim
from castline.llm.tasks import ClaimToVerify
from castline.quality import semantic
from castline.quality.claims import Claim, check, extract

DATA = Path(__file__).resolve().parent / "data" / "claims.json"
FACT_CHANGES = ("changed-number", "swapped-entity", "swapped-date", "invented")


def auc(wrong: list[float], right: list[float]) -> float:
    """The probability that a wrong claim scores above a right one (ties count half)."""
    if not wrong or not right:
        return float("nan")
    above = sum((w > r) + 0.5 * (w == r) for w in wrong for r in right)
    return above / (len(wrong) * len(right))


def _claim(text: str, cites: list[str]) -> Claim:
    script = Script(
        title="bench", turns=[Turn(speaker="Host", text=text, segment="s", citations=cites)]
    )
    found = extract(script)
    if found:
        return found[0]
    # not a sentence castline would check: checked anyway, so that it is measured
    return Claim("c1", 0, "s", text, tuple(cites), (), ())


def evaluate(data: dict[str, Any]) -> dict[str, Any]:
    notes = [
        Note(
            id=n["id"],
            claim=n["quote"],
            source_id=n.get("source", "s"),
            quote=n["quote"],
            question=0,
        )
        for n in data["notes"]
    ]
    by_id = {note.id: note for note in notes}
    rows = []
    for item in data["claims"]:
        claim = _claim(item["text"], list(item.get("cites", [])))
        checked = check(claim, notes)
        # what the offline judges then say of a claim the check leaves to them
        judged = False
        if not checked.blocking:
            closest = [checked.note_id] if checked.note_id else []
            sent = ClaimToVerify(
                id="c",
                segment="s",
                turn=0,
                text=claim.text,
                notes=list(dict.fromkeys([*closest, *claim.citations])),
            )
            judged = all(
                verify_claim(sent, by_id, evaluator).verdict != "supported"
                for evaluator in ("primary", "secondary")
            )
        candidates = list(claim.citations) or ([checked.note_id] if checked.note_id else [])
        meant = [semantic.similarity(claim.text, by_id[n].quote) for n in candidates if n in by_id]
        rows.append(
            {
                "semantic": 1 - max((m for m in meant if m is not None), default=0.0),
                "kind": item.get("kind", "supported" if item["label"] == "supported" else "wrong"),
                "wrong": item["label"] != "supported",
                "blocked": checked.blocking,
                "judged": checked.blocking or judged,
                "lexical": 1 - checked.score,
                "combined": (1.0 if checked.blocking else 0.0) + (1 - checked.score) / 2,
                "text": item["text"],
                "reason": checked.reason,
                "verdict": checked.verdict,
            }
        )
    right = [r for r in rows if not r["wrong"]]
    judged_right = sum(r["judged"] for r in right) / max(len(right), 1)
    wrong = [r for r in rows if r["wrong"]]
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_kind[row["kind"]].append(row)
    changed = [r for r in wrong if r["kind"] in FACT_CHANGES]
    return {
        "claims": len(rows),
        "auc_lexical": auc([r["lexical"] for r in wrong], [r["lexical"] for r in right]),
        "auc_semantic": auc([r["semantic"] for r in wrong], [r["semantic"] for r in right])
        if semantic.model() is not None
        else None,
        "auc_claims": auc([r["combined"] for r in wrong], [r["combined"] for r in right]),
        "false_block": sum(r["blocked"] for r in right) / max(len(right), 1),
        "recall_fact_changes": sum(r["blocked"] for r in changed) / max(len(changed), 1),
        "recall_all": sum(r["blocked"] for r in wrong) / max(len(wrong), 1),
        "judged_false_block": judged_right,
        "judged_recall_all": sum(r["judged"] for r in wrong) / max(len(wrong), 1),
        "judged_recall_fact_changes": sum(r["judged"] for r in changed) / max(len(changed), 1),
        "by_kind": {
            kind: (
                sum(r["blocked"] for r in kind_rows),
                sum(r["judged"] for r in kind_rows),
                len(kind_rows),
            )
            for kind, kind_rows in sorted(by_kind.items())
        },
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", nargs="?", type=Path, default=DATA)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--misses", action="store_true", help="list every wrong verdict")
    args = parser.parse_args()
    data = json.loads(args.data.read_text(encoding="utf-8"))
    timings = []
    for _ in range(args.runs):
        started = time.perf_counter()
        result = evaluate(data)
        timings.append(time.perf_counter() - started)
    print(f"{args.data.name}: {result['claims']} claims, {len(data['notes'])} notes")
    print(f"  ROC AUC, lexical support alone:      {result['auc_lexical']:.3f}")
    if result["auc_semantic"] is not None:
        print(f"  ROC AUC, semantic support alone:     {result['auc_semantic']:.3f}")
    print(f"  ROC AUC, claim check:                {result['auc_claims']:.3f}")
    print(f"  (the offline judges measured with {semantic.measure()})")
    print(f"  false-block rate on faithful claims: {result['false_block']:.1%}")
    print(f"  recall on changed or invented facts: {result['recall_fact_changes']:.1%}")
    print(f"  recall on every wrong claim:         {result['recall_all']:.1%}")
    print("  with the offline judges (a claim both find wrong is revised):")
    print(f"    false-revision rate on faithful claims: {result['judged_false_block']:.1%}")
    print(f"    recall on changed or invented facts:    {result['judged_recall_fact_changes']:.1%}")
    print(f"    recall on every wrong claim:            {result['judged_recall_all']:.1%}")
    print("  by kind: blocked by the check / caught with the judges / claims")
    for kind, (blocked, caught, total) in result["by_kind"].items():
        print(f"    {kind:<15} {blocked:>3} / {caught:>3} / {total:>3}")
    per_claim = statistics.median(timings) / max(result["claims"], 1) * 1000
    median_ms = statistics.median(timings) * 1000
    print(f"  time: {median_ms:.0f} ms (median of {args.runs}), {per_claim:.2f} ms a claim")
    if args.misses:
        for row in result["rows"]:
            if row["blocked"] != row["wrong"]:
                label = "false block" if row["blocked"] else f"missed {row['kind']}"
                print(f"  {label}: {row['text']}\n      {row['verdict']}: {row['reason']}")


if __name__ == "__main__":
    main()

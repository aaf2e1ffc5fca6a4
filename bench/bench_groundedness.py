"""Benchmark: precision and recall of castline's groundedness check on a labelled set.

Each claim in `bench/data/groundedness.json` is labelled supported or not by the notes given
with it; the check flags the claims it finds unsupported. Positive = flagged as unsupported.

    python bench/bench_groundedness.py
"""

from __future__ import annotations

import json
from pathlib import Path

from castline.domain import Note
from castline.quality.content import is_factual, support

DATA = Path(__file__).resolve().parent / "data" / "groundedness.json"


def main() -> None:
    data = json.loads(DATA.read_text())
    notes = [
        Note(id=n["id"], claim=n["quote"], source_id="s", quote=n["quote"], question=0)
        for n in data["notes"]
    ]
    true_pos = false_pos = false_neg = true_neg = 0
    for claim in data["claims"]:
        checked = is_factual(claim["text"], cited=True)
        flagged = checked and not support(claim["text"], notes).supported
        unsupported = not claim["supported"]
        if flagged and unsupported:
            true_pos += 1
        elif flagged:
            false_pos += 1
            print(f"  false alarm: {claim['text']}")
        elif unsupported:
            false_neg += 1
            print(f"  missed:      {claim['text']}")
        else:
            true_neg += 1
    precision = true_pos / (true_pos + false_pos) if true_pos + false_pos else 0.0
    recall = true_pos / (true_pos + false_neg) if true_pos + false_neg else 0.0
    print(
        f"groundedness on {len(data['claims'])} labelled claims "
        f"({true_pos + false_neg} unsupported): precision {precision:.2f}, recall {recall:.2f} "
        f"(tp {true_pos}, fp {false_pos}, fn {false_neg}, tn {true_neg})"
    )


if __name__ == "__main__":
    main()

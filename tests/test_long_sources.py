"""A 50 MB source, end to end offline: read by passages, stored once, cited from across it."""

from __future__ import annotations

import json
from pathlib import Path

from castline.config import database_url
from castline.engine import episodes
from castline.sources import read_sources
from castline.store import Store
from tests.conftest import EXAMPLE, EXAMPLE_TOPIC

FILLER = (
    "The committee met again to review the minutes of its previous session and agreed on the "
    "order of business for the coming quarter without any further discussion of the matter."
)
SIZE = 50_000_000
# the most input tokens one call may send: the smallest context window of the routed models
CONTEXT_TOKENS = 200_000


def _report(path: Path) -> list[str]:
    """A report of SIZE bytes: committee minutes, with the example sources' sections spread
    evenly through it; returns those sections' first sentences, in document order."""
    sections = [s for source in read_sources(sorted((EXAMPLE / "sources").iterdir()))
                for s in source.sections if s.heading]  # fmt: skip
    minutes = "## Committee minutes\n\n" + "\n\n".join([FILLER] * 40) + "\n\n"
    planted = [f"## {s.heading}\n\n{s.text}\n\n" for s in sections]
    per_gap = (SIZE - sum(map(len, planted))) // (len(planted) + 1) // len(minutes) + 1
    with path.open("w", encoding="utf-8") as out:
        out.write("# The long report on city heat\n\n")
        for section in planted:
            out.write(minutes * per_gap)
            out.write(section)
        out.write(minutes * per_gap)
    return [s.text.split(". ")[0] for s in sections]


def test_a_50_mb_source_is_researched_by_passages_from_across_it(
    show_copy: Path, tmp_path: Path
) -> None:
    report = tmp_path / "long-report.md"
    _report(report)
    assert report.stat().st_size >= SIZE
    home = tmp_path / "castline-home"

    outcome = episodes.produce(show_copy, EXAMPLE_TOPIC, [report])

    assert outcome.status == "completed", outcome
    stored = sum(f.stat().st_size for f in home.rglob("*") if f.is_file())
    assert stored < 3 * report.stat().st_size  # the source is kept once, not per call
    store = Store(database_url())
    made = store.calls(outcome.run_id)
    assert made and max(c.input_tokens for c in made) < CONTEXT_TOKENS
    # the notes come from passages from the beginning of the report to its end
    text = report.read_text(encoding="utf-8")
    kb = [e for e in store.events(outcome.run_id) if e.kind == "knowledge-base"]
    assert kb and kb[0].data["notes"] > 5
    assert outcome.output_dir is not None
    notes = (outcome.output_dir / "episode.json").read_text(encoding="utf-8")
    quotes = [n["quote"] for n in json.loads(notes)["knowledge_base"]["notes"]]
    where = sorted(text.find(q) / len(text) for q in quotes if q in text)
    assert len(where) == len(quotes)
    assert where[0] < 0.25 and where[-1] > 0.75, where
    # and the report says what was used and what was left out
    report_md = (outcome.output_dir / "report.md").read_text(encoding="utf-8")
    assert "- ignored (" in report_md and "Committee minutes (" in report_md

"""Which sources and sections an episode used, and which it ignored."""

from __future__ import annotations

from castline.coverage import coverage, coverage_markdown
from castline.domain import Episode, Note, Section, Source
from tests.publish.test_notes import episode


def _report() -> Source:
    return Source(
        id="report", title="Long report", path="https://example.org/report",
        kind="html", sha256="0" * 64, url="https://example.org/report",
        retrieved_at="2026-12-03T10:00:00+00:00",
        sections=[
            Section(heading="Roofs", text="Cool roofs reflect sunlight.\n\nThey cost little."),
            *[Section(heading="Minutes", text=f"The committee met ({i}).") for i in range(30)],
            Section(heading="Trees", text="Street trees shade the   pavement in summer."),
        ],
    )  # fmt: skip


def _with_report() -> Episode:
    made = episode()
    report = _report()
    notes = [
        *made.knowledge_base.notes,
        Note(id="N8", claim="", source_id="report", quote="They cost little.", question=0),
        # quoted with its whitespace folded, as research quotes
        Note(id="N9", claim="", source_id="report",
             quote="Street trees shade the pavement in summer.", question=0),
        Note(id="N10", claim="", source_id="report", quote="Not in the report at all.", question=0),
    ]  # fmt: skip
    turns = [
        *made.script.turns,
        made.script.turns[1].model_copy(update={"citations": ["N9"]}),
    ]
    return made.model_copy(
        update={
            "sources": [*made.sources, report],
            "knowledge_base": made.knowledge_base.model_copy(update={"notes": notes}),
            "script": made.script.model_copy(update={"turns": turns}),
        }
    )


def test_each_section_counts_the_notes_quoted_from_it_and_those_cited() -> None:
    made = _with_report()
    by_source = {item.source.id: item for item in coverage(made)}

    report = by_source["report"]
    assert [(u.heading, u.notes, u.cited) for u in report.used] == [
        ("Roofs", 1, 0),
        ("Trees", 1, 1),
    ]
    assert report.sections == 32 and report.ignored == [("Minutes", 30)]
    assert report.ignored_count == 30 and report.cited == 1
    # a source no note came from is reported as not used
    assert by_source["cooling-strategies"].used == []


def test_the_report_names_what_was_used_and_what_was_ignored() -> None:
    text = "\n".join(coverage_markdown(_with_report()))
    assert "**Long report** (https://example.org/report, retrieved 2026-12-03): 2 of 32" in text
    assert "ignored (30 sections): Minutes (30 sections)" in text
    assert "**Cooling Strategies** (cooling-strategies.pdf): **not used**" in text

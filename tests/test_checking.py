"""`castline check` and the library under it: any script, claim by claim, against its sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from castline.checking import NEEDS_SHOW, check_script, notes_of, parse_script
from castline.errors import ConfigError
from castline.sources import read_sources
from tests.conftest import EXAMPLE
from tests.hostile import assert_refused, invoke

NOTE = """# Street trees

Street trees lower summer air temperatures in cities by shading pavements and walls.
A mature oak can transpire hundreds of litres of water on a hot afternoon, cooling the air.
Some cities now require developers to replace every tree they remove during construction.
"""
FAITHFUL = """# Trees and heat

## Shade

**Maya:** So street trees keep cities cooler in summer, mostly by shading the pavement
and the walls. [1]

**Theo:** And a grown oak can breathe out hundreds of litres of water on a hot afternoon. [1]

## Rules

**Maya:** Some cities even make developers replace every single tree they take out while
building. [1]

## Sources

1. Street trees (note.md)
"""


@pytest.fixture
def note(tmp_path: Path) -> Path:
    path = tmp_path / "note.md"
    path.write_text(NOTE)
    return path


def _script(tmp_path: Path, text: str, name: str = "draft.md") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_markdown_script_is_read_with_its_segments_citations_and_wrapped_lines() -> None:
    script = parse_script(FAITHFUL, Path("draft.md"))

    assert script.title == "Trees and heat"
    assert [(t.speaker, t.segment, t.citations) for t in script.turns] == [
        ("Maya", "shade", ["1"]),
        ("Theo", "shade", ["1"]),
        ("Maya", "rules", ["1"]),
    ]
    assert script.turns[2].text.endswith("take out while building.")  # the wrapped line joined
    assert all("[1]" not in t.text for t in script.turns)


def test_a_plain_script_is_read() -> None:
    script = parse_script("MAYA: Hello there. [1, 2]\nTHEO: Hi.\n", Path("x.txt"))

    assert [(t.speaker, t.text, t.citations) for t in script.turns] == [
        ("MAYA", "Hello there.", ["1", "2"]),
        ("THEO", "Hi.", []),
    ]


def test_castlines_own_script_is_read() -> None:
    text = "# Episode 1: Heat\n\n*Heat Check*\n\n> Produced offline.\n\n## Welcome\n\n"
    text += "**Maya:** Hi. [2]\n"
    script = parse_script(text, Path("script.md"))
    assert [(t.speaker, t.text, t.segment, t.citations) for t in script.turns] == [
        ("Maya", "Hi.", "welcome", ["2"])
    ]


def test_a_file_without_turns_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"no turns found; write each turn"):
        parse_script("Just some prose.\nAnd more.", Path("essay.md"))


def test_every_citable_sentence_of_every_source_is_a_note(note: Path) -> None:
    kb = notes_of(read_sources([note]))
    assert [n.id for n in kb.notes] == ["1.1", "1.2", "1.3"]


def test_a_faithful_paraphrase_passes_the_content_gate(note: Path) -> None:
    script = parse_script(FAITHFUL, Path("draft.md"))

    report = check_script(script, read_sources([note]), only=["content"])

    assert report.passed
    assert [r.criterion for r in report.criteria] == ["groundedness", "coherence", "accuracy"]
    assert [c.verdict for c in report.claims] and not any(c.blocking for c in report.claims)


def test_without_a_show_bible_its_checks_are_skipped_not_passed(note: Path) -> None:
    report = check_script(parse_script(FAITHFUL, Path("d.md")), read_sources([note]))

    skipped = {r.criterion for r in report.criteria if r.status == "skipped"}
    assert skipped >= NEEDS_SHOW
    assert {"legal-risk", "tone", "coherence", "accuracy"} <= skipped
    ran = {r.criterion for r in report.criteria if r.status != "skipped"}
    assert ran == {
        "citations",
        "speakable",
        "addressed-to-model",
        "readability",
        "groundedness",
        "repetition",
        "contradictions",
    }


def test_a_citation_beyond_the_sources_fails(note: Path) -> None:
    script = parse_script("**Maya:** Street trees shade pavements and walls. [3]\n", Path("d.md"))

    report = check_script(script, read_sources([note]), only=["compliance"])

    [citations] = [r for r in report.criteria if r.criterion == "citations"]
    assert citations.status == "failed" and "'[3]'" in citations.reason


def test_check_exits_0_when_every_check_passes(tmp_path: Path, note: Path) -> None:
    result = invoke("check", str(_script(tmp_path, FAITHFUL)), "--source", str(note))
    assert result.exit_code == 0, result.output
    assert "every check passed" in result.output


def test_check_exits_1_and_names_a_changed_and_an_invented_fact(tmp_path: Path, note: Path) -> None:
    draft = FAITHFUL.replace("hundreds of litres", "thousands of litres").replace(
        "## Rules", "## Rules\n\n**Theo:** A 2019 survey found 80 percent of people want trees. [1]"
    )

    result = invoke(
        "check", str(_script(tmp_path, draft)), "--source", str(note), "--gate", "content", "--json"
    )

    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    verdicts = {c["text"][:20]: (c["verdict"], c["missing"]) for c in report["claims"]}
    assert verdicts["And a grown oak can "] == ("contradicted", ["thousands"])
    assert verdicts["A 2019 survey found "] == ("not-found", ["2019", "80"])
    [grounded] = [c for c in report["criteria"] if c["criterion"] == "groundedness"]
    assert grounded["status"] == "failed"
    assert {f["segment"] for f in grounded["findings"]} == {"shade", "rules"}


def test_check_with_the_show_bible_runs_its_checks(tmp_path: Path) -> None:
    episode = sorted(EXAMPLE.glob("sources/*"))
    script = _script(tmp_path, FAITHFUL)

    result = invoke(
        "check", str(script), "--show", str(EXAMPLE / "show.yaml"),
        *(arg for path in episode for arg in ("--source", str(path))), "--json",
    )  # fmt: skip

    report = json.loads(result.output)
    statuses = {c["criterion"]: c["status"] for c in report["criteria"]}
    # the example show wants its disclaimer, its hosts and 20 minutes: this draft has none
    assert statuses["disclaimers"] == statuses["length"] == "failed"
    assert result.exit_code == 1


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["missing.md", "--source", "{note}"], ["script missing.md: file not found"]),
        (["{note}", "--source", "{note}"], ["no turns found"]),
        (["{draft}", "--source", "missing.txt"], ["missing.txt", "file not found"]),
        (["{draft}", "--source", "{note}", "--show", "nope.yaml"], ["nope.yaml"]),
        (["{draft}", "--source", "{note}", "--gate", "bogus"], ["'bogus' is not one of"]),
        (["{draft}"], ["Missing option '--source'"]),
    ],
)
def test_bad_input_is_refused_with_exit_code_2(
    tmp_path: Path, note: Path, args: list[str], names: list[str]
) -> None:
    draft = _script(tmp_path, FAITHFUL)
    given = [a.format(note=note, draft=draft) for a in args]

    result = invoke("check", *given)

    assert_refused(result, *names)

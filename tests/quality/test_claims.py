"""Claims one by one: only a number, date, name or quotation no note contains blocks; a
paraphrase is a claim to verify, never a block."""

from __future__ import annotations

import pytest

from castline.domain import Note, Script, Turn
from castline.quality.claims import ClaimCheck, check, extract

NOTES = [
    Note(
        id="n1",
        claim="",
        source_id="city",
        quote="By 1900 the population of Chicago had grown to about 1.7 million people.",
        question=0,
    ),
    Note(
        id="n2",
        claim="",
        source_id="city",
        quote="The Great Chicago Fire of October 1871 destroyed roughly 17,000 buildings.",
        question=0,
    ),
    Note(
        id="n3",
        claim="",
        source_id="city",
        quote="Engineers raised the level of the streets to install a sewer system.",
        question=0,
    ),
]


def _checked(text: str, *cites: str, speaker: str = "Maya") -> ClaimCheck:
    script = Script(
        title="t", turns=[Turn(speaker=speaker, text=text, segment="s1", citations=list(cites))]
    )
    [claim] = extract(script, known=["Maya", "Theo", "City Stories"])
    return check(claim, NOTES)


@pytest.mark.parametrize(
    "text",
    [
        "So by the year 1900, Chicago was home to about 1.7 million people.",
        "Get this: the fire in October 1871 took out something like 17,000 buildings.",
        # a hedge lets a figure be rounded
        "After the fire of 1871, around 17,500 buildings were simply gone in Chicago.",
    ],
)
def test_a_faithful_paraphrase_is_never_blocked(text: str) -> None:
    checked = _checked(text, "n1", "n2")
    assert not checked.blocking, checked.reason
    assert checked.verdict in {"supported", "to-verify"}


def test_a_paraphrase_far_from_the_wording_of_its_note_is_a_claim_to_verify() -> None:
    checked = _checked(
        "Because of that, the city literally lifted its roads up so the new drains could go in.",
        "n3",
    )
    assert checked.verdict == "to-verify" and not checked.blocking
    assert checked.note_id == "n3" and "a judge must say" in checked.reason


def test_a_changed_number_is_contradicted_with_what_the_note_says() -> None:
    checked = _checked("By 1900 Chicago had grown to about 2.7 million people.", "n1")
    assert checked.verdict == "contradicted" and checked.blocking
    assert checked.missing == ("2.7 million",)
    assert checked.note_id == "n1" and "1900, 1.7" in checked.reason


def test_a_year_is_never_taken_as_rounded() -> None:
    checked = _checked("The great fire broke out in about 1872 and burned 17,000 buildings.", "n2")
    assert checked.verdict == "contradicted" and checked.missing == ("1872",)


def test_an_unhedged_figure_must_be_the_notes_own() -> None:
    checked = _checked("The fire of 1871 destroyed exactly 17,500 buildings in Chicago.", "n2")
    assert checked.blocking and checked.missing == ("17,500",)


def test_a_swapped_name_or_month_is_caught() -> None:
    assert _checked("By 1900 the population of Detroit had reached 1.7 million.", "n1").missing == (
        "Detroit",
    )
    assert _checked(
        "The Great Chicago Fire of March 1871 burned 17,000 buildings.", "n2"
    ).missing == ("March",)


MISSIONS = Note(
    id="m1",
    claim="",
    source_id="space",
    quote="Apollo 8 was the first crewed spacecraft to orbit the Moon, while the final Apollo 17 "
    "mission made the sixth landing. Ondemar Dias first mapped the craters in 1977 and "
    "Alceu Ranzi extended the survey after flying over Acre.",
    question=0,
)


def _against_missions(text: str) -> ClaimCheck:
    script = Script(
        title="t", turns=[Turn(speaker="Maya", text=text, segment="s", citations=["m1"])]
    )
    [claim] = extract(script, known=["Maya"])
    return check(claim, [MISSIONS])


@pytest.mark.parametrize(
    ("text", "moved", "rival"),
    [
        ("Apollo 17 was the first crewed spacecraft to orbit the Moon.", "17", "8"),
        ("Alceu Ranzi first mapped the craters in 1977.", "Alceu", "Ondemar"),
    ],
)
def test_a_fact_moved_to_another_clause_of_its_own_note_is_contradicted(
    text: str, moved: str, rival: str
) -> None:
    # every number and name is in the cited note, but in the wrong place
    checked = _against_missions(text)
    assert checked.verdict == "contradicted", checked.reason
    assert moved in checked.missing and rival in checked.reason and checked.note_id == "m1"


@pytest.mark.parametrize(
    "text",
    [
        "Apollo 8 was the first crewed spacecraft to go around the Moon.",
        "Apollo 8 orbited the Moon first, and Apollo 17 made the sixth and final landing.",
        "Ondemar Dias mapped the craters first, in 1977, and Alceu Ranzi flew over Acre.",
    ],
)
def test_facts_in_their_own_clauses_are_not_moved(text: str) -> None:
    checked = _against_missions(text)
    assert not checked.blocking, checked.reason


def test_an_invented_statistic_is_not_found() -> None:
    checked = _checked(
        "A 2015 survey found that 64 percent of residents want taller buildings.", "n3"
    )
    assert checked.verdict == "not-found" and set(checked.missing) == {"2015", "64"}


def test_a_fact_fused_from_an_uncited_note_is_not_blocked() -> None:
    checked = _checked(
        "Chicago had about 1.7 million people by 1900, decades after the 1871 fire.", "n1"
    )
    assert not checked.blocking, checked.reason


def test_a_quotation_no_note_contains_is_not_found() -> None:
    checked = _checked('The mayor said "we will rebuild it in stone and brick" in 1871.', "n2")
    assert checked.verdict == "not-found"
    assert "quotation" in checked.reason


def test_hosts_show_and_spoken_openers_are_not_names() -> None:
    script = Script(
        title="t",
        turns=[
            Turn(
                speaker="Maya",
                text="Okay Theo, welcome back to City Stories, everyone.",
                segment="intro",
            ),
            Turn(
                speaker="Theo",
                text="Thanks Maya. So today we are in Chicago again.",
                segment="intro",
            ),
        ],
    )
    claims = extract(script, known=["Maya", "Theo", "City Stories"])
    assert [c.names for c in claims] == [("Chicago",)]


def test_connective_lines_are_not_claims() -> None:
    script = Script(
        title="t",
        turns=[
            Turn(
                speaker="Maya", text="Let me start with something from the research.", segment="s1"
            ),
            Turn(speaker="Theo", text="That is the part people tend to miss.", segment="s1"),
        ],
    )
    assert extract(script) == []

"""Text utilities: sentence splitting, phrase matching, keywords and token estimates."""

from __future__ import annotations

import pytest

from castline.text import (
    estimate_tokens,
    keywords,
    overlap,
    phrase_pattern,
    sentences,
    stem,
    terms,
    word_count,
    words,
)

# --- sentences ----------------------------------------------------------------------------------


def test_sentences_keep_eg_inside_the_sentence() -> None:
    text = "Cities are hot, e.g. Phoenix and Delhi. Trees help."

    assert sentences(text) == ["Cities are hot, e.g. Phoenix and Delhi.", "Trees help."]


def test_sentences_keep_other_abbreviations_inside() -> None:
    text = "Dr. Lee measured sites in the U.S. with care. Shade works, i.e. It cools."

    assert sentences(text) == [
        "Dr. Lee measured sites in the U.S. with care.",
        "Shade works, i.e. It cools.",
    ]


def test_sentences_split_on_every_terminal_mark() -> None:
    text = "Does shade work? Yes! It cools streets. 40 percent less heat."

    assert sentences(text) == [
        "Does shade work?",
        "Yes!",
        "It cools streets.",
        "40 percent less heat.",
    ]


def test_sentences_split_before_an_opening_quote() -> None:
    assert sentences('It is hot. "Stay inside," they said.') == [
        "It is hot.",
        '"Stay inside," they said.',
    ]


def test_sentences_keep_closing_quotes_and_brackets() -> None:
    text = 'She said "drink water." Then she left. Trees help (a lot.) People agree.'

    assert sentences(text) == [
        'She said "drink water."',
        "Then she left.",
        "Trees help (a lot.)",
        "People agree.",
    ]


def test_sentences_do_not_split_before_lowercase_or_inside_numbers() -> None:
    text = "Roofs reflect 0.65 of sunlight. then more. Albedo is 0.05 here."

    assert sentences(text) == ["Roofs reflect 0.65 of sunlight. then more.", "Albedo is 0.05 here."]


def test_sentences_normalise_whitespace_across_lines() -> None:
    text = "First   line\nstill first.\n\nSecond paragraph.  "

    assert sentences(text) == ["First line still first.", "Second paragraph."]


def test_sentences_of_empty_text() -> None:
    assert sentences("") == []
    assert sentences("   \n ") == []


# --- words, stems and terms ---------------------------------------------------------------------


def test_words_lowercase_and_keep_inner_apostrophes_and_hyphens() -> None:
    assert words("Today's fast-paced, 24-hour world!") == [
        "today's",
        "fast-paced",
        "24-hour",
        "world",
    ]
    assert word_count("  two\nwords ") == 2


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("cities", "city"),
        ("cooling", "cool"),
        ("cooled", "cool"),
        ("roofs", "roof"),
        ("boxes", "box"),
        ("gas", "gas"),  # too short to strip
        ("heat", "heat"),
    ],
)
def test_stem(word: str, expected: str) -> None:
    assert stem(word) == expected


@pytest.mark.parametrize(("plural", "singular"), [("trees", "tree"), ("shades", "shade")])
def test_stem_matches_plural_and_singular_of_words_ending_in_e(plural: str, singular: str) -> None:
    assert stem(plural) == stem(singular)


def test_terms_drop_stopwords_and_short_words() -> None:
    assert terms("The cooling of the cities is an ongoing issue at night") == [
        "cool",
        "city",
        "ongo",
        "issu",
        "night",
    ]


def test_overlap_is_the_share_of_query_terms_found() -> None:
    assert overlap(["cool", "roof", "city", "tree"], ["roof", "tree", "other"]) == 0.5
    assert overlap([], ["roof"]) == 0.0
    assert overlap(["roof", "roof"], ["roof"]) == 1.0


# --- keywords -----------------------------------------------------------------------------------


def test_keywords_most_frequent_first_ties_alphabetical() -> None:
    texts = [
        "Cooling roofs cool the city.",
        "Heat: cities cool; roofs reflect.",
        "City heat and shade.",
    ]

    # cool x3, city x3, heat x2, roof x2, reflect x1, shade x1
    assert keywords(texts, 10) == ["city", "cool", "heat", "roof", "reflect", "shad"]
    assert keywords(texts, 3) == ["city", "cool", "heat"]
    assert keywords(texts, 0) == []


def test_keywords_ignore_stopwords() -> None:
    assert keywords(["the the the and and of heat"], 5) == ["heat"]
    assert keywords([], 5) == []


# --- estimate_tokens ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("x" * 400, 100), ("x" * 401, 101)],
)
def test_estimate_tokens_is_a_quarter_of_the_characters_rounded_up(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


# --- phrase_pattern -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phrase", "text", "matched"),
    [
        ("game changer", "This is a game changer.", "game changer"),
        ("game changer", "Cool roofs are Game-changers for cities.", "Game-changers"),
        ("game changer", "two GAME   CHANGERS", "GAME   CHANGERS"),
        ("silver bullet", "There are no silver bullets here.", "silver bullets"),
        ("silver bullet", "Not a Silver-Bullet.", "Silver-Bullet"),
        ("revolutionize", "They are revolutionizing cooling.", "revolutionizing"),
        ("in today's fast-paced world", "In today's fast-paced world, heat", None),
    ],
)
def test_phrase_pattern_matches_inflections(phrase: str, text: str, matched: str | None) -> None:
    match = phrase_pattern(phrase).search(text)

    assert match is not None
    if matched is not None:
        assert match.group(0) == matched


@pytest.mark.parametrize(
    ("phrase", "text"),
    [
        ("game changer", "The endgame changer was late."),  # inside a longer word
        ("silver bullet", "quicksilver bullet"),
        ("game changer", "game of changers"),  # words not adjacent
        ("game changer", "the gamechanger"),  # no separator
        ("silver bullet", "silver and bullet"),
        ("game changer", "a game plan"),
    ],
)
def test_phrase_pattern_does_not_match_other_words(phrase: str, text: str) -> None:
    assert phrase_pattern(phrase).search(text) is None


def test_phrase_pattern_does_not_match_a_longer_word_that_starts_with_the_phrase() -> None:
    assert phrase_pattern("silver bullet").search("The silver bulletin board.") is None


def test_phrase_pattern_matches_a_typographic_apostrophe() -> None:
    pattern = phrase_pattern("in today's fast-paced world")

    assert pattern.search("In today\u2019s fast-paced world, cities heat up.") is not None


def test_phrase_pattern_treats_a_hyphen_in_the_phrase_like_a_space() -> None:
    pattern = phrase_pattern("in today's fast-paced world")

    assert pattern.search("In today's fast paced world, cities heat up.") is not None

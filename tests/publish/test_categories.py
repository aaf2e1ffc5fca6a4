"""Apple's podcast categories: what the show bible accepts, and what it suggests instead."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from castline.config import parse_show
from castline.errors import ShowFileError
from castline.publish.categories import APPLE_CATEGORIES, Category, all_categories, parse_category


def test_a_category_and_a_subcategory_are_normalised_to_apples_spelling() -> None:
    assert parse_category("science") == Category("Science")
    assert parse_category("  science >earth   sciences ") == Category("Science", "Earth Sciences")
    assert str(parse_category("tv & film > after shows")) == "TV & Film > After Shows"


@pytest.mark.parametrize(
    ("given", "closest"),
    [
        ("Sciense", "'Science'"),
        ("Earth Science", "'Science > Earth Sciences'"),
        ("Tech", "'Technology'"),
        ("News > Tech", "'News > Tech News'"),
        ("Kids", "'Kids & Family'"),
    ],
)
def test_an_unknown_category_suggests_the_closest_valid_ones(given: str, closest: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_category(given)

    message = str(raised.value)
    assert message.startswith(repr(given))
    suggested = message.split("closest: ", 1)[1]
    assert closest in suggested.split(", ")[:3]


def test_a_subcategory_alone_is_placed_under_its_category() -> None:
    with pytest.raises(
        ValueError, match=re.escape("write it under its category: 'Science > Physics'")
    ):
        parse_category("physics")


def test_a_subcategory_of_another_category_lists_the_right_ones() -> None:
    with pytest.raises(ValueError, match="'Physics' is not a subcategory of 'Arts'") as raised:
        parse_category("Arts > Physics")
    assert "Books, Design, Fashion & Beauty, Food, Performing Arts, Visual Arts" in str(
        raised.value
    )


def test_nothing_close_lists_the_top_level_categories() -> None:
    with pytest.raises(ValueError, match="the categories are: Arts, Business, Comedy"):
        parse_category("Xylophone")


def test_the_list_is_apples_shape() -> None:
    # 19 categories and 91 subcategories in Apple's 2019 list (the node test compares names)
    assert len(APPLE_CATEGORIES) == 19
    assert sum(len(subs) for subs in APPLE_CATEGORIES.values()) == 91
    assert len(all_categories()) == len(set(all_categories())) == 110


def test_the_show_bible_rejects_a_bad_category_with_its_line(tmp_path: Path) -> None:
    text = (
        "show: {title: T, description: D, author: A}\n"
        "hosts: [{name: Ada, persona: p}]\n"
        "brand_voice: {style_guide: s}\n"
        "feed:\n"
        "  categories:\n"
        "    - Science\n"
        "    - Sciense > Physics\n"
    )
    with pytest.raises(ShowFileError) as raised:
        parse_show(text, tmp_path / "show.yaml")

    [problem] = raised.value.problems
    assert problem.startswith("line 7: feed.categories.1: 'Sciense > Physics' is not one of")
    assert "'Science > Physics'" in problem


def test_the_show_bible_keeps_categories_in_apples_spelling(tmp_path: Path) -> None:
    text = (
        "show: {title: T, description: D, author: A}\n"
        "hosts: [{name: Ada, persona: p}]\n"
        "brand_voice: {style_guide: s}\n"
        "feed: {categories: ['true crime', 'science > nature']}\n"
    )
    show = parse_show(text, tmp_path / "show.yaml")

    assert show.feed.categories == ["True Crime", "Science > Nature"]

"""Apple Podcasts categories: the only values `itunes:category` may take.

Apple files a show under the first category of its feed (and Spotify and the Podcast Index read
the same element), and silently ignores one it does not know, so a misspelt category means a
show nobody can browse to. The list is Apple's own (https://podcasts.apple.com/genre/podcasts/
id26 and "Apple Podcasts categories" in Podcasts Connect help, unchanged since its 2019
revision); the tests check it against the independent copy that the podcast-partytime parser
ships.

A category is written in the show bible as ``Science`` or, with a subcategory, ``Science > Earth
Sciences``; case and spacing are forgiven and normalised to Apple's spelling.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

APPLE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "Arts": (
        "Books",
        "Design",
        "Fashion & Beauty",
        "Food",
        "Performing Arts",
        "Visual Arts",
    ),
    "Business": (
        "Careers",
        "Entrepreneurship",
        "Investing",
        "Management",
        "Marketing",
        "Non-Profit",
    ),
    "Comedy": ("Comedy Interviews", "Improv", "Stand-Up"),
    "Education": ("Courses", "How To", "Language Learning", "Self-Improvement"),
    "Fiction": ("Comedy Fiction", "Drama", "Science Fiction"),
    "Government": (),
    "Health & Fitness": (
        "Alternative Health",
        "Fitness",
        "Medicine",
        "Mental Health",
        "Nutrition",
        "Sexuality",
    ),
    "History": (),
    "Kids & Family": ("Education for Kids", "Parenting", "Pets & Animals", "Stories for Kids"),
    "Leisure": (
        "Animation & Manga",
        "Automotive",
        "Aviation",
        "Crafts",
        "Games",
        "Hobbies",
        "Home & Garden",
        "Video Games",
    ),
    "Music": ("Music Commentary", "Music History", "Music Interviews"),
    "News": (
        "Business News",
        "Daily News",
        "Entertainment News",
        "News Commentary",
        "Politics",
        "Sports News",
        "Tech News",
    ),
    "Religion & Spirituality": (
        "Buddhism",
        "Christianity",
        "Hinduism",
        "Islam",
        "Judaism",
        "Religion",
        "Spirituality",
    ),
    "Science": (
        "Astronomy",
        "Chemistry",
        "Earth Sciences",
        "Life Sciences",
        "Mathematics",
        "Natural Sciences",
        "Nature",
        "Physics",
        "Social Sciences",
    ),
    "Society & Culture": (
        "Documentary",
        "Personal Journals",
        "Philosophy",
        "Places & Travel",
        "Relationships",
    ),
    "Sports": (
        "Baseball",
        "Basketball",
        "Cricket",
        "Fantasy Sports",
        "Football",
        "Golf",
        "Hockey",
        "Rugby",
        "Running",
        "Soccer",
        "Swimming",
        "Tennis",
        "Volleyball",
        "Wilderness",
        "Wrestling",
    ),
    "TV & Film": ("After Shows", "Film History", "Film Interviews", "Film Reviews", "TV Reviews"),
    "Technology": (),
    "True Crime": (),
}

SEPARATOR = " > "
MAX_SUGGESTIONS = 3


@dataclass(frozen=True)
class Category:
    """An Apple category, optionally narrowed to one of its subcategories."""

    name: str
    subcategory: str | None = None

    def __str__(self) -> str:
        return f"{self.name}{SEPARATOR}{self.subcategory}" if self.subcategory else self.name


def all_categories() -> list[str]:
    """Every value a show bible may give, parents first: ``Arts``, ``Arts > Books``, ..."""
    values: list[str] = []
    for name, subcategories in APPLE_CATEGORIES.items():
        values.append(name)
        values += [f"{name}{SEPARATOR}{sub}" for sub in subcategories]
    return values


def parse_category(text: str) -> Category:
    """`text` as an Apple category; a ValueError that suggests the closest valid ones if it is
    not one."""
    parts = [" ".join(part.split()) for part in text.split(">")]
    if len(parts) > 2 or not all(parts):
        raise ValueError(
            f"{text!r} is not a category; write `Category` or `Category > Subcategory`, "
            f"e.g. 'Science > Earth Sciences'{_suggest(text)}"
        )
    names = {name.casefold(): name for name in APPLE_CATEGORIES}
    name = names.get(parts[0].casefold())
    if name is None:
        parents = [parent for parent, subs in APPLE_CATEGORIES.items() if _find(subs, parts[0])]
        if len(parts) == 1 and parents:  # a subcategory given alone
            found = _find(APPLE_CATEGORIES[parents[0]], parts[0])
            raise ValueError(
                f"{text!r} is a subcategory; write it under its category: "
                f"'{parents[0]}{SEPARATOR}{found}'"
            )
        raise ValueError(f"{text!r} is not one of Apple's podcast categories{_suggest(text)}")
    if len(parts) == 1:
        return Category(name)
    subcategory = _find(APPLE_CATEGORIES[name], parts[1])
    if subcategory is None:
        allowed = ", ".join(APPLE_CATEGORIES[name]) or "none"
        raise ValueError(
            f"{text!r}: {parts[1]!r} is not a subcategory of {name!r} (its subcategories: "
            f"{allowed}){_suggest(text)}"
        )
    return Category(name, subcategory)


def _find(options: tuple[str, ...], wanted: str) -> str | None:
    return next((option for option in options if option.casefold() == wanted.casefold()), None)


def _suggest(text: str) -> str:
    """'; closest: ...' with the valid values nearest to `text`, matched on the whole value and
    on the subcategory alone (so 'Earth Science' finds 'Science > Earth Sciences'), and by
    their beginning (so 'Tech' finds 'Technology')."""
    wanted = " ".join(text.replace(">", SEPARATOR).split()).casefold()
    values = all_categories()
    scored: dict[str, float] = {}
    for value in values:
        tail = value.rsplit(SEPARATOR, 1)[-1]
        score = max(
            difflib.SequenceMatcher(None, wanted, value.casefold()).ratio(),
            difflib.SequenceMatcher(None, wanted, tail.casefold()).ratio(),
            # a beginning ("Tech", "Kids") is as good as a near spelling
            0.9 if any(v.casefold().startswith(wanted) for v in (value, tail)) else 0.0,
        )
        if score >= 0.6:
            scored[value] = score
    best = sorted(scored, key=lambda value: (-scored[value], values.index(value)))
    if not best:
        return f"; the categories are: {', '.join(APPLE_CATEGORIES)}"
    return "; closest: " + ", ".join(f"'{value}'" for value in best[:MAX_SUGGESTIONS])

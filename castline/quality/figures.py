"""The figures a sentence states, however a host says them, and whether notes state the same.

"1.7 million", "110 thousand", "fifty", "twenty-five", "one in three", "four out of five",
"half", "a third", "the seventh", "thousands of": each is a figure with a value. A figure said
loosely (a ratio, a fraction, or a numeral after "about", "nearly", "more than" ...) may round
the notes' by `ROUNDING`; a year, an ordinal or a bare numeral must be the notes' own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

ROUNDING = 0.15

_UNITS = {
    word: value
    for value, word in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
        ]
    )
} | {
    word: 10 * tens
    for tens, word in enumerate(
        ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"],
        start=2,
    )
}
_ORDINALS = {
    word: value
    for value, word in enumerate(
        [
            "first",
            "second",
            "third",
            "fourth",
            "fifth",
            "sixth",
            "seventh",
            "eighth",
            "ninth",
            "tenth",
            "eleventh",
            "twelfth",
            "thirteenth",
            "fourteenth",
            "fifteenth",
            "sixteenth",
            "seventeenth",
            "eighteenth",
            "nineteenth",
            "twentieth",
        ],
        start=1,
    )
}
_SCALES = {"hundred": 1e2, "thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_FRACTIONS = {
    "half": 50.0,
    "a third": 100 / 3,
    "one third": 100 / 3,
    "two thirds": 200 / 3,
    "a quarter": 25.0,
    "one quarter": 25.0,
    "three quarters": 75.0,
    "a fifth": 20.0,
    "one fifth": 20.0,
    "a tenth": 10.0,
    "one tenth": 10.0,
}
# "thousands of": the word, or any figure of that size, states it.
_MAGNITUDES = {
    "dozens": 12.0,
    "hundreds": 1e2,
    "thousands": 1e3,
    "millions": 1e6,
    "billions": 1e9,
}

_WORD = "|".join(sorted(_UNITS, key=len, reverse=True))
_AMOUNT = rf"(?:\d+(?:[.,]\d+)*|(?:{_WORD})(?:-(?:{_WORD}))?)"
_SCALE = rf"(?:\s+(?:{'|'.join(_SCALES)}))*"
_FIGURE = re.compile(
    "|".join(
        (
            rf"(?P<ratio>\b(?P<top>{_AMOUNT})\s+(?:in|out of)\s+(?:every\s+)?"
            rf"(?P<bottom>{_AMOUNT})\b)",
            rf"(?P<fraction>\b(?:{'|'.join(f.replace(' ', '[ -]') for f in _FRACTIONS)})\b)",
            rf"(?P<magnitude>\b(?:{'|'.join(_MAGNITUDES)})\b)",
            # "the seventh landing" (not "for a second"), "the 6th"
            rf"(?P<ordinal>(?<=\bthe )(?:{'|'.join(_ORDINALS)})\b|(?<![\w.])\d+(?:st|nd|rd|th)\b)",
            rf"(?P<amount>(?<![\w.])(?:\d+(?:[.,]\d+)*|(?:{_WORD})(?:-(?:{_WORD}))?\b){_SCALE})",
        )
    ),
    re.IGNORECASE,
)
_HEDGE = re.compile(
    r"\b(?:about|around|roughly|nearly|almost|approximately|some|over|more than|less than|"
    r"fewer than|close to|just under|just over|up to|at least|at most|an estimated|"
    r"something like|well over|upwards of)\s*$",
    re.IGNORECASE,
)

Kind = Literal["amount", "ordinal", "magnitude"]


@dataclass(frozen=True)
class Figure:
    text: str  # as said
    value: float
    kind: Kind
    loose: bool  # said approximately: may round the notes' figure
    share: bool = False  # a ratio or a fraction ("one in three", "half"): no one note's wording

    @property
    def is_year(self) -> bool:
        return self.kind == "amount" and self.text.isdigit() and 1000 <= self.value <= 2200


@lru_cache(maxsize=4096)
def figures(sentence: str) -> tuple[Figure, ...]:
    """Every figure the text states, in order (cached: the notes are read for every claim)."""
    found: list[Figure] = []
    for match in _FIGURE.finditer(sentence):
        text = match.group(0)
        before = sentence[: match.start()]
        if match.group("ratio"):
            top, bottom = _amount(match.group("top")), _amount(match.group("bottom"))
            if top is None or not bottom:
                continue
            found.append(Figure(text, 100 * top / bottom, "amount", loose=True, share=True))
        elif match.group("fraction"):
            fraction = _FRACTIONS[text.lower().replace("-", " ")]
            found.append(Figure(text, fraction, "amount", loose=True, share=True))
        elif match.group("magnitude"):
            found.append(Figure(text, _MAGNITUDES[text.lower()], "magnitude", loose=True))
        elif match.group("ordinal"):
            word = text.lower()
            rank = float(_ORDINALS[word]) if word in _ORDINALS else float(re.sub(r"\D", "", word))
            found.append(Figure(text, rank, "ordinal", loose=False))
        else:
            if text[:1].isalpha() and (text.lower() == "one" or (text[:1].isupper() and before)):
                continue  # "one of the ...", "World War Two"
            amount = _amount(text)
            if amount is not None:
                found.append(Figure(text, amount, "amount", loose=bool(_HEDGE.search(before))))
    return tuple(_ranges(found, sentence))


_RANGE_BETWEEN = re.compile(r"^\s*(?:to|-|\u2013|and|or)\s*$")


def _ranges(found: list[Figure], sentence: str) -> list[Figure]:
    """In "110 to 120 thousand" the scale is both ends': 110,000 and 120,000."""
    result = list(found)
    for index in range(len(result) - 1):
        low, high = result[index], result[index + 1]
        scaled = _amount(high.text.split()[0]) if high.text[:1].isdigit() else None
        if (
            low.kind == high.kind == "amount"
            and len(low.text.split()) == 1
            and scaled
            and high.value != scaled
        ):
            start = sentence.find(low.text) + len(low.text)
            between = sentence[start : sentence.find(high.text, start)]
            if _RANGE_BETWEEN.match(between):
                result[index] = Figure(
                    low.text, low.value * high.value / scaled, "amount", low.loose
                )
    return result


def stated(figure: Figure, text: str) -> bool:
    """Whether `text` (the notes) states the figure."""
    theirs = figures(text)
    if figure.kind == "magnitude":
        least = figure.value
        return any(
            (f.kind == "magnitude" and f.value == least) or least <= f.value < least * 1000
            for f in theirs
        )
    same_kind = [f for f in theirs if f.kind == figure.kind]
    if any(f.value == figure.value for f in same_kind):
        return True
    if figure.is_year or figure.kind == "ordinal":
        return False
    return any(
        (figure.loose or f.share) and abs(f.value - figure.value) <= ROUNDING * abs(f.value)
        for f in same_kind
    )


def _amount(text: str) -> float | None:
    words = text.lower().split()
    if not words:
        return None
    head, scales = words[0], words[1:]
    if head[0].isdigit():
        try:
            value = float(head.replace(",", ""))
        except ValueError:
            return None
    else:
        parts = head.split("-")
        if not all(part in _UNITS for part in parts):
            return None
        value = float(sum(_UNITS[part] for part in parts))
    for scale in scales:
        value *= _SCALES.get(scale, 1.0)
    return value

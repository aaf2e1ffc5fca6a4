"""Small text utilities shared by source reading, the offline provider and the checks."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

# a sentence ends at . ! ? (and a closing quote) before a capital, but not at an initial
# ("William E. Simon")
_SENTENCE_END = re.compile(
    r"(?:(?<=[.!?])|(?<=[.!?][\"'\u201d\u2019)\]]))(?<![\s.][A-Z]\.)\s+"
    r"(?=[\"'\u201c(\[]?[A-Z0-9])"
)
_WORD = re.compile(r"[a-z0-9]+(?:['\u2019-][a-z0-9]+)*")
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "Dr.", "Mr.", "Ms.", "Mrs.", "St.", "U.S.", "No.")

STOPWORDS = frozenset(
    """
    a about above across after again against all also am among an and any are around as at
    based be because been before being below between both but by called can can't cannot could
    did do does doing down during each even every few for from further get gets got had has
    have having he her here hers him his how however i if in into is it its itself just known
    later least less like made make many may might more most mostly much must my near new no
    nor not now of off often on once one only or other our out over own part per rather really
    same several she should so some still such take taken than that the their them then there
    these they this those though three through to too two under until up upon us very was way
    ways we well were what when where whether which while who whom why will with within
    without would yet you your yours
    """.split()  # noqa: SIM905
)


def sentences(text: str) -> list[str]:
    """Split prose into sentences, keeping abbreviations such as 'e.g.' inside their sentence."""
    protected = text
    for abbreviation in _ABBREVIATIONS:
        protected = protected.replace(abbreviation, abbreviation.replace(".", "\x00"))
    parts = _SENTENCE_END.split(" ".join(protected.split()))
    return [part.replace("\x00", ".").strip() for part in parts if part.strip()]


_DANGLING_OPENERS = re.compile(
    r"^(this|these|that|those|it|they|such|he|she|but|and|or|so)\b", re.I
)
_UNSPEAKABLE = re.compile(r"https?://|www\.|[<>{}\[\]|]")
_QUOTABLE_WORDS = range(8, 46)


def quotable(sentence: str) -> bool:
    """Whether a sentence can stand alone as a spoken, cited fact: a whole statement of
    speakable length that does not lean on the sentence before it."""
    return (
        word_count(sentence) in _QUOTABLE_WORDS
        and sentence.endswith((".", "!"))
        and not _DANGLING_OPENERS.match(sentence)
        and not _UNSPEAKABLE.search(sentence)
    )


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def word_count(text: str) -> int:
    return len(text.split())


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light suffix stripper: enough to match 'cooling' with 'cools', 'cities' with 'city' and
    'trees' with 'tree'. A final 'e' is dropped last, so 'shade', 'shades' and 'shaded' agree."""
    word = word.replace("\u2019", "'").removesuffix("'s")
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith(("sses", "shes", "ches", "xes", "zes")) and len(word) > 4:
        word = word[:-2]
    elif word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


def terms(text: str) -> list[str]:
    """Content words of a text, stemmed, without stopwords: what similarity is computed on."""
    return [stem(word) for word in words(text) if word not in STOPWORDS and len(word) > 2]


def keywords(texts: Iterable[str], limit: int) -> list[str]:
    """The most frequent content terms across texts, most frequent first, ties alphabetical."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(terms(text))
    return [term for term, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))][
        :limit
    ]


def overlap(query: Iterable[str], text_terms: Iterable[str]) -> float:
    """Share of the query's distinct terms that the text contains (0..1)."""
    wanted = set(query)
    if not wanted:
        return 0.0
    return len(wanted & set(text_terms)) / len(wanted)


def estimate_tokens(text: str) -> int:
    """A conservative token estimate (about four characters a token, rounded up)."""
    return math.ceil(len(text) / 4) if text else 0


_INFLECTION = r"(?:e|es|s|ed|d|ing|er|ers|['\u2019]s)?"


def phrase_pattern(phrase: str) -> re.Pattern[str]:
    """Match a phrase case-insensitively, each word in any simple inflection, with hyphens and
    spaces interchangeable and straight or curly apostrophes alike.

    'game changer' also matches 'Game-changers'; 'revolutionize' matches 'revolutionizing';
    'silver bullet' does not match 'silver bulletin'.
    """
    parts = []
    for token in re.findall(r"[a-z0-9'\u2019]+", phrase.lower()):
        base = stem(token.strip("'\u2019"))
        escaped = re.escape(base).replace("'", "['\u2019]")
        parts.append(escaped + _INFLECTION)
    return re.compile(r"\b" + r"[\s-]+".join(parts) + r"\b", re.IGNORECASE)

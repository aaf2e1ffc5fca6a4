"""Show notes in Markdown and HTML: summary, timed chapters, sources with their citation counts,
the offline notice, and escaping."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from castline.audio.timeline import Chapter, TimedTurn, Timeline
from castline.domain import (
    Episode,
    KnowledgeBase,
    Note,
    Outline,
    Script,
    Section,
    Segment,
    Source,
    Theme,
    Turn,
)
from castline.publish.notes import (
    chapter_times,
    cited_sources,
    clock,
    show_notes_html,
    show_notes_markdown,
)
from castline.stages.publish import OFFLINE_NOTICE, script_markdown


def source(source_id: str, title: str, path: str) -> Source:
    return Source(
        id=source_id,
        title=title,
        path=path,
        kind="markdown",
        sha256="0" * 64,
        sections=[Section(heading=title, text=f"Text of {title}.")],
    )


SOURCES = [
    source("cities-and-heat", "Cities and Heat", "sources/cities-and-heat.md"),
    source("health-and-equity", "Health & Equity", "sources/health-and-equity.html"),
    source("cooling-strategies", "Cooling Strategies", "sources/cooling-strategies.pdf"),
]
NOTES = [
    Note(id="N1", claim="Asphalt stores heat.", source_id="cities-and-heat", quote="q", question=0),
    Note(id="N2", claim="Nights stay warm.", source_id="cities-and-heat", quote="q", question=0),
    Note(
        id="N3", claim="Heat harms the old.", source_id="health-and-equity", quote="q", question=1
    ),
]
SEGMENTS = [
    Segment(id="intro", kind="intro", title="Welcome", goal="Open", target_words=30),
    Segment(id="s1", kind="body", title="Why cities run hot", goal="Explain", target_words=120),
    Segment(id="s2", kind="body", title="Who pays", goal="Equity", target_words=120),
    Segment(id="outro", kind="outro", title="Goodbye", goal="Close", target_words=30),
]
TURNS = [
    Turn(speaker="Maya", text="Welcome to Heat Check.", segment="intro"),
    Turn(speaker="Theo", text="Asphalt stores heat.", segment="s1", citations=["N1", "N2"]),
    Turn(speaker="Maya", text="Nights stay warm.", segment="s1", citations=["N2", "GONE"]),
    Turn(speaker="Theo", text="Heat harms the old.", segment="s2", citations=["N3"]),
    Turn(speaker="Maya", text="Thanks for listening.", segment="outro"),
]


def episode(
    *, title: str = "Why cities run hot", offline: bool = False, accepted: bool = True
) -> Episode:
    return Episode(
        run_id="run-1",
        show_title="Heat Check",
        topic="urban heat",
        offline=offline,
        outline=Outline(
            title=title,
            summary="Why cities trap heat, who suffers most, and what cools them.",
            segments=SEGMENTS,
        ),
        script=Script(title=title, turns=TURNS),
        knowledge_base=KnowledgeBase(
            topic="urban heat",
            themes=[Theme(title="Heat", question="Why?", note_ids=["N1", "N2", "N3"])],
            notes=NOTES,
        ),
        sources=SOURCES,
        verdicts=[],
        accepted=accepted,
    )


def timeline(scale: float = 1.0) -> Timeline:
    """Turns and chapters of the script; `scale` stretches it, to reach past an hour."""
    bounds = [0.0, 4.2, 95.5, 330.0, 1210.75, 1265.0]
    times = [b * scale for b in bounds]
    turns = [
        TimedTurn(index=i, speaker=t.speaker, segment=t.segment, text=t.text, start=a, end=b)
        for i, (t, a, b) in enumerate(zip(TURNS, times, times[1:], strict=False))
    ]
    spans = {"intro": (0, 1), "s1": (1, 3), "s2": (3, 4), "outro": (4, 5)}
    chapters = [
        Chapter(segment=s.id, title=s.title, start=times[spans[s.id][0]], end=times[spans[s.id][1]])
        for s in SEGMENTS
    ]
    return Timeline(turns=turns, chapters=chapters, duration=times[-1])


# --- pieces --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "hours", "expected"),
    [
        (0.0, False, "00:00"),
        (4.2, False, "00:04"),
        (65.9, False, "01:05"),
        (3599.99, False, "59:59"),
        (0.0, True, "0:00:00"),
        (90.0, True, "0:01:30"),
        (3661.5, True, "1:01:01"),
        (36000.0, True, "10:00:00"),
    ],
)
def test_clock(seconds: float, hours: bool, expected: str) -> None:
    assert clock(seconds, hours=hours) == expected


def test_chapter_times_show_hours_only_for_an_hour_long_episode() -> None:
    assert chapter_times(timeline()) == [
        ("00:00", "Welcome"),
        ("00:04", "Why cities run hot"),
        ("05:30", "Who pays"),
        ("20:10", "Goodbye"),
    ]
    assert chapter_times(timeline(scale=3.0)) == [
        ("0:00:00", "Welcome"),
        ("0:00:12", "Why cities run hot"),
        ("0:16:30", "Who pays"),
        ("1:00:32", "Goodbye"),
    ]


def test_sources_are_numbered_as_in_the_script_and_counted_per_citation() -> None:
    cited = cited_sources(episode())
    assert [(c.number, c.source.id, c.citations) for c in cited] == [
        (1, "cities-and-heat", 3),  # N1 and N2 in one turn, N2 again in the next
        (2, "health-and-equity", 1),
    ]
    assert cited[0].label == "Cities and Heat (cities-and-heat.md), cited 3 times"
    assert cited[1].label == "Health & Equity (health-and-equity.html), cited 1 time"
    script = script_markdown(episode())
    assert "1. Cities and Heat (cities-and-heat.md)" in script
    assert "2. Health & Equity (health-and-equity.html)" in script


# --- Markdown ------------------------------------------------------------------------------------


def test_markdown_show_notes() -> None:
    notes = show_notes_markdown(episode(), timeline())
    assert notes == (
        "# Why cities run hot\n"
        "\n"
        "*Heat Check*\n"
        "\n"
        "Why cities trap heat, who suffers most, and what cools them.\n"
        "\n"
        "## Chapters\n"
        "\n"
        "- 00:00 Welcome\n"
        "- 00:04 Why cities run hot\n"
        "- 05:30 Who pays\n"
        "- 20:10 Goodbye\n"
        "\n"
        "## Sources\n"
        "\n"
        "1. Cities and Heat (cities-and-heat.md), cited 3 times\n"
        "2. Health & Equity (health-and-equity.html), cited 1 time\n"
    )
    assert "Cooling Strategies" not in notes  # never cited


def test_a_numbered_episode_is_headed_with_its_number() -> None:
    numbered = episode().model_copy(update={"number": 3})

    markdown = show_notes_markdown(numbered, timeline())
    html = show_notes_html(numbered, timeline())

    assert markdown.startswith("# Episode 3: Why cities run hot\n\n*Heat Check*\n")
    assert ("h1", "Episode 3: Why cities run hot") in check_html(html).texts
    assert script_markdown(numbered).startswith("# Episode 3: Why cities run hot\n")


def test_markdown_show_notes_carry_the_offline_notice_and_hours() -> None:
    notes = show_notes_markdown(episode(offline=True), timeline(scale=3.0))
    assert f"> {OFFLINE_NOTICE}" in notes
    assert "- 1:00:32 Goodbye" in notes and "- 0:00:12 Why cities run hot" in notes
    assert OFFLINE_NOTICE not in show_notes_markdown(episode(), timeline())


def test_markdown_show_notes_without_chapters_or_sources() -> None:
    bare = episode().model_copy(
        update={"script": Script(title="Why cities run hot", turns=TURNS[:1])}
    )
    notes = show_notes_markdown(bare, Timeline(turns=[], chapters=[], duration=0.0))
    assert "## Chapters" not in notes and "## Sources" not in notes
    assert notes.endswith("what cools them.\n")


# --- HTML ----------------------------------------------------------------------------------------


class _Checker(HTMLParser):
    """Collects the text of each element and fails on unbalanced tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.texts: list[tuple[str, str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack.append(tag)
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack.pop() == tag, f"unbalanced </{tag}>"

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.texts.append((self.stack[-1] if self.stack else "", data))


def check_html(fragment: str) -> _Checker:
    checker = _Checker()
    checker.feed(fragment)
    checker.close()
    assert checker.stack == []
    return checker


def test_html_show_notes_are_a_balanced_fragment_with_headings_and_lists() -> None:
    html = show_notes_html(episode(), timeline())
    checker = check_html(html)
    assert "<html" not in html and "<body" not in html
    assert {"h1", "h2", "ul", "ol", "li", "p"} <= set(checker.tags)
    assert ("h1", "Why cities run hot") in checker.texts
    assert ("h2", "Chapters") in checker.texts and ("h2", "Sources") in checker.texts
    items = [text for tag, text in checker.texts if tag == "li"]
    assert items == [
        "00:00 Welcome",
        "00:04 Why cities run hot",
        "05:30 Who pays",
        "20:10 Goodbye",
        "Cities and Heat (cities-and-heat.md), cited 3 times",
        "Health & Equity (health-and-equity.html), cited 1 time",
    ]
    assert '<li value="2">Health &amp; Equity (health-and-equity.html), cited 1 time</li>' in html
    assert "blockquote" not in html


def test_html_escapes_a_title_with_markup_characters() -> None:
    title = 'Heat <em>& shade</em>: a "cool" city?'
    html = show_notes_html(episode(title=title), timeline())
    assert "<h1>Heat &lt;em&gt;&amp; shade&lt;/em&gt;: a &quot;cool&quot; city?</h1>" in html
    assert "<em>& shade" not in html
    checker = check_html(html)
    assert ("h1", title) in checker.texts
    assert checker.tags.count("em") == 1  # the show title's, not the episode title's


def test_html_carries_the_offline_and_rejected_notices() -> None:
    html = show_notes_html(episode(offline=True, accepted=False), timeline())
    checker = check_html(html)
    assert ("p", OFFLINE_NOTICE) in checker.texts
    assert "<strong>Rejected draft</strong>" in html
    assert "Rejected draft" in show_notes_markdown(episode(accepted=False), timeline())

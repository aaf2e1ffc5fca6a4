"""Show notes of a mastered episode, in Markdown and in HTML: the summary, the chapters with their
times, and the sources cited, numbered as in the published script, with how often each is cited.

The HTML is a fragment (headings, paragraphs and lists, no ``<html>`` wrapper) for a web page or a
feed item's description; every piece of text in it is escaped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from castline.audio.timeline import Timeline
from castline.domain import Episode, Source
from castline.stages.publish import OFFLINE_NOTICE, _header, _source_numbers

REJECTED_NOTICE = "the script still fails blocking checks; see episode.json."


@dataclass(frozen=True)
class CitedSource:
    number: int
    source: Source
    citations: int

    @property
    def label(self) -> str:
        times = "time" if self.citations == 1 else "times"
        return f"{self.source.title} ({self.source.reference}), cited {self.citations} {times}"


def cited_sources(episode: Episode) -> list[CitedSource]:
    """The sources the script cites, numbered as in the published script, each with the number of
    citations (a note cited by a turn counts once per turn) that lead to it."""
    numbers = _source_numbers(episode)
    notes = {note.id: note for note in episode.knowledge_base.notes}
    counts = dict.fromkeys(numbers, 0)
    for turn in episode.script.turns:
        for citation in turn.citations:
            if citation in notes:
                counts[notes[citation].source_id] += 1
    sources = {source.id: source for source in episode.sources}
    return [
        CitedSource(number, sources[source_id], counts[source_id])
        for source_id, number in sorted(numbers.items(), key=lambda item: item[1])
    ]


def clock(seconds: float, *, hours: bool = False) -> str:
    """A chapter time as listeners read it: ``MM:SS``, or ``H:MM:SS`` with `hours`. Seconds are
    cut, not rounded, so a listener seeking to the time lands at or before the chapter."""
    whole = max(0, math.floor(seconds))
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if hours else f"{h * 60 + m:02d}:{s:02d}"


def chapter_times(timeline: Timeline) -> list[tuple[str, str]]:
    """(time, title) of each chapter in start order; every time shows hours if the episode lasts
    an hour or more, so the list lines up."""
    ordered = sorted(timeline.chapters, key=lambda chapter: chapter.start)
    hours = max([timeline.duration, *(chapter.start for chapter in ordered)]) >= 3600
    return [(clock(chapter.start, hours=hours), chapter.title) for chapter in ordered]


def show_notes_markdown(episode: Episode, timeline: Timeline) -> str:
    lines = _header(episode)
    lines += [episode.outline.summary, ""]
    chapters = chapter_times(timeline)
    if chapters:
        lines += ["## Chapters", ""]
        lines += [f"- {time} {title}" for time, title in chapters]
        lines.append("")
    cited = cited_sources(episode)
    if cited:
        lines += ["## Sources", ""]
        lines += [f"{entry.number}. {entry.label}" for entry in cited]
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def show_notes_html(episode: Episode, timeline: Timeline) -> str:
    lines = [
        f"<h1>{escape(episode.heading)}</h1>",
        f"<p><em>{escape(episode.show_title)}</em></p>",
    ]
    if episode.offline:
        lines.append(f"<blockquote><p>{escape(OFFLINE_NOTICE)}</p></blockquote>")
    if not episode.accepted:
        lines.append(
            "<blockquote><p><strong>Rejected draft</strong>: "
            f"{escape(REJECTED_NOTICE)}</p></blockquote>"
        )
    paragraphs = [" ".join(p.split()) for p in episode.outline.summary.split("\n\n")]
    lines += [f"<p>{escape(p)}</p>" for p in paragraphs if p]
    chapters = chapter_times(timeline)
    if chapters:
        lines += ["<h2>Chapters</h2>", "<ul>"]
        lines += [f"<li>{time} {escape(title)}</li>" for time, title in chapters]
        lines.append("</ul>")
    cited = cited_sources(episode)
    if cited:
        lines += ["<h2>Sources</h2>", "<ol>"]
        lines += [f'<li value="{entry.number}">{escape(entry.label)}</li>' for entry in cited]
        lines.append("</ol>")
    return "\n".join(lines) + "\n"

"""What of the sources an episode used: which sources and sections its notes were taken from,
which of those its script cites, and which it ignored, so a producer sees what was left out."""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field

from castline.domain import Episode, Source

# Ignored sections named in a report, per source; the rest are counted (a long report has
# thousands).
NAMED_IGNORED = 12


@dataclass(frozen=True)
class SectionUse:
    heading: str
    notes: int  # research notes quoted from it
    cited: int  # of them, cited by the script


@dataclass(frozen=True)
class SourceCoverage:
    source: Source
    sections: int
    used: list[SectionUse]  # sections with at least one note, in document order
    # headings of the sections with no note, with how many sections have each (the first few)
    ignored: list[tuple[str, int]] = field(default_factory=list)
    ignored_count: int = 0

    @property
    def cited(self) -> int:
        return sum(section.cited for section in self.used)


def coverage(episode: Episode) -> list[SourceCoverage]:
    """Each source's sections, with the notes quoted from each and how many the script cites."""
    cited_ids = {c for turn in episode.script.turns for c in turn.citations}
    report = []
    for source in episode.sources:
        joined, starts = _joined(source)
        notes = [0] * len(source.sections)
        cited = [0] * len(source.sections)
        for note in episode.knowledge_base.notes:
            if note.source_id != source.id:
                continue
            where = joined.find(" ".join(note.quote.split()))
            if where < 0:
                continue
            index = bisect_right(starts, where) - 1
            notes[index] += 1
            cited[index] += note.id in cited_ids
        used = [
            SectionUse(section.heading or source.title, notes[i], cited[i])
            for i, section in enumerate(source.sections)
            if notes[i]
        ]
        left = Counter(
            s.heading or source.title for i, s in enumerate(source.sections) if not notes[i]
        )
        named = list(left.items())[:NAMED_IGNORED]
        report.append(SourceCoverage(source, len(source.sections), used, named, left.total()))
    return report


def _joined(source: Source) -> tuple[str, list[int]]:
    """The source's text on one line per section, with where each section starts."""
    starts: list[int] = []
    parts: list[str] = []
    offset = 0
    for section in source.sections:
        text = " ".join(section.text.split())
        starts.append(offset)
        parts.append(text)
        offset += len(text) + 1
    return "\n".join(parts), starts


def coverage_markdown(episode: Episode) -> list[str]:
    """The report's section on what the episode used of its sources."""
    lines = ["## Sources used", ""]
    for item in coverage(episode):
        source = item.source
        if not item.used:
            lines += [f"- **{source.title}** ({source.reference}): **not used** (no note)", ""]
            continue
        lines.append(
            f"- **{source.title}** ({source.reference}): {len(item.used)} of {item.sections} "
            f"sections used, {item.cited} cited note(s)"
        )
        for section in item.used:
            lines.append(f"  - {section.heading}: {section.notes} note(s), {section.cited} cited")
        if item.ignored_count:
            named = "; ".join(f"{h} ({n:,} sections)" if n > 1 else h for h, n in item.ignored)
            more = item.ignored_count - sum(n for _, n in item.ignored)
            lines.append(
                f"  - ignored ({item.ignored_count:,} sections): {named}"
                + (f"; and {more:,} more" if more else "")
            )
        lines.append("")
    return lines

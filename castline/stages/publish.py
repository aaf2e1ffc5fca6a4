"""Publish: the script, a plain transcript, show notes with sources, and the episode record."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from castline.coverage import coverage_markdown
from castline.domain import Episode
from castline.fileio import write_atomic
from castline.insights.html import episode_report_html
from castline.store import Store

if TYPE_CHECKING:
    from castline.config import Show
    from castline.publish.s3 import PublishReport

OFFLINE_NOTICE = (
    "Produced offline by castline: the research and script were built extractively from the "
    "sources, without a language model; costs shown are shadow costs of the routed models."
)


@dataclass(frozen=True)
class Written:
    name: str
    path: Path
    sha256: str
    size: int


def publish(episode: Episode, directory: Path, *, store: Store | None = None) -> list[Written]:
    """Write the episode's documents; report.html reads the run's calls and the show's history
    from `store` (the runtime's when None)."""
    documents = {
        "script.md": script_markdown(episode),
        "transcript.txt": transcript(episode),
        "show-notes.md": show_notes(episode),
        "episode.json": episode.model_dump_json(indent=2),
        "quality-report.json": episode.quality.model_dump_json(indent=2),
        "report.md": report_markdown(episode),
        "report.html": episode_report_html(episode, store),
    }
    written = []
    for name, text in documents.items():
        path = directory / name
        digest = write_atomic(path, text)
        written.append(Written(name, path, digest, len(text.encode("utf-8"))))
    return written


def upload(show: Show, show_dir: Path, directory: Path) -> PublishReport:
    """Mirror a run's published files, then the show's feed, to the show's S3 target: after
    the local files are written, as a step of its own, so a resumed run uploads what is missing."""
    from castline.publish import s3

    root = (show_dir / show.output_dir).resolve()
    files = s3.episode_files(root, directory)
    feed = s3.feed_file(show, show_dir)
    return s3.publish(show.publish, root, files, feed, base_url=show.feed.base_url)


def write_json(path: Path, data: dict[str, Any]) -> Written:
    text = json.dumps(data, indent=2)
    digest = write_atomic(path, text)
    return Written(path.name, path, digest, len(text.encode("utf-8")))


def _source_numbers(episode: Episode) -> dict[str, int]:
    cited = {
        episode.knowledge_base.note(c).source_id
        for turn in episode.script.turns
        for c in turn.citations
        if c in {n.id for n in episode.knowledge_base.notes}
    }
    ordered = [s.id for s in episode.sources if s.id in cited]
    return {source_id: number for number, source_id in enumerate(ordered, start=1)}


def _header(episode: Episode) -> list[str]:
    lines = [f"# {episode.heading}", "", f"*{episode.show_title}*", ""]
    if episode.offline:
        lines += [f"> {OFFLINE_NOTICE}", ""]
    if not episode.accepted:
        lines += [
            "> **Rejected draft**: the script still fails blocking checks; see episode.json.",
            "",
        ]
    return lines


def script_markdown(episode: Episode) -> str:
    numbers = _source_numbers(episode)
    notes = {n.id: n for n in episode.knowledge_base.notes}
    lines = _header(episode)
    for segment in episode.outline.segments:
        lines += [f"## {segment.title}", ""]
        for turn in episode.script.segment_turns(segment.id):
            refs = sorted({numbers[notes[c].source_id] for c in turn.citations if c in notes})
            marks = "".join(f"[{n}]" for n in refs)
            lines += [f"**{turn.speaker}:** {turn.text}{' ' + marks if marks else ''}", ""]
    lines += ["## Sources", ""] + [
        f"{number}. {_title(episode, source_id)}" for source_id, number in numbers.items()
    ]
    return "\n".join(lines) + "\n"


def transcript(episode: Episode) -> str:
    lines = []
    if episode.offline:
        lines += [f"[{OFFLINE_NOTICE}]", ""]
    lines += [f"{turn.speaker.upper()}: {turn.text}" for turn in episode.script.turns]
    return "\n".join(lines) + "\n"


def show_notes(episode: Episode) -> str:
    numbers = _source_numbers(episode)
    lines = _header(episode)
    lines += [episode.outline.summary, "", "## In this episode", ""]
    lines += [
        f"- **{segment.title}**: {segment.goal}"
        for segment in episode.outline.segments
        if segment.kind == "body"
    ]
    lines += ["", "## Sources", ""]
    for source_id, number in numbers.items():
        used = sum(
            1
            for turn in episode.script.turns
            for c in turn.citations
            if c in {n.id for n in episode.knowledge_base.notes}
            and episode.knowledge_base.note(c).source_id == source_id
        )
        source = next(s for s in episode.sources if s.id == source_id)
        lines.append(f"{number}. {source.title} ({source.reference}), cited {used} times")
    return "\n".join(lines) + "\n"


def _title(episode: Episode, source_id: str) -> str:
    source = next(s for s in episode.sources if s.id == source_id)
    return f"{source.title} ({source.reference})"


def report_markdown(episode: Episode) -> str:
    """The episode report a producer reads: how the script was judged, round by round, and what
    the budget gave up."""
    quality = episode.quality
    lines = [
        f"# Report: {episode.script.title}",
        "",
        f"Decision: **{quality.decision or ('accepted' if episode.accepted else 'rejected')}**"
        + (f" (a reviewer {quality.human} it)" if quality.human else ""),
        "",
        "## Quality",
        "",
    ]
    for record in quality.rounds:
        lines += [f"### Round {record.round}", ""]
        lines += [
            "| gate | criterion | evaluator | score | passed | reason |",
            "|---|---|---|---|---|---|",
        ]
        for verdict in record.verdicts:
            reason = verdict.reason.replace("|", "/")[:160]
            mark = "yes" if verdict.passed else "**no**"
            lines.append(
                f"| {verdict.gate} | {verdict.criterion} | {verdict.evaluator} | "
                f"{verdict.score:.2f} | {mark} | {reason} |"
            )
        for consensus in record.consensus:
            scores = ", ".join(f"{k} {v:.2f}" for k, v in consensus.scores.items())
            settled = f", settled by the {consensus.resolved_by}" if consensus.resolved_by else ""
            lines.append(
                f"- {consensus.gate} / {consensus.criterion}: {scores}: {consensus.decision}"
                f"{settled}"
            )
        if record.revised:
            changes = ", ".join(
                f"{s} ({record.words_before.get(s, 0)} → {record.words_after.get(s, 0)} words)"
                for s in record.revised
            )
            lines.append(f"- revised: {changes}")
        lines.append("")
    lines += coverage_markdown(episode)
    if quality.agreement:
        lines += ["## Evaluator agreement", ""]
        lines += [
            f"- {a.gate}: agreed on {a.agreement_rate:.0%} of {a.criteria} criteria, "
            f"mean difference {a.mean_absolute_difference:.2f}"
            for a in quality.agreement
        ]
        lines.append("")
    if episode.audio is not None:
        audio = episode.audio
        lines += [
            "## Audio",
            "",
            f"- {audio.file}: {audio.duration_s / 60:.1f} min, {audio.loudness_lufs:.1f} LUFS "
            f"integrated, true peak {audio.true_peak_db:.1f} dBTP (measured on the encoded file)",
            f"- {audio.clips} clips, {audio.synthesized} rendered for this run",
        ]
        if audio.length_note:
            lines.append(f"- length: {audio.length_note}")
        lines.append("")
    given_up = [*episode.budget.skipped]
    if given_up or episode.budget.halted_at:
        lines += ["## Budget", "", f"Mode reached: {episode.budget.mode}.", ""]
        lines += [f"- {item}" for item in given_up]
        if episode.budget.halted_at:
            lines.append(f"- halted by budget in {episode.budget.halted_at}")
        lines.append("")
    if episode.offline:
        lines += [f"> {OFFLINE_NOTICE}", ""]
    return "\n".join(lines)

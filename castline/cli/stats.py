"""`castline stats SHOW`: a show's episodes across its history, with trends and what to change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

# The package itself: `app.console` is looked up when a command runs, so tests can swap it.
from castline import cli as app
from castline.cli import cli, guarded

if TYPE_CHECKING:
    from castline.insights import ShowHistory


@cli.command("stats")
@click.argument("show")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
@click.option(
    "--html", "html_file", type=click.Path(dir_okay=False, path_type=Path),
    help="Also write them as a self-contained HTML page with charts.",
)  # fmt: skip
@click.option(
    "--window", default=5, show_default=True, type=click.IntRange(min=1),
    help="Episodes in each trend window (the last N against the N before).",
)  # fmt: skip
def stats(show: str, as_json: bool, html_file: Path | None, window: int) -> None:
    """Show a show's episodes: cost, cost per minute of audio, quality, recurring gate
    failures, revision rounds, trends, and recommendations learnt from its history.

    SHOW is the show bible's path or the show's title.

    \b
    Examples:
      castline stats my-show/show.yaml
      castline stats "Heat Check" --json
      castline stats my-show/show.yaml --html stats.html
    """
    from castline.config import load_show
    from castline.engine import runtime
    from castline.fileio import write_atomic
    from castline.insights import show_history

    title = guarded(lambda: load_show(Path(show)).show.title) if Path(show).is_file() else show
    history = guarded(lambda: show_history(runtime.store(), title, window=window))
    if html_file is not None:
        from castline.insights.html import stats_html

        write_atomic(html_file, stats_html(history))
    if as_json:
        click.echo(json.dumps(history.as_json(), indent=2, default=str))
        return
    _print(history)
    if html_file is not None:
        app.console.print(f"written: {html_file}", highlight=False)


def _print(history: ShowHistory) -> None:
    table = Table(title=f"{history.show}: {len(history.episodes)} published episodes")
    for column in ("#", "episode", "cost", "per min", "quality", "revisions", "failed first"):
        if column == "episode":
            table.add_column(column, max_width=32, overflow="ellipsis", no_wrap=True)
        else:
            table.add_column(column, justify="right" if column in {"cost", "per min"} else "left")
    for episode in history.episodes:
        per_minute = episode.cost_per_minute
        table.add_row(
            str(episode.number) if episode.number is not None else episode.run_id[:8],
            episode.title,
            f"${episode.cost:,.4f}" + (" (shadow)" if episode.shadow else ""),
            f"${per_minute:,.4f}" if per_minute is not None else "",
            f"{episode.quality:.3f}" if episode.quality is not None else "",
            str(episode.revision_rounds),
            ", ".join(f"{f.gate}/{f.criterion}" for f in episode.first_failures),
        )
    app.console.print(table)
    if history.trends:
        trends = Table(title="trends (recent vs before)")
        for column in ("figure", "recent", "before", "change"):
            trends.add_column(column, justify="left" if column == "figure" else "right")
        for trend in history.trends:
            trends.add_row(
                f"{trend.metric} (last {trend.episodes})",
                f"{trend.recent:.4f}",
                f"{trend.previous:.4f}",
                f"{trend.change:+.4f}",
            )
        app.console.print(trends)
    for failure in history.recurring:
        app.console.print(
            f"recurring: {failure.gate}/{failure.criterion} failed the first review in "
            f"{failure.failed} of the last {failure.of} episodes",
            highlight=False,
        )
    if not history.recommendations:
        app.console.print("recommendations: none; nothing measured would save money or time")
    for rec in history.recommendations:
        saving = f" [green](saves ${rec.saving_usd:,.4f})[/]" if rec.saving_usd else ""
        app.console.print(f"[bold]{rec.kind}[/]: {rec.message}{saving}", highlight=False)

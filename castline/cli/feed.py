"""`castline feed`: write the show's feed again from the store, or check the written one."""

from __future__ import annotations

import sys
from pathlib import Path

import click

# The package itself: `app.console` is looked up when a command runs, so tests can swap it.
from castline import cli as app
from castline.cli import cli, guarded


@cli.command()
@click.argument("show", type=click.Path(path_type=Path))
@click.option(
    "--check",
    "check_only",
    is_flag=True,
    help="Check the written feed against what Apple Podcasts, Spotify and the Podcast Index "
    "accept, and list what is missing or wrong; the feed is not rewritten. Exit 0 when it "
    "passes, 1 when a rule fails, 2 on bad input.",
)
def feed(show: Path, check_only: bool) -> None:
    """Rebuild the show's RSS feed from the store: every completed, voiced episode.

    A show whose `feed.public` is not true gets a local preview, marked so that no podcast
    directory lists it; `--check` says what a public feed still lacks.

    \b
    Examples:
      castline feed my-show/show.yaml
      castline feed my-show/show.yaml --check
    """
    from castline.config import load_show
    from castline.publish.feed import preview_notice

    if check_only:
        _check(show)
        return
    from castline.publish.episode import rebuild_feed

    path, count = guarded(lambda: rebuild_feed(show))
    app.console.print(f"{path}: {count} episode(s)")
    notice = preview_notice(guarded(lambda: load_show(show)))
    if notice:
        app.err_console.print(f"[yellow]warning:[/] {notice}", highlight=False)


def _check(show_path: Path) -> None:
    from rich.table import Table

    from castline.config import load_show
    from castline.publish.feedcheck import check_feed

    show = guarded(lambda: load_show(show_path))
    result = guarded(lambda: check_feed(show, show_path.parent))
    if result.findings:
        table = Table(title=f"feed check: {result.path}", title_justify="left")
        for column in ("rule", "where", "problem"):
            table.add_column(column, overflow="fold")
        for finding in result.findings:
            style = "red" if finding.severity == "error" else "yellow"
            table.add_row(f"[{style}]{finding.rule}[/]", finding.where, finding.message)
        app.console.print(table)
    errors = sum(1 for finding in result.findings if finding.severity == "error")
    if result.passed:
        app.console.print(
            f"[green]passes[/]: {result.path} ({result.items} episode(s)) meets the rules of "
            "Apple Podcasts, Spotify and the Podcast Index that castline checks",
            highlight=False,
        )
        return
    app.console.print(
        f"[red]fails[/]: {errors} problem(s) in {result.path} ({result.items} episode(s))",
        highlight=False,
    )
    sys.exit(1)

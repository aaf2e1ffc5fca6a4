"""Commands that make episodes: scaffold a show, forecast, produce, resume, voice again, and
check which provider keys are set (the feed has its own module, `castline.cli.feed`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

# The package itself: `app.console` is looked up when a command runs, so tests can swap it.
from castline import cli as app
from castline import scaffold
from castline.cli import cli, guarded, options
from castline.cli.render import print_cost, progress, render_outcome

if TYPE_CHECKING:
    from castline import Outcome


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Scaffold a show: a commented show.yaml and an example source.

    \b
    Examples:
      castline init my-show
    """
    created = guarded(lambda: scaffold.create(directory))
    for path in created:
        app.console.print(f"created {path}")
    app.console.print(
        f"\nNext: edit {directory / 'show.yaml'}, then\n"
        f'  castline produce {directory / "show.yaml"} --topic "..." '
        f"--source {directory / 'sources' / 'example.md'}"
    )


@cli.command()
@click.argument("show", type=click.Path(path_type=Path))
@click.option("--topic", "-t", required=True, help="What the episode is about.")
@options.sources()
@options.allow_private_urls
@click.option(
    "--provider",
    help="Answer every role with this provider (e.g. 'offline'), whatever the routing says.",
)
@click.option(
    "--number",
    "-n",
    type=int,
    help="The episode number (1 or more). Default: one more than the show's highest so far.",
)
@click.option(
    "--queue", "queued", is_flag=True, help="Put it on the queue for `castline worker` instead."
)
def produce(
    show: Path,
    topic: str,
    sources: Sequence[Path | str],
    allow_private_urls: bool,
    provider: str | None,
    number: int | None,
    queued: bool,
) -> None:
    """Produce an episode: research, plan, write, review, polish, publish.

    \b
    Examples:
      castline produce show.yaml --topic "Cool roofs" --source notes.md --source paper.pdf
      castline produce show.yaml -t "Cool roofs" -s notes.md --provider offline
      castline produce show.yaml -t "Cool roofs" -s notes.md --number 12
      castline produce show.yaml -t "Cool roofs" -s notes.md --queue   # for a worker
    """
    from castline import create_run, describe

    if queued:
        from castline.cli.queue import enqueue

        click.get_current_context().invoke(
            enqueue,
            show=show,
            topic=topic,
            sources=sources,
            allow_private_urls=allow_private_urls,
            provider=provider,
            number=number,
        )
        return
    run_id = guarded(
        lambda: create_run(
            show,
            topic,
            list(sources),
            provider=provider,
            number=number,
            allow_private_urls=allow_private_urls,
        )
    )
    app.console.print(f"run [bold]{run_id}[/]")
    print_routing(run_id)

    def start() -> Outcome:
        from castline.engine import episodes, runtime, workflows

        runtime.launch()
        return episodes.follow(run_id, workflows.start(run_id), on_event)

    with progress() as on_event:
        outcome = start()
    print_cost(describe(outcome.run_id).cost, brief=True)
    render_outcome(outcome)


def print_routing(run_id: str) -> None:
    """The routing plan preflight recorded (role, models, prices), and its warnings (off-topic
    sources among them), before the first paid call."""
    from castline.engine import runtime

    for event in runtime.store().events(run_id):
        if event.kind == "sources-off-topic":
            app.console.print(f"[yellow]warning:[/] {event.message}", highlight=False)
        if event.kind != "routing":
            continue
        table = Table(title=f"routing: {event.message.splitlines()[0]}", title_justify="left")
        for column in ("role", "models, in the order tried", "$/M in", "$/M out"):
            table.add_column(column, justify="right" if column.startswith("$") else "left")
        for row in event.data.get("rows", []):
            table.add_row(row["role"], ", ".join(row["routes"]), row["input"], row["output"])
        app.console.print(table)
        for warning in event.data.get("warnings", []):
            app.console.print(f"[yellow]warning:[/] {warning}", highlight=False)


@cli.command()
@click.argument("show", type=click.Path(path_type=Path))
@click.option("--topic", "-t", required=True, help="What the episode is about.")
@options.sources()
@options.allow_private_urls
@click.option("--json", "as_json", is_flag=True, help="Print the forecast as JSON.")
def estimate(
    show: Path, topic: str, sources: Sequence[Path | str], allow_private_urls: bool, as_json: bool
) -> None:
    """Forecast an episode's cost per stage and model (low / expected / high), spending nothing.

    The pipeline runs once offline in a scratch store to see the calls the episode will make;
    expected is their usage at the routed models' prices, low assumes ideal prompt caching and
    batching, high is every call at its worst case plus the revision rounds left.

    \b
    Examples:
      castline estimate show.yaml --topic "Cool roofs" --source notes.md --source paper.pdf
    """
    from castline import estimate as forecast_episode

    forecast = guarded(
        lambda: forecast_episode(show, topic, list(sources), allow_private_urls=allow_private_urls)
    )
    if as_json:
        rows = [
            {**asdict(row), "low": str(row.low), "expected": str(row.expected),
             "high": str(row.high)}
            for row in forecast.rows
        ]  # fmt: skip
        totals = {"low": str(forecast.low), "expected": str(forecast.expected)}
        totals["high"] = str(forecast.high)
        click.echo(json.dumps({"budget": str(forecast.budget), "rows": rows, "total": totals}))
        return
    table = Table(title=f"forecast: {forecast.show_title}: {forecast.topic}")
    table.add_column("stage")
    table.add_column("model")
    for column in ("calls", "low", "expected", "high"):
        table.add_column(column, justify="right")
    for row in forecast.rows:
        table.add_row(
            row.stage,
            row.model,
            str(row.calls),
            f"${row.low:,.4f}",
            f"${row.expected:,.4f}",
            f"${row.high:,.4f}",
        )
    table.add_row(
        "total",
        "",
        "",
        f"${forecast.low:,.4f}",
        f"${forecast.expected:,.4f}",
        f"${forecast.high:,.4f}",
        style="bold",
    )
    app.console.print(table)
    share = forecast.expected / forecast.budget
    app.console.print(
        f"budget ${forecast.budget:,.2f}: expected {share:.1%} of it, high "
        f"{forecast.high / forecast.budget:.1%} (~{forecast.words:,} words offline)",
        highlight=False,
    )
    if forecast.high > forecast.budget:
        app.console.print(
            "[yellow]the worst case exceeds the budget: the run would degrade or halt as the "
            "budget policy says rather than overspend[/]"
        )


@cli.command()
@click.argument("run_id")
@click.option(
    "--script",
    "script_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An edited script in `castline review edit`'s text format.",
)
def voice(run_id: str, script_file: Path | None) -> None:
    """Voice a finished episode again: after editing its script or changing a voice.

    Only the turns whose text, voice or settings changed are rendered again; research, writing
    and review are not redone or paid for.

    \b
    Examples:
      castline voice 3f2a9c1b7d4e
      castline voice 3f2a9c1b7d4e --script edited.txt
    """
    from castline import revoice
    from castline.quality.editing import parse_script

    script = None
    if script_file is not None:
        try:
            text = script_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(
                f"{script_file}: cannot be read as UTF-8 text ({exc})"
            ) from None
        script = guarded(lambda: parse_script(text, _title_of(run_id)))
    with progress() as on_event:
        outcome = revoice(run_id, script=script, on_event=on_event)
    render_outcome(outcome)


def _title_of(run_id: str) -> str:
    from castline import describe

    record = describe(run_id).record
    return record.episode_title or record.topic


@cli.command()
@click.argument("run_id")
@click.option("--force", is_flag=True, help="Resume even if the recorded process looks alive.")
def resume(run_id: str, force: bool) -> None:
    """Finish a run that crashed, was interrupted or failed, without repeating finished steps.

    \b
    Examples:
      castline resume 3f2a9c1b7d4e
    """
    from castline import resume as resume_run

    with progress() as on_event:
        outcome = resume_run(run_id, on_event=on_event, force=force)
    render_outcome(outcome)


@cli.command()
@click.option(
    "--show", "show_path", type=click.Path(path_type=Path), help="Also list the show's providers."
)
def keys(show_path: Path | None) -> None:
    """Show which providers have an API key in the environment (keys are never printed).

    castline reads keys from environment variables only and never stores them; without any,
    every role runs offline.

    \b
    Examples:
      castline keys
      castline keys --show my-show/show.yaml
    """
    from castline import load_show
    from castline.audio.tts.registry import engine_keys
    from castline.llm.registry import key_status

    show = guarded(lambda: load_show(show_path)) if show_path else None
    table = Table(title="provider keys")
    for column in ("provider", "environment variable", "status"):
        table.add_column(column)
    for status in key_status(show, also=engine_keys()):
        if not status.variables:
            state = "no key needed"
        elif status.found_in:
            state = f"[green]set[/] in {status.found_in} {status.hint or ''}"
        else:
            state = "[yellow]not set[/]"
        table.add_row(status.provider, " or ".join(status.variables) or "-", state)
    app.console.print(table)

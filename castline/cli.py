"""castline's command line: parse, call the API, render. Nothing else lives here.

Exit codes: 0 ok, 1 the run failed (or was rejected), 2 usage or configuration error.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from castline import __version__, production, scaffold
from castline.budget.report import CostReport
from castline.errors import ConfigError, RunError
from castline.store import EventRecord

console = Console()
err_console = Console(stderr=True)
STAGES = ("research", "plan", "write", "review", "polish", "publish")

T = TypeVar("T")


def _guarded(action: Callable[[], T]) -> T:
    """Run an API call, turning castline's errors into messages and exit codes."""
    try:
        return action()
    except ConfigError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except RunError as exc:
        err_console.print(f"[bold red]run failed:[/] {exc}", highlight=False)
        sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="castline")
def cli() -> None:
    """castline: a budget-safe production line for podcast episodes.

    \b
    Quick start (offline, no API key needed):
      castline init my-show
      castline produce my-show/show.yaml --topic "Why cities run hot" \\
          --source my-show/sources/example.md
      castline runs

    State (run store, durable workflow database) lives in $CASTLINE_HOME, default ~/.castline.
    """


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Scaffold a show: a commented show.yaml and an example source.

    \b
    Examples:
      castline init my-show
    """
    created = _guarded(lambda: scaffold.create(directory))
    for path in created:
        console.print(f"created {path}")
    console.print(
        f"\nNext: edit {directory / 'show.yaml'}, then\n"
        f'  castline produce {directory / "show.yaml"} --topic "..." '
        f"--source {directory / 'sources' / 'example.md'}"
    )


@cli.command()
@click.argument("show", type=click.Path(path_type=Path))
@click.option("--topic", "-t", required=True, help="What the episode is about.")
@click.option(
    "--source",
    "-s",
    "sources",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A source document (txt, md, html, pdf). Repeat for several.",
)
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
def produce(
    show: Path, topic: str, sources: Sequence[Path], provider: str | None, number: int | None
) -> None:
    """Produce an episode: research, plan, write, review, polish, publish.

    \b
    Examples:
      castline produce show.yaml --topic "Cool roofs" --source notes.md --source paper.pdf
      castline produce show.yaml -t "Cool roofs" -s notes.md --provider offline
      castline produce show.yaml -t "Cool roofs" -s notes.md --number 12
    """
    run_id = _guarded(
        lambda: production.create_run(show, topic, list(sources), provider=provider, number=number)
    )
    console.print(f"run [bold]{run_id}[/]")

    def start() -> production.Outcome:
        from castline import workflow

        workflow.launch()
        return production.follow(run_id, workflow.start(run_id), on_event)

    with _progress() as on_event:
        outcome = _guarded(start)
    _print_cost(production.describe(outcome.run_id).cost, brief=True)
    _render_outcome(outcome)


@cli.command()
@click.argument("show", type=click.Path(path_type=Path))
@click.option("--topic", "-t", required=True, help="What the episode is about.")
@click.option(
    "--source", "-s", "sources", multiple=True, type=click.Path(path_type=Path),
    help="A source document (txt, md, html, pdf). Repeat for several.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the forecast as JSON.")
def estimate(show: Path, topic: str, sources: Sequence[Path], as_json: bool) -> None:
    """Forecast an episode's cost per stage and model (low / expected / high), spending nothing.

    The pipeline runs once offline in a scratch store to see the calls the episode will make;
    expected is their usage at the routed models' prices, low assumes ideal prompt caching and
    batching, high is every call at its worst case plus the revision rounds left.

    \b
    Examples:
      castline estimate show.yaml --topic "Cool roofs" --source notes.md --source paper.pdf
    """
    from castline.budget.estimate import estimate as forecast_episode

    forecast = _guarded(lambda: forecast_episode(show, topic, list(sources)))
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
    console.print(table)
    share = forecast.expected / forecast.budget
    console.print(
        f"budget ${forecast.budget:,.2f}: expected {share:.1%} of it, high "
        f"{forecast.high / forecast.budget:.1%} (~{forecast.words:,} words offline)",
        highlight=False,
    )
    if forecast.high > forecast.budget:
        console.print(
            "[yellow]the worst case exceeds the budget: the run would degrade or halt as the "
            "budget policy says rather than overspend[/]"
        )


@cli.command()
@click.argument("show", type=click.Path(path_type=Path))
def feed(show: Path) -> None:
    """Rebuild the show's RSS feed from the store: every completed, voiced episode.

    \b
    Examples:
      castline feed my-show/show.yaml
    """
    from castline.publish.episode import rebuild_feed

    path, count = _guarded(lambda: rebuild_feed(show))
    console.print(f"{path}: {count} episode(s)")


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
    from castline.quality.editing import parse_script

    script = None
    if script_file is not None:
        text = script_file.read_text(encoding="utf-8")
        script = _guarded(lambda: parse_script(text, _title_of(run_id)))
    with _progress() as on_event:
        outcome = _guarded(lambda: production.revoice(run_id, script=script, on_event=on_event))
    _render_outcome(outcome)


def _title_of(run_id: str) -> str:
    record = production.describe(run_id).record
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
    with _progress() as on_event:
        outcome = _guarded(lambda: production.resume(run_id, on_event=on_event, force=force))
    _render_outcome(outcome)


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
    from castline.audio.tts.registry import engine_keys
    from castline.config import load_show
    from castline.llm.registry import key_status

    show = _guarded(lambda: load_show(show_path)) if show_path else None
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
    console.print(table)


@cli.group(invoke_without_command=True)
@click.pass_context
def review(ctx: click.Context) -> None:
    """Episodes waiting for a person: the evaluators disagreed and the show asks a human.

    Listing also applies each show's timeout policy to reviews nobody answered in time.

    \b
    Examples:
      castline review
      castline review show 3f2a9c1b7d4e
      castline review approve 3f2a9c1b7d4e --note "checked the numbers"
      castline review edit 3f2a9c1b7d4e
    """
    if ctx.invoked_subcommand is not None:
        return
    for run_id, status in _guarded(production.apply_review_timeouts):
        console.print(f"run {run_id}: nobody answered in time, {status} by the show's policy")
    waiting = production.pending_reviews()
    if not waiting:
        console.print("no episode is waiting for review")
        return
    table = Table(title="waiting for review")
    for column in ("run", "show", "topic", "disagreement", "waiting since"):
        table.add_column(column)
    for item in waiting:
        record = item["record"]
        disagreements = ", ".join(
            f"{e['criterion']} {'/'.join(f'{v:.2f}' for v in e['scores'].values())}"
            for e in item["summary"]["escalated"]
        )
        table.add_row(
            record.id, record.show_title, record.topic, disagreements, _time(item["requested_at"])
        )
    console.print(table)


@review.command("show")
@click.argument("run_id")
def review_show(run_id: str) -> None:
    """Show what the evaluators disagreed on, their reasons, and the script."""
    item = _guarded(lambda: production.review_of(run_id))
    summary = item["summary"]
    console.print(f"[bold]{item['record'].id}[/] round {summary['round']}: {item['status']}")
    for escalated in summary["escalated"]:
        console.print(f"\n[bold]{escalated['gate']} / {escalated['criterion']}[/]")
        for evaluator, score in escalated["scores"].items():
            reason = escalated.get("reasons", {}).get(evaluator, "")
            console.print(f"  {evaluator}: {score:.2f}  {reason}", highlight=False)
    console.print()
    click.echo(script_text(summary["script"]))


@review.command("approve")
@click.argument("run_id")
@click.option("--note", help="Why, for the audit trail.")
def review_approve(run_id: str, note: str | None) -> None:
    """Approve the episode; its run continues to publishing."""
    with _progress() as on_event:
        outcome = _guarded(
            lambda: production.decide(run_id, "approved", note=note, on_event=on_event)
        )
    _render_outcome(outcome)


@review.command("reject")
@click.argument("run_id")
@click.option("--note", help="Why, for the audit trail.")
def review_reject(run_id: str, note: str | None) -> None:
    """Reject the episode; it is published as a rejected draft."""
    with _progress() as on_event:
        outcome = _guarded(
            lambda: production.decide(run_id, "rejected", note=note, on_event=on_event)
        )
    _render_outcome(outcome)


@review.command("edit")
@click.argument("run_id")
def review_edit(run_id: str) -> None:
    """Open the script in $EDITOR, re-check it, and approve it as edited if it passes."""
    from castline.quality.editing import check_edit, parse_script

    item = _guarded(lambda: production.review_of(run_id))
    summary = item["summary"]
    edited = click.edit(script_text(summary["script"]), extension=".txt")
    if edited is None:
        console.print("no changes; nothing decided")
        return
    script = _guarded(lambda: parse_script(edited, summary["script"]["title"]))
    failing = check_edit(item["record"], summary, script)
    if failing:
        err_console.print("[red]the edited script still fails:[/]")
        for message in failing:
            err_console.print(f"  - {message}", highlight=False)
        sys.exit(1)
    with _progress() as on_event:
        outcome = _guarded(
            lambda: production.decide(
                run_id,
                "approved",
                note="approved as edited",
                script=script.model_dump(mode="json"),
                on_event=on_event,
            )
        )
    _render_outcome(outcome)


@cli.group(invoke_without_command=True)
@click.option("--limit", default=30, show_default=True, help="How many runs to list.")
@click.pass_context
def runs(ctx: click.Context, limit: int) -> None:
    """List runs, newest first. Subcommands show one run or its audit trail.

    \b
    Examples:
      castline runs
      castline runs show 3f2a9c1b7d4e
      castline runs logs 3f2a9c1b7d4e
    """
    if ctx.invoked_subcommand is not None:
        return
    from castline import workflow

    store = workflow.store()
    records = store.list_runs(limit)
    costs = store.costs()
    table = Table(title="castline runs")
    for column in ("run", "show", "#", "episode", "status", "stage", "cost", "started"):
        table.add_column(column, justify="right" if column in {"#", "cost"} else "left")
    for record in records:
        table.add_row(
            record.id,
            record.show_title,
            str(record.number) if record.number is not None else "",
            record.episode_title or record.topic,
            production.display_status(record),
            record.stage or "",
            _money(costs.get(record.id, Decimal(0)), record.offline),
            _time(record.created_at),
        )
    if not records:
        console.print("no runs yet: `castline produce SHOW --topic ... --source ...` starts one")
        return
    console.print(table)


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
def runs_show(run_id: str, as_json: bool) -> None:
    """Show one run: stages, steps, verdicts, cost by stage, artifacts."""
    detail = _guarded(lambda: production.describe(run_id))
    if as_json:
        click.echo(json.dumps(detail.as_json(), indent=2, default=str))
        return
    record = detail.record
    number = f"episode {record.number}: " if record.number is not None else ""
    console.print(
        f"[bold]{record.id}[/]  {record.show_title}: {number}"
        f"{record.episode_title or record.topic}\n"
        f"status {production.display_status(record)}, stage {record.stage}, "
        f"{record.routing_reason}\noutput {record.output_dir}"
    )
    if record.error:
        console.print(f"[red]error:[/] {record.error}", highlight=False)
    _print_cost(detail.cost)
    steps = Table(title="steps")
    for column in ("step", "role", "model", "status", "tokens in/out", "cost"):
        steps.add_column(column)
    for call in detail.calls:
        model = call.priced_as if call.provider != "offline" else f"offline ({call.priced_as})"
        steps.add_row(
            call.step_key,
            call.role,
            model,
            call.status,
            f"{call.input_tokens:,}/{call.output_tokens:,}",
            _money(call.cost, call.shadow),
        )
    console.print(steps)
    if detail.verdicts:
        verdicts = Table(title="verdicts (last review)")
        for column in ("gate", "criterion", "evaluator", "score", "passed", "reason"):
            verdicts.add_column(column)
        for verdict in detail.verdicts:
            verdicts.add_row(
                verdict["gate"],
                verdict["criterion"],
                verdict["evaluator"],
                f"{verdict['score']:.2f}",
                "yes" if verdict["passed"] else "[red]no[/]",
                verdict["reason"],
            )
        console.print(verdicts)
    if detail.artifacts:
        files = Table(title="artifacts")
        for column in ("name", "bytes", "path"):
            files.add_column(column)
        for artifact in detail.artifacts:
            files.add_row(artifact.name, f"{artifact.bytes:,}", artifact.path)
        console.print(files)


@runs.command("logs")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def runs_logs(run_id: str, as_json: bool) -> None:
    """Print a run's audit trail: every transition, decision, call and verdict."""
    events = _guarded(lambda: production.audit_trail(run_id))
    for event in events:
        if as_json:
            click.echo(json.dumps(event, default=str))
        else:
            stage = f"[{event['stage']}] " if event["stage"] else ""
            console.print(
                f"{_time(event['ts'])}  {event['kind']:<14} {stage}{event['message']}",
                highlight=False,
            )


def _print_cost(report: CostReport, *, brief: bool = False) -> None:
    """The cost report as tables: by stage (and by role and model unless `brief`), then how the
    budget was held."""
    label = "shadow cost, offline" if report.shadow else "cost"
    groups = [("stage", report.by_stage)]
    if not brief:
        groups += [("role", report.by_role), ("model", report.by_model)]
    for name, rows in groups:
        table = Table(title=f"{label} by {name}")
        table.add_column(name)
        for column in ("calls", "input", "cache write", "cache read", "output", "cost"):
            table.add_column(column, justify="right")
        for row in rows:
            table.add_row(
                row.key,
                str(row.calls),
                f"{row.input_tokens:,}",
                f"{row.cache_write_tokens:,}",
                f"{row.cache_read_tokens:,}",
                f"{row.output_tokens:,}",
                f"${row.cost:,.4f}",
            )
        table.add_row("total", "", "", "", "", "", f"${report.spent:,.4f}", style="bold")
        console.print(table)
    console.print(
        f"budget ${report.budget:,.2f}: spent ${report.spent:,.4f}, left ${report.budget_left:,.4f}"
        f"; peak reserved ${report.peak_reserved:,.4f}; mode {report.mode}; "
        f"{report.refused} call(s) refused\n"
        f"list price ${report.list_price:,.4f}; saved ${report.cache_savings:,.4f} by caching, "
        f"${report.batch_savings:,.4f} by batching",
        highlight=False,
    )
    for change in report.mode_changes:
        console.print(
            f"  mode {change['from']} -> {change['to']} at ${change['committed']} committed",
            highlight=False,
        )


def _money(amount: Decimal, shadow: bool) -> str:
    return f"${amount:,.4f}" + (" (shadow)" if shadow else "")


def _time(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


class _progress:
    """A progress bar over the stages, fed by the run's audit events."""

    def __enter__(self) -> Callable[[EventRecord], None]:
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[stage]:<9}"),
            BarColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=False,
        )
        self.bar.start()
        self.task = self.bar.add_task("starting", total=len(STAGES), stage="")

        def on_event(event: EventRecord) -> None:
            if event.kind == "stage" and event.stage in STAGES:
                self.bar.update(
                    self.task,
                    completed=STAGES.index(event.stage),
                    description=event.message,
                    stage=event.stage,
                )
            elif event.kind in {"decision", "call-failed", "call-reused"}:
                self.bar.console.print(f"  {event.message}", highlight=False)
            elif event.kind in {"completed", "rejected"}:
                self.bar.update(self.task, completed=len(STAGES), description="done", stage="")

        return on_event

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:
            self.bar.update(self.task, completed=len(STAGES), description="done", stage="")
        self.bar.stop()


def script_text(script: dict[str, Any]) -> str:
    """A script as editable text: a `## segment` line, then `Speaker: text` per turn."""
    lines: list[str] = []
    current = None
    for turn in script["turns"]:
        if turn["segment"] != current:
            current = turn["segment"]
            lines += ["", f"## {current}"]
        marks = f"  [{', '.join(turn['citations'])}]" if turn["citations"] else ""
        lines.append(f"{turn['speaker']}: {turn['text']}{marks}")
    return "\n".join(lines).strip() + "\n"


def _render_outcome(outcome: production.Outcome) -> None:
    if outcome.status == "awaiting-review":
        console.print(
            f"\n[bold]waiting for review[/]: the evaluators disagree and the show asks a "
            f"person.\n  castline review show {outcome.run_id}\n"
            f"  castline review approve {outcome.run_id}   (or reject, or edit)"
        )
        sys.exit(1)
    label = "shadow cost (offline)" if outcome.offline else "cost"
    share = outcome.cost / outcome.budget if outcome.budget else 0
    console.print(
        f"\n[bold]{outcome.status}[/]: {outcome.words:,} words\n"
        + (f"number   {outcome.number}\n" if outcome.number is not None else "")
        + f"episode  {outcome.output_dir or '(nothing published)'}\n"
        f"{label}  ${outcome.cost:.4f} of ${outcome.budget:.2f} ({share:.1%}), "
        f"budget mode {outcome.budget_mode}\n"
        f"run id   {outcome.run_id}",
        highlight=False,
    )
    if outcome.halted_at:
        console.print(f"[yellow]halted by budget in {outcome.halted_at}[/]")
    if outcome.skipped:
        console.print("[yellow]given up for the budget:[/]")
        for item in outcome.skipped:
            console.print(f"  - {item}", highlight=False)
    if outcome.blocking:
        console.print("[red]blocking findings left:[/]")
        for message in outcome.blocking:
            console.print(f"  - {message}", highlight=False)
    if outcome.status != "completed":
        sys.exit(1)


def main() -> None:
    cli()

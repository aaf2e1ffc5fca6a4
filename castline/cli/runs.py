"""`castline runs`: list runs, and show one run's detail or its audit trail."""

from __future__ import annotations

import json
from decimal import Decimal

import click
from rich.table import Table

# The package itself: `app.console` is looked up when a command runs, so tests can swap it.
from castline import cli as app
from castline.cli import cli, guarded
from castline.cli.render import money, print_cost, timestamp


@cli.group(invoke_without_command=True)
@click.option(
    "--limit", default=30, show_default=True, type=click.IntRange(min=1),
    help="How many runs to list.",
)  # fmt: skip
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
    from castline.engine import inspection, runtime

    store = runtime.store()
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
            inspection.display_status(record),
            record.stage or "",
            money(costs.get(record.id, Decimal(0)), record.offline),
            timestamp(record.created_at),
        )
    if not records:
        app.console.print(
            "no runs yet: `castline produce SHOW --topic ... --source ...` starts one"
        )
        return
    app.console.print(table)


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
def runs_show(run_id: str, as_json: bool) -> None:
    """Show one run: stages, steps, verdicts, cost by stage, artifacts."""
    from castline import describe
    from castline.engine.inspection import display_status

    detail = guarded(lambda: describe(run_id))
    if as_json:
        click.echo(json.dumps(detail.as_json(), indent=2, default=str))
        return
    record = detail.record
    number = f"episode {record.number}: " if record.number is not None else ""
    app.console.print(
        f"[bold]{record.id}[/]  {record.show_title}: {number}"
        f"{record.episode_title or record.topic}\n"
        f"status {display_status(record)}, stage {record.stage}, "
        f"{record.routing_reason}\noutput {record.output_dir}"
    )
    if record.error:
        app.console.print(f"[red]error:[/] {record.error}", highlight=False)
    print_cost(detail.cost)
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
            money(call.cost, call.shadow),
        )
    app.console.print(steps)
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
        app.console.print(verdicts)
    if detail.artifacts:
        files = Table(title="artifacts")
        for column in ("name", "bytes", "path"):
            files.add_column(column)
        for artifact in detail.artifacts:
            files.add_row(artifact.name, f"{artifact.bytes:,}", artifact.path)
        app.console.print(files)


@runs.command("logs")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def runs_logs(run_id: str, as_json: bool) -> None:
    """Print a run's audit trail: every transition, decision, call and verdict."""
    from castline import audit_trail

    events = guarded(lambda: audit_trail(run_id))
    for event in events:
        if as_json:
            click.echo(json.dumps(event, default=str))
        else:
            stage = f"[{event['stage']}] " if event["stage"] else ""
            app.console.print(
                f"{timestamp(event['ts'])}  {event['kind']:<14} {stage}{event['message']}",
                highlight=False,
            )

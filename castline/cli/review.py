"""`castline review`: the episodes waiting for a person, and that person's decision."""

from __future__ import annotations

import sys

import click
from rich.table import Table

# The package itself: `app.console` is looked up when a command runs, so tests can swap it.
from castline import cli as app
from castline.cli import cli, guarded
from castline.cli.render import progress, render_outcome, script_text, timestamp


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
    from castline.engine import reviews

    for run_id, status in guarded(reviews.apply_review_timeouts):
        app.console.print(f"run {run_id}: nobody answered in time, {status} by the show's policy")
    waiting = reviews.pending_reviews()
    if not waiting:
        app.console.print("no episode is waiting for review")
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
            record.id,
            record.show_title,
            record.topic,
            disagreements,
            timestamp(item["requested_at"]),
        )
    app.console.print(table)


@review.command("show")
@click.argument("run_id")
def review_show(run_id: str) -> None:
    """Show what the evaluators disagreed on, their reasons, and the script."""
    from castline.engine import reviews

    item = guarded(lambda: reviews.review_of(run_id))
    summary = item["summary"]
    app.console.print(f"[bold]{item['record'].id}[/] round {summary['round']}: {item['status']}")
    for escalated in summary["escalated"]:
        app.console.print(f"\n[bold]{escalated['gate']} / {escalated['criterion']}[/]")
        for evaluator, score in escalated["scores"].items():
            reason = escalated.get("reasons", {}).get(evaluator, "")
            app.console.print(f"  {evaluator}: {score:.2f}  {reason}", highlight=False)
    app.console.print()
    click.echo(script_text(summary["script"]))


@review.command("approve")
@click.argument("run_id")
@click.option("--note", help="Why, for the audit trail.")
def review_approve(run_id: str, note: str | None) -> None:
    """Approve the episode; its run continues to publishing."""
    from castline import decide

    with progress() as on_event:
        outcome = decide(run_id, "approved", note=note, on_event=on_event)
    render_outcome(outcome)


@review.command("reject")
@click.argument("run_id")
@click.option("--note", help="Why, for the audit trail.")
def review_reject(run_id: str, note: str | None) -> None:
    """Reject the episode; it is published as a rejected draft."""
    from castline import decide

    with progress() as on_event:
        outcome = decide(run_id, "rejected", note=note, on_event=on_event)
    render_outcome(outcome)


@review.command("edit")
@click.argument("run_id")
def review_edit(run_id: str) -> None:
    """Open the script in $EDITOR, re-check it, and approve it as edited if it passes."""
    from castline import decide
    from castline.engine import reviews, runtime
    from castline.quality.editing import check_edit, parse_script

    item = guarded(lambda: reviews.review_of(run_id))
    summary = item["summary"]
    edited = click.edit(script_text(summary["script"]), extension=".txt")
    if edited is None:
        app.console.print("no changes; nothing decided")
        return
    script = guarded(lambda: parse_script(edited, summary["script"]["title"]))
    titles = [source["title"] for source in runtime.store().load_sources(run_id)]
    failing = check_edit(item["record"], summary, script, titles)
    if failing:
        app.err_console.print("[red]the edited script still fails:[/]")
        for message in failing:
            app.err_console.print(f"  - {message}", highlight=False)
        sys.exit(1)
    with progress() as on_event:
        outcome = decide(
            run_id,
            "approved",
            note="approved as edited",
            script=script.model_dump(mode="json"),
            on_event=on_event,
        )
    render_outcome(outcome)

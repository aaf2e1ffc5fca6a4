"""The rich output shared by several commands: cost tables, run outcomes, the progress bar."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rich.table import Table

# The package itself: `app.console` is looked up when a command runs, so tests can swap it.
from castline import cli as app

if TYPE_CHECKING:
    from rich.progress import Progress

    from castline import Outcome
    from castline.budget.report import CostReport
    from castline.store import EventRecord

STAGES = ("research", "plan", "write", "review", "polish", "publish")
# Events printed under the progress bar as they happen: what a user may want to act on.
SHOWN_EVENTS = frozenset(
    {
        "decision",
        "call-failed",
        "call-reused",
        "notes-dropped",
        "web-search-off",
        "web-pages",
        "feed-preview",
    }
)


def print_cost(report: CostReport, *, brief: bool = False) -> None:
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
        app.console.print(table)
    doubt = (
        f" + ${report.unreconciled:,.4f} unreconciled = ${report.total:,.4f}"
        if report.unreconciled
        else ""
    )
    if report.rejected:
        doubt += f" ({report.rejected} rejected repl(ies), ${report.rejected_cost:,.4f})"
    app.console.print(
        f"budget ${report.budget:,.2f}: spent ${report.spent:,.4f}{doubt}, "
        f"left ${report.budget_left:,.4f}"
        f"; peak reserved ${report.peak_reserved:,.4f}; mode {report.mode}; "
        f"{report.refused} call(s) refused\n"
        f"list price ${report.list_price:,.4f}; saved ${report.cache_savings:,.4f} by caching, "
        f"${report.batch_savings:,.4f} by batching",
        highlight=False,
    )
    for change in report.mode_changes:
        app.console.print(
            f"  mode {change['from']} -> {change['to']} at ${change['committed']} committed",
            highlight=False,
        )


def money(amount: Decimal, shadow: bool) -> str:
    return f"${amount:,.4f}" + (" (shadow)" if shadow else "")


def timestamp(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


class progress:
    """A progress bar over the stages, fed by the run's audit events. It appears with the first
    event, so a command refused before its run moves leaves no bar behind. Errors are left to
    leave the `with` block (the command group reports them), so the bar has stopped before the
    message is printed, never after it."""

    bar: Progress

    def __enter__(self) -> Callable[[EventRecord], None]:
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[stage]:<9}"),
            BarColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=app.err_console,
            transient=False,
        )
        self.task = self.bar.add_task("starting", total=len(STAGES), stage="")
        self.started = False

        def on_event(event: EventRecord) -> None:
            if not self.started:
                self.bar.start()
                self.started = True
            if event.kind == "stage" and event.stage in STAGES:
                self.bar.update(
                    self.task,
                    completed=STAGES.index(event.stage),
                    description=event.message,
                    stage=event.stage,
                )
            elif event.kind in SHOWN_EVENTS:
                self.bar.console.print(f"  {event.message}", highlight=False)
            elif event.kind in {"completed", "rejected"}:
                self.bar.update(self.task, completed=len(STAGES), description="done", stage="")

        return on_event

    def __exit__(self, *exc: Any) -> None:
        if not self.started:
            return
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


def render_outcome(outcome: Outcome) -> None:
    if outcome.status == "awaiting-review":
        app.console.print(
            f"\n[bold]waiting for review[/]: the evaluators disagree and the show asks a "
            f"person.\n  castline review show {outcome.run_id}\n"
            f"  castline review approve {outcome.run_id}   (or reject, or edit)"
        )
        sys.exit(1)
    label = "shadow cost (offline)" if outcome.offline else "cost"
    share = outcome.cost / outcome.budget if outcome.budget else 0
    app.console.print(
        f"\n[bold]{outcome.status}[/]: {outcome.words:,} words\n"
        + (f"number   {outcome.number}\n" if outcome.number is not None else "")
        + f"episode  {outcome.output_dir or '(nothing published)'}\n"
        f"{label}  ${outcome.cost:.4f} of ${outcome.budget:.2f} ({share:.1%}), "
        f"budget mode {outcome.budget_mode}\n"
        f"run id   {outcome.run_id}",
        highlight=False,
    )
    if outcome.halted_at:
        app.console.print(f"[yellow]halted by budget in {outcome.halted_at}[/]")
    if outcome.skipped:
        app.console.print("[yellow]given up for the budget:[/]")
        for item in outcome.skipped:
            app.console.print(f"  - {item}", highlight=False)
    if outcome.blocking:
        app.console.print("[red]blocking findings left:[/]")
        for message in outcome.blocking:
            app.console.print(f"  - {message}", highlight=False)
    if outcome.status != "completed":
        sys.exit(1)

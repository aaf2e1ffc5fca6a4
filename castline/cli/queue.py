"""Commands for many episodes: put one on the queue, and run the queue as a worker."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from castline import cli as app
from castline.cli import cli, guarded, options

if TYPE_CHECKING:
    from castline.engine.queue import Recovered


@cli.command()
@click.argument("show", type=click.Path(path_type=Path))
@click.option("--topic", "-t", required=True, help="What the episode is about.")
@options.sources()
@options.allow_private_urls
@click.option("--provider", help="Answer every role with this provider (e.g. 'offline').")
@click.option("--number", "-n", type=int, help="The episode number (default: the show's next).")
def enqueue(
    show: Path,
    topic: str,
    sources: Sequence[Path | str],
    allow_private_urls: bool,
    provider: str | None,
    number: int | None,
) -> None:
    """Check an episode's inputs and put it on the queue for `castline worker`.

    \b
    Examples:
      castline enqueue show.yaml --topic "Cool roofs" --source notes.md
      castline worker --concurrency 8
    """
    from castline.engine import episodes

    run_id = guarded(
        lambda: episodes.enqueue(
            show,
            topic,
            list(sources),
            provider=provider,
            number=number,
            allow_private_urls=allow_private_urls,
        )
    )
    app.console.print(f"queued run [bold]{run_id}[/]; `castline worker` runs it")


@cli.command()
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(min=1, max=256),
    default=4,
    show_default=True,
    help="Episodes this worker runs at once (the same for every worker of the queue).",
)
def worker(concurrency: int) -> None:
    """Run queued episodes until stopped (Ctrl-C or SIGTERM finishes nothing half-way: an
    episode in progress is taken over by another worker, or by this one when it restarts).

    Start as many workers as you like, on one machine (SQLite) or on many sharing
    CASTLINE_DATABASE_URL (Postgres). Each also takes over the work of any castline process
    that died.

    \b
    Examples:
      castline worker --concurrency 8
    """
    from castline.engine import queue

    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    def recovered(found: Recovered) -> None:
        app.console.print(
            f"took over {len(found.workflows)} workflow(s) of run(s) {', '.join(found.runs)} "
            f"from {', '.join(found.executors)}",
            highlight=False,
        )

    app.console.print(f"worker: up to {concurrency} episode(s) at once; Ctrl-C stops")
    executor_id = guarded(lambda: queue.work(concurrency, stop, on_recovered=recovered))
    app.console.print(f"worker {executor_id} stopped")


FINISHED = frozenset({"completed", "rejected", "halted", "failed", "awaiting-review"})


@cli.command()
@click.argument("show", type=click.Path(path_type=Path))
@click.argument("season", type=click.Path(path_type=Path))
@click.option("--provider", help="Answer every role with this provider (e.g. 'offline').")
@click.option("--dry-run", is_flag=True, help="Check and forecast only; queue nothing.")
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Run the episodes in this process as a worker until all are done, or leave them to "
    "`castline worker` processes.",
)
@click.option(
    "--concurrency", "-c", type=click.IntRange(min=1, max=256), default=4, show_default=True,
    help="Episodes at once, when waiting.",
)  # fmt: skip
def batch(
    show: Path, season: Path, provider: str | None, dry_run: bool, wait: bool, concurrency: int
) -> None:
    """Produce many episodes of a show under one total budget.

    SEASON is a YAML file: `budget:` (the most the whole batch may spend; optional) and
    `episodes:`, each with `topic`, `sources` (paths relative to the file) and an optional
    `number`. Every input is checked and every episode forecast before anything is queued;
    a batch whose forecast exceeds its budget is refused. While it runs, the ledger refuses
    any call that would take the batch past its budget (each episode keeps its own, too).

    \b
    Examples:
      castline batch show.yaml season.yaml --dry-run
      castline batch show.yaml season.yaml --concurrency 8
      castline batch show.yaml season.yaml --no-wait && castline worker
    """
    from rich.table import Table

    from castline.engine import queue, runtime, seasons

    plan = guarded(lambda: seasons.plan_season(show, season, provider=provider))
    table = Table(title=f"forecast: {len(plan.runs)} episodes of {show}")
    table.add_column("#", justify="right")
    table.add_column("topic")
    for column in ("expected", "high"):
        table.add_column(column, justify="right")
    for position, run in enumerate(plan.runs, start=1):
        table.add_row(
            str(run.episode.number or position),
            run.episode.topic,
            f"${run.forecast.expected:,.4f}",
            f"${run.forecast.high:,.4f}",
        )
    table.add_row("", "[bold]total[/]", f"${plan.expected:,.4f}", f"${plan.high:,.4f}")
    app.console.print(table)
    app.console.print(f"batch budget ${plan.cap:,.2f}", highlight=False)
    if plan.high > plan.cap:
        app.console.print(
            f"[yellow]at worst ${plan.high:,.2f}: the last episodes may be halted by the batch "
            "budget[/]"
        )
    if dry_run:
        return
    if wait:  # this process is the batch's worker: it must listen to the queue it fills
        runtime.launch("worker", listen=[queue.EPISODES])
    run_ids = guarded(lambda: seasons.start_season(plan, provider=provider))
    app.console.print(f"queued {len(run_ids)} runs: {', '.join(run_ids)}")
    if not wait:
        app.console.print("`castline worker` runs them")
        return
    stop = threading.Event()
    runner = threading.Thread(
        target=lambda: queue.work(concurrency, stop), name="castline-batch-worker", daemon=True
    )
    runner.start()
    store = runtime.store()
    try:
        while runner.is_alive():
            states = {run_id: store.get_run(run_id).status for run_id in run_ids}
            if all(state in FINISHED for state in states.values()):
                break
            stop.wait(1.0)
    finally:
        stop.set()
        runner.join(timeout=60)
    ended = Table(title="batch")
    for column in ("run", "status", "cost"):
        ended.add_column(column)
    failed = False
    for run_id in run_ids:
        record = store.get_run(run_id)
        failed = failed or record.status != "completed"
        ended.add_row(run_id, record.status, f"${store.run_cost(run_id):,.4f}")
    app.console.print(ended)
    if failed:
        sys.exit(1)

"""Commands for many episodes: put one on the queue, and run the queue as a worker."""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from castline import cli as app
from castline.cli import cli, guarded

if TYPE_CHECKING:
    from castline.engine.queue import Recovered


@cli.command()
@click.argument("show", type=click.Path(path_type=Path))
@click.option("--topic", "-t", required=True, help="What the episode is about.")
@click.option(
    "--source", "-s", "sources", multiple=True, type=click.Path(path_type=Path),
    help="A source document (txt, md, html, pdf). Repeat for several.",
)  # fmt: skip
@click.option("--provider", help="Answer every role with this provider (e.g. 'offline').")
@click.option("--number", "-n", type=int, help="The episode number (default: the show's next).")
def enqueue(
    show: Path, topic: str, sources: Sequence[Path], provider: str | None, number: int | None
) -> None:
    """Check an episode's inputs and put it on the queue for `castline worker`.

    \b
    Examples:
      castline enqueue show.yaml --topic "Cool roofs" --source notes.md
      castline worker --concurrency 8
    """
    from castline.engine import episodes

    run_id = guarded(
        lambda: episodes.enqueue(show, topic, list(sources), provider=provider, number=number)
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

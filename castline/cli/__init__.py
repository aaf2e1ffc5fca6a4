"""castline's command line: parse, call the API, render. Nothing else lives here.

Exit codes: 0 ok, 1 the run failed (or was rejected), 2 usage or configuration error.

The commands live in this package's modules; they look `console` and `err_console` up on this
module when they run, so a test that swaps `castline.cli.console` reaches every command.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

import click
from rich.console import Console

from castline import __version__
from castline.errors import ConfigError, RunError

console = Console()
err_console = Console(stderr=True)

T = TypeVar("T")


def guarded(action: Callable[[], T]) -> T:
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


def main() -> None:
    cli()


# Last, so the commands find `cli` and the consoles above when they register themselves.
from castline.cli import produce, queue, review, runs  # noqa: E402, F401
from castline.cli.render import script_text  # noqa: E402

__all__ = ["cli", "console", "err_console", "guarded", "main", "script_text"]

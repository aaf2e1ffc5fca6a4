"""castline's command line: parse, call the API, render. Nothing else lives here.

Exit codes: 0 ok, 1 the run failed (or was rejected), 2 usage or configuration error, 130
interrupted. No input ever prints a traceback: castline's own errors become messages, and an
unexpected one (a bug) a message naming the file its traceback was written to.

The commands live in this package's modules; they look `console` and `err_console` up on this
module when they run, so a test that swaps `castline.cli.console` reaches every command.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console

from castline import __version__
from castline.errors import CastlineError, ConfigError, RunError

console = Console()
err_console = Console(stderr=True)

T = TypeVar("T")


DEBUG_ENV = "CASTLINE_DEBUG"


def guarded(action: Callable[[], T]) -> T:
    """Run an API call, turning castline's errors into messages and exit codes."""
    try:
        return action()
    except CastlineError as exc:
        fail(exc)


def fail(exc: CastlineError) -> NoReturn:
    if isinstance(exc, ConfigError):
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    label = "run failed" if isinstance(exc, RunError) else "error"
    err_console.print(f"[bold red]{label}:[/] {exc}", highlight=False)
    sys.exit(1)


def _internal_error(exc: Exception) -> NoReturn:
    """A bug, not an input: say so in one line and keep the traceback in a file."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log = Path(tempfile.gettempdir()) / f"castline-error-{stamp}-{os.getpid()}.txt"
    try:
        log.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
        where = f"; the details are in {log}"
    except OSError:
        where = f"; set {DEBUG_ENV}=1 to see the details"
    err_console.print(
        f"[bold red]internal error:[/] {type(exc).__name__}: {exc}. This is a bug in castline, "
        f"not in your input{where}. Any run it interrupted resumes with `castline resume RUN`.",
        highlight=False,
    )
    sys.exit(1)


class _Guarded(click.Group):
    """Every command's errors end as a message and an exit code, whichever line raised them."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CastlineError as exc:
            fail(exc)
        except KeyboardInterrupt:
            err_console.print(
                "interrupted: a run stopped here continues with `castline resume RUN`"
            )
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            _internal_error(exc)


@click.group(cls=_Guarded, context_settings={"help_option_names": ["-h", "--help"]})
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
from castline.cli import check, feed, produce, publish, queue, review, runs, serve, stats  # noqa: E402, F401
from castline.cli.render import script_text  # noqa: E402

__all__ = ["cli", "console", "err_console", "guarded", "main", "script_text"]

"""What every refused input must look like: exit code 2, a message naming what is wrong, no
traceback, nothing spent and nothing recorded.

Every output a hostile-input test sees is also appended to `$CASTLINE_HOSTILE_LOG` (set by
`dev.py test`), which CI then searches for "Traceback": a second line of defence beside the
assertions, for output a test forgot to check.
"""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner, Result

from castline.cli import cli
from castline.config import database_url
from castline.store import Store

LOG_ENV = "CASTLINE_HOSTILE_LOG"


def record(label: str, output: str) -> None:
    log = os.environ.get(LOG_ENV)
    if log:
        with Path(log).open("a", encoding="utf-8") as handle:
            handle.write(f"--- {label}\n{output}\n")


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    record(" ".join(args)[:200], result.output)
    return result


def store_snapshot() -> tuple[int, int, int]:
    """Runs, events and calls in the store: a refused input changes none of them."""
    store = Store(database_url())
    runs = store.list_runs(10_000)
    events = sum(len(store.events(run.id)) for run in runs)
    calls = sum(len(store.calls(run.id)) for run in runs)
    return len(runs), events, calls


def assert_refused(result: Result, *names: str) -> None:
    """A usage or configuration error: exit 2, no traceback or internal error, every one of
    `names` (a field, a file, a value) in the message, and no "run failed"."""
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output and "internal error" not in text, result.output
    assert "run failed" not in text, result.output
    for name in names:
        assert name in text, (name, result.output)

#!/usr/bin/env python3
"""The project's two commands, needing nothing but Python 3.11+.

    python3 dev.py example   set up, then produce the example episode offline
    python3 dev.py test      set up, then run ruff, mypy --strict and pytest
    python3 dev.py bench     set up, then run the benchmarks

Set-up creates `.venv` and installs castline with its development extras, once; it is redone
when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if sys.platform == "win32" else "bin")
STAMP = VENV / ".castline-installed"
EXAMPLE = Path("examples") / "heat-island"
EXAMPLE_TOPIC = "Why cities run hot, who pays for it, and what actually cools them"
EXAMPLE_SOURCES = ["cities-and-heat.md", "health-and-equity.html", "cooling-strategies.pdf"]


def run(*args: str | Path, home: Path | None = None) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    env = {**os.environ, "CASTLINE_HOME": str(home)} if home else None
    subprocess.run([str(a) for a in args], cwd=ROOT, check=True, env=env)


def setup() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 (this script runs before any venv exists)
        sys.exit(f"castline needs Python 3.11 or newer (this is {sys.version.split()[0]})")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print(f"creating {VENV.name}", flush=True)
        venv.create(VENV, with_pip=True)
    run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    STAMP.write_text(wanted)


def example() -> None:
    """The example episode, made afresh each time in the example's own state directory: a show
    never repeats an episode it already published, so a second run into the same store would
    find its research already covered and be rejected (as it should for a real show)."""
    home = ROOT / EXAMPLE / ".castline"
    for previous in (home, ROOT / EXAMPLE / "episodes"):
        shutil.rmtree(previous, ignore_errors=True)
    sources = [arg for name in EXAMPLE_SOURCES for arg in ("--source", EXAMPLE / "sources" / name)]
    show = EXAMPLE / "show.yaml"
    run(BIN / "castline", "produce", show, "--topic", EXAMPLE_TOPIC, *sources, home=home)
    print(f"its runs: CASTLINE_HOME={home.relative_to(ROOT)} {BIN / 'castline'} runs", flush=True)


def test() -> None:
    run(BIN / "ruff", "check", "castline", "tests", "bench", "dev.py")
    run(BIN / "ruff", "format", "--check", "castline", "tests", "bench", "dev.py")
    run(BIN / "mypy")
    # the hostile-input tests copy every output they see here; none may hold a traceback
    log = ROOT / ".pytest-hostile-output.log"
    log.unlink(missing_ok=True)
    os.environ["CASTLINE_HOSTILE_LOG"] = str(log)
    run(BIN / "pytest", "-q")
    outputs = log.read_text(encoding="utf-8") if log.exists() else ""
    if not outputs:
        sys.exit(f"{log.name} is empty: the hostile-input tests recorded nothing")
    if "Traceback" in outputs:
        sys.exit(f"a hostile input printed a traceback; see {log.name}")
    print(f"no traceback in {outputs.count(chr(10) + '--- ') + 1} hostile-input outputs")


def bench() -> None:
    for script in sorted((ROOT / "bench").glob("bench_*.py")):
        run(BIN / "python", script)


COMMANDS = {"example": example, "test": test, "bench": bench, "setup": lambda: None}


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    setup()
    try:
        COMMANDS[sys.argv[1]]()
    except subprocess.CalledProcessError as exc:
        sys.exit(exc.returncode)


if __name__ == "__main__":
    main()

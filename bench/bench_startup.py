"""Benchmark: how fast the command line starts, and what its imports cost.

Times `castline --help`, `castline keys` and `castline runs` (a fresh, empty state directory) as a
user runs them, interpreter start-up included, and prints the median wall time over the runs.
Then the time from starting `castline produce` (the example, text only, offline) to its first
paid request: the checks, the run's record, DBOS's launch and the first stage. Then prints an
import-time breakdown (from `python -X importtime`) of `import castline.cli` and
of `import castline.engine.workflows`: the total, the modules with the largest cumulative import
time, and the import time summed per top-level package (self time, so nothing counts twice).

    python bench/bench_startup.py [--runs 7] [--top 15]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

COMMANDS = (["--help"], ["keys"], ["runs"])
MODULES = ("castline.cli", "castline.engine.workflows")


def _castline() -> list[str]:
    """The installed `castline` script next to this interpreter, else `python -m castline`."""
    script = Path(sys.executable).parent / "castline"
    return [str(script)] if script.exists() else [sys.executable, "-m", "castline"]


def commands(runs: int) -> None:
    base = _castline()
    print(f"command wall time, median of {runs} runs (start-up and imports included):")
    for args in COMMANDS:
        walls = []
        for _ in range(runs + 1):  # the first run warms the file cache and is not counted
            home = tempfile.mkdtemp(prefix="castline-bench-")
            try:
                started = time.perf_counter()
                subprocess.run(
                    base + args,
                    env={**os.environ, "CASTLINE_HOME": home},
                    check=True,
                    capture_output=True,
                )
                walls.append(time.perf_counter() - started)
            finally:
                shutil.rmtree(home, ignore_errors=True)
        walls = walls[1:]
        label = "castline " + " ".join(args)
        print(
            f"  {label:<18} {statistics.median(walls):.3f} s"
            f"   (min {min(walls):.3f}, max {max(walls):.3f})"
        )


def import_times(module: str) -> list[tuple[str, int, int]]:
    """(module, self µs, cumulative µs) for every module `import module` loads."""
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True)  # warm the cache
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        check=True,
        capture_output=True,
        text=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|")
        rows.append((name.strip(), int(own), int(cumulative)))
    return rows


def breakdown(module: str, top: int) -> None:
    rows = import_times(module)
    # Importing `a.b.c` imports `a` first, whose row then covers the whole import.
    parts = module.split(".")
    chain = {".".join(parts[: n + 1]) for n in range(len(parts))}
    total = max(c for name, _, c in rows if name in chain)
    print(f"\n`import {module}`: {total / 1e6:.3f} s, {len(rows)} modules")
    print(f"  top {top} by cumulative import time:")
    for name, _, cumulative in sorted(rows, key=lambda row: -row[2])[:top]:
        print(f"    {cumulative / 1e3:9.1f} ms  {name}")
    packages: dict[str, int] = defaultdict(int)
    for name, own, _ in rows:
        packages[name.split(".")[0]] += own
    print(f"  top {top} top-level packages by summed self time:")
    for name, own in sorted(packages.items(), key=lambda item: -item[1])[:top]:
        print(f"    {own / 1e3:9.1f} ms  {name}")
    heavy = ("dbos", "scipy", "numpy", "anthropic", "google.genai", "openai", "sqlalchemy")
    loaded = {name for name, _, _ in rows}
    present = [name for name in heavy if name in loaded]
    print(f"  heavy packages loaded: {', '.join(present) or 'none'}")


ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "heat-island"
TOPIC = "Why cities run hot, who pays for it, and what actually cools them"
SOURCES = ["cities-and-heat.md", "health-and-equity.html", "cooling-strategies.pdf"]


def first_request(runs: int) -> None:
    """Wall time from the command's start to the first paid call's start, read from the store."""
    import sqlite3

    waits = []
    for _ in range(runs):
        scratch = Path(tempfile.mkdtemp(prefix="castline-bench-"))
        try:
            show = scratch / "show.yaml"
            show.write_text((EXAMPLE / "show.yaml").read_text() + "\naudio: {voice: false}\n")
            command = [*_castline(), "produce", str(show), "--topic", TOPIC]
            for name in SOURCES:
                command += ["--source", str(EXAMPLE / "sources" / name)]
            env = {**os.environ, "CASTLINE_HOME": str(scratch / "home")}
            started = time.time()
            subprocess.run(command, env=env, check=True, capture_output=True)
            with sqlite3.connect(scratch / "home" / "castline.db") as connection:
                [(first,)] = connection.execute("SELECT min(started_at) FROM calls").fetchall()
            waits.append(first - started)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    print(
        f"castline produce: first paid request after {statistics.median(waits):.3f} s, "
        f"median of {runs} runs (min {min(waits):.3f}, max {max(waits):.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--top", type=int, default=15, help="how many rows per breakdown")
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )
    commands(args.runs)
    first_request(max(3, args.runs // 2))
    for module in MODULES:
        breakdown(module, args.top)


if __name__ == "__main__":
    main()

"""Benchmark: produce the offline example episode several times and print the figures.

The episode is produced as text (`audio: {voice: false}`): this measures the production line
and its engine; `bench/bench_audio.py` measures voicing and mastering.

Prints, as medians over the runs: wall time and CPU time of `castline.produce` (DBOS launch
included, interpreter start-up and imports excluded), the time spent inside the stages (provider
work, review checks, publishing), and the share left to the engine and the store (DBOS
checkpoints, run-store writes, thread hand-offs). Also times the whole `castline produce` command
as a user runs it, interpreter start-up included.

    python bench/bench_offline_episode.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "heat-island"
TOPIC = "Why cities run hot, who pays for it, and what actually cools them"
TEXT_ONLY = "\naudio: {voice: false}\n"
SOURCES = [
    EXAMPLE / "sources" / "cities-and-heat.md",
    EXAMPLE / "sources" / "health-and-equity.html",
    EXAMPLE / "sources" / "cooling-strategies.pdf",
]


def _union(intervals: list[tuple[float, float]]) -> float:
    """Total time covered by possibly overlapping intervals (concurrent research counts once)."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def in_process(runs: int, latency_ms: int = 0) -> None:
    from castline.engine import episodes, runtime
    from castline.llm.offline.provider import LATENCY_ENV

    os.environ[LATENCY_ENV] = str(latency_ms)

    walls, cpus, stage_times, words = [], [], [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as home:
            os.environ["CASTLINE_HOME"] = home
            show = Path(home) / "show" / "show.yaml"
            show.parent.mkdir()
            show.write_text((EXAMPLE / "show.yaml").read_text() + TEXT_ONLY)
            wall0, cpu0 = time.perf_counter(), time.process_time()
            outcome = episodes.produce(show, TOPIC, SOURCES)
            walls.append(time.perf_counter() - wall0)
            cpus.append(time.process_time() - cpu0)
            store = runtime.store()
            intervals = [
                (c.finished_at - (c.compute_ms or 0) / 1000, c.finished_at)
                for c in store.calls(outcome.run_id)
                if c.finished_at is not None
            ] + [
                (e.ts - e.data["compute_ms"] / 1000, e.ts)
                for e in store.events(outcome.run_id)
                if "compute_ms" in e.data
            ]
            stage_times.append(_union(intervals))
            words.append(outcome.words)
            runtime.shutdown()
    wall, cpu, stages = (statistics.median(x) for x in (walls, cpus, stage_times))
    simulated = f", {latency_ms} ms simulated per model call" if latency_ms else ""
    print(
        f"in-process produce, median of {runs} runs "
        f"({statistics.median(words):.0f} words{simulated}):"
    )
    print(f"  wall time           {wall:.3f} s   (min {min(walls):.3f}, max {max(walls):.3f})")
    print(f"  CPU time            {cpu:.3f} s")
    print(f"  inside the stages   {stages:.3f} s")
    print(f"  engine + store      {wall - stages:.3f} s  = {(wall - stages) / wall:.1%} of wall")


def command_line(runs: int) -> None:
    walls = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as home:
            show = Path(home) / "show" / "show.yaml"
            show.parent.mkdir()
            show.write_text((EXAMPLE / "show.yaml").read_text() + TEXT_ONLY)
            args = [sys.executable, "-m", "castline", "produce", str(show), "--topic", TOPIC]
            for source in SOURCES:
                args += ["--source", str(source)]
            started = time.perf_counter()
            subprocess.run(
                args, env={**os.environ, "CASTLINE_HOME": home}, check=True, capture_output=True
            )
            walls.append(time.perf_counter() - started)
    print(f"`castline produce` command, median of {runs} runs (start-up and imports included):")
    print(f"  wall time           {statistics.median(walls):.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--latency-ms",
        type=int,
        default=300,
        help="also run with this simulated model latency (0 to skip)",
    )
    args = parser.parse_args()
    runs = args.runs
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )
    in_process(runs)
    command_line(runs)
    if args.latency_ms:
        in_process(3, args.latency_ms)


if __name__ == "__main__":
    main()

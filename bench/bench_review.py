"""Benchmark: one review round's evaluations run concurrently.

Produces the example episode offline with a simulated model latency, then compares the wall
time of round 0's judged evaluations (8 calls: 4 criteria x 2 evaluators) with the slowest
single evaluation, and with what running them one after another would take.

    python bench/bench_review.py [--runs 3] [--latency-ms 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from castline.engine import episodes, runtime
from castline.llm.offline.provider import LATENCY_ENV

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "heat-island"
TOPIC = "Why cities run hot, who pays for it, and what actually cools them"
SOURCES = [
    EXAMPLE / "sources" / "cities-and-heat.md",
    EXAMPLE / "sources" / "health-and-equity.html",
    EXAMPLE / "sources" / "cooling-strategies.pdf",
]


def one_run() -> tuple[float, float, float, int]:
    with tempfile.TemporaryDirectory() as home:
        os.environ["CASTLINE_HOME"] = home
        show = Path(home) / "show" / "show.yaml"
        show.parent.mkdir()
        show.write_text((EXAMPLE / "show.yaml").read_text())
        outcome = episodes.produce(show, TOPIC, SOURCES)
        calls = [
            c
            for c in runtime.store().calls(outcome.run_id)
            if c.task_kind == "judge" and c.step_key.startswith("review.0.")
        ]
        runtime.shutdown()
    finished = [c.finished_at for c in calls if c.finished_at is not None]
    wall = max(finished) - min(c.started_at for c in calls)
    durations = [c.finished_at - c.started_at for c in calls if c.finished_at is not None]
    return wall, max(durations), sum(durations), len(calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency-ms", type=int, default=300)
    args = parser.parse_args()
    os.environ[LATENCY_ENV] = str(args.latency_ms)
    results = [one_run() for _ in range(args.runs)]
    wall, slowest, serial = (statistics.median(r[i] for r in results) for i in range(3))
    print(
        f"review round 0, {results[0][3]} evaluations at {args.latency_ms} ms simulated latency "
        f"(median of {args.runs}): wall {wall:.3f} s, slowest single evaluation {slowest:.3f} s "
        f"({wall / slowest:.2f}x), one after another {serial:.3f} s"
    )


if __name__ == "__main__":
    main()

"""Benchmark: the budget ledger's overhead per call on SQLite (reserve, then settle).

Each round reserves and settles a fixed number of calls on a fresh run; prints the median
microseconds per call over the rounds, for one thread and for four threads contending for the
write lock.

    python bench/bench_ledger.py [--calls 500] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from castline.budget.ledger import Ledger, Reservation  # noqa: E402
from castline.budget.policy import BudgetPolicy, Candidate  # noqa: E402
from castline.budget.prices import Pricer  # noqa: E402
from castline.config import Budget  # noqa: E402
from castline.llm.registry import Route  # noqa: E402
from castline.store import Store  # noqa: E402
from tests.runs import add_run  # noqa: E402

ROUTE = Route("offline", "claude-haiku-4-5", "anthropic:claude-haiku-4-5")


def one_round(calls: int, threads: int) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        store = Store(f"sqlite:///{Path(scratch) / 'bench.db'}")
        add_run(
            store,
            "bench",
            budget=Decimal(100_000),
            show_title="bench",
            show_path="-",
            topic="-",
            routing_reason="bench",
            output_dir="-",
        )
        ledger = Ledger(store)
        policy = BudgetPolicy(Budget(per_episode=Decimal(100_000)), Pricer())
        ladder = [Candidate(ROUTE, 1000, False, Decimal("0.01"))]

        def work(worker: int) -> None:
            for n in range(calls // threads):
                reservation = ledger.reserve(
                    "bench",
                    policy,
                    lambda mode: ladder,
                    step_key=f"{worker}.{n}",
                    stage="write",
                    role="writer",
                    task_kind="write",
                    prompt="p",
                    shadow=True,
                )
                assert isinstance(reservation, Reservation)
                store.finish_call(reservation.call_id, cost=Decimal("0.005"), response="{}")

        started = time.perf_counter()
        pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        elapsed = time.perf_counter() - started
        store.engine.dispose()
        return elapsed / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for threads in (1, 4):
        per_call = [one_round(args.calls, threads) for _ in range(args.rounds)]
        print(
            f"reserve + settle on SQLite, {threads} thread(s), {args.calls} calls: "
            f"median {statistics.median(per_call):.0f} µs per call "
            f"(min {min(per_call):.0f}, max {max(per_call):.0f}; {args.rounds} rounds)"
        )


if __name__ == "__main__":
    main()

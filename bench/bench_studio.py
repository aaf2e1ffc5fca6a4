"""Benchmark: castline studio's API latency with 1,000 episodes in the store.

One real offline episode is produced (text only), then 999 more runs are recorded directly
through the store (each with the produced run's spec, its calls and its audit events, so sums
and lists do real work). The API runs in-process (FastAPI's TestClient: the framework and the
store, no network) and each route is timed over several requests; the median is printed.

    python bench/bench_studio.py [--episodes 1000] [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "heat-island"
TOPIC = "Why cities run hot, who pays for it, and what actually cools them"
SOURCES = [
    EXAMPLE / "sources" / "cities-and-heat.md",
    EXAMPLE / "sources" / "health-and-equity.html",
]
TOKEN = "bench-token"


def fill(store: object, template_id: str, count: int) -> None:
    """`count` more runs like `template_id`, recorded through the store's own tables."""
    from castline.store import Store, calls, events

    assert isinstance(store, Store)
    template = store.get_run(template_id)
    with store.engine.begin() as connection:
        call_rows = [dict(r) for r in connection.execute(
            sa.select(calls).where(calls.c.run_id == template_id)).mappings()]  # fmt: skip
        event_rows = [dict(r) for r in connection.execute(
            sa.select(events).where(events.c.run_id == template_id)).mappings()]  # fmt: skip
    for n in range(count):
        run_id = uuid.uuid4().hex[:12]
        store.create_run(
            id=run_id,
            show_title=template.show_title,
            show_path=template.show_path,
            topic=f"{template.topic} ({n})",
            status="completed" if n % 7 else "failed",
            stage="done",
            offline=True,
            routing_reason=template.routing_reason,
            spec={**template.spec, "number": n + 2},
            output_dir=template.output_dir,
            budget_nanos=33_250_000_000,
        )
        with store.engine.begin() as connection:
            connection.execute(calls.insert(), [
                {**{k: v for k, v in row.items() if k != "id"}, "run_id": run_id}
                for row in call_rows])  # fmt: skip
            connection.execute(events.insert(), [
                {**{k: v for k, v in row.items() if k != "id"}, "run_id": run_id}
                for row in event_rows])  # fmt: skip


def timed(client: object, path: str, runs: int) -> tuple[float, int]:
    from fastapi.testclient import TestClient

    assert isinstance(client, TestClient)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    client.get(path, headers=headers).raise_for_status()  # warm
    times = []
    size = 0
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        size = len(response.content)
    return statistics.median(times), size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="castline-bench-studio-"))
    os.environ["CASTLINE_HOME"] = str(home)
    os.environ.setdefault("CASTLINE_SEMANTIC", "off")
    from fastapi.testclient import TestClient

    from castline.engine import episodes, runtime
    from castline.studio import create_app
    from castline.studio.catalog import show_id

    show = home / "show" / "show.yaml"
    show.parent.mkdir(parents=True)
    show.write_text((EXAMPLE / "show.yaml").read_text() + "\naudio: {voice: false}\n")
    outcome = episodes.produce(show, TOPIC, SOURCES, provider="offline")
    store = runtime.store()
    fill(store, outcome.run_id, args.episodes - 1)
    records = store.list_runs(10**9)
    calls_total = sum(len(store.calls(r.id)) for r in records[:1]) * len(records)
    print(f"store: {len(records)} episodes, ~{calls_total:,} calls, SQLite ({store.url})")
    with TestClient(create_app(store, TOKEN)) as client:
        client.cookies.set("castline_studio", TOKEN)
        key = show_id(store.get_run(outcome.run_id).show_title)
        run = outcome.run_id
        routes = [
            ("shows list", "/api/shows"),
            ("runs list (200 newest)", f"/api/shows/{key}/episodes"),
            ("runs list (all 1,000)", f"/api/shows/{key}/episodes?limit=5000"),
            ("episode: run detail", f"/api/runs/{run}"),
            ("episode: audit trail", f"/api/runs/{run}/events"),
            ("episode: episode.json", f"/api/runs/{run}/files/episode.json"),
            ("episode page (HTML shell)", f"/episodes/{run}"),
        ]
        print(f"{'route':<28} {'median ms':>10} {'bytes':>10}   ({args.runs} requests each)")
        for label, path in routes:
            median, size = timed(client, path, args.runs)
            print(f"{label:<28} {median:>10.1f} {size:>10,}")
        started = time.perf_counter()
        store.costs()
        print(f"of which store.costs() (every run's cost, one query): "
              f"{(time.perf_counter() - started) * 1000:.1f} ms")  # fmt: skip
    runtime.shutdown()
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

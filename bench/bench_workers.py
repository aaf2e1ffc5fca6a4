"""Benchmark: many episodes on the queue, run by `castline worker` processes, against one alone.

Every model request goes through the real SDKs to the local fake API (`tests/fake_api`), which
answers each one after a fixed latency (1 s by default). The example episode is produced as text
(`audio: {voice: false}`), so this measures the run engine, not voicing.

Three set-ups, each in a fresh state directory and with the runs all enqueued before any worker
starts:

- one episode, one worker (`castline worker --concurrency 1`): the reference;
- N episodes, one worker (`castline worker --concurrency N`);
- N episodes, two workers (`castline worker --concurrency N/2` each).

Wall times are taken from the run store, from the first event the episode workflow writes (the
moment a worker started it) to the run's `finished_at`, so they leave out the workers'
interpreter start-up and DBOS launch; the time from spawning the workers to the last episode
finishing is printed too. The *critical path* of the lone episode is the longest chain of paid
calls that ran one after another: calls ordered by the store's `started_at`/`finished_at`
(reservation to settlement), a link being a call that started after the previous one finished,
and the chain's length the sum of its calls' durations (the longest such chain, found by dynamic
programming). It is what the episode would take if everything between calls cost nothing. The
time with at least one call in flight is printed too (it also counts the stagger of concurrent
calls). Ratios of the N-episode wall times to both are the figures of merit (goal: at most 1.2).

The fake runs in this process: a `ThreadingHTTPServer`, one thread per connection, so the
requests of all episodes are served at once; its listen backlog is raised from socketserver's 5
(`--backlog`), since a full backlog drops a connection attempt and the client's retry costs a
1 s SYN retransmission, which would be the fake's delay, not castline's. Each provider's
`concurrency` (castline's per-process cap on calls in flight, 4 by default) is raised to 64, the
most the show bible allows, unless `--provider-concurrency` says otherwise: with 4, twenty
episodes queue behind four Claude calls at a time, which measures that setting, not the engine.

The CPU time of the workers and of this process (the fake) is printed for each set-up. With
`--profile`, the N episodes run once more in one worker whose threads are each profiled by their
CPU time (cProfile with `time.thread_time`), and the functions that use it are printed.

    python bench/bench_workers.py [--episodes 20] [--runs 3] [--latency-ms 1000]
        [--provider-concurrency 64] [--backlog 1024] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from castline.engine import episodes, runtime  # noqa: E402
from castline.store.records import CallRecord  # noqa: E402
from tests.fake_api import FakeAPI  # noqa: E402
from tests.fake_api import server as fake_server  # noqa: E402

EXAMPLE = ROOT / "examples" / "heat-island"
TOPIC = "Why cities run hot, who pays for it, and what actually cools them"
SOURCES = [
    EXAMPLE / "sources" / "cities-and-heat.md",
    EXAMPLE / "sources" / "health-and-equity.html",
    EXAMPLE / "sources" / "cooling-strategies.pdf",
]
KEYS = {  # fake keys: the fake accepts any
    "ANTHROPIC_API_KEY": "sk-ant-benchmark-key-not-real",
    "GEMINI_API_KEY": "gemini-benchmark-key-not-real",
    "OPENAI_API_KEY": "sk-proj-benchmark-key-not-real",
}
FINAL = {"completed", "rejected", "halted", "failed", "awaiting-review"}
RUN_TIMEOUT_S = 540.0


def wire(show: Path, url: str, concurrency: int) -> None:
    """The example show, text only, with every provider pointed at the fake (the approach of
    tests/test_episode_via_fake_api.py, with a timeout well above the simulated latency)."""
    settings = f"timeout_s: 60, concurrency: {concurrency}"
    show.write_text(
        (EXAMPLE / "show.yaml").read_text()
        + "\naudio: {voice: false}\n"
        + "providers:\n"
        + f'  anthropic: {{base_url: "{url}", {settings}}}\n'
        + f'  gemini: {{base_url: "{url}", {settings}}}\n'
        + f'  openai: {{base_url: "{url}/v1", {settings}}}\n'
    )


def critical_path(calls: list[CallRecord]) -> tuple[float, int]:
    """The longest chain of calls that ran one after another (each started after the previous
    finished), by the sum of their durations; and how many calls it has."""
    done = sorted(
        ((c.started_at, c.finished_at) for c in calls if c.finished_at is not None),
        key=lambda span: span[1],
    )
    best: list[tuple[float, int]] = []
    for i, (start, stop) in enumerate(done):
        before = [best[j] for j in range(i) if done[j][1] <= start]
        length, links = max(before, default=(0.0, 0))
        best.append((length + stop - start, links + 1))
    return max(best, default=(0.0, 0))


def in_flight(calls: list[CallRecord]) -> float:
    """Time with at least one call in flight (the union of the calls' intervals)."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted((c.started_at, c.finished_at) for c in calls if c.finished_at):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


@dataclass
class Measured:
    wall: float  # first episode started -> last finished (engine time)
    spawn_to_done: float  # workers spawned -> last finished (start-up included)
    per_episode: float  # median of the episodes' own wall times
    late_start: float  # last episode's start - first episode's start
    critical: float  # critical path (the lone episode's; for a batch, the median)
    critical_links: int
    busy: float  # time with a call in flight (same)
    calls: int  # paid calls, all episodes
    statuses: dict[str, int]
    peak: int  # most model requests the fake served at once
    worker_cpu: float  # CPU seconds of the worker processes
    fake_cpu: float  # CPU seconds of this process while they ran (the fake; polling the store)


def measure(
    count: int,
    workers: int,
    concurrency: int,
    args: argparse.Namespace,
    profile_to: Path | None = None,
) -> Measured:
    fake_server._Server.request_queue_size = args.backlog  # read when the server starts listening
    with FakeAPI(latency_ms=args.latency_ms) as fake, tempfile.TemporaryDirectory() as home:
        os.environ["CASTLINE_HOME"] = home
        show = Path(home) / "show" / "show.yaml"
        show.parent.mkdir()
        wire(show, fake.url, args.provider_concurrency)
        run_ids = [episodes.enqueue(show, TOPIC, SOURCES) for _ in range(count)]
        runtime.shutdown()  # this process only enqueues; the workers run the episodes
        store = runtime.store()
        env = {**os.environ, "CASTLINE_HOME": home}
        command = [sys.executable, "-m", "castline", "worker", "--concurrency", str(concurrency)]
        if profile_to is not None:  # the same worker, its threads profiled (CPU time)
            command = [sys.executable, __file__, "--profiled-worker", str(profile_to), *command[3:]]
        logs = [open(Path(home) / f"worker-{i}.log", "wb") for i in range(workers)]  # noqa: SIM115
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu0 = time.process_time()
        spawned = time.time()
        processes = [
            subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT) for log in logs
        ]
        final: dict[str, str] = {}
        try:
            while True:
                for record in store.list_runs(limit=len(run_ids)):  # one query a poll
                    if record.status in FINAL:
                        final[record.id] = record.status
                if len(final) == len(run_ids):
                    break
                if time.time() - spawned > RUN_TIMEOUT_S:
                    raise SystemExit(f"timed out; finished: {final}")
                if any(p.poll() is not None for p in processes):
                    log_text = (Path(home) / "worker-0.log").read_text()
                    raise SystemExit(f"a worker exited: {log_text}")
                time.sleep(0.5)  # the wall times come from the store, not from polling
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            for log in logs:
                log.close()
        fake_cpu = time.process_time() - cpu0
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        worker_cpu = used.ru_utime + used.ru_stime - children.ru_utime - children.ru_stime
        starts, ends, walls, criticals, busies, all_calls = [], [], [], [], [], 0
        for run_id in run_ids:
            record = store.get_run(run_id)
            started = min(e.ts for e in store.events(run_id) if e.kind != "created")
            assert record.finished_at is not None
            starts.append(started)
            ends.append(record.finished_at)
            walls.append(record.finished_at - started)
            calls = store.calls(run_id)
            all_calls += len(calls)
            criticals.append(critical_path(calls))
            busies.append(in_flight(calls))
        counted: dict[str, int] = {}
        for status in final.values():
            counted[status] = counted.get(status, 0) + 1
        store.engine.dispose()
        return Measured(
            wall=max(ends) - min(starts),
            spawn_to_done=max(ends) - spawned,
            per_episode=statistics.median(walls),
            late_start=max(starts) - min(starts),
            critical=statistics.median(c[0] for c in criticals),
            critical_links=int(statistics.median(c[1] for c in criticals)),
            busy=statistics.median(busies),
            calls=all_calls,
            statuses=counted,
            peak=max(
                fake.stats.peak_in_flight[e]
                for e in ("anthropic.messages", "gemini.generate", "openai.chat")
            ),
            worker_cpu=worker_cpu,
            fake_cpu=fake_cpu,
        )


def profiled_worker(out: str, worker_args: list[str]) -> None:
    """Run `castline worker` with every thread profiled by CPU time, and save the merged stats
    to `out` when it stops."""
    profiles: list[cProfile.Profile] = []

    def start(*_: Any) -> None:  # the first call in each new thread; replaced by the profiler
        profile = cProfile.Profile(time.thread_time)
        profiles.append(profile)
        profile.enable()

    threading.setprofile(start)
    from castline.cli import cli

    try:
        cli(worker_args, standalone_mode=False)
    finally:
        threading.setprofile(None)  # type: ignore[arg-type]
        # A snapshot, not `create_stats`: that would close the calls still on the stacks of the
        # idle threads with this thread's CPU clock, which means nothing for theirs.
        snapshots = [_Snapshot(profile) for profile in profiles]
        pstats.Stats(*[s for s in snapshots if s.stats]).dump_stats(out)


class _Snapshot:
    """A profile's statistics so far, as pstats reads a profile."""

    def __init__(self, profile: cProfile.Profile) -> None:
        profile.snapshot_stats()
        self.stats = profile.stats  # type: ignore[attr-defined]

    def create_stats(self) -> None:
        """The stats were taken from the profile already (pstats calls this to make them)."""


# Functions reported by --profile (cumulative CPU): (file's tail, function name).
WATCHED = [
    ("engine/workflows.py", "call_step"),
    ("paid/calls.py", "execute"),
    ("budget/ledger.py", "fits"),
    ("budget/ledger.py", "reserve"),
    ("budget/policy.py", "candidates"),
    ("budget/prices.py", "worst_case"),
    ("budget/prices.py", "cost"),
    ("genai_prices/__init__.py", "calc_price"),
    ("paid/limits.py", "slot"),
    ("paid/limits.py", "take"),
    ("store/store.py", "finish_call"),
    ("store/store.py", "add_event"),
    ("llm/prompts.py", "render"),
    ("llm/prompts.py", "token_bound"),
    ("llm/registry.py", "get"),
    ("llm/anthropic.py", "complete"),
    ("llm/gemini.py", "complete"),
    ("httpx/_client.py", "send"),
    ("engine/workflows.py", "review_step"),
    ("engine/workflows.py", "publish_step"),
    ("dbos/_sys_db.py", "record_operation_result"),
    ("sqlalchemy/engine/base.py", "_execute_context"),
]


def report_profile(path: Path, episodes_run: int) -> None:
    stats = pstats.Stats(str(path))
    entries: dict[tuple[str, int, str], Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for _cc, _nc, tt, _ct, _callers in entries.values())
    print(
        f"CPU profile of the worker's threads ({total:.1f} s, {total / episodes_run:.2f} s an "
        "episode; cumulative, recursion counted once per function):"
    )
    for tail, name in WATCHED:
        cumulative = sum(
            ct
            for (file, _line, func), (_cc, _nc, _tt, ct, _callers) in entries.items()
            if func == name and file.replace(os.sep, "/").endswith(tail)
        )
        if cumulative:
            print(f"  {tail + ':' + name:<44} {cumulative:6.2f} s  {cumulative / total:6.1%}")
    print("  top functions by own CPU time:")
    own = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[:15]
    for (file, line, func), (_cc, calls_made, tt, _ct, _callers) in own:
        where = "/".join(Path(file).parts[-2:]) if file != "~" else "built-in"
        print(f"    {tt:6.2f} s  {tt / total:6.1%}  {calls_made:7d} calls  {func} ({where}:{line})")


def median_of(measured: list[Measured], name: str) -> float:
    return statistics.median(getattr(m, name) for m in measured)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--latency-ms", type=int, default=1000)
    parser.add_argument(
        "--provider-concurrency",
        type=int,
        default=64,
        help="each provider's `concurrency` in the show bible (castline's default is 4)",
    )
    parser.add_argument("--backlog", type=int, default=1024, help="the fake's listen backlog")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also run the N episodes once more in one worker whose threads are profiled",
    )
    parser.add_argument("--profiled-worker", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.profiled_worker:
        profiled_worker(args.profiled_worker, rest)
        return
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    n, runs = args.episodes, args.runs
    os.environ.update(KEYS)  # routing is fixed when a run is recorded: it needs the keys then
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )
    print(
        f"{args.latency_ms} ms per model request, provider concurrency "
        f"{args.provider_concurrency}, fake backlog {args.backlog}, median of {runs} runs"
    )
    setups = [
        ("1 episode, 1 worker (--concurrency 1)", 1, 1, 1),
        (f"{n} episodes, 1 worker (--concurrency {n})", n, 1, n),
        (f"{n} episodes, 2 workers (--concurrency {max(1, n // 2)} each)", n, 2, max(1, n // 2)),
    ]
    results: list[tuple[str, list[Measured]]] = []
    for label, count, workers, concurrency in setups:
        measured = [measure(count, workers, concurrency, args) for _ in range(runs)]
        results.append((label, measured))
    alone = results[0][1]
    one_wall, one_critical = median_of(alone, "wall"), median_of(alone, "critical")
    print(
        f"one episode: {alone[0].calls} paid calls; critical path {one_critical:.2f} s "
        f"({alone[0].critical_links} calls one after another); a call in flight "
        f"{median_of(alone, 'busy'):.2f} s"
    )
    for label, measured in results:
        wall = median_of(measured, "wall")
        print(f"{label}:")
        print(
            f"  wall time {wall:.2f} s (min {min(m.wall for m in measured):.2f}, max "
            f"{max(m.wall for m in measured):.2f}) = {wall / one_wall:.2f}x one episode, "
            f"{wall / one_critical:.2f}x its critical path"
        )
        print(
            f"  workers spawned to last finished {median_of(measured, 'spawn_to_done'):.2f} s; "
            f"each episode {median_of(measured, 'per_episode'):.2f} s (median); last start "
            f"{median_of(measured, 'late_start'):.2f} s after the first"
        )
        print(
            f"  episodes' critical path {median_of(measured, 'critical'):.2f} s (median); "
            f"{measured[0].calls} paid calls; statuses {measured[-1].statuses}; at most "
            f"{max(m.peak for m in measured)} model requests at once"
        )
        worker_cpu, fake_cpu = median_of(measured, "worker_cpu"), median_of(measured, "fake_cpu")
        spawned, cores = median_of(measured, "spawn_to_done"), os.cpu_count() or 1
        print(
            f"  CPU: workers {worker_cpu:.1f} s, the fake (this process) {fake_cpu:.1f} s; "
            f"{(worker_cpu + fake_cpu) / (spawned * cores):.0%} of the machine's {cores} cores "
            "from spawn to the last episode"
        )
    if args.profile:
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "worker.prof"
            profiled = measure(n, 1, n, args, profile_to=out)
            print(f"{n} episodes, 1 profiled worker: wall time {profiled.wall:.2f} s")
            report_profile(out, n)


if __name__ == "__main__":
    main()

"""Benchmark: castline's cost per paid step, against a bare DBOS step in the same process.

DBOS is launched by castline's runtime on a fresh SQLite system database (WAL, as every castline
process runs it). Each round times, inside one workflow each:

- K calls of a bare `@DBOS.step` that does nothing (DBOS's own cost: the step's checkpoint);
- K calls of castline's paid-call step, `castline.engine.workflows.call_step`, exactly as an
  episode makes them: the task validated from its JSON payload, the call journal consulted, the
  worst case reserved in the ledger, the offline provider (no latency) asked, the call settled
  and its audit event written, then DBOS's checkpoint of the outcome.

A workflow with no step is timed too and its time taken off both, so the figures are per step.
For the breakdown, the same paid path is also timed without DBOS (`castline.engine.paid.calls.
execute` called directly) and the offline provider alone (`complete`, nothing else). The task is
the orchestrator's research fan-out decision (`FanoutTask`, six questions), the cheapest task to
solve, so what is measured is the engine and not the provider. Each round uses fresh runs (the
ledger's totals are summed over a run's calls, so a run's size matters a little) with the
example show's budget raised, so that no reservation is refused or degraded.

`--profile` profiles one more round of the paid steps with cProfile and prints where the time
goes: the castline functions of the paid path (cumulative, per step) and the top functions by
their own time.

    python bench/bench_step_overhead.py [--runs 5] [--steps 100] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dbos import DBOS

from castline.engine import preflight, runtime, workflows
from castline.engine.paid import calls
from castline.llm.offline.provider import OfflineProvider
from castline.llm.tasks import FanoutTask, Question

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "heat-island"
TOPIC = "Why cities run hot, who pays for it, and what actually cools them"
SOURCES = [
    EXAMPLE / "sources" / "cities-and-heat.md",
    EXAMPLE / "sources" / "health-and-equity.html",
    EXAMPLE / "sources" / "cooling-strategies.pdf",
]
STAGE, ROLE = "research", "orchestrator"
TASK = FanoutTask(
    topic=TOPIC,
    questions=[
        Question(text=f"What does the evidence say about heat question {i}?", focus=f"theme {i}")
        for i in range(6)
    ],
    max_questions=4,
)
# Functions of the paid path, reported with --profile: (file's tail, function name, label).
PAID_PATH = [
    ("dbos/_core.py", "invoke_step", "DBOS step wrapper (checkpoint included)"),
    ("engine/workflows.py", "call_step", "castline.engine.workflows.call_step"),
    ("llm/base.py", "of_kind", "Task.of_kind"),
    ("pydantic/main.py", "model_validate", "pydantic model_validate (task, show, ...)"),
    ("paid/calls.py", "execute", "castline.engine.paid.calls.execute"),
    ("store/store.py", "completed_call", "  Store.completed_call (the call journal)"),
    ("paid/calls.py", "__init__", "  _Call.__init__ (prompt rendered)"),
    ("llm/prompts.py", "render", "  castline.llm.prompts.render"),
    ("paid/calls.py", "_input_tokens", "  _Call._input_tokens"),
    ("budget/ledger.py", "fits", "    Ledger.fits (read: mode and totals)"),
    ("llm/prompts.py", "token_bound", "    castline.llm.prompts.token_bound"),
    ("budget/ledger.py", "reserve", "  Ledger.reserve (locked transaction)"),
    ("budget/ledger.py", "_totals", "    ledger _totals (summed over the run's calls)"),
    ("paid/calls.py", "_on_route", "  _Call._on_route"),
    ("paid/attempts.py", "run", "    Attempts.run (slot, retries)"),
    ("paid/limits.py", "slot", "      limits.slot (a provider slot in the store)"),
    ("paid/limits.py", "take", "        limits.take (write-locked transaction)"),
    ("offline/provider.py", "complete", "      OfflineProvider.complete"),
    ("budget/ledger.py", "settle", "    Ledger.settle"),
    ("store/store.py", "finish_call", "    Store.finish_call (settlement)"),
    ("budget/ledger.py", "mark_completed_later", "    Ledger.mark_completed_later"),
    ("store/store.py", "add_event", "    Store.add_event (audit event)"),
    ("budget/policy.py", "candidates", "BudgetPolicy.candidates (in fits and in reserve)"),
    ("budget/prices.py", "worst_case", "  Pricer.worst_case"),
    ("genai_prices/__init__.py", "calc_price", "    genai_prices.calc_price"),
    ("sqlalchemy/engine/base.py", "_execute_context", "SQLAlchemy statement execution"),
    ("sqlalchemy/engine/base.py", "commit", "SQLAlchemy commits"),
]


@DBOS.step(name="bench.bare_step")
def bare_step() -> None:
    return None


@DBOS.workflow(name="bench.bare_steps")
def bare_steps(count: int) -> None:
    for _ in range(count):
        bare_step()


@DBOS.workflow(name="bench.paid_steps")
def paid_steps(run_id: str, count: int, payload: dict[str, Any]) -> None:
    for i in range(count):
        workflows.call_step(run_id, f"bench.call.{i}", STAGE, ROLE, TASK.kind, payload)


def new_run(show: Path) -> str:
    return preflight.create_run(show, TOPIC, SOURCES, provider="offline")


def timed(body: Callable[[], object]) -> float:
    started = time.perf_counter()
    body()
    return time.perf_counter() - started


def execute_directly(run_id: str, count: int) -> None:
    ctx = runtime.context(run_id)
    store = runtime.store()
    for i in range(count):
        spec = calls.CallSpec.of(ctx, f"bench.direct.{i}", STAGE, ROLE)
        outcome = calls.execute(store, spec, TASK, ctx.policy)
        assert outcome.output is not None, outcome.refusal


def provider_alone(count: int) -> None:
    provider = OfflineProvider()
    for _ in range(count):
        provider.complete(TASK, "claude-sonnet-4-6")


def one_round(show: Path, steps: int, flip: bool = False) -> dict[str, float]:
    """Seconds per step of each variant (an empty workflow's time taken off the workflows);
    `flip` times the variants in the reverse order."""
    payload = TASK.model_dump(mode="json")
    paid_run, direct_run = new_run(show), new_run(show)
    runtime.context(paid_run)  # read once per process, as in a worker
    runtime.context(direct_run)
    variants: list[tuple[str, Callable[[], object]]] = [
        ("empty", lambda: bare_steps(0)),
        ("bare DBOS step", lambda: bare_steps(steps)),
        ("castline paid step (call_step)", lambda: paid_steps(paid_run, steps, payload)),
        ("calls.execute without DBOS", lambda: execute_directly(direct_run, steps)),
        ("offline provider alone", lambda: provider_alone(steps)),
    ]
    times = {name: timed(body) for name, body in (variants[::-1] if flip else variants)}
    empty = statistics.median(
        [times.pop("empty")] + [timed(lambda: bare_steps(0)) for _ in range(4)]
    )
    made = runtime.store().calls(paid_run)
    assert len(made) == steps and all(c.status == "ok" for c in made), "a call was not made"
    return {
        "empty workflow (total)": empty * steps,
        "bare DBOS step": times["bare DBOS step"] - empty,
        "castline paid step (call_step)": times["castline paid step (call_step)"] - empty,
        "calls.execute without DBOS": times["calls.execute without DBOS"],
        "offline provider alone": times["offline provider alone"],
    }


def profile(show: Path, steps: int) -> None:
    payload = TASK.model_dump(mode="json")
    run_id = new_run(show)
    runtime.context(run_id)
    profiler = cProfile.Profile()
    profiler.enable()
    paid_steps(run_id, steps, payload)
    profiler.disable()
    stats = pstats.Stats(profiler)
    entries: dict[tuple[str, int, str], Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for _cc, _nc, tt, _ct, _callers in entries.values())
    print(
        f"cProfile of {steps} paid steps in one workflow ({total / steps * 1e6:.0f} µs a step "
        "under the profiler; cumulative per step, a caller's figure includes its callees'):"
    )
    for tail, name, label in PAID_PATH:
        cumulative = sum(
            ct
            for (file, _line, func), (_cc, _nc, _tt, ct, _callers) in entries.items()
            if func == name and file.replace(os.sep, "/").endswith(tail)
        )
        if cumulative:
            print(f"  {label:<52} {cumulative / steps * 1e6:7.0f} µs  {cumulative / total:6.1%}")
    print("  top functions by own time:")
    own = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[:12]
    for (file, line, func), (_cc, calls_made, tt, _ct, _callers) in own:
        where = "/".join(Path(file).parts[-2:]) if file != "~" else "built-in"
        print(
            f"    {tt / steps * 1e6:7.0f} µs  {calls_made / steps:5.1f}x a step  "
            f"{func} ({where}:{line})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100, help="steps per workflow (K)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary")
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )
    for variable in ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "OPENAI_API_KEY"):
        os.environ.pop(variable, None)  # offline, whatever this shell has
    with tempfile.TemporaryDirectory() as home:
        os.environ["CASTLINE_HOME"] = home
        show = Path(home) / "show" / "show.yaml"
        show.parent.mkdir()
        bible = (EXAMPLE / "show.yaml").read_text()
        bible = bible.replace("per_episode: 33.25", "per_episode: 100000")  # never refused
        show.write_text(bible + "\naudio: {voice: false}\n")
        runtime.launch()
        one_round(show, 10)  # warm up: imports, caches, the first run's context
        rounds = [one_round(show, args.steps, flip=i % 2 == 1) for i in range(args.runs)]
        print(f"{args.steps} steps per workflow, median of {args.runs} rounds (µs per step):")
        figures = {name: statistics.median(r[name] for r in rounds) for name in rounds[0]}
        for name, seconds in figures.items():
            spread = [r[name] for r in rounds]
            print(
                f"  {name:<32} {seconds / args.steps * 1e6:8.0f} µs  (min "
                f"{min(spread) / args.steps * 1e6:.0f}, max {max(spread) / args.steps * 1e6:.0f})"
            )
        bare, paid = figures["bare DBOS step"], figures["castline paid step (call_step)"]
        print(f"  ratio paid step / bare step: {paid / bare:.1f}x (goal at most 1.5x)")
        direct = figures["calls.execute without DBOS"]
        provider = figures["offline provider alone"]
        us = 1e6 / args.steps
        print(
            f"  castline's own cost per paid step (paid - bare): {(paid - bare) * us:.0f} µs; "
            f"measured apart, calls.execute without DBOS {direct * us:.0f} µs, of which the "
            f"offline provider {provider * us:.0f} µs"
        )
        if args.profile:
            profile(show, args.steps)
        runtime.shutdown()


if __name__ == "__main__":
    main()

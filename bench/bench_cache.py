"""Benchmark: how much of an episode's input is read from the prompt cache, and what it saves.

Produces the example episode through the real Anthropic SDK against the local fake API (which
simulates Anthropic's prompt cache: breakpoints, TTLs, minimum lengths), once with the show's
default layout and once with cache breakpoints off, and prints the share of input tokens read
from the cache as the fake reports it, and the cost of each run.

    python bench/bench_cache.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from castline.engine import episodes, runtime  # noqa: E402
from tests.fake_api import FakeAPI  # noqa: E402

EXAMPLE = ROOT / "examples" / "heat-island"
TOPIC = "Why cities run hot, who pays for it, and what actually cools them"
SOURCES = [
    EXAMPLE / "sources" / "cities-and-heat.md",
    EXAMPLE / "sources" / "health-and-equity.html",
    EXAMPLE / "sources" / "cooling-strategies.pdf",
]


def one_run(cache: bool) -> tuple[float, Decimal, int]:
    with FakeAPI() as fake, tempfile.TemporaryDirectory() as home:
        os.environ["CASTLINE_HOME"] = home
        show = Path(home) / "show" / "show.yaml"
        show.parent.mkdir()
        show.write_text(
            (EXAMPLE / "show.yaml").read_text()
            + f'\nproviders:\n  anthropic: {{base_url: "{fake.url}", '
            f"prompt_cache: {str(cache).lower()}}}\n"
            f'  gemini: {{base_url: "{fake.url}"}}\n'
        )
        outcome = episodes.produce(show, TOPIC, SOURCES)
        runtime.shutdown()
        tokens = fake.stats.tokens["anthropic"]
        return fake.stats.cache_hit_share("anthropic"), outcome.cost, tokens["input"]  # Claude


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    os.environ.setdefault("ANTHROPIC_API_KEY", "sk-ant-benchmark-key-not-real")
    os.environ.setdefault("GEMINI_API_KEY", "gemini-benchmark-key-not-real")
    results = {}
    for cache in (True, False):
        measured = [one_run(cache) for _ in range(runs)]
        share = statistics.median(m[0] for m in measured)
        cost = statistics.median(m[1] for m in measured)
        tokens = statistics.median(m[2] for m in measured)
        results[cache] = cost
        label = "default layout (breakpoints)" if cache else "caching disabled"
        print(
            f"{label}: {share:.1%} of {tokens:,.0f} input tokens read from cache, "
            f"episode cost ${cost:.4f} (median of {runs})"
        )
    print(
        f"cost ratio cached / uncached: {results[True] / results[False]:.3f} "
        f"({1 - results[True] / results[False]:.1%} saved)"
    )


if __name__ == "__main__":
    main()

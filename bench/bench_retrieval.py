"""Benchmark: how research prompts and retrieval time grow with the size of a source.

A synthetic report of 1, 10 and 50 MB is made from the example episode's sources (their
sentences shuffled into numbered chapters, each chapter's sentences marked with its number so
that no two passages are the same). For each size: the time to cut and index it, the median time
to pick one question's passages, and the input tokens of one research prompt (the local bound
`castline.llm.prompts.token_bound`, which the budget reserves), against what the prompt would be
with the source sent whole.

    python bench/bench_retrieval.py [--sizes 1 10 50] [--runs 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

from castline.domain import Section, Source
from castline.llm import prompts
from castline.llm.tasks import Question, ResearchTask
from castline.retrieval import Retriever
from castline.sources import read_sources
from castline.text import sentences

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "heat-island" / "sources"
QUESTIONS = [
    "Who is most at risk from extreme heat?",
    "How much do street trees cool a city?",
    "What do cool roofs cost and save?",
    "Why are nights in cities warmer than in the countryside?",
    "How are heat deaths counted?",
]


def report(megabytes: int) -> Source:
    pool = [s for src in read_sources(sorted(EXAMPLE.iterdir())) for s in sentences(src.text)]
    rng = random.Random(megabytes)
    sections: list[Section] = []
    size = 0
    chapter = 0
    while size < megabytes * 1_000_000:
        chapter += 1
        picked = rng.sample(pool, 12)
        text = "\n\n".join(f"In chapter {chapter}, {s[0].lower()}{s[1:]}" for s in picked)
        sections.append(Section(heading=f"Chapter {chapter}", text=text))
        size += len(text.encode())
    return Source(
        id="report", title="Report", path="report.md", kind="markdown", sha256="0",
        sections=sections,
    )  # fmt: skip


def tokens(source: list[Source], question: str) -> int:
    task = ResearchTask(
        topic="Why cities run hot",
        question=Question(text=question, focus="heat"),
        sources=source,
        max_notes=18,
    )
    return prompts.token_bound(task)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"{'size':>6} {'words':>10} {'passages':>9} {'index s':>8} {'pick ms':>8} "
          f"{'prompt tok':>11} {'whole tok':>11}")  # fmt: skip
    for megabytes in args.sizes:
        source = report(megabytes)
        started = time.perf_counter()
        retriever = Retriever([source])
        indexed = time.perf_counter() - started
        picks = []
        for _ in range(args.runs):
            for question in QUESTIONS:
                started = time.perf_counter()
                retriever.sources_for(question)
                picks.append((time.perf_counter() - started) * 1000)
        prompt = statistics.median(tokens(retriever.sources_for(q), q) for q in QUESTIONS)
        whole = tokens([source], QUESTIONS[0])
        print(
            f"{megabytes:>4}MB {source.word_count:>10,} {len(retriever.passages):>9,} "
            f"{indexed:>8.1f} {statistics.median(picks):>8.1f} {prompt:>11,.0f} {whole:>11,}"
        )


if __name__ == "__main__":
    main()

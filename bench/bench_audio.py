"""Benchmark: real-time factors of the offline voice (espeak-ng) and of mastering + encoding,
and the peak memory of mastering.

Synthesis: every turn of the example episode's script (written offline), one clip each.
Mastering: those clips assembled into the ~20-minute episode, loudness-normalised, limited,
MP3-encoded and verified by decoding. A real-time factor is processing time / audio duration
(below 1 is faster than real time). Medians of several runs.

Peak memory: one more mastering in a fresh process that does nothing else (so earlier work
cannot hold the high-water mark), measured two ways: the peak of memory traced by tracemalloc
during the call (numpy arrays and Python objects; not the buffers of LAME or libsndfile), and
the process's peak resident set size (`ru_maxrss`), with what it was before the call (the
interpreter and the imported libraries).

    python bench/bench_audio.py [--runs 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "heat-island"
TOPIC = "Why cities run hot, who pays for it, and what actually cools them"
SOURCES = [
    EXAMPLE / "sources" / "cities-and-heat.md",
    EXAMPLE / "sources" / "health-and-equity.html",
    EXAMPLE / "sources" / "cooling-strategies.pdf",
]


def _peak_memory(inputs: list[Any], outline: Any, audio: Any, base: Path) -> tuple[int, int, int]:
    """Run in a fresh process: (traced peak, ru_maxrss before, ru_maxrss after), in bytes."""
    from castline.audio import master

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    tracemalloc.start()
    master.master(inputs, outline, audio, base)
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return traced, before, after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    from castline import production, workflow
    from castline.audio import clips, master
    from castline.audio.tts import get_engine
    from castline.config import load_show
    from castline.domain import Episode

    with tempfile.TemporaryDirectory() as home:
        os.environ["CASTLINE_HOME"] = home
        show_path = Path(home) / "show" / "show.yaml"
        show_path.parent.mkdir()
        show_path.write_text((EXAMPLE / "show.yaml").read_text() + "\naudio: {voice: false}\n")
        outcome = production.produce(show_path, TOPIC, SOURCES)
        workflow.shutdown()
        assert outcome.output_dir is not None
        episode = Episode.model_validate_json((outcome.output_dir / "episode.json").read_text())
        show = load_show(show_path)
        engine = get_engine("espeak")
        specs = clips.specs(show, episode.script.turns, engine)
        synthesis, mastering = [], []
        for run in range(runs):
            directory = Path(home) / f"clips-{run}"
            started = time.perf_counter()
            rendered = [clips.render(s, engine, directory, "bench") for s in specs]
            elapsed = time.perf_counter() - started
            speech = sum(r.duration for r in rendered)
            synthesis.append(elapsed / speech)
            inputs = [
                master.ClipIn(s.index, s.speaker, s.segment, s.text, r.path)
                for s, r in zip(specs, rendered, strict=True)
            ]
            started = time.perf_counter()
            done = master.master(inputs, episode.outline, show.audio, show_path.parent)
            mastering.append((time.perf_counter() - started) / done.timeline.duration)
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            traced, rss_before, rss_after = pool.apply(
                _peak_memory, (inputs, episode.outline, show.audio, show_path.parent)
            )
    minutes = done.timeline.duration / 60
    print(
        f"espeak-ng synthesis: real-time factor {statistics.median(synthesis):.4f} "
        f"({len(specs)} turns, {speech / 60:.1f} min of speech; median of {runs})"
    )
    print(
        f"mastering + MP3 encoding + verification: real-time factor "
        f"{statistics.median(mastering):.4f} for a {minutes:.1f}-minute episode "
        f"({done.loudness_lufs:.1f} LUFS, true peak {done.true_peak_db:.1f} dBTP)"
    )
    mib = 1024 * 1024
    print(
        f"mastering peak memory: {traced / mib:.0f} MiB traced (tracemalloc), "
        f"peak RSS {rss_after / mib:.0f} MiB in a process that only masters "
        f"({rss_before / mib:.0f} MiB before the call)"
    )


if __name__ == "__main__":
    main()

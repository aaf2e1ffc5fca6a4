"""Benchmark: real-time factors of the offline voice (espeak-ng) and of mastering + encoding,
and the peak memory of mastering.

Synthesis: every turn of the example episode's script (written offline), one clip each.
Mastering: those clips assembled into the ~20-minute episode, loudness-normalised, limited,
MP3-encoded and verified by decoding. A real-time factor is processing time / audio duration
(below 1 is faster than real time). Medians of several runs.

Peak memory: mastering in a fresh process that does nothing else (so that nothing done before
holds the high-water mark), measured two ways: the process's peak resident set size (everything:
`VmHWM` in /proc/self/status, Linux only; `ru_maxrss` would not do, as Linux carries it over
from the parent through exec), with what it was just before the call (the interpreter and the
libraries); then, mastering again, the peak of what tracemalloc traces (numpy arrays and Python
objects, not LAME's or libsndfile's own buffers; tracing costs memory of its own, hence the
second call).

    python bench/bench_audio.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "heat-island"
TOPIC = "Why cities run hot, who pays for it, and what actually cools them"
SOURCES = [
    EXAMPLE / "sources" / "cities-and-heat.md",
    EXAMPLE / "sources" / "health-and-equity.html",
    EXAMPLE / "sources" / "cooling-strategies.pdf",
]


def _peak_rss() -> int:
    """The process's peak resident set size, in bytes."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) * 1024  # reported in kB


def peak_memory(arguments: Path) -> None:
    """Master the pickled `arguments` and print the peak memory, in bytes, as JSON. Meant to run
    in a process of its own."""
    from castline.audio import master

    inputs, outline, audio, base = pickle.loads(arguments.read_bytes())
    before = _peak_rss()
    master.master(inputs, outline, audio, base)
    after = _peak_rss()
    tracemalloc.start()
    master.master(inputs, outline, audio, base)
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(json.dumps({"traced": traced, "rss_before": before, "rss_peak": after}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--peak-memory", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.peak_memory:
        peak_memory(options.peak_memory)
        return
    runs = options.runs
    from castline.audio import clips, master
    from castline.audio.tts import Speech, build
    from castline.config import load_show
    from castline.domain import Episode
    from castline.engine import episodes, runtime

    with tempfile.TemporaryDirectory() as home:
        os.environ["CASTLINE_HOME"] = home
        show_path = Path(home) / "show" / "show.yaml"
        show_path.parent.mkdir()
        show_path.write_text((EXAMPLE / "show.yaml").read_text() + "\naudio: {voice: false}\n")
        outcome = episodes.produce(show_path, TOPIC, SOURCES)
        runtime.shutdown()
        assert outcome.output_dir is not None
        episode = Episode.model_validate_json((outcome.output_dir / "episode.json").read_text())
        show = load_show(show_path)
        engine = build("espeak", None, show)
        specs = clips.specs(show, episode.script.turns, engine, show_path.parent)

        def speak(spec: clips.ClipSpec) -> Speech:
            return engine.synthesize(spec.text, spec.voice, words_per_minute=spec.words_per_minute)

        synthesis, mastering = [], []
        for run in range(runs):
            directory = Path(home) / f"clips-{run}"
            started = time.perf_counter()
            rendered = [clips.render(s, speak, directory, "bench") for s in specs]
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
        arguments = Path(home) / "master-arguments.pickle"
        arguments.write_bytes(pickle.dumps((inputs, episode.outline, show.audio, show_path.parent)))
        child = [sys.executable, __file__, "--peak-memory", str(arguments)]
        memory = json.loads(subprocess.run(child, capture_output=True, check=True).stdout)
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
        f"mastering peak memory: {memory['traced'] / mib:.0f} MiB traced by tracemalloc; "
        f"peak RSS {memory['rss_peak'] / mib:.0f} MiB in a process that only masters "
        f"({memory['rss_before'] / mib:.0f} MiB before the call)"
    )


if __name__ == "__main__":
    main()

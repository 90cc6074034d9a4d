"""Where an ingest's wall time goes: its phases, timed in one process (not a comparison).

Runs the ingest of the bench_ingest tree in this process with the pipeline's phase
functions wrapped in timers, then prints, per phase, how often it ran, its total time,
and when it first started and last ended (seconds since the ingest started). Tasks this
process parsed itself show as `run_task`; waiting for a worker's result as `receive`.

    .venv/bin/python benchmarks/ingest_timeline.py --size 1000 --workers 1
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_ingest import build_tree  # noqa: E402

from workbench.sources.claude_code import parallel, pipeline  # noqa: E402

PHASES = [
    (pipeline, "find_files"),
    (parallel, "run_task"),
    (parallel.Worker, "receive"),
    (pipeline._Run, "_take_entries"),
    (pipeline._Run, "_take_raw"),
    (pipeline._Run, "finalize"),
    (pipeline._Dedup, "winners"),
    (pipeline._Run, "_write_messages"),
    (pipeline._Run, "_sessions_projects"),
    (pipeline._Run, "_windows"),
    (pipeline.DatasetWriter, "__exit__"),
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=1000, help="tree size in MB (default 1000)")
    parser.add_argument("--workers", type=int, default=0, help="parser processes beside this one")
    parser.add_argument("--data", default="data", help="where the tree is cached (default data/)")
    args = parser.parse_args()
    tree = build_tree(Path(args.data) / f"bench-ingest-{args.size}mb", args.size)

    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    started = time.perf_counter()

    def timed(owner: object, name: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def run(*a, **k):
            t0 = time.perf_counter() - started
            try:
                return original(*a, **k)
            finally:
                spans[name].append((t0, time.perf_counter() - started))

        setattr(owner, name, run)

    for owner, name in PHASES:
        timed(owner, name)
    with tempfile.TemporaryDirectory(dir=args.data) as work:
        started = time.perf_counter()
        pipeline.ingest([tree], Path(work) / "ds", progress=False, workers=args.workers)
        total = time.perf_counter() - started

    print(f"\ningest of {tree} with --workers {args.workers}: {total:.2f} s\n")
    print("| phase | calls | total | first start | last end |")
    print("|---|---|---|---|---|")
    for _, name in PHASES:
        if runs := spans.get(name):
            busy = sum(b - a for a, b in runs)
            print(f"| {name} | {len(runs)} | {busy:.2f} s | {runs[0][0]:.2f} s | {runs[-1][1]:.2f} s |")


if __name__ == "__main__":
    main()

"""Parsing transcript lines into rows: the typed fast path against the dict path and JSON alone.

On the lines of the bench_ingest tree (held in memory, so no I/O is timed), one process,
the cycle collector paused as the ingest pauses it:

  orjson.loads          parse each line into Python objects, map nothing (the floor a
                        hand-written parser would start from)
  LineParser.general    parse into dicts, then validate and map to a row (every line)
  LineParser.fast       typed msgspec decode of the fields the row needs, falling back to
                        general for lines off the common shape (what the ingest runs)
  fast + Arrow batches  the same, plus the rows turned into Arrow tables of 4,096 rows

    .venv/bin/python benchmarks/bench_parse.py --size 200 --repeat 5
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_ingest import build_tree, tree_arguments  # noqa: E402

from workbench.sources.claude_code.reader import (  # noqa: E402
    ENTRY_SCHEMA,
    RAW_SCHEMA,
    LineParser,
    _table,
    find_files,
)


def main() -> None:
    args = tree_arguments(__doc__, size=200, repeat=5).parse_args()

    tree = build_tree(Path(args.data) / f"bench-ingest-{args.size}mb", args.size)
    files = [(src, src.path.read_bytes().split(b"\n")[:-1]) for src in find_files([tree / "projects"])]
    nbytes = sum(len(line) + 1 for _, lines in files for line in lines)
    nlines = sum(len(lines) for _, lines in files)

    def loads() -> None:
        for _, lines in files:
            for line in lines:
                orjson.loads(line)

    def general() -> None:
        for src, lines in files:
            p = LineParser(src)
            for i, line in enumerate(lines, 1):
                p.general(line, i, True)

    def fast() -> None:
        for src, lines in files:
            p = LineParser(src)
            for i, line in enumerate(lines, 1):
                p.fast(line, i) or p.general(line, i, True)

    def batches() -> None:
        entries: list[tuple] = []
        raw: list[tuple] = []
        for src, lines in files:
            p = LineParser(src)
            for i, line in enumerate(lines, 1):
                row = p.fast(line, i) or p.general(line, i, True)
                (entries if len(row) == len(ENTRY_SCHEMA) else raw).append(row)
                if len(entries) + len(raw) >= 4_096:
                    _table(entries, ENTRY_SCHEMA), _table(raw, RAW_SCHEMA)
                    entries, raw = [], []

    variants: dict[str, Callable[[], None]] = {
        "orjson.loads": loads,
        "LineParser.general": general,
        "LineParser.fast": fast,
        "fast + Arrow batches": batches,
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    gc.disable()
    for _ in range(args.repeat):
        for name, run in variants.items():  # interleaved: drift hits all alike
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    gc.enable()

    print(f"\n{nbytes / 1e6:,.0f} MB, {nlines:,} lines, {args.repeat} runs each (median)\n")
    print("| variant | time | MB/s | vs orjson.loads |")
    print("|---|---|---|---|")
    base = statistics.median(times["orjson.loads"])
    for name, runs in times.items():
        t = statistics.median(runs)
        print(f"| {name} | {t:.3f} s | {nbytes / 1e6 / t:,.0f} | {t / base:.2f}x |")


if __name__ == "__main__":
    main()

"""Parsing transcript lines into rows: the typed fast path against the dict path and JSON alone.

On the lines of the bench_ingest tree (held in memory, so no I/O is timed; handed over as
the ingest hands them: views into each file's bytes, the file checked for UTF-8 whole),
one process, the cycle collector paused as the ingest pauses it:

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
    _utf8,
    find_files,
)


def main() -> None:
    args = tree_arguments(__doc__, size=200, repeat=5).parse_args()

    tree = build_tree(Path(args.data) / f"bench-ingest-{args.size}mb", args.size)
    # lines as the ingest hands them over: views into the file's bytes, checked for UTF-8 whole
    files = []
    for src in find_files([tree / "projects"]):
        data = src.path.read_bytes()
        view, lines, start = memoryview(data), [], 0
        while (stop := data.find(b"\n", start)) >= 0:
            lines.append(view[start:stop])
            start = stop + 1
        files.append((src, lines, _utf8(data)))
    nbytes = sum(len(line) + 1 for _, lines, _ in files for line in lines)
    nlines = sum(len(lines) for _, lines, _ in files)

    def loads() -> None:
        for _, lines, _ in files:
            for line in lines:
                orjson.loads(line)

    def general() -> None:
        for src, lines, _ in files:
            p = LineParser(src)
            for i, line in enumerate(lines, 1):
                p.general(line, i, True)

    def fast() -> None:
        for src, lines, utf8 in files:
            p = LineParser(src)
            for i, line in enumerate(lines, 1):
                p.fast(line, i, utf8) or p.general(line, i, True)

    def batches() -> None:
        entries: list[tuple] = []
        raw: list[tuple] = []
        for src, lines, utf8 in files:
            p = LineParser(src)
            for i, line in enumerate(lines, 1):
                row = p.fast(line, i, utf8) or p.general(line, i, True)
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

"""Parsing transcript lines into rows: the ingest's parser against JSON alone.

On the lines of the bench_ingest tree, one process:

  orjson.loads    parse each line into Python objects, map nothing (the floor a
                  hand-written parser would start from; lines held in memory)
  LineParser      the ingest's parser: the fields the row needs, validated and mapped
                  (lines held in memory)
  parse_files     what a parser process runs: read the files, parse, write Arrow files

    .venv/bin/python benchmarks/bench_parse.py --size 200 --repeat 5
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_ingest import tree, tree_arguments  # noqa: E402

from workbench.sources.claude_code.reader import Bad, LineParser, find_files, parse_files  # noqa: E402


def main() -> None:
    args = tree_arguments(__doc__, size=200, repeat=5).parse_args()
    sources = find_files([tree(args) / "projects"])
    files = [(src, src.path.read_bytes().splitlines()) for src in sources]
    nbytes = sum(len(line) + 1 for _, lines in files for line in lines)
    nlines = sum(len(lines) for _, lines in files)

    def loads() -> None:
        for _, lines in files:
            for line in lines:
                orjson.loads(line)

    def parse() -> None:
        for src, lines in files:
            p = LineParser(src)
            for i, line in enumerate(lines, 1):
                with contextlib.suppress(Bad):  # a quarantined line
                    p.parse(line, i)

    def whole() -> None:
        with tempfile.TemporaryDirectory() as work:
            parse_files(sources, [None] * len(sources), Path(work) / "task")

    variants: dict[str, Callable[[], None]] = {
        "orjson.loads": loads,
        "LineParser": parse,
        "parse_files": whole,
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeat):
        for name, run in variants.items():  # interleaved: drift hits all alike
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)

    print(f"\n{nbytes / 1e6:,.0f} MB, {nlines:,} lines, {args.repeat} runs each (median)\n")
    print("| variant | time | MB/s | vs orjson.loads |")
    print("|---|---|---|---|")
    base = statistics.median(times["orjson.loads"])
    for name, runs in times.items():
        t = statistics.median(runs)
        print(f"| {name} | {t:.3f} s | {nbytes / 1e6 / t:,.0f} | {t / base:.2f}x |")


if __name__ == "__main__":
    main()

"""Benchmark the query lab's harness itself: overhead and reproducibility.

(a) Overhead: ``SELECT 1`` timed through ``measure.measure`` against a bare
    ``perf_counter_ns`` loop around the same driver call (target: within 5%).
(c) Overhead of the path ``strategies.compare`` really times (interleaved rounds, the
    counting wrapper, the per-run counter read) against a bare ``perf_counter_ns`` loop
    calling the same strategy on the bare engine, N+1 at one session (target: within 5%).
(b) Reproducibility: the same strategy comparison run twice in one process; each
    strategy's speedup over N+1 must agree within ±10% between the two runs.

    .venv/bin/python benchmarks/bench_harness.py --engines duckdb,sqlite,postgres [--pin CPU]

``--pin CPU`` runs this process and the PostgreSQL backend serving its connection on one
CPU, so each round trip is a switch on one core instead of a wake-up across cores (on
2 cores shared with other work, where that wake-up lands varies from run to run). The
load average is printed before and after: other work on the machine shows there.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workbench import lab, measure, strategies  # noqa: E402
from workbench.sources.synthetic import generate  # noqa: E402


def bare_loop(engine, repeat: int) -> list[int]:
    times = []
    with measure.gc_paused():  # as the harness times: otherwise GC pauses land only here
        for _ in range(repeat):
            started = time.perf_counter_ns()
            engine.execute("SELECT 1")
            times.append(time.perf_counter_ns() - started)
    return times


def overhead(engine, repeat: int, rounds: int) -> dict:
    """Alternate harness and bare loop ``rounds`` times; compare the medians of all runs."""
    harness, bare = [], []
    for _ in range(rounds):
        harness += measure.measure(lambda: engine.execute("SELECT 1"), repeat=repeat, warmup=10)
        for _ in range(10):
            engine.execute("SELECT 1")
        bare += bare_loop(engine, repeat)
    h, b = statistics.median(harness), statistics.median(bare)
    return {"engine": engine.name, "harness_us": h / 1e3, "bare_us": b / 1e3, "overhead": h / b - 1}


def compare_overhead(engine, project_id: int, repeat: int, rounds: int) -> dict:
    """N+1 at one session: compare()'s timed runs against a bare loop, alternating ``rounds`` times."""
    harness, bare = [], []
    for _ in range(rounds):
        results, _ = strategies.compare(
            {engine.name: engine}, project_id, 1, strategies=["n_plus_one"], repeat=repeat, server_time=False
        )
        harness += results.frame["wall_ns"].to_list()
        with measure.gc_paused():
            for _ in range(repeat):
                started = time.perf_counter_ns()
                strategies.n_plus_one(engine, project_id, 1)
                bare.append(time.perf_counter_ns() - started)
    h, b = statistics.median(harness), statistics.median(bare)
    return {"engine": engine.name, "harness_us": h / 1e3, "bare_us": b / 1e3, "overhead": h / b - 1}


def reproducibility(engines, project_id: int, limit: int, repeat: int) -> list[dict]:
    runs = []
    for _ in range(2):
        results, _ = strategies.compare(engines, project_id, limit, repeat=repeat, server_time=False)
        runs.append(results.ratios("n_plus_one", paired=True))
    first, second = runs
    joined = first.join(second, on=["engine", "sessions", "strategy"], suffix="_2")
    return [
        {
            "engine": r["engine"],
            "strategy": r["strategy"],
            "speedup_1": r["speedup"],
            "speedup_2": r["speedup_2"],
            "difference": r["speedup_2"] / r["speedup"] - 1,
        }
        for r in joined.iter_rows(named=True)
        if r["strategy"] != "n_plus_one"
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", default="small", help="synthetic dataset scale (default: small)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--engines", default="duckdb,sqlite,postgres", help="comma-separated engines")
    parser.add_argument(
        "--data-dir", default=None, help="where the dataset and databases go (default: a temp dir)"
    )
    parser.add_argument("--limit", type=int, default=100, help="sessions loaded per strategy run")
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per strategy in each comparison")
    parser.add_argument(
        "--select1", type=int, default=2000, help="SELECT 1 calls per round for the overhead test"
    )
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds for the overhead test")
    parser.add_argument(
        "--compare-runs", type=int, default=200, help="timed runs per round for compare()'s overhead (c)"
    )
    parser.add_argument("--skip-reproducibility", action="store_true", help="run (a) and (c) only")
    parser.add_argument(
        "--pin", type=int, default=None, help="CPU to run this process and its PostgreSQL backend on"
    )
    args = parser.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f}")

    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="bench-harness-"))
    ds = generate(data_dir / args.scale, args.scale, args.seed)
    engines, _ = lab.open_engines(ds, args.engines.split(","), data_dir / "querylab")
    for engine in engines.values():
        strategies.ensure_indexes(engine)
    if args.pin is not None:
        os.sched_setaffinity(0, {args.pin})
        if "postgres" in engines:
            backend = engines["postgres"].execute("SELECT pg_backend_pid()")[0][0]
            os.sched_setaffinity(backend, {args.pin})
        print(f"pinned to CPU {args.pin} (this process and the PostgreSQL backend)")
    project_id, sessions = strategies.largest_project(next(iter(engines.values())))
    limit = min(args.limit, sessions)

    print(f"(a) harness overhead on SELECT 1 ({args.rounds} x {args.select1} calls each, medians)")
    print(f"{'engine':<10} {'harness µs':>11} {'bare µs':>9} {'overhead':>9}")
    ok = True
    for engine in engines.values():
        r = overhead(engine, args.select1, args.rounds)
        ok &= abs(r["overhead"]) <= 0.05
        print(f"{r['engine']:<10} {r['harness_us']:>11.2f} {r['bare_us']:>9.2f} {r['overhead']:>+9.1%}")

    print(
        f"\n(c) compare()'s timing path, N+1 at one session "
        f"({args.rounds} x {args.compare_runs} runs, medians)"
    )
    print(f"{'engine':<10} {'compare µs':>11} {'bare µs':>9} {'overhead':>9}")
    for engine in engines.values():
        r = compare_overhead(engine, project_id, args.compare_runs, args.rounds)
        ok &= abs(r["overhead"]) <= 0.05
        print(f"{r['engine']:<10} {r['harness_us']:>11.2f} {r['bare_us']:>9.2f} {r['overhead']:>+9.1%}")

    print(f"\n(b) reproducibility: speedup over N+1 ({limit} sessions, {args.repeat} runs), two runs")
    print(f"{'engine':<10} {'strategy':<13} {'run 1':>7} {'run 2':>7} {'diff':>7}")
    for r in [] if args.skip_reproducibility else reproducibility(engines, project_id, limit, args.repeat):
        ok &= abs(r["difference"]) <= 0.10
        print(
            f"{r['engine']:<10} {r['strategy']:<13} {r['speedup_1']:>6.2f}x {r['speedup_2']:>6.2f}x "
            f"{r['difference']:>+7.1%}"
        )
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    print("targets met" if ok else "targets missed (see rows above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Scale sensitivity: notebook 02's headline (the fastest way to load a page of sessions, and how
sure) at the CI size and at least ten times larger, and which verdicts change.

Each size is generated (deterministic for the seed), loaded into the engines (DuckDB by default), and every
strategy is compared on the largest project's first ``--limit`` sessions with
``workbench.strategies.compare`` (equality checked first), then ``strategies.recommend``.
A verdict "holds at x10" when the larger size's best strategy is the smaller's best or one of its
ties, and its class against N+1 is the same.

    .venv/bin/python benchmarks/bench_scale.py --sizes small,medium --engines duckdb
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import polars as pl

from workbench import lab, strategies
from workbench.sources.synthetic import SCALES, generate


def headline(scale: str, engines: list[str], folder: Path, limit: int, repeat: int) -> pl.DataFrame:
    ds = generate(folder / scale, scale, seed=7)
    opened, _ = lab.open_engines(ds, engines, folder / "engines")
    try:
        project_id, sessions = strategies.largest_project(next(iter(opened.values())))
        results, _ = strategies.compare(opened, project_id, min(limit, sessions), repeat=repeat, dataset=ds)
        best = strategies.recommend(results)
    finally:
        for engine in opened.values():
            engine.close()
    return best.select("engine", "sessions", "best", "best_ms", "speedup", "class", "ties").with_columns(
        scale=pl.lit(scale), messages=pl.lit(ds.counts["messages"])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="small,medium")
    parser.add_argument("--engines", default="duckdb")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--data", type=Path, help="Keep the datasets here (default: a temporary folder).")
    args = parser.parse_args()
    sizes = args.sizes.split(",")
    print("load average before:", os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.data or Path(tmp)
        rows = pl.concat(
            [headline(s, args.engines.split(","), folder, args.limit, args.repeat) for s in sizes]
        )
    print("load average after:", os.getloadavg())
    factor = SCALES[sizes[-1]].messages / SCALES[sizes[0]].messages
    with pl.Config(tbl_rows=50, tbl_cols=20, tbl_width_chars=160):
        print(rows.with_columns(pl.col("best_ms", "speedup").round(2)))
        first, last = (rows.filter(pl.col("scale") == s) for s in (sizes[0], sizes[-1]))
        held = first.join(last, on="engine", suffix="_large").select(
            "engine",
            holds=(
                (pl.col("best") == pl.col("best_large"))
                | pl.col("ties").str.split(", ").list.contains(pl.col("best_large"))
            )
            & (pl.col("class") == pl.col("class_large")),
        )
        print(f"Verdicts at {sizes[0]} against {sizes[-1]} ({factor:.0f}x the messages):")
        print(held)


if __name__ == "__main__":
    main()

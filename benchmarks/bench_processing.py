"""The log-sync job's benchmarks, results in docs/BENCHMARKS.md.

``--day [PROFILE]`` is notebook 04 at the profile's full sizes: the readers up to the
profile's log day (``log_sync.day_mb``; the notebook's CI run stops short of it), the writers
on 100,000+ rows on every engine, the chosen writer and the fixed sleep on every row, and the
verdicts notebook 04 would write (streaming, success:memory, batch_size, fixed_sleep),
computed by the same code. Without it:

1. Streaming readers' peak RSS on a 1 GB file against a 10 MB file (fresh process each;
   target: within 1.2x), the whole-file and whole-tree readers' growth beside them.
2. The best writer per engine against that engine's native bulk import of the same rows
   (DuckDB read_parquet, SQLite executemany in one transaction, PostgreSQL COPY; target:
   within 2x).
3. Profiling overhead: one read timed plain, under pyinstrument and under memray (ratios).

    .venv/bin/python benchmarks/bench_processing.py --day [default] [--rows 100000]
    .venv/bin/python benchmarks/bench_processing.py [--sizes 10,1024] [--rows 100000] [--skip-readers]
        [--only-readers] [--variants stream/orjson,polars,duckdb]

Needs about 2.5 GB free on disk for the 1 GB file (kept in --work for re-runs) and a few
GB of RAM for the whole-file and library readers at 1 GB. PostgreSQL: $WORKBENCH_POSTGRES_URL
or a throwaway server from the system's binaries (skipped without them).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench import profiling  # noqa: E402
from workbench.processing import Sink, experiments, process, read_rows  # noqa: E402
from workbench.processing.write import COLUMNS, TABLE, to_arrow  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "claude-code" / "projects"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def readers(work: Path, sizes: list[float], variants: list[str]) -> pl.DataFrame:
    frame = experiments.reader_scaling(FIXTURES, sizes, work, variants)
    print(frame.select("size_mb", "variant", "rows", "seconds", "rows_per_s", "mb_per_s", "peak_rss_mib"))
    print(experiments.flatness(frame))
    return frame


def native(engine: str, target: str, staged: Path, n: int) -> float:
    """Seconds for the engine's own bulk import of the staged rows (the loaders' paths)."""
    import pyarrow.parquet as pq

    with Sink(engine, target, replace=True) as sink:
        con = sink.con
        started = time.perf_counter()
        if engine == "duckdb":
            con.execute(f"INSERT INTO {TABLE} SELECT * FROM read_parquet($p)", {"p": str(staged)})
        elif engine == "sqlite":
            con.execute("BEGIN")
            for batch in pq.ParquetFile(staged).iter_batches(50_000):
                con.executemany(sink.insert_sql, pl.from_arrow(batch).iter_rows())
            con.execute("COMMIT")
        else:
            copy_sql = f"COPY {TABLE} ({', '.join(COLUMNS)}) FROM STDIN (FORMAT csv)"
            with con.transaction(), con.cursor() as cur, cur.copy(copy_sql) as copy:
                for batch in pq.ParquetFile(staged).iter_batches(100_000):
                    buffer = io.BytesIO()
                    pl.from_arrow(batch).write_csv(buffer, include_header=False, null_value="")
                    copy.write(buffer.getbuffer())
        seconds = time.perf_counter() - started
        assert sink.totals()["rows"] == n, sink.totals()
    return seconds


def writers(work: Path, rows: list, engines: dict[str, str]) -> pl.DataFrame:
    import pyarrow.parquet as pq

    staged = work / "rows.parquet"
    pq.write_table(to_arrow(rows), staged)
    out = []
    for engine, target in engines.items():
        # DuckDB's executemany runs ~500 rows/s (a statement per row): left out of the long runs.
        for writer in ("values", "bulk") if engine == "duckdb" else ("executemany", "values", "bulk"):
            for size in (1_000, 10_000):
                with Sink(engine, target, replace=True) as sink:
                    report = process(rows, sink, batch_size=size, writer=writer, retries=0)
                    assert sink.totals()["rows"] == len(rows)
                out.append(
                    {"engine": engine, "writer": writer, "batch_size": size, "seconds": report.seconds}
                )
        out.append(
            {
                "engine": engine,
                "writer": "native",
                "batch_size": len(rows),
                "seconds": native(engine, target, staged, len(rows)),
            }
        )
    frame = pl.DataFrame(out).with_columns(rows_per_s=len(rows) / pl.col("seconds"))
    ref = frame.filter(pl.col("writer") == "native").select("engine", native_s="seconds")
    frame = frame.join(ref, on="engine").with_columns(vs_native=pl.col("seconds") / pl.col("native_s"))
    print(frame)
    best = (
        frame.filter(pl.col("writer") != "native")
        .sort("seconds")
        .group_by("engine", maintain_order=True)
        .first()
    )
    print("best writer per engine (vs_native = its time / native time; target <= 2):")
    print(best.select("engine", "writer", "batch_size", "rows_per_s", "vs_native"))
    return frame


def overhead(work: Path) -> pl.DataFrame:
    file = work / "overhead" / "session.jsonl"
    if not file.exists():
        experiments.make_transcript(FIXTURES, file, 20 * 2**20)
    frame = profiling.overhead(lambda: sum(1 for _ in read_rows(file)), work, repeat=3)
    print("profiling overhead, best of 3 (stream/orjson over a 20 MB file):")
    print(frame)
    return frame


def postgres_url() -> str | None:
    try:
        from workbench import lab

        return lab.postgres_url(None)
    except Exception as e:  # no server binaries: the embedded engines only
        print(f"PostgreSQL skipped: {e}")
        return None


def day(work: Path, profile: str | None, rows_n: int, variants: list[str], engines: dict[str, str]) -> None:
    """Notebook 04's measurements and verdicts at the profile's full sizes."""
    from workbench import profile as profiles
    from workbench.processing import conclude

    prof = profiles.load(profile)
    day_mb = prof.log_sync.day_mb
    sizes = experiments.reader_sizes(day_mb, factor=32)
    print(
        f"{prof.describe()}\nreaders at {sizes} MB (the log day: {day_mb:g} MB), writers on {rows_n:,} rows"
    )
    scaling = readers(work, sizes, variants)
    print(f"load average: {load()}")
    first = work / f"tree-{sizes[0]:g}mb" / "projects" / "-bench" / "session.jsonl"
    base_rows = list(read_rows(first))
    rows = experiments.replicate(base_rows, rows_n)
    row_bytes = first.stat().st_size / len(base_rows)
    sweep = experiments.writer_sweep(
        rows, engines, ["executemany", "values", "bulk"], [100, 1_000, 10_000], max_seconds=5.0
    )
    print(sweep.drop("per_row_s"))
    knees = experiments.knees(sweep)
    headline = prof.engine if prof.engine in engines else next(iter(engines))
    best = experiments.chosen(knees, headline)
    pace = experiments.pacing(
        rows, headline, engines[headline], [best["knee_batch"]], [5], writer=best["writer"], repeat=3
    )
    print(pace.drop("per_row_s"))
    confirm = experiments.confirmation(sweep, pace, headline, row_bytes)
    conditions = prof.conditions()
    found = [
        *conclude.reader_verdicts(scaling, prof.slo.memory_mb, day_mb, conditions),
        conclude.memory_success(scaling, day_mb, conditions),
        conclude.batch_verdict(sweep, knees, confirm, headline, conditions),
        *conclude.writer_verdicts(sweep, knees, skip=headline),
        conclude.pacing_verdict(
            pace,
            conditions,
            day_rows=int(day_mb * 2**20 / row_bytes),
            screen=sweep.filter((pl.col("engine") == headline) & (pl.col("writer") == best["writer"])),
        ),
    ]
    for v in found:
        if v is not None:
            print(f"- {v.item or v.topic} [{v.decision or ''}] {v.verdict} {v.interval()}\n  {v.detail}")
    (work / "day.json").write_text(
        json.dumps(
            {
                "readers": scaling.to_dicts(),
                "writers": sweep.drop("per_row_s").to_dicts(),
                "pacing": pace.drop("per_row_s").to_dicts(),
            },
            indent=1,
            default=str,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,1024", help="file sizes in MB (default 10,1024)")
    parser.add_argument(
        "--variants",
        default="whole/orjson,stream/json,stream/orjson,stream/msgspec,chunked/orjson,polars,duckdb,ingest",
    )
    parser.add_argument("--rows", type=int, default=100_000, help="rows for the writer benchmark")
    parser.add_argument(
        "--day",
        nargs="?",
        const="default",
        default=None,
        metavar="PROFILE",
        help="notebook 04 at the profile's sizes: readers up to its log day, 100k+ rows per writer",
    )
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "bench_processing"))
    parser.add_argument("--skip-readers", action="store_true")
    parser.add_argument("--only-readers", action="store_true", help="stop after the readers")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, object] = {"load_before": load()}
    print(f"load average before: {results['load_before']}")
    if args.day:
        engines = {"duckdb": str(work / "w.duckdb"), "sqlite": str(work / "w.sqlite")}
        if url := postgres_url():
            engines["postgres"] = url
        day(work, args.day, args.rows, args.variants.split(","), engines)
        print(f"load average after: {load()}")
        return
    if not args.skip_readers:
        sizes = [float(s) for s in args.sizes.split(",")]
        results["readers"] = readers(work, sizes, args.variants.split(",")).to_dicts()
        print(f"load average: {load()}")
    if args.only_readers:
        (work / "readers.json").write_text(json.dumps(results, indent=1, default=str))
        return
    source = work / "writer-source" / "session.jsonl"
    if not source.exists():
        experiments.make_transcript(FIXTURES, source, int(args.rows * 3200))
    rows = list(read_rows(source))[: args.rows]
    engines = {"duckdb": str(work / "w.duckdb"), "sqlite": str(work / "w.sqlite")}
    if url := postgres_url():
        engines["postgres"] = url
    results["writers"] = writers(work, rows, engines).to_dicts()
    print(f"load average: {load()}")
    results["overhead"] = overhead(work).to_dicts()
    results["load_after"] = load()
    print(f"load average after: {results['load_after']}")
    (work / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"results: {work / 'results.json'}")


if __name__ == "__main__":
    main()

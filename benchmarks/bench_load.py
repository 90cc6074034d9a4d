"""Loading: each engine's loader against that engine's own native bulk import, one run.

For the same dataset, side by side:
  duckdb    workbench load (INSERT ... SELECT FROM read_parquet)  vs  CREATE TABLE AS read_parquet
  sqlite    workbench load (executemany, one transaction)         vs  sqlite3 CLI `.import --csv`
  postgres  workbench load (COPY FROM STDIN, streamed CSV)       vs  server-side COPY FROM 'file.csv'

Native imports get the CSV files prepared beforehand (not timed) and load into the same
empty tables. The target is loader/native throughput >= 50%. Medians of --repeat runs.

    .venv/bin/python benchmarks/bench_load.py --scale medium --repeat 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import polars as pl
import psycopg

from workbench import schema
from workbench.engines import open_engine
from workbench.engines.server import PostgresServer
from workbench.sources.synthetic import generate


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def native_duckdb(ds, target: Path) -> None:
    con = duckdb.connect(str(target))
    for table in schema.TABLES:
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet('{ds.file(table)}')")
    con.execute("CHECKPOINT")
    con.close()


def native_sqlite(csv_dir: Path, target: Path) -> None:
    script = ["PRAGMA journal_mode=OFF;", "PRAGMA synchronous=OFF;", *schema.ddl("sqlite")]
    script = [s if s.endswith(";") else s + ";" for s in script]
    script += [f".import --csv --skip 1 {csv_dir / (t + '.csv')} {t}" for t in schema.TABLES]
    subprocess.run(["sqlite3", str(target)], input="\n".join(script), text=True, check=True)


def native_postgres(url: str, csv_dir: Path) -> None:
    with psycopg.connect(url) as con:
        for stmt in schema.ddl("postgres"):
            con.execute(stmt)
        for table in schema.TABLES:
            con.execute(f"COPY {table} FROM '{csv_dir / (table + '.csv')}' (FORMAT csv, HEADER true)")


def reset_postgres(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", default="medium", help="dataset scale (default medium: 1M messages)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--engines", default="duckdb,sqlite,postgres")
    parser.add_argument("--data", default="data", help="where datasets live (default data/)")
    args = parser.parse_args()

    ds = generate(Path(args.data) / args.scale, args.scale, 7, progress=True)
    rows = sum(ds.counts.values())
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    os.chmod(work, 0o755)  # the PostgreSQL server (user postgres) reads the CSV files
    csv_dir = work / "csv"
    csv_dir.mkdir()
    for table in schema.TABLES:
        pl.read_parquet(ds.file(table)).write_csv(csv_dir / f"{table}.csv")
    server = PostgresServer.start() if "postgres" in args.engines else None
    results = []
    try:
        for engine in args.engines.split(","):
            ours, native = [], []
            for i in range(args.repeat):
                if engine == "postgres":
                    reset_postgres(server.url)
                    with open_engine("postgres", server.url) as e:
                        ours.append(timed(lambda e=e: e.load(ds, force=True)))
                    reset_postgres(server.url)
                    native.append(timed(lambda: native_postgres(server.url, csv_dir)))
                    continue
                target = work / f"{engine}-{i}"
                with open_engine(engine, str(target)) as e:
                    ours.append(timed(lambda e=e: e.load(ds, force=True)))
                other = work / f"{engine}-native-{i}"
                run = native_duckdb if engine == "duckdb" else native_sqlite
                native.append(timed(lambda: run(ds if engine == "duckdb" else csv_dir, other)))  # noqa: B023
            o, n = statistics.median(ours), statistics.median(native)
            results.append(
                {
                    "engine": engine,
                    "workbench s": round(o, 2),
                    "native s": round(n, 2),
                    "workbench rows/s": int(rows / o),
                    "native rows/s": int(rows / n),
                    "throughput ratio": round(n / o, 2),
                }
            )
    finally:
        if server:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    pl.Config.set_tbl_hide_dataframe_shape(True)
    print(f"dataset {ds.name}: {rows:,} rows, median of {args.repeat} runs; target ratio >= 0.5")
    print(pl.DataFrame(results))
    sys.exit(0 if all(r["throughput ratio"] >= 0.5 for r in results) else 1)


if __name__ == "__main__":
    main()

"""Choosing sessions in the database (`sample --from`): the seeded hash against `random()`.

`workbench sample --from URL` ranks sessions by a seeded 32-bit hash of their id, computed
in the database (`hash_expr`), so a sample is reproducible, the same on every engine, and
a smaller sample is a subset of a larger one. Side by side, on a table of N random 63-bit
session ids (SQLite file and a throwaway PostgreSQL server, both made here), the query
that picks the first 1% by:

  workbench   ORDER BY hash_expr(id, salt), id   (SQLite: hash_id as a registered
              function; PostgreSQL: its XOR operator #)
  portable    ORDER BY the same hash in the SQL every engine has, XOR as (a | b) - (a & b)
              (what other engines get)
  random()    ORDER BY random() (the usual alternative: neither reproducible nor the
              same across engines)

Medians of --repeat runs, interleaved, through the read-only connection the sampler uses.

    .venv/bin/python benchmarks/bench_sample.py --sessions 1000000 --repeat 5
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import psycopg
import sqlalchemy as sa

from workbench.engines.server import PostgresServer
from workbench.sources.database import hash_expr, mix, read_only_connection, salt, xor_portable


def make_sqlite(path: Path, ids: list[int]) -> str:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE sessions (id INTEGER PRIMARY KEY)")
    con.executemany("INSERT INTO sessions VALUES (?)", ((i,) for i in ids))
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def make_postgres(url: str, ids: list[int]) -> None:
    with psycopg.connect(url) as con:
        con.execute("CREATE TABLE sessions (id bigint PRIMARY KEY)")
        with con.cursor().copy("COPY sessions (id) FROM STDIN") as copy:
            for i in ids:
                copy.write_row((i,))
        con.execute("ANALYZE sessions")


def queries(n: int) -> dict[str, sa.Select]:
    t = sa.table("sessions", sa.column("id", sa.BigInteger))
    s = salt(1, "sessions")
    portable = mix(t.c.id, sa.bindparam(None, s, sa.BigInteger), xor_portable)
    take = max(1, n // 100)
    return {
        "workbench": sa.select(t.c.id).order_by(hash_expr(t.c.id, s), t.c.id).limit(take),
        "portable": sa.select(t.c.id).order_by(portable, t.c.id).limit(take),
        "random()": sa.select(t.c.id).order_by(sa.func.random()).limit(take),
    }


def measure(url: str, n: int, repeat: int) -> dict[str, float]:
    times: dict[str, list[float]] = {}
    with read_only_connection(url) as conn:
        stmts = queries(n)
        picked = {name: conn.execute(stmt).scalars().all() for name, stmt in stmts.items()}  # warm-up
        assert picked["workbench"] == picked["portable"], "the two hash forms chose different sessions"
        for _ in range(repeat):
            for name, stmt in stmts.items():
                started = time.perf_counter()
                conn.execute(stmt).scalars().all()
                times.setdefault(name, []).append(time.perf_counter() - started)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=1_000_000, help="session ids in the table")
    parser.add_argument("--repeat", type=int, default=5, help="runs per query (median reported)")
    args = parser.parse_args()

    rng = random.Random(7)
    ids = rng.sample(range(1, 2**63), args.sessions)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-sample-") as work:
        results["SQLite"] = measure(make_sqlite(Path(work) / "s.db", ids), args.sessions, args.repeat)
        with PostgresServer.start() as server:
            make_postgres(server.url, ids)
            results["PostgreSQL"] = measure(server.url, args.sessions, args.repeat)

    print(f"\n{args.sessions:,} sessions, first 1% chosen, median of {args.repeat}\n")
    print("| engine | workbench | portable SQL | random() | workbench vs random() |")
    print("|---|---|---|---|---|")
    for engine, r in results.items():
        cells = " | ".join(f"{r[k]:.3f} s ({r[k] / args.sessions * 1e6:.2f} µs/row)" for k in r)
        print(f"| {engine} | {cells} | {r['workbench'] / r['random()']:.2f}x |")


if __name__ == "__main__":
    main()

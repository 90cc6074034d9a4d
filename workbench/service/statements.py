"""PostgreSQL's own view of the service's statements: ``pg_stat_statements``, per run.

The extension keeps, per normalised statement, ``calls`` and the execution time's
``mean``, ``stddev``, ``min`` and ``max`` (and the total), counted inside the server from
the start of execution to the last row sent. It keeps **no percentiles**, so it cannot
give the DB P99 the plan asks for. What it can give, honestly:

* the server-side mean per call (weighted by calls over all statements) and the max;
* a distribution-free **upper bound** on the P99: for each statement, Cantelli's
  inequality P(X ≥ μ + kσ) ≤ 1/(1 + k²) with k = √99 bounds its 99th percentile by
  μ + √99·σ (and by its max); the P99 of the mix of statements is at most the largest
  of those bounds. It is an upper bound, usually loose, never an estimate.

The service's own statement timing (:class:`workbench.service.metrics.Instruments`) is the
one with a real P99; it also counts the round trip, the driver and the fetch of the
rows, which ``pg_stat_statements`` does not. Read the two side by side: when the
server's mean is a small part of the service's P50, the time goes outside execution
(network, pool, Python), not to PostgreSQL.

The throwaway server (:mod:`workbench.engines.server`) preloads the module; on a server
that does not, :func:`enable` says so and the columns stay empty.

>>> if enable(url):                                        # doctest: +SKIP
...     reset(url); ...; summary(read(url))
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

#: Cantelli's k for a one-sided 1% tail: 1 / (1 + k²) = 0.01.
CANTELLI_K99 = math.sqrt(99)

_READ = """
SELECT query, calls, mean_exec_time, stddev_exec_time, min_exec_time, max_exec_time, total_exec_time
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND calls > 0
  AND query NOT ILIKE '%pg_stat_statements%'
ORDER BY total_exec_time DESC
"""
COLUMNS = ("query", "calls", "mean_ms", "stddev_ms", "min_ms", "max_ms", "total_ms")


def enable(url: str) -> bool:
    """True when ``pg_stat_statements`` answers in ``url``'s database (creating the extension
    there if the server preloads it); False when the server does not preload it."""
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True) as con:
            con.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            con.execute("SELECT 1 FROM pg_stat_statements LIMIT 1")
        return True
    except psycopg.Error:
        return False


def reset(url: str) -> None:
    """Forget every statement's statistics (the next :func:`read` covers only what follows)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        con.execute("SELECT pg_stat_statements_reset()")


def read(url: str) -> pl.DataFrame:
    """Per statement of ``url``'s database since the last reset: calls and execution times (ms)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        rows = con.execute(_READ).fetchall()
    return pl.DataFrame(
        rows,
        schema={
            "query": pl.String,
            "calls": pl.Int64,
            **{c: pl.Float64 for c in COLUMNS[2:]},
        },
        orient="row",
    )


def p99_bound(mean: float, stddev: float, maximum: float) -> float:
    """An upper bound on a statement's P99 from its mean, stddev and max (Cantelli).

    >>> round(p99_bound(1.0, 0.5, 100.0), 3), p99_bound(1.0, 5.0, 20.0)
    (5.975, 20.0)
    """
    return min(maximum, mean + CANTELLI_K99 * stddev)


def summary(stats: pl.DataFrame) -> dict[str, Any]:
    """One run's statements in a few numbers (the ``pgss_*`` columns of a run summary):
    calls, the calls-weighted mean, the largest max, and the upper bound on the P99."""
    if stats.is_empty():
        empty = ("pgss_mean_ms", "pgss_max_ms", "pgss_p99_bound_ms")
        return {"pgss_calls": 0} | dict.fromkeys(empty, math.nan)
    calls = int(stats["calls"].sum())
    bounds = [p99_bound(m, s, x) for m, s, x in stats.select("mean_ms", "stddev_ms", "max_ms").iter_rows()]
    return {
        "pgss_calls": calls,
        "pgss_mean_ms": float(stats["total_ms"].sum()) / calls,
        "pgss_max_ms": float(stats["max_ms"].max()),  # type: ignore[arg-type]
        "pgss_p99_bound_ms": max(bounds),
    }

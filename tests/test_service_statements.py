"""pg_stat_statements read per run against the real throwaway server (it preloads the module)."""

from __future__ import annotations

import math

import polars as pl
import psycopg
import pytest

from workbench.service import statements

pytestmark = pytest.mark.postgres


def test_reset_and_read_cover_only_the_statements_since_the_reset(postgres_url):
    assert statements.enable(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute("CREATE TABLE t (x int)")
        con.execute("INSERT INTO t SELECT generate_series(1, 100)")
        statements.reset(postgres_url)
        for i in range(20):
            con.execute("SELECT count(*) FROM t WHERE x > %s", (i,))
    stats = statements.read(postgres_url)
    mine = stats.filter(pl.col("query").str.contains("FROM t WHERE"))
    assert mine["calls"].to_list() == [20]
    assert stats.filter(pl.col("query").str.contains("INSERT")).is_empty()  # before the reset
    row = mine.row(0, named=True)
    assert 0 < row["min_ms"] <= row["mean_ms"] <= row["max_ms"]
    s = statements.summary(stats)
    assert s["pgss_calls"] == int(stats["calls"].sum())
    assert s["pgss_mean_ms"] <= s["pgss_p99_bound_ms"] <= s["pgss_max_ms"] + 1e-9


def test_the_p99_bound_holds_on_a_known_skewed_distribution():
    # 99 fast calls and one slow: the true P99 is the fast value; the bound must be above it.
    values = [1.0] * 990 + [50.0] * 10
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    bound = statements.p99_bound(mean, std, max(values))
    assert sorted(values)[int(0.99 * len(values)) - 1] <= bound <= 50.0
    empty = pl.DataFrame(schema=dict.fromkeys(statements.COLUMNS, pl.Float64))
    assert statements.summary(empty)["pgss_calls"] == 0


def test_a_server_without_the_module_is_reported_not_raised(postgres_url):
    assert statements.enable(postgres_url.rsplit("/", 1)[0] + "/no_such_database") is False

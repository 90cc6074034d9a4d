"""What the strategies' numbers are made of: the cost of one N+1 statement, what an index
changed (from the plans), and how the plan's JOIN multiplies rows and bytes.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import polars as pl

from workbench import plans, queries
from workbench.engines.base import Engine
from workbench.measure import MIN_RUNS, bootstrap, compare_text, measure, ratio
from workbench.strategies.experiments import drop_indexes, ensure_indexes

Clock = Callable[[], int]


# ---- one more statement of N+1 ----------------------------------------------------------
def statement_cost(
    engine: Engine,
    project_id: int,
    limit: int,
    *,
    rounds: int = 1,
    warmup: int | None = None,
    clock: Clock = time.perf_counter_ns,
) -> dict[str, Any]:
    """What one more statement of the N+1 loop costs on ``engine``, measured.

    The loop's own child queries (``session_messages`` and ``session_windows``, the
    indexed lookups N+1 runs twice per session), for each of the page's ``limit``
    sessions in turn, ``rounds`` times, through ``engine.execute`` (the driver call
    N+1 makes; on PostgreSQL psycopg has prepared them after the warm-up).
    ``statement_ms`` is their median with a bootstrap interval (``lo``, ``hi``): what
    one more statement for a typical session costs. ``mean_ms`` is their mean (the
    page's statements summed / counted: it carries the largest sessions' rows too).
    ``SELECT 1`` through the same call is measured beside it (``select1_ms``, the floor
    no statement goes under).
    """
    ids = [
        r[0]
        for r in engine.execute(
            queries.load("project_sessions", engine.dialect), {"project_id": project_id, "limit": limit}
        )
    ]
    if not ids:
        raise ValueError(f"Project {project_id} has no sessions: nothing to measure")
    children = [queries.load(q, engine.dialect) for q in ("session_messages", "session_windows")]
    calls = itertools.cycle([(sql, {"session_id": i}) for i in ids for sql in children])
    warm = engine.warmup_runs if warmup is None else warmup
    for sql, params in itertools.islice(calls, warm * len(children)):
        engine.execute(sql, params)
    times = measure(lambda: engine.execute(*next(calls)), repeat=rounds * 2 * len(ids), warmup=0, clock=clock)
    ms = np.asarray(times, dtype=float) / 1e6
    lo, hi = bootstrap(ms, np.median)
    floor = measure(lambda: engine.execute("SELECT 1"), repeat=MIN_RUNS * 10, warmup=warm, clock=clock)
    return {
        "engine": engine.name,
        "statement_ms": float(np.median(ms)),
        "lo": lo,
        "hi": hi,
        "mean_ms": float(ms.mean()),
        "n": int(ms.size),
        "select1_ms": float(np.median(floor)) / 1e6,
    }


def statement_cost_sentence(cost: Mapping[str, Any], statements: int, n_plus_one_ms: float) -> str:
    """The measured cost of one N+1 statement in words, against N+1's whole time."""
    share = statements * cost["statement_ms"] / n_plus_one_ms if n_plus_one_ms else float("nan")
    return (
        f"One more statement of the N+1 loop (its indexed child query, through the same driver call) "
        f"costs {cost['statement_ms'] * 1000:,.0f} µs on {cost['engine']} "
        f"(median of {cost['n']}, 95% CI {cost['lo'] * 1000:,.0f}-{cost['hi'] * 1000:,.0f} µs), "
        f"against {cost['select1_ms'] * 1000:,.0f} µs for SELECT 1; {statements:,} statements × that cost "
        f"= {statements * cost['statement_ms']:.1f} ms, {share:.0%} of N+1's {n_plus_one_ms:.1f} ms."
    )


def statement_cost_verdicts(costs: pl.DataFrame, summary: pl.DataFrame, sessions: int) -> list[Any]:
    """Per engine: what one more statement of the N+1 loop costs, against SELECT 1 and against
    N+1's whole time at ``sessions`` sessions (``summary``: ``Results.summary()``)."""
    from workbench.verdicts import Verdict

    n1 = summary.filter(pl.col("strategy") == "n_plus_one")
    n1_ms = dict(zip(n1["engine"], n1["median_ms"], strict=True))
    return [
        Verdict(
            "what one more N+1 statement costs",
            f"{c['statement_ms'] * 1000:,.0f} µs, against {c['select1_ms'] * 1000:,.0f} µs for SELECT 1",
            statement_cost_sentence(c, 1 + 2 * sessions, n1_ms[c["engine"]]),
            c["engine"],
        )
        for c in costs.iter_rows(named=True)
        if c["engine"] in n1_ms
    ]


# ---- what an index changed ----------------------------------------------------------------
def index_effect(
    engine: Engine,
    sql: str,
    params: Mapping[str, Any],
    *,
    repeat: int = MIN_RUNS,
    clock: Clock = time.perf_counter_ns,
) -> dict[str, Any]:
    """``sql`` without and with the access-path indexes: plans, timings, and what to claim.

    Drops the indexes, explains and times the query, creates them
    (:func:`~workbench.strategies.ensure_indexes`), explains and times it again. The
    claim comes from the plans (:func:`workbench.plans.plan_change`): with no change in
    operators the sentence says "plan unchanged" and gives the timing only as a ratio
    with its interval, attributed to nothing.
    """
    drop_indexes(engine)
    before = plans.explain(engine, sql, params)
    t_before = measure(
        lambda: engine.execute(sql, params), repeat=repeat, warmup=engine.warmup_runs, clock=clock
    )
    ensure_indexes(engine)
    after = plans.explain(engine, sql, params)
    t_after = measure(
        lambda: engine.execute(sql, params), repeat=repeat, warmup=engine.warmup_runs, clock=clock
    )
    change = plans.plan_change(before, after)
    r, lo, hi = ratio(t_after, t_before)
    timing = (
        f"{np.median(t_before) / 1e6:.2f} → {np.median(t_after) / 1e6:.2f} ms median, "
        f"with the index {compare_text(r, lo, hi)}"
    )
    if change["changed"]:
        sentence = f"{engine.name}: {change['summary']}; {timing}."
    else:
        sentence = f"{engine.name}: {change['summary']}; timing {timing}, not attributable to the index."
    return {
        "engine": engine.name,
        "plan_changed": change["changed"],
        "index_used": change["index_after"],
        "before_ms": float(np.median(t_before)) / 1e6,
        "after_ms": float(np.median(t_after)) / 1e6,
        "ratio": r,
        "lo": lo,
        "hi": hi,
        "sentence": sentence,
        "plans": (before, after),
    }


# ---- the JOIN's row multiplication ---------------------------------------------------------
def _row_bytes(frame: pl.DataFrame) -> pl.Expr:
    """Bytes of each row's values as :func:`~workbench.strategies.payload_bytes` counts them."""
    parts = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype == pl.String:
            parts.append(col.str.len_bytes().fill_null(0))
        elif dtype == pl.Boolean:
            parts.append(pl.when(col.is_null()).then(0).otherwise(1))
        else:
            parts.append(pl.when(col.is_null()).then(0).otherwise(8))
    return pl.sum_horizontal(parts).cast(pl.Int64)


def multiplication(dataset: Any, project_id: int) -> pl.DataFrame:
    """Per session of the project, newest first (the page's order): what the JOIN ships.

    The plan's LEFT JOIN returns ``max(m, 1) × max(w, 1)`` rows for a session with m
    messages and w windows, each carrying the session's, a message's and a window's
    columns. Real rows are ``m + w``; real bytes are the session's, messages' and
    windows' values once each (what N+1 and batch ship). Columns: session_id,
    messages, windows, real_rows, join_rows, real_bytes, join_bytes, and their running
    totals (``sessions_loaded``, ``cum_real_rows``, ``cum_join_rows``, ``cum_real_bytes``,
    ``cum_join_bytes``) as the page grows.
    """
    sessions = dataset.read("sessions").filter(pl.col("project_id") == project_id)
    ids = sessions["id"]
    msgs = dataset.read("messages").filter(pl.col("session_id").is_in(ids.implode()))
    wins = dataset.read("session_windows").filter(pl.col("session_id").is_in(ids.implode()))
    m = msgs.group_by("session_id").agg(messages=pl.len(), m_bytes=_row_bytes(msgs).sum())
    w = wins.group_by("session_id").agg(windows=pl.len(), w_bytes=_row_bytes(wins).sum())
    m_, w_ = pl.max_horizontal(pl.col("messages"), 1), pl.max_horizontal(pl.col("windows"), 1)
    return (
        sessions.sort(["created_at", "id"], descending=True)
        .select(pl.col("id").alias("session_id"), s_bytes=_row_bytes(sessions))
        .join(m, on="session_id", how="left", maintain_order="left")
        .join(w, on="session_id", how="left", maintain_order="left")
        .with_columns(pl.col("messages", "windows", "m_bytes", "w_bytes").fill_null(0).cast(pl.Int64))
        .with_columns(
            real_rows=pl.col("messages") + pl.col("windows"),
            join_rows=m_ * w_,
            real_bytes=pl.col("s_bytes") + pl.col("m_bytes") + pl.col("w_bytes"),
            join_bytes=m_ * w_ * pl.col("s_bytes") + w_ * pl.col("m_bytes") + m_ * pl.col("w_bytes"),
        )
        .with_columns(
            sessions_loaded=pl.int_range(1, pl.len() + 1),
            cum_real_rows=pl.col("real_rows").cum_sum(),
            cum_join_rows=pl.col("join_rows").cum_sum(),
            cum_real_bytes=pl.col("real_bytes").cum_sum(),
            cum_join_bytes=pl.col("join_bytes").cum_sum(),
        )
        .drop("s_bytes", "m_bytes", "w_bytes")
    )


def worst_sessions(mult: pl.DataFrame, k: int = 5) -> pl.DataFrame:
    """The ``k`` sessions whose JOIN rows exceed their real rows the most (ties: lowest id)."""
    return (
        mult.with_columns(extra_rows=pl.col("join_rows") - pl.col("real_rows"))
        .sort(["extra_rows", "session_id"], descending=[True, False])
        .head(k)
        .select(
            "session_id",
            "sessions_loaded",
            "messages",
            "windows",
            "real_rows",
            "join_rows",
            "extra_rows",
            "join_bytes",
            "real_bytes",
        )
    )

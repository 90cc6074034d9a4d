"""Experiments on the strategies: timed comparison, scaling sweep, crossings, the
recommendation in words, and the access-path indexes they need.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from workbench import schema
from workbench.engines.base import Engine, identifier
from workbench.measure import MIN_RUNS, Results, context, load_average, measure_interleaved
from workbench.strategies.loading import (
    CountingEngine,
    Loader,
    Strategy,
    StrategyLike,
    accounting,
    check_equal,
    page_sessions,
    resolve,
)


# ---- experiments -------------------------------------------------------------------------
def compare(
    engines: Mapping[str, Engine],
    project_id: int,
    limit: int,
    *,
    strategies: Sequence[StrategyLike] | None = None,
    repeat: int = MIN_RUNS,
    warmup: int | None = None,
    server_time: bool = True,
    dataset: Any = None,
    clock: Callable[[], int] = time.perf_counter_ns,
    budget_s: float | None = None,
) -> tuple[Results, pl.DataFrame]:
    """Every strategy on every engine: equality first, then interleaved timed runs.

    ``strategies``: built-in names, your own functions, :class:`Strategy` objects or
    ``.sql`` files (:func:`~workbench.strategies.resolve`; default: the built-ins); the
    first is the reference the others must equal.

    ``warmup``: untimed rounds before the timed ones, the checked run included; by
    default the engine's ``warmup_runs`` (11 on PostgreSQL, until prepared statements
    and their plans are settled; 1 elsewhere). ``repeat``: timed rounds (at least);
    ``budget_s``: seconds of timed calls per engine to fill beyond that, more while runs
    are unstable (see :func:`~workbench.measure.measure_interleaved`).

    Returns the timed runs (:class:`~workbench.measure.Results`, one row per run, with
    the counted statements and rows of that run and the load average before and after
    the engine's timing) and the accounting frame (statements, rows, bytes and
    server-side milliseconds from the checked run).
    """
    chosen = resolve(strategies)
    runs: list[dict[str, Any]] = []
    books = []
    for engine in engines.values():
        timing = Timing(repeat, engine.warmup_runs if warmup is None else warmup, budget_s, clock)
        runs_e, book = _measure_engine(engine, project_id, limit, chosen, timing, server_time)
        runs += runs_e
        books.append(book)
    ctx = context(engines.values(), dataset, experiment="strategies", project_id=project_id, limit=limit)
    return Results.from_runs(runs, ctx), pl.concat(books, how="diagonal_relaxed")


class Timing:
    """How a cell is timed: rounds, warm-up rounds, budget and clock (one for compare and scaling)."""

    def __init__(self, repeat: int, warmup: int, budget_s: float | None, clock: Callable[[], int]) -> None:
        self.repeat, self.warmup, self.budget_s, self.clock = repeat, warmup, budget_s, clock


def _measure_engine(
    engine: Engine,
    project_id: int,
    limit: int,
    chosen: Sequence[Strategy],
    timing: Timing,
    server_time: bool | None,
) -> tuple[list[dict[str, Any]], pl.DataFrame | None]:
    names = [s.name for s in chosen]
    loads = check_equal(engine, project_id, limit, chosen)  # also the first warm-up run
    # The scaling sweep (server_time=None) skips the accounting: bytes over a thousand
    # sessions' join rows take seconds, and it plots time against statements only.
    book = None if server_time is None else accounting(loads, engine if server_time else None)
    n = page_sessions(engine, project_id, limit)
    counters = {name: CountingEngine(engine) for name in names}
    seen: dict[str, list[tuple[int, int]]] = {name: [] for name in names}

    def counted(name: str) -> None:
        db = counters[name]
        seen[name].append((db.statements, db.rows))
        db.reset()

    fns = {s.name: _bound(s.load, counters[s.name], project_id, limit) for s in chosen}
    load_before = load_average()
    times = measure_interleaved(
        fns,
        repeat=timing.repeat,
        warmup=max(0, timing.warmup - 1),
        clock=timing.clock,
        after=counted,
        budget_s=timing.budget_s,
    )
    load_after = load_average()
    by_name = {} if book is None else {r["strategy"]: r for r in book.iter_rows(named=True)}
    runs = []
    for name in names:
        for i, (t, (statements, rows)) in enumerate(zip(times[name], seen[name], strict=True)):
            runs.append(
                {
                    "engine": engine.name,
                    "strategy": name,
                    "sessions": n,
                    "run": i,
                    "wall_ns": t,
                    "statements": statements,
                    "rows": rows,
                    "bytes": by_name.get(name, {}).get("bytes"),
                    "server_ms": by_name.get(name, {}).get("server_ms"),
                    "load_before": load_before,
                    "load_after": load_after,
                }
            )
    return runs, book


def _bound(load: Loader, db: CountingEngine, project_id: int, limit: int) -> Callable[[], Any]:
    def call() -> Any:
        # Counts from warm-up calls are discarded: the counter is reset after each timed call.
        db.reset()
        return load(db, project_id, limit)

    return call


def log_sizes(largest: int, points: int = 7) -> list[int]:
    """Log-spaced session counts from 1 to ``largest`` (distinct integers)."""
    return sorted({int(round(x)) for x in np.geomspace(1, max(1, largest), points)})


def scaling(
    engines: Mapping[str, Engine],
    project_id: int,
    sizes: Sequence[int],
    *,
    strategies: Sequence[StrategyLike] | None = None,
    repeat: int = MIN_RUNS,
    warmup: int | None = None,
    max_statements: int | None = None,
    dataset: Any = None,
    clock: Callable[[], int] = time.perf_counter_ns,
    budget_s: float | None = None,
) -> Results:
    """Cost against the number of sessions loaded, per strategy and engine.

    Each size is checked for equality first, then timed as :func:`compare` times (the
    same warm-up: the engine's ``warmup_runs`` unless ``warmup`` is given, so crossing
    points do not move with it). ``max_statements`` bounds the work: a strategy whose
    statement count at a size would exceed it (N+1 at large N) is skipped there.
    ``sessions`` in the result is the number actually loaded (a project may have fewer
    than asked).
    """
    chosen = resolve(strategies)
    runs: list[dict[str, Any]] = []
    for engine in engines.values():
        timing = Timing(repeat, engine.warmup_runs if warmup is None else warmup, budget_s, clock)
        for size in sizes:
            keep = [
                s
                for s in chosen
                if max_statements is None or (s.expected_statements(size) or 0) <= max_statements
            ]
            engine_runs, _ = _measure_engine(engine, project_id, size, keep, timing, None)
            runs += engine_runs
    ctx = context(engines.values(), dataset, experiment="scaling", project_id=project_id, sizes=list(sizes))
    return Results.from_runs(runs, ctx)


def crossings(summary: pl.DataFrame, involving: Sequence[str] | None = None) -> pl.DataFrame:
    """Where two strategies swap places as more sessions are loaded, per engine.

    ``involving``: only pairs with one of these strategies (e.g. ``["n_plus_one"]``:
    where N+1 and each alternative swap).

    ``summary`` is a scaling run's ``Results.summary()``. A pair is "apart" at a size
    when their medians' intervals (``median_lo`` .. ``median_hi``) do not overlap. A
    crossing is reported only between two sizes where the pair is apart in opposite
    orders, so curves that wander within each other's noise cross nowhere. It is placed
    where the medians' log ratio, interpolated on log-log axes between those two sizes,
    is zero: ``sessions`` (fractional) and ``ms`` there, the strategy faster below it
    and the one faster above it.
    """
    rows = []
    for (engine,), part in summary.group_by("engine", maintain_order=True):
        names = part["strategy"].unique(maintain_order=True).to_list()
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                if involving is not None and a not in involving and b not in involving:
                    continue
                both = (
                    part.filter(pl.col("strategy") == a)
                    .join(part.filter(pl.col("strategy") == b), on="sessions", suffix="_b")
                    .sort("sessions")
                )
                rows += _pair_crossings(engine, a, b, both)
    schema = {
        "engine": pl.String,
        "faster_below": pl.String,
        "faster_above": pl.String,
        "sessions": pl.Float64,
        "ms": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema).sort("engine", "sessions")


def _pair_crossings(engine: str, a: str, b: str, both: pl.DataFrame) -> list[dict[str, Any]]:
    x = np.log(both["sessions"].to_numpy().astype(float))
    ya, yb = np.log(both["median_ms"].to_numpy()), np.log(both["median_ms_b"].to_numpy())
    lo = both["median_lo"].to_numpy() if "median_lo" in both.columns else both["median_ms"].to_numpy()
    hi = both["median_hi"].to_numpy() if "median_hi" in both.columns else both["median_ms"].to_numpy()
    lo_b = both["median_lo_b"].to_numpy() if "median_lo_b" in both.columns else np.exp(yb)
    hi_b = both["median_hi_b"].to_numpy() if "median_hi_b" in both.columns else np.exp(yb)
    # -1: a faster with the intervals apart; +1: b faster, apart; 0: they overlap.
    state = np.where(hi < lo_b, -1, np.where(lo > hi_b, 1, 0))
    apart = np.flatnonzero(state != 0)
    rows = []
    for k, j in zip(apart[:-1], apart[1:], strict=True):
        if state[k] == state[j]:
            continue
        d_k, d_j = ya[k] - yb[k], ya[j] - yb[j]
        t = d_k / (d_k - d_j) if d_k != d_j else 0.5
        rows.append(
            {
                "engine": engine,
                "faster_below": a if state[k] < 0 else b,
                "faster_above": b if state[k] < 0 else a,
                "sessions": float(np.exp(x[k] + t * (x[j] - x[k]))),
                "ms": float(np.exp(ya[k] + t * (ya[j] - ya[k]))),
            }
        )
    return rows


#: The indexes the backend's access paths need (the foreign keys, with the sort column).
ACCESS_PATH_INDEXES = {
    "ix_sessions_project_created": ("sessions", ("project_id", "created_at")),
    "ix_messages_session_timestamp": ("messages", ("session_id", "timestamp")),
    "ix_windows_session_start": ("session_windows", ("session_id", "start_time")),
}


def ensure_indexes(
    engine: Engine, indexes: Mapping[str, tuple[str, Sequence[str]]] | None = None
) -> pl.DataFrame:
    """Create the access-path indexes that are missing; return the engine's index list.

    Without them every per-session query of N+1 is a full scan of ``messages``, which
    measures the missing index rather than the loading strategy.
    """
    engine.check_writable()  # ANALYZE below writes statistics: only to the workbench's own tables
    wanted = ACCESS_PATH_INDEXES if indexes is None else indexes
    existing = set(engine.list_indexes()["name"].to_list())
    for name, (table, columns) in wanted.items():
        if name not in existing:
            engine.create_index(name, table, list(columns))
    if engine.name == "postgres":
        # ANALYZE samples 300 x default_statistics_target rows: with a large target it reads
        # every row of a small dataset, so estimates and plans are the same on every run.
        # Only the workbench's tables: a bare ANALYZE would touch every table of the database.
        engine.execute("SET default_statistics_target = 1000")
        try:
            for table in schema.TABLES:
                engine.execute(f"ANALYZE {identifier(table)}")
        finally:
            engine.execute("RESET default_statistics_target")
    return engine.list_indexes().select("name", "table").with_columns(engine=pl.lit(engine.name))


def drop_indexes(engine: Engine, names: Sequence[str] | None = None) -> None:
    """Drop the access-path indexes (to measure or explain the engine without them)."""
    for name in ACCESS_PATH_INDEXES if names is None else names:
        engine.drop_index(name)

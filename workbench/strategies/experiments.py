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
from workbench.measure import Results, context, measure_interleaved, ratio
from workbench.strategies.loading import (
    STRATEGIES,
    CountingEngine,
    Loader,
    accounting,
    check_equal,
    strategy,
)


# ---- experiments -------------------------------------------------------------------------
def compare(
    engines: Mapping[str, Engine],
    project_id: int,
    limit: int,
    *,
    names: Sequence[str] | None = None,
    repeat: int = 5,
    warmup: int | None = None,
    server_time: bool = True,
    dataset: Any = None,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> tuple[Results, pl.DataFrame]:
    """Every strategy on every engine: equality first, then interleaved timed runs.

    ``warmup``: untimed rounds before the timed ones, the checked run included; by
    default the engine's ``warmup_runs`` (11 on PostgreSQL, until prepared statements
    and their plans are settled; 1 elsewhere).

    Returns the timed runs (:class:`~workbench.measure.Results`, one row per run, with
    the counted statements and rows of that run) and the accounting frame (statements,
    rows, bytes and server-side milliseconds from the checked run).
    """
    runs: list[dict[str, Any]] = []
    books = []
    for engine in engines.values():
        rounds = engine.warmup_runs if warmup is None else warmup
        runs_e, book = _measure_engine(engine, project_id, limit, names, repeat, rounds, server_time, clock)
        runs += runs_e
        books.append(book)
    ctx = context(engines.values(), dataset, experiment="strategies", project_id=project_id, limit=limit)
    return Results.from_runs(runs, ctx), pl.concat(books, how="diagonal_relaxed")


def _measure_engine(
    engine: Engine,
    project_id: int,
    limit: int,
    names: Sequence[str] | None,
    repeat: int,
    warmup: int,
    server_time: bool | None,
    clock: Callable[[], int],
) -> tuple[list[dict[str, Any]], pl.DataFrame | None]:
    names = list(names or STRATEGIES)
    loads = check_equal(engine, project_id, limit, names)  # also the first warm-up run
    # The scaling sweep (server_time=None) skips the accounting: bytes over a thousand
    # sessions' join rows take seconds, and it plots time against statements only.
    book = None if server_time is None else accounting(loads, engine if server_time else None)
    n = len(next(iter(loads.values())).sessions)
    counters = {name: CountingEngine(engine) for name in names}
    seen: dict[str, list[tuple[int, int]]] = {name: [] for name in names}

    def counted(name: str) -> None:
        db = counters[name]
        seen[name].append((db.statements, db.rows))
        db.reset()

    fns = {name: _bound(strategy(name).load, counters[name], project_id, limit) for name in names}
    times = measure_interleaved(fns, repeat=repeat, warmup=max(0, warmup - 1), clock=clock, after=counted)
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
    names: Sequence[str] | None = None,
    repeat: int = 3,
    warmup: int = 1,
    max_statements: int | None = None,
    dataset: Any = None,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> Results:
    """Cost against the number of sessions loaded, per strategy and engine.

    Each size is checked for equality first. ``max_statements`` bounds the work: a
    strategy whose statement count at a size would exceed it (N+1 at large N) is
    skipped there. ``sessions`` in the result is the number actually loaded (a
    project may have fewer than asked).
    """
    names = list(names or STRATEGIES)
    runs: list[dict[str, Any]] = []
    for engine in engines.values():
        for size in sizes:
            keep = [
                n for n in names if max_statements is None or strategy(n).statements(size) <= max_statements
            ]
            engine_runs, _ = _measure_engine(engine, project_id, size, keep, repeat, warmup, None, clock)
            runs += engine_runs
    ctx = context(engines.values(), dataset, experiment="scaling", project_id=project_id, sizes=list(sizes))
    return Results.from_runs(runs, ctx)


def crossings(summary: pl.DataFrame, involving: Sequence[str] | None = None) -> pl.DataFrame:
    """Where two strategies swap places as more sessions are loaded, per engine.

    ``involving``: only pairs with one of these strategies (e.g. ``["n_plus_one"]``:
    where each alternative overtakes N+1); strategies within noise of each other swap
    back and forth, which is rarely the question.

    ``summary`` is a scaling run's ``Results.summary()``. For each pair of strategies
    measured at the same sizes, wherever the sign of log(median a / median b) changes
    between two neighbouring sizes, the crossing is interpolated on log-log axes:
    ``sessions`` (fractional) and ``ms`` there, the strategy faster below it and the one
    faster above it.
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
                x = np.log(both["sessions"].to_numpy().astype(float))
                ya, yb = np.log(both["median_ms"].to_numpy()), np.log(both["median_ms_b"].to_numpy())
                d = ya - yb  # < 0: a is faster
                signed = np.flatnonzero(d != 0)  # a tie is where they cross, not a crossing itself
                for k, j in zip(signed[:-1], signed[1:], strict=True):
                    if d[k] * d[j] > 0:
                        continue
                    # Between neighbours: interpolate; across ties: at the first tie.
                    t = d[k] / (d[k] - d[j]) if j == k + 1 else 1.0
                    j = k + 1
                    rows.append(
                        {
                            "engine": engine,
                            "faster_below": a if d[k] < 0 else b,
                            "faster_above": b if d[k] < 0 else a,
                            "sessions": float(np.exp(x[k] + t * (x[j] - x[k]))),
                            "ms": float(np.exp(ya[k] + t * (ya[j] - ya[k]))),
                        }
                    )
    schema = {
        "engine": pl.String,
        "faster_below": pl.String,
        "faster_above": pl.String,
        "sessions": pl.Float64,
        "ms": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema).sort("engine", "sessions")


def scaling_conclusions(summary: pl.DataFrame, floors: pl.DataFrame, crossed: pl.DataFrame) -> str:
    """Per engine, in words: the fastest strategy at the largest size, how much of N+1's
    time there the per-statement floor explains, and where N+1 stops being competitive."""
    floor = dict(zip(floors["engine"], floors["floor_ms"], strict=True))
    lines = []
    for (engine,), part in summary.group_by("engine", maintain_order=True):
        top = part.filter(pl.col("sessions") == part["sessions"].max()).sort("median_ms", "strategy")
        best = top.row(0, named=True)
        text = f"{engine}: at {best['sessions']:,} sessions {best['strategy']} is fastest"
        text += f" ({best['median_ms']:.1f} ms)"
        n1 = top.filter(pl.col("strategy") == "n_plus_one")
        if not n1.is_empty() and engine in floor:
            r = n1.row(0, named=True)
            bound = r["statements"] * floor[engine]
            text += (
                f"; N+1 takes {r['median_ms']:.1f} ms for {r['statements']:,.0f} statements, "
                f"{bound / r['median_ms']:.0%} of it the per-statement floor "
                f"({floor[engine] * 1000:.0f} µs each)"
            )
        mine = crossed.filter((pl.col("engine") == engine) & (pl.col("faster_below") == "n_plus_one"))
        if not mine.is_empty():
            where = ", ".join(
                f"{b} at ~{n:,.0f}" for b, n in zip(mine["faster_above"], mine["sessions"], strict=True)
            )
            text += f"; N+1 is overtaken by {where} sessions"
        lines.append(text + ".")
    return "\n".join(lines)


def recommend(results: Results, baseline: str = "n_plus_one", seed: int = 0) -> pl.DataFrame:
    """Per engine (at the largest size measured): the fastest strategy, its speedup over
    ``baseline`` with a bootstrap interval, and the runner-up's ratio to it."""
    frame = results.frame
    largest = frame.group_by("engine").agg(pl.col("sessions").max())
    frame = frame.join(largest, on=["engine", "sessions"], how="semi")
    out = []
    for (engine,), part in frame.group_by("engine", maintain_order=True):
        medians = part.group_by("strategy").agg(pl.col("wall_ns").median()).sort("wall_ns", "strategy")
        best, runner = medians["strategy"][0], medians["strategy"][1] if medians.height > 1 else None
        times = {s: part.filter(pl.col("strategy") == s)["wall_ns"].to_list() for s in medians["strategy"]}
        row: dict[str, Any] = {"engine": engine, "sessions": part["sessions"][0], "best": best}
        row["best_ms"] = float(np.median(times[best])) / 1e6
        if baseline in times:
            row["speedup"], row["lo"], row["hi"] = ratio(times[baseline], times[best], seed=seed)
        if runner is not None:
            r, lo, _ = ratio(times[runner], times[best], seed=seed)
            row.update(runner_up=runner, runner_up_ratio=r, runner_up_lo=lo)
        out.append(row)
    return pl.DataFrame(out)


def conclusions(results: Results, baseline: str = "n_plus_one") -> str:
    """The recommendation per engine as sentences built from the measured numbers."""
    lines = []
    base = STRATEGIES[baseline].label if baseline in STRATEGIES else baseline
    for r in recommend(results, baseline).iter_rows(named=True):
        label = STRATEGIES[r["best"]].label if r["best"] in STRATEGIES else r["best"]
        text = f"{r['engine']}: load {r['sessions']} sessions with {label} ({r['best_ms']:.2f} ms median)"
        if r.get("speedup") is not None and r["best"] != baseline:
            text += f", {r['speedup']:.1f}x faster than {base} (95% CI {r['lo']:.1f}x-{r['hi']:.1f}x)"
        if r.get("runner_up"):
            runner = STRATEGIES[r["runner_up"]].label if r["runner_up"] in STRATEGIES else r["runner_up"]
            if r["runner_up_lo"] <= 1.0:
                text += f"; {runner} is statistically indistinguishable ({r['runner_up_ratio']:.2f}x)"
            else:
                text += f"; the runner-up, {runner}, is {r['runner_up_ratio']:.2f}x slower"
        lines.append(text + ".")
    return "\n".join(lines)


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

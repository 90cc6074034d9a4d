"""Ways to load "a project's N most recent sessions with their messages and windows".

Every strategy returns the same Python structure: a list of session dicts (newest
first), each with ``messages`` (in ``timestamp, id`` order) and ``windows`` (in
``start_time, id`` order) as lists of dicts, values normalised to ``datetime``,
``int``, ``bool``, ``str`` and ``None``. :func:`check_equal` runs them all on one
engine and refuses to go on when any differs, so no timing of a wrong answer is shown.

============== ==================================================== ====================
strategy       what it runs                                         statements
============== ==================================================== ====================
n_plus_one     sessions, then per session its messages and windows  1 + 2N
joined         the plan's sessions ⟕ messages ⟕ windows (m×w rows)  1
per_relation   sessions ⟕ messages, sessions ⋈ windows              2
batch          sessions, then ``session_id IN (...)`` per relation  3 (1 when N = 0)
               (``= ANY(:ids::bigint[])`` on PostgreSQL)
aggregate      one row per session, children aggregated in the DB   1
============== ==================================================== ====================

Statements are counted, not assumed: :class:`CountingEngine` wraps an engine's
``execute`` and counts (and optionally records) every statement.

>>> sessions = batch(engine, project_id=1, limit=10)            # doctest: +SKIP
>>> loads = check_equal(engine, project_id=1, limit=10)          # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from workbench import queries, schema
from workbench.engines.base import Engine, identifier
from workbench.errors import WorkbenchError
from workbench.measure import Results, context, measure_interleaved, ratio

Session = dict[str, Any]
Loader = Callable[..., list[Session]]

SESSION_COLUMNS = tuple(schema.polars_schema("sessions"))
MESSAGE_COLUMNS = tuple(schema.polars_schema("messages"))
WINDOW_COLUMNS = tuple(schema.polars_schema("session_windows"))


class StrategyMismatchError(WorkbenchError):
    """Two loading strategies returned different results on the same data."""


# ---- counting statements -----------------------------------------------------------------
@dataclass
class Statement:
    """One executed statement: its SQL, bound parameters and the rows it returned."""

    sql: str
    params: dict[str, Any]
    rows: list[tuple]


class CountingEngine:
    """An engine whose ``execute`` counts statements and rows (and can record them).

    Everything else is delegated to the wrapped engine. Counting costs a call and a
    ``len`` per statement; recording keeps the rows, so it is for accounting runs only.
    """

    def __init__(self, engine: Engine, record: bool = False) -> None:
        self.engine = engine
        self.record = record
        self.statements = 0
        self.rows = 0
        self.log: list[Statement] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        rows = self.engine.execute(sql, params)
        self._count(sql, params, rows)
        return rows

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pl.DataFrame:
        # Without this, __getattr__ would hand out the engine's query() and its statements
        # would run uncounted.
        frame = self.engine.query(sql, params)
        self._count(sql, params, frame.rows() if self.record else range(frame.height))
        return frame

    def _count(self, sql: str, params: Mapping[str, Any] | None, rows: Sequence[tuple]) -> None:
        self.statements += 1
        self.rows += len(rows)
        if self.record:
            self.log.append(Statement(sql, dict(params or {}), list(rows)))

    def reset(self) -> None:
        self.statements = 0
        self.rows = 0
        self.log = []


def payload_bytes(rows: Sequence[tuple]) -> int:
    """Approximate bytes of the values in ``rows`` as the client received them.

    Text counts its UTF-8 length, numbers and timestamps 8, booleans 1, NULL 0;
    aggregated values (JSON text, lists of structs) count their JSON text. It compares
    strategies (the three-table join's repeated columns show up); it is not wire bytes.
    """
    return sum(_value_bytes(v) for row in rows for v in row)


def _value_bytes(v: Any) -> int:
    if v is None:
        return 0
    if isinstance(v, str):
        return len(v.encode())
    if isinstance(v, bool):
        return 1
    if isinstance(v, int | float | datetime):
        return 8
    if isinstance(v, bytes):
        return len(v)
    return len(json.dumps(v, default=str).encode())


# ---- normalising values ------------------------------------------------------------------
def _as_datetime(v: Any) -> datetime | None:
    return v if v is None or isinstance(v, datetime) else datetime.fromisoformat(v)


def _as_bool(v: Any) -> bool | None:
    return None if v is None else bool(v)


def _converters(table: str) -> dict[str, Callable[[Any], Any]]:
    """Columns whose values need converting (JSON text, SQLite's 0/1) and how."""
    kinds = {pl.Datetime: _as_datetime, pl.Boolean: _as_bool}
    columns = schema.polars_schema(table).items()
    return {c: fn for c, dtype in columns for kind, fn in kinds.items() if dtype == kind}


_CONVERT = {t: _converters(t) for t in ("sessions", "messages", "session_windows")}


def _record(table: str, columns: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    rec = dict(zip(columns, values, strict=True))
    for c, fn in _CONVERT[table].items():
        rec[c] = fn(rec[c])
    return rec


def _normalise(table: str, rec: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(rec)
    for c, fn in _CONVERT[table].items():
        out[c] = fn(out[c])
    return out


def _finish(sessions: list[Session]) -> list[Session]:
    """The contract's order, whatever the strategy's SQL guaranteed (SQLite's JSON arrays)."""
    for s in sessions:
        s["messages"].sort(key=lambda m: (m["timestamp"], m["id"]))
        s["windows"].sort(key=lambda w: (w["start_time"], w["id"]))
    return sessions


def _sql(db: Any, name: str, *, arrays: bool = False) -> str:
    return queries.load(name, db.dialect, arrays=arrays)


def _sessions(db: Any, project_id: int, limit: int) -> list[Session]:
    rows = db.execute(_sql(db, "project_sessions"), {"project_id": project_id, "limit": limit})
    return [_record("sessions", SESSION_COLUMNS, r) | {"messages": [], "windows": []} for r in rows]


# ---- the strategies ----------------------------------------------------------------------
def n_plus_one(db: Any, project_id: int, limit: int) -> list[Session]:
    """The plan's N+1: one query for the sessions, then two per session."""
    sessions = _sessions(db, project_id, limit)
    messages, windows = _sql(db, "session_messages"), _sql(db, "session_windows")
    for s in sessions:
        params = {"session_id": s["id"]}
        s["messages"] = [_record("messages", MESSAGE_COLUMNS, r) for r in db.execute(messages, params)]
        s["windows"] = [_record("session_windows", WINDOW_COLUMNS, r) for r in db.execute(windows, params)]
    return _finish(sessions)


_S, _M = len(SESSION_COLUMNS), len(MESSAGE_COLUMNS)


def joined(db: Any, project_id: int, limit: int) -> list[Session]:
    """The plan's single three-table LEFT JOIN, de-duplicated (m×w rows per session)."""
    rows = db.execute(_sql(db, "project_sessions_joined"), {"project_id": project_id, "limit": limit})
    by_id: dict[int, tuple[Session, dict, dict]] = {}
    for r in rows:
        entry = by_id.get(r[0])
        if entry is None:
            entry = by_id[r[0]] = (_record("sessions", SESSION_COLUMNS, r[:_S]), {}, {})
        _, msgs, wins = entry
        if r[_S] is not None and r[_S] not in msgs:
            msgs[r[_S]] = _record("messages", MESSAGE_COLUMNS, r[_S : _S + _M])
        if r[_S + _M] is not None and r[_S + _M] not in wins:
            wins[r[_S + _M]] = _record("session_windows", WINDOW_COLUMNS, r[_S + _M :])
    sessions = [s | {"messages": list(m.values()), "windows": list(w.values())} for s, m, w in by_id.values()]
    return _finish(sessions)


def per_relation(db: Any, project_id: int, limit: int) -> list[Session]:
    """One join per relation: sessions ⟕ messages, then sessions ⋈ windows."""
    params = {"project_id": project_id, "limit": limit}
    by_id: dict[int, Session] = {}
    for r in db.execute(_sql(db, "project_sessions_messages"), params):
        s = by_id.get(r[0])
        if s is None:
            s = by_id[r[0]] = _record("sessions", SESSION_COLUMNS, r[:_S]) | {"messages": [], "windows": []}
        if r[_S] is not None:
            s["messages"].append(_record("messages", MESSAGE_COLUMNS, r[_S:]))
    for r in db.execute(_sql(db, "project_sessions_windows"), params):
        by_id[r[1]]["windows"].append(_record("session_windows", WINDOW_COLUMNS, r))
    return _finish(list(by_id.values()))


def batch(db: Any, project_id: int, limit: int) -> list[Session]:
    """Select-in loading: sessions, then each relation for all their ids at once."""
    sessions = _sessions(db, project_id, limit)
    if not sessions:
        return sessions
    by_id = {s["id"]: s for s in sessions}
    arrays = db.dialect == "postgres"  # one bound bigint[] instead of one parameter per id
    params = {"session_ids": list(by_id)}
    for r in db.execute(_sql(db, "messages_for_sessions", arrays=arrays), params):
        by_id[r[1]]["messages"].append(_record("messages", MESSAGE_COLUMNS, r))
    for r in db.execute(_sql(db, "windows_for_sessions", arrays=arrays), params):
        by_id[r[1]]["windows"].append(_record("session_windows", WINDOW_COLUMNS, r))
    return _finish(sessions)


def _items(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    return json.loads(value) if isinstance(value, str) else value


def aggregate(db: Any, project_id: int, limit: int) -> list[Session]:
    """One row per session; messages and windows aggregated in the database."""
    rows = db.execute(_sql(db, "project_sessions_aggregated"), {"project_id": project_id, "limit": limit})
    sessions = []
    for r in rows:
        s = _record("sessions", SESSION_COLUMNS, r[:_S])
        s["messages"] = [_normalise("messages", m) for m in _items(r[_S])]
        s["windows"] = [_normalise("session_windows", w) for w in _items(r[_S + 1])]
        sessions.append(s)
    return _finish(sessions)


@dataclass(frozen=True)
class Strategy:
    name: str
    load: Loader
    label: str
    #: statements run for n sessions found
    statements: Callable[[int], int]


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("n_plus_one", n_plus_one, "N+1 (plan)", lambda n: 1 + 2 * n),
        Strategy("joined", joined, "3-table LEFT JOIN (plan)", lambda n: 1),
        Strategy("per_relation", per_relation, "one join per relation", lambda n: 2),
        Strategy("batch", batch, "batch (select-in)", lambda n: 3 if n else 1),
        Strategy("aggregate", aggregate, "aggregate in DB", lambda n: 1),
    )
}


def strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise WorkbenchError(f"Unknown strategy {name!r}: expected one of {', '.join(STRATEGIES)}") from None


# ---- one accounted load ------------------------------------------------------------------
@dataclass
class Load:
    """One strategy's result on one engine, with what it cost to get it."""

    strategy: str
    engine: str
    sessions: list[Session]
    statements: int
    rows: int
    bytes: int
    log: list[Statement] = field(repr=False, default_factory=list)

    @property
    def messages(self) -> int:
        return sum(len(s["messages"]) for s in self.sessions)

    @property
    def windows(self) -> int:
        return sum(len(s["windows"]) for s in self.sessions)


def run(engine: Engine, name: str, project_id: int, limit: int) -> Load:
    """Run strategy ``name`` once with statements recorded: result, counts, rows, bytes.

    Not a timing: recording keeps every row. The timed runs are :func:`compare`'s.
    """
    db = CountingEngine(engine, record=True)
    sessions = strategy(name).load(db, project_id, limit)
    return Load(
        name,
        engine.name,
        sessions,
        db.statements,
        db.rows,
        sum(payload_bytes(s.rows) for s in db.log),
        db.log,
    )


def check_equal(
    engine: Engine, project_id: int, limit: int, names: Sequence[str] | None = None
) -> dict[str, Load]:
    """Run every strategy once and require identical results (before anything is timed).

    Raises :class:`StrategyMismatchError` naming the strategies and the first difference.
    """
    loads = {n: run(engine, n, project_id, limit) for n in (names or STRATEGIES)}
    reference_name, reference = next(iter(loads.items()))
    for name, load in loads.items():
        if load.sessions != reference.sessions:
            raise StrategyMismatchError(
                f"On {engine.name}, strategy {name!r} differs from {reference_name!r} for project "
                f"{project_id}, limit {limit}: {first_difference(reference.sessions, load.sessions)}"
            )
        expected = strategy(name).statements(len(load.sessions))
        if load.statements != expected:
            raise StrategyMismatchError(
                f"On {engine.name}, strategy {name!r} ran {load.statements} statements for "
                f"{len(load.sessions)} sessions; it should run {expected}"
            )
    return loads


def first_difference(a: list[Session], b: list[Session]) -> str:
    """Where two results first differ, in words."""
    if len(a) != len(b):
        return f"{len(a)} sessions against {len(b)}"
    for x, y in zip(a, b, strict=True):
        for key in dict.fromkeys([*x, *y]):
            if x.get(key) == y.get(key):
                continue
            if key in ("messages", "windows"):
                xs, ys = x.get(key, []), y.get(key, [])
                if len(xs) != len(ys):
                    return f"session {x['id']}: {len(xs)} {key} against {len(ys)}"
                for i, (u, v) in enumerate(zip(xs, ys, strict=True)):
                    if u != v:
                        keys = dict.fromkeys([*u, *v])
                        diff = {k: (u.get(k), v.get(k)) for k in keys if u.get(k) != v.get(k)}
                        return f"session {x['id']}, {key}[{i}]: {diff}"
            return f"session {x.get('id')}, {key}: {x.get(key)!r} against {y.get(key)!r}"
    return "no difference"


def accounting(loads: Mapping[str, Load], engine: Engine | None = None) -> pl.DataFrame:
    """Per strategy: sessions, messages, windows, statements, rows, bytes (deterministic).

    With ``engine``, also the server-side time: every recorded statement replayed under
    EXPLAIN ANALYZE and its execution times summed (null where the engine has none).
    """
    rows = []
    for name, load in loads.items():
        row = {
            "engine": load.engine,
            "strategy": name,
            "sessions": len(load.sessions),
            "messages": load.messages,
            "windows": load.windows,
            "statements": load.statements,
            "rows": load.rows,
            "bytes": load.bytes,
        }
        if engine is not None:
            row["server_ms"] = server_time_ms(engine, load.log)
        rows.append(row)
    return pl.DataFrame(rows)


def server_time_ms(engine: Engine, log: Sequence[Statement]) -> float | None:
    """Sum of the engine's own execution time over ``log`` (EXPLAIN ANALYZE), None without actuals."""
    from workbench import plans

    total = 0.0
    for st in log:
        plan = plans.explain(engine, st.sql, st.params)
        if plan.execution_ms is None:
            return None
        total += plan.execution_ms
    return total


def largest_project(engine: Engine) -> tuple[int, int]:
    """(project id, sessions) of the project with the most sessions (lowest id on ties)."""
    rows = engine.execute(
        "SELECT project_id, count(*) AS n FROM sessions GROUP BY project_id"
        " ORDER BY n DESC, project_id LIMIT 1"
    )
    return int(rows[0][0]), int(rows[0][1])


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
    server_time: bool,
    clock: Callable[[], int],
) -> tuple[list[dict[str, Any]], pl.DataFrame]:
    names = list(names or STRATEGIES)
    loads = check_equal(engine, project_id, limit, names)  # also the first warm-up run
    book = accounting(loads, engine if server_time else None)
    n = len(next(iter(loads.values())).sessions)
    counters = {name: CountingEngine(engine) for name in names}
    seen: dict[str, list[tuple[int, int]]] = {name: [] for name in names}

    def counted(name: str) -> None:
        db = counters[name]
        seen[name].append((db.statements, db.rows))
        db.reset()

    fns = {name: _bound(strategy(name).load, counters[name], project_id, limit) for name in names}
    times = measure_interleaved(fns, repeat=repeat, warmup=max(0, warmup - 1), clock=clock, after=counted)
    by_name = {r["strategy"]: r for r in book.iter_rows(named=True)}
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
                    "bytes": by_name[name]["bytes"],
                    "server_ms": by_name[name].get("server_ms"),
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
            engine_runs, _ = _measure_engine(engine, project_id, size, keep, repeat, warmup, False, clock)
            runs += engine_runs
    ctx = context(engines.values(), dataset, experiment="scaling", project_id=project_id, sizes=list(sizes))
    return Results.from_runs(runs, ctx)


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

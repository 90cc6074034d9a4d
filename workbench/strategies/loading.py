"""The five loading strategies, the statement counter, and one accounted, checked load.

See the package docstring (:mod:`workbench.strategies`) for the contract and the table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

import polars as pl

from workbench import queries, schema
from workbench.engines.base import Engine
from workbench.errors import WorkbenchError

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
        # Read by every strategy for every statement it names: an attribute of its own, not
        # __getattr__'s delegation (a failed lookup first, about 1 µs a time, inside timed runs).
        self.name, self.dialect = engine.name, engine.dialect
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
    #: its name inside a sentence, without the label's parentheses ("today's N+1")
    words: str = ""


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("n_plus_one", n_plus_one, "N+1 (today)", lambda n: 1 + 2 * n, "today's N+1"),
        Strategy("joined", joined, "JOIN (plan)", lambda n: 1, "the plan's JOIN"),
        Strategy("per_relation", per_relation, "one JOIN per relation", lambda n: 2, "one JOIN per relation"),
        Strategy("batch", batch, "batch (select-in)", lambda n: 3 if n else 1, "the batch select-in"),
        Strategy("aggregate", aggregate, "aggregate in DB", lambda n: 1, "aggregation in the database"),
    )
}


def label(name: str) -> str:
    """What a strategy is called in figures, tables and sentences ("N+1 (today)", "JOIN (plan)")."""
    return STRATEGIES[name].label if name in STRATEGIES else name


def words(name: str) -> str:
    """What a strategy is called inside a sentence: the label without its parentheses, so a
    verdict that adds its own reads as one clean sentence ("today's N+1", "the plan's JOIN").

    >>> words("n_plus_one"), words("joined"), words("per_relation")
    ("today's N+1", "the plan's JOIN", 'one JOIN per relation')
    """
    s = STRATEGIES.get(name)
    return (s.words or s.label) if s else name


def labelled(frame: pl.DataFrame, column: str = "strategy") -> pl.DataFrame:
    """``frame`` with its strategy names replaced by their labels (for tables people read)."""
    return frame.with_columns(
        pl.col(column).replace_strict({n: s.label for n, s in STRATEGIES.items()}, default=pl.col(column))
    )


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
    log: list[Statement] = field(repr=False, default_factory=list)

    @cached_property
    def bytes(self) -> int:
        """:func:`payload_bytes` of every row received (computed on first use: it is slow)."""
        return sum(payload_bytes(s.rows) for s in self.log)

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
    return Load(name, engine.name, sessions, db.statements, db.rows, db.log)


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

"""The five loading strategies, the statement counter, and one accounted, checked load.

See the package docstring (:mod:`workbench.strategies`) for the contract and the table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
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
    """A way to load the page: ``load(db, project_id, limit)`` returns what it loaded.

    ``statements``: how many statements it runs for a page of n sessions (a function of
    n, a constant, or None when not checked); :func:`check_equal` holds it to that.
    ``label`` names it in tables and figures, ``words`` inside a sentence (both default
    to ``name``).
    """

    name: str
    load: Loader
    label: str = ""
    #: statements run for n sessions found: a function of n, a constant, or None (not checked)
    statements: Callable[[int], int] | int | None = None
    #: its name inside a sentence, without the label's parentheses ("today's N+1")
    words: str = ""

    def expected_statements(self, sessions: int) -> int | None:
        """The statements it should run for a page of ``sessions`` sessions (None: not checked)."""
        s = self.statements
        return s(sessions) if callable(s) else s


#: The built-in strategies, read-only: bring your own by passing it (see :func:`resolve`).
STRATEGIES: Mapping[str, Strategy] = MappingProxyType(
    {
        s.name: s
        for s in (
            Strategy("n_plus_one", n_plus_one, "N+1 (today)", lambda n: 1 + 2 * n, "today's N+1"),
            Strategy("joined", joined, "JOIN (plan)", lambda n: 1, "the plan's JOIN"),
            Strategy(
                "per_relation", per_relation, "one JOIN per relation", lambda n: 2, "one JOIN per relation"
            ),
            Strategy("batch", batch, "batch (select-in)", lambda n: 3 if n else 1, "the batch select-in"),
            Strategy("aggregate", aggregate, "aggregate in DB", lambda n: 1, "aggregation in the database"),
        )
    }
)

StrategyLike = str | Strategy | Loader | os.PathLike


def from_sql(
    path: str | os.PathLike[str],
    *,
    statements: int = 1,
    name: str | None = None,
    label: str = "",
    params: Mapping[str, Any] | None = None,
    shape: Callable[[list[dict[str, Any]]], Any] | None = None,
) -> Strategy:
    """A strategy that runs the SQL in your own file: one statement, PostgreSQL syntax.

    The file binds ``:project_id`` and ``:limit`` (and any of ``params``); it is translated
    for each engine as the workbench's own queries are (:func:`workbench.queries.translate`).
    The load returns the rows as dicts (column -> value), or ``shape(rows)``.
    ``statements``: what it runs (1 for one file, checked). ``name``: the file's stem.

    >>> lateral = from_sql("my_queries/last10_lateral.sql")           # doctest: +SKIP
    >>> compare(engines, project_id, 20, strategies=[my_n_plus_one, lateral])  # doctest: +SKIP
    """
    file = Path(path)
    if file.suffix != ".sql" or not file.is_file():
        raise WorkbenchError(f"Strategy file {str(path)!r} not found: give the path of a .sql file")
    text = file.read_text(encoding="utf-8")
    try:
        queries.translate(text, queries.SOURCE_DIALECT)  # a file that does not parse fails here, named
    except queries.QueryError as e:
        raise queries.QueryError(f"Strategy file {str(path)!r}: {e}") from None
    fixed = dict(params or {})

    def load(db: Any, project_id: int, limit: int) -> Any:
        sql = queries.translate(text, db.dialect)
        rows = db.query(sql, {"project_id": project_id, "limit": limit, **fixed}).to_dicts()
        return rows if shape is None else shape(rows)

    return Strategy(name or file.stem, load, label, statements)


def resolve(items: Sequence[StrategyLike] | None = None) -> list[Strategy]:
    """The strategies ``items`` names, in order (default: every built-in one).

    Each item is a built-in's name (``"n_plus_one"``), a :class:`Strategy`, a function
    ``load(db, project_id, limit)`` (named after the function, its statements not
    checked), or the path of a ``.sql`` file (:func:`from_sql`, one statement). Nothing
    is registered: the strategies live as long as the call.
    """
    out = [as_strategy(x) for x in (STRATEGIES if items is None else items)]
    seen: set[str] = set()
    for s in out:
        if s.name in seen:
            raise WorkbenchError(f"Two strategies are named {s.name!r}: give one a name (Strategy(name=...))")
        seen.add(s.name)
    if not out:
        raise WorkbenchError("No strategies to run: name at least one")
    return out


def as_strategy(item: StrategyLike) -> Strategy:
    """One item of :func:`resolve` as a :class:`Strategy`."""
    if isinstance(item, Strategy):
        return item
    if isinstance(item, str) and item in STRATEGIES:
        return STRATEGIES[item]
    if isinstance(item, os.PathLike) or (isinstance(item, str) and item.endswith(".sql")):
        return from_sql(item)
    if callable(item):
        return Strategy(getattr(item, "__name__", repr(item)), item)
    raise WorkbenchError(
        f"Unknown strategy {item!r}: give one of {', '.join(STRATEGIES)}, a Strategy, "
        "a function load(db, project_id, limit), or the path of a .sql file"
    )


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


def strategy(name: StrategyLike) -> Strategy:
    """A built-in strategy by name (or any item :func:`resolve` takes)."""
    return as_strategy(name)


# ---- one accounted load ------------------------------------------------------------------
@dataclass
class Load:
    """One strategy's result on one engine, with what it cost to get it."""

    strategy: str
    engine: str
    #: what the strategy returned (the built-ins: a list of session dicts)
    result: Any
    statements: int
    rows: int
    log: list[Statement] = field(repr=False, default_factory=list)

    @cached_property
    def bytes(self) -> int:
        """:func:`payload_bytes` of every row received (computed on first use: it is slow)."""
        return sum(payload_bytes(s.rows) for s in self.log)

    def _children(self, key: str) -> int | None:
        r = self.result
        if isinstance(r, list) and all(isinstance(s, dict) and key in s for s in r):
            return sum(len(s[key]) for s in r)
        return None

    @property
    def messages(self) -> int | None:
        """Messages loaded, when the result is sessions carrying ``messages`` (else None)."""
        return self._children("messages")

    @property
    def windows(self) -> int | None:
        """Windows loaded, when the result is sessions carrying ``windows`` (else None)."""
        return self._children("windows")


def run(engine: Engine, item: StrategyLike, project_id: int, limit: int) -> Load:
    """Run one strategy once with statements recorded: result, counts, rows, bytes.

    Not a timing: recording keeps every row. The timed runs are :func:`compare`'s.
    """
    s = as_strategy(item)
    db = CountingEngine(engine, record=True)
    result = s.load(db, project_id, limit)
    return Load(s.name, engine.name, result, db.statements, db.rows, db.log)


def page_sessions(engine: Engine, project_id: int, limit: int) -> int:
    """How many sessions a page of ``limit`` holds for the project (uncounted)."""
    rows = engine.execute(
        "SELECT count(*) FROM sessions WHERE project_id = :project_id", {"project_id": project_id}
    )
    return min(int(rows[0][0]), int(limit))


def check_equal(
    engine: Engine,
    project_id: int,
    limit: int,
    strategies: Sequence[StrategyLike] | None = None,
) -> dict[str, Load]:
    """Run each strategy once and require identical results (before anything is timed).

    ``strategies``: see :func:`resolve` (default: the built-ins). The first is the
    reference; every other must return what it returned (compared whole, whatever its
    shape), and each must run the statements it declares for the page's sessions.
    Raises :class:`StrategyMismatchError` naming the strategies and the first difference.
    """
    chosen = resolve(strategies)
    loads = {s.name: run(engine, s, project_id, limit) for s in chosen}
    reference_name, reference = next(iter(loads.items()))
    sessions = page_sessions(engine, project_id, limit)
    for s in chosen:
        load = loads[s.name]
        if load.result != reference.result:
            raise StrategyMismatchError(
                f"On {engine.name}, strategy {s.name!r} differs from {reference_name!r} for project "
                f"{project_id}, limit {limit}: {first_difference(reference.result, load.result)}"
            )
        expected = s.expected_statements(sessions)
        if expected is not None and load.statements != expected:
            raise StrategyMismatchError(
                f"On {engine.name}, strategy {s.name!r} ran {load.statements} statements for "
                f"{sessions} sessions; it should run {expected}"
            )
    return loads


def first_difference(a: Any, b: Any, at: str = "") -> str:
    """Where two results first differ, in words (any nesting of lists and dicts).

    >>> first_difference([{"id": 1, "messages": [{"id": 5}]}], [{"id": 1, "messages": []}])
    '[0].messages: 1 items against 0'
    >>> first_difference([{"id": 1, "n": 2}], [{"id": 1, "n": 3}])
    '[0].n: 2 against 3'
    """
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            return f"{at or 'result'}: {len(a)} items against {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return first_difference(x, y, f"{at}[{i}]")
    elif isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in dict.fromkeys([*a, *b]):
            if key not in a or key not in b:
                return f"{at or 'result'}: key {key!r} only in the {'first' if key in a else 'second'}"
            if a[key] != b[key]:
                return first_difference(a[key], b[key], f"{at}.{key}")
    elif a != b:
        return f"{at or 'result'}: {a!r} against {b!r}"
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
            "sessions": len(load.result) if load.messages is not None else None,
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

"""The engine adapter interface, and the safety rules every adapter shares.

An engine connects to one database, loads a Dataset through its fastest bulk path,
executes SQL with bound ``:named`` parameters, explains queries, and manages
indexes. The workbench only writes to a database it created (it leaves a marker
table) or to an empty one; anything else is refused with :class:`UnsafeTargetError`.
"""

from __future__ import annotations

import platform
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, ClassVar

import polars as pl
from sqlglot.tokens import Tokenizer, TokenType

from workbench import __version__, schema
from workbench.dataset import Dataset
from workbench.errors import EngineError, UnsafeTargetError, WorkbenchError

MARKER = "workbench_marker"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def identifier(name: str) -> str:
    """Validate ``name`` as a plain SQL identifier and return it double-quoted."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise WorkbenchError(
            f"Invalid identifier {name!r}: use letters, digits and underscores, "
            "starting with a letter (at most 63 characters)"
        )
    return f'"{name}"'


@dataclass(frozen=True)
class _Slot:
    """Where a ``:name`` parameter is written in a statement (for ``[NOT] IN :name``, the
    span from ``NOT``/``IN`` on)."""

    start: int
    end: int
    name: str
    in_list: bool
    negated: bool


@lru_cache(maxsize=1024)
def _slots(sql: str, offset: int = 0) -> tuple[_Slot, ...]:
    """The ``:name`` parameters of ``sql[offset:]``, found by sqlglot's tokenizer: a colon
    inside a quoted string or a comment, or a ``::`` cast, is not one."""
    tokens = Tokenizer().tokenize(sql[offset:])
    if tokens and tokens[0].token_type == TokenType.COMMAND:  # EXPLAIN, SET...: the rest is one token
        return _slots(sql, offset + tokens[0].end + 1)
    slots = []
    for i, colon in enumerate(tokens[:-1]):
        name = tokens[i + 1]
        if colon.token_type != TokenType.COLON or name.start != colon.end + 1 or not name.text.isidentifier():
            continue
        before = tokens[i - 1] if i else None
        if before is not None and before.token_type == TokenType.IN:
            negated = i >= 2 and tokens[i - 2].token_type == TokenType.NOT
            start = tokens[i - 2].start if negated else before.start
            slots.append(_Slot(offset + start, offset + name.end + 1, name.text, True, negated))
        else:
            slots.append(_Slot(offset + colon.start, offset + name.end + 1, name.text, False, False))
    return tuple(slots)


def bind(
    sql: str,
    params: Mapping[str, Any] | None,
    placeholder: Callable[[str], str] = ":{}".format,
    literal: Callable[[str], str] = str,
    empty: tuple[str, str] = ("IN ()", "NOT IN ()"),
) -> tuple[str, dict[str, Any]]:
    """``sql`` with each ``:name`` parameter written as ``placeholder(name)``, and the values
    it uses. ``x IN :ids`` with a list becomes ``x IN (:ids_0, :ids_1, ...)``, each id bound
    separately (the portable form of batch loading). An empty list matches nothing
    (``NOT IN``: everything, NULL included) through ``empty``, the engine's one-predicate
    forms of ``IN``/``NOT IN`` an empty set: ``IN ()`` on SQLite and DuckDB; PostgreSQL,
    which rejects ``()``, passes ``= ANY ('{}')``/``<> ALL ('{}')``. ``literal`` rewrites
    the text between parameters (psycopg needs ``%`` doubled).

    >>> bind("SELECT 1 WHERE a IN :ids AND b = :b", {"ids": [1, 2], "b": 3}, "${}".format)
    ('SELECT 1 WHERE a IN ($ids_0, $ids_1) AND b = $b', {'ids_0': 1, 'ids_1': 2, 'b': 3})
    >>> bind("SELECT 1 WHERE b = :b AND a NOT IN :ids", {"ids": [], "b": 3})
    ('SELECT 1 WHERE b = :b AND a NOT IN ()', {'b': 3})
    """
    params = params or {}
    pieces, values, at = [], {}, 0
    for slot in _slots(sql):
        pieces.append(literal(sql[at : slot.start]))
        at = slot.end
        if slot.name not in params:
            kind = f"a list for `IN :{slot.name}`" if slot.in_list else f"a value for `:{slot.name}`"
            raise WorkbenchError(f"Parameter {slot.name!r} is missing: pass {kind}")
        value = params[slot.name]
        if not slot.in_list:
            values[slot.name] = value
            pieces.append(placeholder(slot.name))
        elif not isinstance(value, list | tuple):
            raise WorkbenchError(f"Parameter {slot.name!r} follows IN, so it must be a list, not {value!r}")
        elif not value:  # one predicate on x, so a neighbouring AND/OR keeps its meaning
            pieces.append(empty[slot.negated])
        else:
            names = [f"{slot.name}_{i}" for i in range(len(value))]
            values.update(zip(names, value, strict=True))
            pieces.append("NOT " * slot.negated + "IN (" + ", ".join(map(placeholder, names)) + ")")
    pieces.append(literal(sql[at:]))
    return "".join(pieces), values


@dataclass
class LoadReport:
    """What a load did: rows per table, seconds per table, and whether it was reused."""

    engine: str
    target: str
    dataset: str
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    reused: bool = False

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "engine": [self.engine] * len(self.rows),
                "table": list(self.rows),
                "rows": list(self.rows.values()),
                "seconds": [self.seconds.get(t, 0.0) for t in self.rows],
                "reused": [self.reused] * len(self.rows),
            }
        )


class Engine(ABC):
    """One database, reached through its native driver."""

    name: ClassVar[str]
    #: sqlglot dialect name, for transpiling the named queries
    dialect: ClassVar[str]
    #: Untimed runs of a workload before its timings are steady (see PostgresEngine).
    warmup_runs: ClassVar[int] = 1

    def __init__(self, target: str) -> None:
        self.target = target

    # ---- connection -------------------------------------------------------------
    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def version(self) -> str:
        """The engine's version string."""

    def describe(self) -> dict[str, str]:
        """Context for results: engine, version, masked target, driver, Python."""
        return {
            "engine": self.name,
            "version": self.version(),
            "target": self.display_target,
            "python": platform.python_version(),
        }

    @property
    def display_target(self) -> str:
        return self.target

    # ---- statements --------------------------------------------------------------
    @abstractmethod
    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        """Run ``sql`` with ``:named`` parameters bound; return all rows as tuples."""

    @abstractmethod
    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pl.DataFrame:
        """Run ``sql`` and return a Polars frame (column names from the cursor)."""

    @abstractmethod
    def explain(self, sql: str, params: Mapping[str, Any] | None = None, analyze: bool = True) -> Any:
        """The engine's raw plan for ``sql`` (JSON text, or EXPLAIN QUERY PLAN rows)."""

    def table_counts(self) -> dict[str, int]:
        return {t: self.execute(f"SELECT count(*) FROM {identifier(t)}")[0][0] for t in schema.TABLES}

    # ---- indexes -----------------------------------------------------------------
    def create_index(self, name: str, table: str, columns: Sequence[str]) -> None:
        cols = ", ".join(identifier(c) for c in columns)
        self._write(f"CREATE INDEX {identifier(name)} ON {identifier(table)} ({cols})")

    def drop_index(self, name: str) -> None:
        self._write(f"DROP INDEX IF EXISTS {identifier(name)}")

    @abstractmethod
    def list_indexes(self) -> pl.DataFrame:
        """Secondary indexes on the workbench tables: name, table, columns."""

    # ---- loading -----------------------------------------------------------------
    @abstractmethod
    def existing_tables(self) -> list[str]:
        """Names of the user tables in the target (database or schema)."""

    @abstractmethod
    def _write(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Execute a statement that changes the database (guarded by ``check_writable``)."""

    def marker(self) -> dict[str, str] | None:
        """The workbench marker of the target, or None when it has none."""
        if MARKER not in self.existing_tables():
            return None
        return dict(self.execute(f"SELECT key, value FROM {MARKER}"))

    def check_writable(self) -> None:
        """Refuse a target that holds tables the workbench did not create."""
        tables = self.existing_tables()
        foreign = sorted(set(tables) - {*schema.TABLES, MARKER}) if MARKER in tables else sorted(tables)
        if foreign:
            shown = ", ".join(foreign[:8]) + (" ..." if len(foreign) > 8 else "")
            raise UnsafeTargetError(
                f"{self.display_target} already holds tables the workbench did not create "
                f"({shown}): it will not drop or overwrite them. Load into a new file, an empty "
                "database, or a new schema instead."
            )

    def marker_rows(self, dataset: Dataset) -> dict[str, str]:
        return {
            "created_by": "workbench",
            "workbench_version": __version__,
            "dataset": dataset.name,
            "content_hash": dataset.content_hash,
            "schema_version": str(schema.SCHEMA_VERSION),
            "loaded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def marker_statements(self, dataset: Dataset, placeholder: str = "?") -> tuple[str, str, list[tuple]]:
        """The marker table's DDL, its insert statement and rows (the loaders run them last)."""
        return (
            f"CREATE TABLE {MARKER} (key TEXT PRIMARY KEY, value TEXT)",
            f"INSERT INTO {MARKER} VALUES ({placeholder}, {placeholder})",
            list(self.marker_rows(dataset).items()),
        )

    def is_loaded(self, dataset: Dataset) -> bool:
        """True when the target already holds exactly this dataset (by content hash)."""
        mark = self.marker()
        return (
            bool(mark)
            and mark.get("content_hash") == dataset.content_hash
            and (self.table_counts() == dataset.counts)
        )

    def load(self, dataset: Dataset, *, force: bool = False, progress: bool = False) -> LoadReport:
        """Load ``dataset`` with the engine's bulk path; reuse it when already loaded."""
        self.check_writable()
        report = LoadReport(self.name, self.display_target, dataset.name)
        if not force and self.is_loaded(dataset):
            report.rows, report.reused = dataset.counts, True
            return report
        self._bulk_load(dataset, report, progress)
        return report

    @abstractmethod
    def _bulk_load(self, dataset: Dataset, report: LoadReport, progress: bool) -> None:
        """Replace the workbench tables with ``dataset`` atomically, marker included."""

    def _fill(self, con: Any, dataset: Dataset, report: LoadReport, progress: bool, placeholder: str) -> None:
        """The bulk load every engine runs on ``con`` (a connection or cursor with ``execute``
        and ``executemany``): create the tables, fill each through :meth:`_load_table`
        (timed into ``report``), then write the marker."""
        for stmt in schema.ddl(self.name):
            con.execute(stmt)
        bar = progress_bar(progress, sum(dataset.counts.values()), f"{self.name} load")
        for table in schema.TABLES:
            started = time.perf_counter()
            self._load_table(con, dataset, table, bar.update)
            report.rows[table] = dataset.counts[table]
            report.seconds[table] = time.perf_counter() - started
        bar.close()
        create, insert, rows = self.marker_statements(dataset, placeholder)
        con.execute(create)
        con.executemany(insert, rows)

    @abstractmethod
    def _load_table(self, con: Any, dataset: Dataset, table: str, advance: Callable[[int], Any]) -> None:
        """Fill ``table`` from ``dataset`` through the engine's bulk path, calling
        ``advance(rows)`` as rows go in."""


def progress_bar(enabled: bool, total: int, desc: str):
    """A tqdm bar (notebook-aware) or a no-op stand-in."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="row", unit_scale=True, disable=not enabled, leave=False)


def open_engine(name: str, target: str, **options: Any) -> Engine:
    """Open engine ``name`` (duckdb, sqlite, postgres) on ``target`` (a path or URL)."""
    from workbench.engines import ENGINES

    try:
        cls = ENGINES[name]
    except KeyError:
        raise EngineError(f"Unknown engine {name!r}: expected one of {', '.join(ENGINES)}") from None
    return cls(target, **options)

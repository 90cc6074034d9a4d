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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, ClassVar

import polars as pl

from workbench import __version__, schema
from workbench.dataset import Dataset
from workbench.errors import EngineError, UnsafeTargetError, WorkbenchError

MARKER = "workbench_marker"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# A :name parameter, not a ::cast, not inside a quoted string (good enough for our SQL).
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_EXPANDING_IN = re.compile(r"\b(NOT\s+)?IN\s*:([A-Za-z_]\w*)", re.IGNORECASE)


def identifier(name: str) -> str:
    """Validate ``name`` as a plain SQL identifier and return it double-quoted."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise WorkbenchError(
            f"Invalid identifier {name!r}: use letters, digits and underscores, "
            "starting with a letter (at most 63 characters)"
        )
    return f'"{name}"'


def expand_in_lists(sql: str, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Rewrite ``x IN :ids`` with a list value into ``x IN (:ids_0, :ids_1, ...)``.

    The portable form of batch loading: every engine binds each id separately.
    An empty list matches nothing (``NOT IN``: everything), as in SQLAlchemy.
    """
    out = dict(params)

    def repl(m: re.Match[str]) -> str:
        negated, name = m.group(1) or "", m.group(2)
        if name not in out:
            raise WorkbenchError(f"Parameter {name!r} is missing: pass a list for `IN :{name}`")
        values = out.pop(name)
        if not isinstance(values, list | tuple):
            raise WorkbenchError(f"Parameter {name!r} follows IN, so it must be a list, not {values!r}")
        if not values:
            # x IN () matches nothing; x NOT IN () matches everything (NOT IN (NULL) would not).
            return "IN (NULL)" if not negated else "IS NOT NULL OR 1 = 1"
        for i, v in enumerate(values):
            out[f"{name}_{i}"] = v
        return negated + "IN (" + ", ".join(f":{name}_{i}" for i in range(len(values))) + ")"

    return _EXPANDING_IN.sub(repl, sql), out


@lru_cache(maxsize=1024)
def param_names(sql: str) -> tuple[str, ...]:
    return tuple(_PARAM.findall(sql))


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

    def _timed(self, report: LoadReport, table: str, rows: int, started: float) -> None:
        report.rows[table] = rows
        report.seconds[table] = time.perf_counter() - started


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

"""SQLite, embedded: ``executemany`` in one transaction, journal off while loading."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from workbench import schema
from workbench.dataset import Dataset
from workbench.engines.base import Engine, LoadReport, bind
from workbench.engines.embedded import EmbeddedFile
from workbench.errors import EngineError

#: How timestamps are stored: sortable text with microseconds, as SQLAlchemy writes them.
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
BATCH_ROWS = 50_000

# Converters are keyed by declared column type; only connections opened with
# detect_types use them, so other sqlite3 users in the process are unaffected.
sqlite3.register_converter("DATETIME", lambda b: datetime.fromisoformat(b.decode()))
sqlite3.register_converter("BOOLEAN", lambda b: b != b"0")


def _bind(sql: str, params: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    sql, params = bind(sql, params)
    return sql, {k: _text(v) if isinstance(v, datetime) else v for k, v in params.items()}


def _text(value: datetime) -> str:
    """A bound datetime as stored: naive UTC text (an aware value is converted first)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime(TIMESTAMP_FORMAT)


class SQLiteEngine(EmbeddedFile, Engine):
    name = "sqlite"
    dialect = "sqlite"

    def _connect(self, path: str) -> sqlite3.Connection:
        con = sqlite3.connect(path, detect_types=sqlite3.PARSE_DECLTYPES, isolation_level=None)
        try:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as e:
            con.close()
            raise EngineError(
                f"{path!r} is not an SQLite database ({e}): choose a new file path for --target"
            ) from None
        return con

    def version(self) -> str:
        return f"SQLite {sqlite3.sqlite_version}"

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        return self.con.execute(*_bind(sql, params)).fetchall()

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pl.DataFrame:
        cur = self.con.execute(*_bind(sql, params))
        names = [d[0] for d in cur.description]
        return pl.DataFrame(cur.fetchall(), schema=names, orient="row", infer_schema_length=None)

    def _write(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self.check_writable()
        self.con.execute(*_bind(sql, params))

    def explain(self, sql: str, params: Mapping[str, Any] | None = None, analyze: bool = True) -> list[tuple]:
        """EXPLAIN QUERY PLAN rows (id, parent, detail): SQLite has no per-operator actuals."""
        sql, params = _bind(sql, params)
        return [(r[0], r[1], r[3]) for r in self.con.execute("EXPLAIN QUERY PLAN " + sql, params)]

    def existing_tables(self) -> list[str]:
        rows = self.con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        return [r[0] for r in rows]

    def list_indexes(self) -> pl.DataFrame:
        return self.query(
            "SELECT m.name AS name, m.tbl_name AS \"table\", group_concat(i.name, ', ') AS columns,"
            " m.sql AS sql FROM sqlite_master m, pragma_index_info(m.name) i"
            " WHERE m.type = 'index' AND m.sql IS NOT NULL GROUP BY m.name ORDER BY m.name"
        )

    def _fill_file(self, path: str, dataset: Dataset, report: LoadReport, progress: bool) -> None:
        con = sqlite3.connect(path, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode = OFF")  # the file is renamed in only when complete
            con.execute("PRAGMA synchronous = OFF")
            con.execute("BEGIN")
            self._fill(con, dataset, report, progress, "?")
            con.execute("COMMIT")
        finally:
            con.close()

    def _load_table(self, con: Any, dataset: Dataset, table: str, advance: Callable[[int], Any]) -> None:
        columns = list(schema.polars_schema(table))
        insert = f'INSERT INTO "{table}" VALUES ({", ".join("?" * len(columns))})'
        for batch in pq.ParquetFile(dataset.file(table)).iter_batches(BATCH_ROWS):
            frame = pl.from_arrow(batch).with_columns(
                pl.col(pl.Datetime).dt.strftime("%Y-%m-%d %H:%M:%S%.6f"),
                pl.col(pl.Boolean).cast(pl.Int8),
            )
            con.executemany(insert, frame.iter_rows())
            advance(frame.height)

"""DuckDB, embedded: loads straight from the Dataset's Parquet files."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import duckdb
import polars as pl

from workbench.dataset import Dataset
from workbench.engines.base import Engine, LoadReport, bind
from workbench.engines.embedded import EmbeddedFile
from workbench.errors import EngineError


def _bind(sql: str, params: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    return bind(sql, params, "${}".format)


class DuckDBEngine(EmbeddedFile, Engine):
    name = "duckdb"
    dialect = "duckdb"

    def _connect(self, path: str) -> duckdb.DuckDBPyConnection:
        try:
            return duckdb.connect(path)
        except duckdb.Error as e:
            if "lock" in str(e).lower():
                raise EngineError(
                    f"{path!r} is open in another process ({str(e).splitlines()[0]}): close that "
                    "kernel or process, or pass another --target"
                ) from None
            raise EngineError(
                f"{path!r} is not a DuckDB database ({e}): choose a new file path for --target"
            ) from None

    def version(self) -> str:
        return f"DuckDB {duckdb.__version__}"

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        sql, params = _bind(sql, params)
        return self.con.execute(sql, params).fetchall()

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pl.DataFrame:
        sql, params = _bind(sql, params)
        return pl.from_arrow(self.con.sql(sql, params=params).to_arrow_table())

    def _write(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self.check_writable()
        sql, params = _bind(sql, params)
        self.con.execute(sql, params)

    def explain(self, sql: str, params: Mapping[str, Any] | None = None, analyze: bool = True) -> str:
        sql, params = _bind(sql, params)
        prefix = "EXPLAIN (ANALYZE, FORMAT JSON) " if analyze else "EXPLAIN (FORMAT JSON) "
        rows = self.con.execute(prefix + sql, params).fetchall()
        return rows[0][1]

    def existing_tables(self) -> list[str]:
        rows = self.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
        ).fetchall()
        return [r[0] for r in rows]

    def list_indexes(self) -> pl.DataFrame:
        return self.query(
            'SELECT index_name AS name, table_name AS "table", expressions AS columns, sql '
            "FROM duckdb_indexes() WHERE database_name = current_database() ORDER BY 1"
        )

    def _fill_file(self, path: str, dataset: Dataset, report: LoadReport, progress: bool) -> None:
        con = duckdb.connect(path)
        try:
            self._fill(con, dataset, report, progress, "?")
            con.execute("CHECKPOINT")
        finally:
            con.close()

    def _load_table(self, con: Any, dataset: Dataset, table: str, advance: Callable[[int], Any]) -> None:
        con.execute(f'INSERT INTO "{table}" SELECT * FROM read_parquet($p)', {"p": str(dataset.file(table))})
        advance(dataset.counts[table])

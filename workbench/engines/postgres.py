"""PostgreSQL, a real server reached by URL: ``COPY ... FROM STDIN`` in one transaction."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any

import polars as pl
import psycopg
import pyarrow.parquet as pq
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from workbench import schema
from workbench.dataset import Dataset
from workbench.engines.base import MARKER, Engine, LoadReport, bind, identifier
from workbench.errors import EngineError

BATCH_ROWS = 100_000


def mask_url(url: str) -> str:
    """``url`` with its password (in the user part or a ``password=`` parameter) shown as ``***``."""
    try:
        parsed = make_url(url)
    except Exception:
        return "<unparseable database URL>"
    if "password" in parsed.query:
        parsed = parsed.update_query_dict({"password": "***"})
    return parsed.render_as_string(hide_password=True)


def mask_secrets(text: str, url: str) -> str:
    """Remove ``url``'s passwords from ``text`` (driver messages can echo them)."""
    try:
        parsed = make_url(url)
    except Exception:
        return text
    for secret in (parsed.password, parsed.query.get("password")):
        if secret:
            text = text.replace(str(secret), "***")
    return text


#: ``IN`` / ``NOT IN`` an empty list: PostgreSQL rejects ``IN ()``; ``'{}'`` takes the column's type.
_EMPTY = ("= ANY ('{}')", "<> ALL ('{}')")


def _bind(sql: str, params: Mapping[str, Any] | None) -> tuple[str, dict[str, Any] | None]:
    text, values = bind(sql, params, "%({})s".format, empty=_EMPTY)
    if not values:  # psycopg substitutes nothing then, so a literal % must stay single
        return text, None
    return bind(sql, params, "%({})s".format, lambda part: part.replace("%", "%%"), _EMPTY)[0], values


def _libpq_url(url: str) -> str:
    """Accept SQLAlchemy-style ``postgresql+psycopg://`` URLs too."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresEngine(Engine):
    name = "postgres"
    dialect = "postgres"
    # A statement's cost changes twice before it is steady: psycopg prepares it server-side
    # once it has run prepare_threshold (5) times, and PostgreSQL plans a prepared statement
    # afresh for 5 executions before it may switch to a generic plan. A timed run taken
    # before that measures a state the workload then leaves.
    warmup_runs = 11

    def __init__(self, target: str, schema_name: str = "public") -> None:
        super().__init__(target)
        self.schema_name = schema_name
        identifier(schema_name)
        try:
            self.con = psycopg.connect(_libpq_url(target), autocommit=True, connect_timeout=10)
        except (psycopg.Error, ValueError, ArgumentError) as e:
            raise EngineError(
                f"Cannot connect to PostgreSQL at {self.display_target}: "
                f"{mask_secrets(str(e).strip(), target)}. Check the URL and that the server runs, "
                "or leave the URL out to use the throwaway server (workbench pg start)."
            ) from None
        self.con.execute(f"SET search_path TO {identifier(schema_name)}")

    @property
    def display_target(self) -> str:
        return mask_url(self.target) + (
            "" if self.schema_name == "public" else f" (schema {self.schema_name})"
        )

    def close(self) -> None:
        self.con.close()

    def version(self) -> str:
        return self.con.execute("SHOW server_version").fetchone()[0].split()[0].join(["PostgreSQL ", ""])

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        cur = self.con.execute(*_bind(sql, params))
        return cur.fetchall() if cur.description else []

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pl.DataFrame:
        cur = self.con.execute(*_bind(sql, params))
        names = [d.name for d in cur.description]
        return pl.DataFrame(cur.fetchall(), schema=names, orient="row", infer_schema_length=None)

    def _write(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self.check_writable()
        self.con.execute(*_bind(sql, params))

    def explain(self, sql: str, params: Mapping[str, Any] | None = None, analyze: bool = True) -> Any:
        """``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)`` as parsed JSON (a list with one plan)."""
        options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
        return self.execute(f"EXPLAIN ({options}) " + sql, params)[0][0]

    def existing_tables(self) -> list[str]:
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (self.schema_name,),
        ).fetchall()
        return [r[0] for r in rows]

    def list_indexes(self) -> pl.DataFrame:
        return self.query(
            'SELECT i.indexname AS name, i.tablename AS "table",'
            # the key's columns: the last parenthesis once a covering index's INCLUDE (...) is cut
            " regexp_replace(regexp_replace(i.indexdef, ' INCLUDE \\(.*\\)$', ''), '.*\\((.*)\\)$', '\\1')"
            " AS columns, i.indexdef AS sql"
            " FROM pg_indexes i JOIN pg_index x ON x.indexrelid = (quote_ident(i.schemaname) || '.' ||"
            " quote_ident(i.indexname))::regclass"
            " WHERE i.schemaname = :schema AND NOT x.indisprimary ORDER BY 1",
            {"schema": self.schema_name},
        )

    def _bulk_load(self, dataset: Dataset, report: LoadReport, progress: bool) -> None:
        # One transaction: DDL is transactional in PostgreSQL, so a failed load rolls back whole.
        with self.con.transaction(), self.con.cursor() as cur:
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {identifier(self.schema_name)}")
            for table in (*reversed(schema.TABLES), MARKER):
                cur.execute(f"DROP TABLE IF EXISTS {identifier(table)} CASCADE")
            self._fill(cur, dataset, report, progress, "%s")
        for table in (*schema.TABLES, MARKER):  # only what it loaded: other tables' statistics stay
            self.con.execute(f"ANALYZE {identifier(table)}")

    def _load_table(self, con: Any, dataset: Dataset, table: str, advance: Callable[[int], Any]) -> None:
        columns = ", ".join(identifier(c) for c in schema.polars_schema(table))
        with con.copy(f"COPY {identifier(table)} ({columns}) FROM STDIN (FORMAT csv)") as copy:
            for batch in pq.ParquetFile(dataset.file(table)).iter_batches(BATCH_ROWS):
                buffer = io.BytesIO()
                pl.from_arrow(batch).write_csv(buffer, include_header=False, null_value="")
                copy.write(buffer.getbuffer())
                advance(batch.num_rows)

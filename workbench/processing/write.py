"""Writing message rows into an engine, the four ways the plan and drivers offer.

- ``row``: one ``INSERT`` per row (the plan's "before");
- ``executemany``: one prepared ``INSERT``, the driver loops over the rows;
- ``values``: multi-row ``INSERT ... VALUES (...), (...)``, split under each engine's
  bound-parameter limit;
- ``bulk``: the engine's bulk path: PostgreSQL ``COPY ... FROM STDIN``, DuckDB an
  Arrow table inserted in one statement, SQLite ``executemany`` with the whole job in
  one transaction (each batch a savepoint inside it, so a failed batch still rolls
  back alone).

Every batch is written atomically: it lands whole or not at all, which is what lets
the batch processor retry it or dead-letter it without losing or duplicating a row.
The target table is ``sync_messages`` (``uuid`` is its primary key). The sink writes
only into a database that is empty or holds the workbench's own tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from workbench.engines import open_engine
from workbench.engines.base import MARKER
from workbench.errors import UnsafeTargetError
from workbench.processing.decode import COLUMNS, ProcessingError, Row

WRITERS = ("row", "executemany", "values", "bulk")
TABLE = "sync_messages"
_TYPES = {"line": "BIGINT", "input_tokens": "BIGINT", "output_tokens": "BIGINT"}
_NOT_NULL = {"session_id", "file", "line", "role", "type", "content", "timestamp"}
#: Bound parameters per statement: SQLite's default limit (3.32+) and PostgreSQL's protocol limit.
PARAM_LIMIT = {"sqlite": 32_766, "postgres": 65_535, "duckdb": 65_535}


def ddl(engine: str) -> str:
    cols = ["uuid TEXT PRIMARY KEY"] + [
        f"{c} {_TYPES.get(c, 'TEXT')}{' NOT NULL' if c in _NOT_NULL else ''}" for c in COLUMNS[1:]
    ]
    return f"CREATE TABLE IF NOT EXISTS {TABLE} ({', '.join(cols)})"


def check_writer(name: str) -> str:
    if name not in WRITERS:
        raise ProcessingError(f"Unknown writer {name!r}: expected one of {', '.join(WRITERS)}")
    return name


class Sink:
    """The sync job's target: ``sync_messages`` in a DuckDB/SQLite file or a PostgreSQL database.

    >>> with Sink("duckdb", "sync.duckdb") as sink:               # doctest: +SKIP
    ...     sink.write([row, ...], "bulk")
    """

    def __init__(self, engine: str, target: str, *, replace: bool = False) -> None:
        self.engine_name = engine
        self.engine = open_engine(engine, target)
        self.con: Any = self.engine.con
        self.name = engine
        self._job_open = False
        try:
            self._check_safe()
            if replace:
                self.con.execute(f"DROP TABLE IF EXISTS {TABLE}")
            self.con.execute(ddl(engine))
        except BaseException:
            self.engine.close()
            raise
        ph = "%s" if engine == "postgres" else "?"
        self._row_sql = f"({', '.join([ph] * len(COLUMNS))})"
        self.insert_sql = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES {self._row_sql}"
        self._values_sql: dict[int, str] = {}

    def _check_safe(self) -> None:
        tables = set(self.engine.existing_tables())
        own = {TABLE}
        if MARKER in tables:  # a database the workbench loaded: its tables are ours too
            own |= {MARKER} | _workbench_tables()
        foreign = sorted(tables - own)
        if foreign:
            raise UnsafeTargetError(
                f"{self.engine.display_target} holds tables the sync job did not create "
                f"({', '.join(foreign[:8])}): sync into a new file, an empty database or a new schema"
            )

    # ---- writing -------------------------------------------------------------------------
    def write(self, rows: Sequence[Row], writer: str = "executemany") -> int:
        """Write ``rows`` atomically with ``writer``; return how many were written."""
        check_writer(writer)
        if not rows:
            return 0
        if self.engine_name == "sqlite" and writer == "bulk":
            return self._write_in_job(rows)
        if self.engine_name == "postgres":
            with self.con.transaction(), self.con.cursor() as cur:
                self._write_pg(cur, rows, writer)
            return len(rows)
        self.con.execute("BEGIN")
        try:
            self._write(rows, writer)
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")
        return len(rows)

    def finish(self) -> None:
        """Commit the job-wide transaction of SQLite's bulk path, if one is open."""
        if self._job_open:
            self.con.execute("COMMIT")
            self._job_open = False

    def _write_in_job(self, rows: Sequence[Row]) -> int:
        if not self._job_open:
            self.con.execute("BEGIN")
            self._job_open = True
        self.con.execute("SAVEPOINT batch")
        try:
            self.con.executemany(self.insert_sql, rows)
        except BaseException:
            self.con.execute("ROLLBACK TO batch")
            self.con.execute("RELEASE batch")
            raise
        self.con.execute("RELEASE batch")
        return len(rows)

    def _write(self, rows: Sequence[Row], writer: str) -> None:
        con, sql = self.con, self.insert_sql
        if writer == "row":
            for r in rows:
                con.execute(sql, r)
        elif writer == "executemany":
            con.executemany(sql, rows)
        elif writer == "values":
            self._values(con.execute, rows)
        elif self.engine_name == "duckdb":  # bulk: one Arrow table, one INSERT
            arrow_batch = to_arrow(rows)  # noqa: F841 (DuckDB finds the local by name)
            con.execute(f"INSERT INTO {TABLE} SELECT * FROM arrow_batch")
        else:
            con.executemany(sql, rows)

    def _write_pg(self, cur: Any, rows: Sequence[Row], writer: str) -> None:
        if writer == "row":
            for r in rows:
                cur.execute(self.insert_sql, r)
        elif writer == "executemany":
            cur.executemany(self.insert_sql, rows)
        elif writer == "values":
            self._values(cur.execute, rows)
        else:
            with cur.copy(f"COPY {TABLE} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row(r)

    def _values(self, execute: Any, rows: Sequence[Row]) -> None:
        step = PARAM_LIMIT[self.engine_name] // len(COLUMNS)
        for i in range(0, len(rows), step):
            chunk = rows[i : i + step]
            sql = self._values_sql.get(len(chunk))
            if sql is None:
                sql = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES " + ", ".join(
                    [self._row_sql] * len(chunk)
                )
                self._values_sql[len(chunk)] = sql
            execute(sql, [v for r in chunk for v in r])

    # ---- reading back ------------------------------------------------------------------------
    def count(self) -> int:
        return self.engine.execute(f"SELECT count(*) FROM {TABLE}")[0][0]

    def uuids(self) -> list[str]:
        return [r[0] for r in self.engine.execute(f"SELECT uuid FROM {TABLE} ORDER BY uuid")]

    def totals(self) -> dict[str, int]:
        """Row count, distinct uuids and token sums: what equal results must agree on."""
        n, d, i, o = self.engine.execute(
            f"SELECT count(*), count(DISTINCT uuid), coalesce(sum(input_tokens), 0),"
            f" coalesce(sum(output_tokens), 0) FROM {TABLE}"
        )[0]
        return {"rows": int(n), "uuids": int(d), "input_tokens": int(i), "output_tokens": int(o)}

    def truncate(self) -> None:
        self.finish()
        self.con.execute(f"DELETE FROM {TABLE}")

    def close(self) -> None:
        try:
            self.finish()
        finally:
            self.engine.close()

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def to_arrow(rows: Sequence[Row]) -> Any:
    """``rows`` as an Arrow table with the sync table's column types."""
    import pyarrow as pa

    types = {c: pa.int64() if _TYPES.get(c) == "BIGINT" else pa.string() for c in COLUMNS}
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in COLUMNS]
    return pa.table({c: pa.array(v, type=types[c]) for c, v in zip(COLUMNS, cols, strict=True)})


def _workbench_tables() -> set[str]:
    from workbench import schema

    return set(schema.TABLES)

"""The backend's five tables, defined once.

SQLAlchemy Core is the single source of truth: DDL for DuckDB, SQLite and PostgreSQL
and the Arrow/Polars schema of a Dataset's Parquet files are all derived from
``METADATA``. Only primary and foreign keys are declared; which secondary indexes
to add is what the analysis decides.

All timestamps are naive UTC (``TIMESTAMP WITHOUT TIME ZONE``), the same on every
engine, so results compare row for row.
"""

from __future__ import annotations

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateTable

SCHEMA_VERSION = 1

METADATA = sa.MetaData()


def _id() -> sa.Column:
    # autoincrement=False: ids come from the Dataset, and it keeps SERIAL out of DDL.
    return sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False)


projects = sa.Table(
    "projects",
    METADATA,
    _id(),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

sessions = sa.Table(
    "sessions",
    METADATA,
    _id(),
    sa.Column("project_id", sa.BigInteger, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("external_id", sa.Text, nullable=False),
    sa.Column("title", sa.Text),
    sa.Column("model", sa.Text),
    sa.Column("git_branch", sa.Text),
    sa.Column("is_sidechain", sa.Boolean, nullable=False),
    sa.Column("message_count", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

messages = sa.Table(
    "messages",
    METADATA,
    _id(),
    sa.Column("session_id", sa.BigInteger, sa.ForeignKey("sessions.id"), nullable=False),
    sa.Column("external_id", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),  # user | assistant
    sa.Column("type", sa.Text, nullable=False),  # text | tool_use | tool_result | thinking | ...
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("timestamp", sa.DateTime, nullable=False),
    sa.Column("model", sa.Text),
    sa.Column("input_tokens", sa.Integer),
    sa.Column("output_tokens", sa.Integer),
    sa.Column("cache_creation_tokens", sa.Integer),
    sa.Column("cache_read_tokens", sa.Integer),
)

session_windows = sa.Table(
    "session_windows",
    METADATA,
    _id(),
    sa.Column("session_id", sa.BigInteger, sa.ForeignKey("sessions.id"), nullable=False),
    sa.Column("start_time", sa.DateTime, nullable=False),
    sa.Column("end_time", sa.DateTime, nullable=False),
    sa.Column("last_activity", sa.DateTime, nullable=False),
    sa.Column("message_count", sa.Integer, nullable=False),
    sa.Column("total_tokens", sa.BigInteger, nullable=False),
)

jobs = sa.Table(
    "jobs",
    METADATA,
    _id(),
    sa.Column("session_id", sa.BigInteger, sa.ForeignKey("sessions.id")),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("started_at", sa.DateTime),
    sa.Column("finished_at", sa.DateTime),
)

#: Tables in dependency order: load in this order, drop in reverse.
TABLES: tuple[str, ...] = tuple(str(t.name) for t in METADATA.sorted_tables)

_POLARS_TYPES: dict[type, pl.DataType] = {
    sa.BigInteger: pl.Int64(),
    sa.Integer: pl.Int32(),
    sa.Text: pl.String(),
    sa.DateTime: pl.Datetime("us"),
    sa.Boolean: pl.Boolean(),
}


def table(name: str) -> sa.Table:
    """The table called ``name``, or a clear error listing the known ones."""
    try:
        return METADATA.tables[name]
    except KeyError:
        from workbench.errors import WorkbenchError

        raise WorkbenchError(f"Unknown table {name!r}: expected one of {', '.join(TABLES)}") from None


def polars_schema(name: str) -> pl.Schema:
    """Column names and Polars dtypes of table ``name``, in declaration order."""
    return pl.Schema({str(c.name): _POLARS_TYPES[type(c.type)] for c in table(name).columns})


def conform(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Select and cast ``frame``'s columns to table ``name``'s schema (strict)."""
    schema = polars_schema(name)
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        from workbench.errors import DatasetError

        raise DatasetError(f"Table {name!r} is missing columns {missing}")
    return frame.select(pl.col(c).cast(t, strict=True) for c, t in schema.items())


_DIALECTS = {
    "postgres": postgresql.dialect(),
    "sqlite": sqlite.dialect(),
    # DuckDB speaks PostgreSQL's DDL for these types; duckdb-engine is avoided on purpose
    # (its SERIAL and reflection problems are in docs/ENVIRONMENT notes).
    "duckdb": postgresql.dialect(),
}


def ddl(dialect: str) -> list[str]:
    """``CREATE TABLE`` statements for every table, in dependency order.

    >>> ddl("sqlite")[0].splitlines()[0]
    'CREATE TABLE projects ('
    """
    compiled = _DIALECTS[dialect]
    # DuckDB backs every foreign key with an ART index on the referencing column: that
    # would be a secondary index the analysis has not chosen, so DuckDB gets none.
    fks = [] if dialect == "duckdb" else None
    return [
        str(CreateTable(t, include_foreign_key_constraints=fks).compile(dialect=compiled)).strip()
        for t in METADATA.sorted_tables
    ]

"""The backend's five tables, defined once.

``_TABLES`` declares them as plain data; the SQLAlchemy Core tables (``METADATA``, DDL for
DuckDB, SQLite and PostgreSQL) and the Arrow/Polars schema of a Dataset's Parquet files
are derived from it. SQLAlchemy and Polars are imported only when first used
(``METADATA``, ``table``, ``ddl``, ``schema.messages`` ...; ``polars_schema``): writing a
Dataset, and so an ingest, needs neither. Every table's primary key is its ``id`` (BIGINT, ids
come from the Dataset); only primary and foreign keys are declared, since which
secondary indexes to add is what the analysis decides.

All timestamps are naive UTC (``TIMESTAMP WITHOUT TIME ZONE``), the same on every
engine, so results compare row for row.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

import pyarrow as pa

if TYPE_CHECKING:
    import polars as pl
    import sqlalchemy as sa

SCHEMA_VERSION = 1


class Column(NamedTuple):
    name: str
    type: str  # a SQLAlchemy type: BigInteger, Integer, Text, DateTime, Boolean
    nullable: bool = True
    references: str | None = None  # "table.column"


def _required(name: str, type_: str, references: str | None = None) -> Column:
    return Column(name, type_, False, references)


_ID = _required("id", "BigInteger")

#: Every table, in dependency order (load in this order, drop in reverse): referenced
#: tables first, then by name, as SQLAlchemy's ``METADATA.sorted_tables`` orders them.
_TABLES: dict[str, tuple[Column, ...]] = {
    "projects": (
        _ID,
        _required("name", "Text"),
        _required("path", "Text"),
        _required("created_at", "DateTime"),
    ),
    "sessions": (
        _ID,
        _required("project_id", "BigInteger", "projects.id"),
        _required("external_id", "Text"),
        Column("title", "Text"),
        Column("model", "Text"),
        Column("git_branch", "Text"),
        _required("is_sidechain", "Boolean"),
        _required("message_count", "Integer"),
        _required("created_at", "DateTime"),
        _required("updated_at", "DateTime"),
    ),
    "jobs": (
        _ID,
        Column("session_id", "BigInteger", references="sessions.id"),
        _required("type", "Text"),
        _required("status", "Text"),
        _required("attempts", "Integer"),
        Column("error", "Text"),
        _required("created_at", "DateTime"),
        Column("started_at", "DateTime"),
        Column("finished_at", "DateTime"),
    ),
    "messages": (
        _ID,
        _required("session_id", "BigInteger", "sessions.id"),
        _required("external_id", "Text"),
        _required("role", "Text"),  # user | assistant
        _required("type", "Text"),  # text | tool_use | tool_result | thinking | ...
        _required("content", "Text"),
        _required("timestamp", "DateTime"),
        Column("model", "Text"),
        Column("input_tokens", "Integer"),
        Column("output_tokens", "Integer"),
        Column("cache_creation_tokens", "Integer"),
        Column("cache_read_tokens", "Integer"),
    ),
    "session_windows": (
        _ID,
        _required("session_id", "BigInteger", "sessions.id"),
        _required("start_time", "DateTime"),
        _required("end_time", "DateTime"),
        _required("last_activity", "DateTime"),
        _required("message_count", "Integer"),
        _required("total_tokens", "BigInteger"),
    ),
}

TABLES: tuple[str, ...] = tuple(_TABLES)

_ARROW_TYPES: dict[str, pa.DataType] = {
    "BigInteger": pa.int64(),
    "Integer": pa.int32(),
    "Text": pa.large_string(),
    "DateTime": pa.timestamp("us"),
    "Boolean": pa.bool_(),
}


def columns(name: str) -> tuple[Column, ...]:
    """The columns of table ``name``, or a clear error listing the known tables."""
    try:
        return _TABLES[name]
    except KeyError:
        from workbench.errors import WorkbenchError

        raise WorkbenchError(f"Unknown table {name!r}: expected one of {', '.join(TABLES)}") from None


def arrow_schema(name: str) -> pa.Schema:
    """Table ``name``'s Arrow schema: how a Dataset stores it in Parquet."""
    return pa.schema([(c.name, _ARROW_TYPES[c.type]) for c in columns(name)])


def polars_schema(name: str) -> pl.Schema:
    """Column names and Polars dtypes of table ``name``, in declaration order."""
    import polars as pl

    return pl.from_arrow(arrow_schema(name).empty_table()).schema


def conform(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Select and cast ``frame``'s columns to table ``name``'s schema (strict)."""
    import polars as pl

    schema = polars_schema(name)
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        from workbench.errors import DatasetError

        raise DatasetError(f"Table {name!r} is missing columns {missing}")
    return frame.select(pl.col(c).cast(t, strict=True) for c, t in schema.items())


@cache
def _metadata() -> sa.MetaData:
    import sqlalchemy as sa

    metadata = sa.MetaData()
    for name, cols in _TABLES.items():
        sa.Table(
            name,
            metadata,
            *(
                # autoincrement=False: ids come from the Dataset, and it keeps SERIAL out of DDL.
                sa.Column(c.name, getattr(sa, c.type), primary_key=True, autoincrement=False)
                if c.name == "id"
                else sa.Column(
                    c.name,
                    getattr(sa, c.type),
                    *([sa.ForeignKey(c.references)] if c.references else []),
                    nullable=c.nullable,
                )
                for c in cols
            ),
        )
    return metadata


def table(name: str) -> sa.Table:
    """The SQLAlchemy table called ``name``, or a clear error listing the known ones."""
    columns(name)
    return _metadata().tables[name]


def __getattr__(name: str) -> Any:  # METADATA and the tables (schema.messages ...), built on first use
    if name == "METADATA":
        return _metadata()
    if name in _TABLES:
        return table(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def ddl(dialect: str) -> list[str]:
    """``CREATE TABLE`` statements for every table, in dependency order.

    >>> ddl("sqlite")[0].splitlines()[0]
    'CREATE TABLE projects ('
    """
    from sqlalchemy.dialects import postgresql, sqlite
    from sqlalchemy.schema import CreateTable

    # DuckDB speaks PostgreSQL's DDL for these types; duckdb-engine is avoided on purpose
    # (its SERIAL and reflection problems are in docs/ENVIRONMENT notes).
    compiled = {"postgres": postgresql, "sqlite": sqlite, "duckdb": postgresql}[dialect].dialect()
    # DuckDB backs every foreign key with an ART index on the referencing column: that
    # would be a secondary index the analysis has not chosen, so DuckDB gets none.
    fks = [] if dialect == "duckdb" else None
    return [
        str(CreateTable(t, include_foreign_key_constraints=fks).compile(dialect=compiled)).strip()
        for t in _metadata().sorted_tables
    ]

"""The backend's access paths, as named SQL files under ``queries/``.

Each file is one query written in PostgreSQL syntax with ``:named`` parameters, so an
engineer can read and run it as it is. The workbench loads it for an engine through
sqlglot, which translates the dialect differences (null ordering, quoting, functions)
instead of keeping a copy per engine. Placeholders stay ``:named`` whatever the target
dialect (sqlglot would otherwise rewrite them to ``$name`` or ``%(name)s``), because
every engine adapter binds ``:named`` itself; ``x IN :ids`` stays a list parameter that
the adapter expands, or becomes ``x = ANY(CAST(:ids AS BIGINT[]))`` on PostgreSQL with
``arrays=True`` (one bound array instead of one parameter per id).

>>> print(load("session_windows", "sqlite"))                     # doctest: +SKIP
>>> names()                                                       # doctest: +SKIP
['jobs_by_status', 'messages_for_sessions', 'project_sessions', ...]
"""

from __future__ import annotations

import contextlib
import os
import re
from functools import lru_cache
from pathlib import Path

import polars as pl
import sqlglot
from sqlglot import exp

from workbench.errors import WorkbenchError

#: Where the named queries live (the repository's ``queries/``); override with $WORKBENCH_QUERIES.
QUERIES_DIR = Path(os.environ.get("WORKBENCH_QUERIES", Path(__file__).resolve().parent.parent / "queries"))
#: The dialect the files are written in.
SOURCE_DIALECT = "postgres"
DIALECTS = ("duckdb", "sqlite", "postgres")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class QueryError(WorkbenchError):
    """A named query is unknown, or cannot be translated for a dialect."""


def names() -> list[str]:
    """The named queries available, sorted."""
    return sorted(p.stem for p in QUERIES_DIR.glob("*.sql"))


def path(name: str) -> Path:
    """The file of query ``name``, or a clear error listing the known ones."""
    file = QUERIES_DIR / f"{name}.sql"
    if not _NAME.match(name) or not file.is_file():
        known = ", ".join(names())
        raise QueryError(f"Unknown query {name!r}: expected one of {known} (files in {QUERIES_DIR})")
    return file


def source(name: str) -> str:
    """The query's file as written (PostgreSQL syntax, comments included)."""
    return path(name).read_text()


def parameters(name: str) -> list[str]:
    """The ``:named`` parameters of query ``name``, in order of first use."""
    tree = sqlglot.parse_one(source(name), read=SOURCE_DIALECT)
    return list(dict.fromkeys(p.name for p in tree.find_all(exp.Placeholder)))


def describe() -> pl.DataFrame:
    """One row per named query: name, parameters, and the first line of its comment."""
    rows = []
    for name in names():
        first = next((ln[2:].strip() for ln in source(name).splitlines() if ln.startswith("--")), "")
        rows.append({"query": name, "parameters": ", ".join(parameters(name)), "purpose": first})
    return pl.DataFrame(rows, schema={"query": pl.String, "parameters": pl.String, "purpose": pl.String})


def load(name: str, dialect: str, *, arrays: bool = False) -> str:
    """Query ``name`` translated for ``dialect`` (duckdb, sqlite, postgres), ``:named`` params kept.

    ``arrays=True`` turns ``x IN :ids`` into ``x = ANY(CAST(:ids AS BIGINT[]))``; only
    PostgreSQL has arrays, so it is refused for other dialects. The cast matters: psycopg
    binds a list of small ints as ``smallint[]``, and ``bigint = ANY(smallint[])`` was
    10x slower (docs/ENVIRONMENT notes).
    """
    key = (QUERIES_DIR, name, dialect, arrays)
    if (hit := _loaded.get(key)) is not None:
        file, mtime_ns, sql = hit
        with contextlib.suppress(OSError):
            if os.stat(file).st_mtime_ns == mtime_ns:
                return sql
    if dialect not in DIALECTS:
        raise QueryError(f"Unknown dialect {dialect!r}: expected one of {', '.join(DIALECTS)}")
    if arrays and dialect != "postgres":
        raise QueryError(f"arrays=True binds a PostgreSQL array; {dialect} has none: leave arrays off")
    file = path(name)
    mtime_ns = file.stat().st_mtime_ns
    sql = _translate(file.read_text(), dialect, arrays)
    _loaded[key] = (str(file), mtime_ns, sql)
    return sql


# Strategies load their SQL inside timed runs: pathlib, reading and the translation cache
# cost ~20 µs a call, a visible share of a 1-session SQLite load. An unchanged file is
# served from here after one os.stat; an edited one is read and translated again.
_loaded: dict[tuple[Path, str, str, bool], tuple[str, int, str]] = {}


def translate(sql: str, dialect: str) -> str:
    """Translate ad-hoc PostgreSQL-syntax SQL with ``:named`` parameters the same way."""
    return _translate(sql, dialect, False)


@lru_cache(maxsize=256)
def _translate(sql: str, dialect: str, arrays: bool) -> str:
    try:
        tree = sqlglot.parse_one(sql, read=SOURCE_DIALECT)
    except sqlglot.errors.ParseError as e:
        raise QueryError(f"Cannot parse query ({e}): check its SQL") from None
    if arrays:
        tree = tree.transform(_in_to_any)
    if dialect != SOURCE_DIALECT:
        tree = tree.transform(lambda n: _json_agg(n, dialect))
    # Keep ":name" verbatim in every dialect: a Var renders as its text.
    tree = tree.transform(lambda n: exp.Var(this=f":{n.name}") if isinstance(n, exp.Placeholder) else n)
    _check_functions(tree, dialect)
    return tree.sql(dialect=dialect, pretty=True, comments=False)


def _in_to_any(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.In) and isinstance(node.args.get("field"), exp.Placeholder):
        bigints = exp.DataType.build("BIGINT[]", dialect="postgres")
        array = exp.Cast(this=node.args["field"].copy(), to=bigints)
        return exp.EQ(this=node.this.copy(), expression=exp.Any(this=exp.Paren(this=array)))
    return node


def _json_agg(node: exp.Expression, dialect: str) -> exp.Expression:
    """``json_agg(json_build_object(k, v, ...) ORDER BY ...)`` for DuckDB and SQLite.

    sqlglot renders it as ``JSON_ARRAYAGG``/``JSON_BUILD_OBJECT`` for DuckDB and keeps the
    ``ORDER BY`` inside SQLite's ``JSON_GROUP_ARRAY``: neither runs there (SQLite < 3.44
    has no ordered aggregates). DuckDB gets a list of structs (native values, no JSON
    text to parse); SQLite gets ``json_group_array(json_object(...))`` without an order,
    so callers must not rely on the array order there.
    """
    if not isinstance(node, exp.JSONArrayAgg):
        return node
    inner, order = node.this, None
    if isinstance(inner, exp.Order):
        inner, order = inner.this, inner.expressions
    if not (isinstance(inner, exp.Anonymous) and inner.name.lower() == "json_build_object"):
        raise QueryError(
            f"json_agg over {inner.sql('postgres')!r}: only json_agg(json_build_object(...)) translates"
        )
    pairs = list(zip(inner.expressions[::2], inner.expressions[1::2], strict=True))
    if dialect == "duckdb":
        fields = [exp.PropertyEQ(this=exp.to_identifier(k.name), expression=v.copy()) for k, v in pairs]
        struct = exp.Struct(expressions=fields)
        return exp.ArrayAgg(this=exp.Order(this=struct, expressions=order) if order else struct)
    obj = exp.Anonymous(this="JSON_OBJECT", expressions=[e.copy() for kv in pairs for e in kv])
    return exp.Anonymous(this="JSON_GROUP_ARRAY", expressions=[obj])


# Functions sqlglot is known to translate into something the target rejects
# (docs/ENVIRONMENT notes: DuckDB/PostgreSQL DATE_TRUNC becomes SQLite's non-existent
# TIMESTAMP_TRUNC). Refuse them with the fix instead of failing later on the engine.
_UNSUPPORTED = {"sqlite": {exp.TimestampTrunc: "use strftime(...) in a dialect-specific query instead"}}


def _check_functions(tree: exp.Expression, dialect: str) -> None:
    for kind, fix in _UNSUPPORTED.get(dialect, {}).items():
        if tree.find(kind) is not None:
            name = kind.__name__.upper()
            raise QueryError(f"sqlglot translates a function to {name}, which {dialect} does not have: {fix}")

"""Cluster-sample a live backend database into a Dataset, strictly read-only.

The database is reached through SQLAlchemy (``postgresql://``, ``postgresql+psycopg://``,
``sqlite:///path``; other dialects get the SQL-standard ``SET TRANSACTION READ ONLY``).
Everything runs in one read-only transaction, so the workbench can never write to a
database it did not create, and on PostgreSQL every query sees the same snapshot
(``REPEATABLE READ``), so a sampled session's messages are exactly those it had when
the sample started.

Sampling happens in the database: only the chosen sessions' rows ever leave it.

1. Sessions are ranked by a seeded 32-bit hash of their id, computed in the database
   (:func:`hash_expr`: the same function on every engine), so PostgreSQL and SQLite
   pick the *same* sessions for the same data and seed, a row's fate does not depend
   on the physical layout, and a smaller sample (same seed) is a subset of a larger
   one. The first ``round(fraction * total)`` (or ``sessions``) by hash are kept; with
   ``stratify`` the count is split over size classes (powers of two of
   ``sessions.message_count``) as :meth:`Dataset.sample` does, via ``ROW_NUMBER()``
   per class. On PostgreSQL ``method="bernoulli"`` / ``"system"`` use ``TABLESAMPLE ...
   REPEATABLE(seed)`` instead (approximate count; SYSTEM reads only a fraction of pages
   but picks whole pages, so it is clustered by insertion order).
2. Messages, windows and jobs of the kept sessions are fetched in batches of session
   ids (a bound ``bigint[]`` on PostgreSQL, a bound ``IN`` list elsewhere); session-less
   jobs are kept by the same hash at the same share; then the referenced projects.
3. Rows stream through server-side cursors (``stream_results``) in chunks into a
   :class:`DatasetWriter`, so memory holds one chunk plus the kept ids, never a table.

``sample_database("postgresql://me@db/prod", "data/prod-1pct", fraction=0.01)`` gives a
Dataset whose manifest records the URL, password masked.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.elements import Grouping
from sqlalchemy.sql.functions import FunctionElement

from workbench import schema as wb
from workbench.dataset import Dataset, DatasetWriter, allocate, check_sample_size
from workbench.engines.base import identifier, progress_bar
from workbench.engines.postgres import mask_url
from workbench.errors import WorkbenchError

METHODS = ("hash", "bernoulli", "system")
#: Rows per chunk fetched from a server-side cursor and appended to the Dataset.
CHUNK_ROWS = 50_000
_M32 = 0xFFFFFFFF
_MIX = 0x45D9F3B  # 32-bit multiply-xorshift constant; x * _MIX < 2**59: no overflow anywhere
_MAX_STRATUM = 40


class DatabaseSourceError(WorkbenchError):
    """The source database cannot be read as asked (unreachable, refused, bad option)."""


class SchemaMismatchError(DatabaseSourceError):
    """A table or column the workbench needs is not in the source database."""


def sample_database(
    url: str,
    dest: str | os.PathLike[str],
    *,
    fraction: float | None = None,
    sessions: int | None = None,
    seed: int = 0,
    schema: str | None = None,
    mapping: Mapping[str, Any] | None = None,
    method: str = "hash",
    stratify: bool = True,
    batch_size: int = 5_000,
    progress: bool = False,
    overwrite: bool = False,
) -> Dataset:
    """Cluster-sample sessions of the database at ``url`` into a new Dataset at ``dest``.

    Give exactly one of ``fraction`` (0 < f <= 1) or ``sessions`` (a count). ``schema``
    is the database schema holding the tables (PostgreSQL; default: the search path).
    ``mapping`` renames tables and columns of a backend that differs from the workbench
    schema: ``{"messages": {"table": "chat_messages", "columns": {"timestamp":
    "created_at"}}}``; a nullable column mapped to ``None`` is filled with NULL.
    ``batch_size`` is the number of session ids per query: each query reads messages by
    ``session_id``, so without an index on it every batch is a full scan, and fewer,
    larger batches are cheaper (on SQLite, at most its limit of bound values per query).
    The database is only read.
    """
    _check_request(fraction, sessions, method, batch_size)
    shown = mask_url(url)
    if schema is not None:
        _ident(schema, "schema", "pass the schema name as it appears in the database")
    mapping = _check_mapping(mapping or {})
    source = {
        "kind": "database",
        "url": shown,
        "schema": schema,
        "mapping": mapping or None,
        "fraction": fraction,
        "sessions": sessions,
        "method": method,
    }
    writer = DatasetWriter(dest, source=source, seed=seed, overwrite=overwrite)  # checks dest first
    with read_only_connection(url) as conn:
        tables = _resolve(conn, schema, mapping, url)
        with _reading(url, "sampling"), writer:
            _sample_into(
                writer, conn, tables, fraction, sessions, seed, method, stratify, batch_size, progress
            )
    assert writer.dataset is not None
    return writer.dataset


# ---- connection ---------------------------------------------------------------------------------


@contextlib.contextmanager
def read_only_connection(url: str) -> Iterator[sa.Connection]:
    """A SQLAlchemy connection inside a read-only transaction; rolled back on exit.

    PostgreSQL: ``default_transaction_read_only=on`` for the session and ``SET TRANSACTION
    ISOLATION LEVEL REPEATABLE READ, READ ONLY``. SQLite: the file opened with
    ``mode=ro``, ``PRAGMA query_only=ON`` and one ``BEGIN`` (a single read snapshot).
    Others: the SQL-standard ``SET TRANSACTION READ ONLY`` (not tested here).
    """
    engine = _create_engine(url)
    try:
        with _reading(url, "connecting to"):
            conn = engine.connect()
        try:
            with _reading(url, "starting a read-only transaction on"):
                _begin_read_only(conn)
            yield conn
        finally:
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                conn.rollback()
            conn.close()
    finally:
        engine.dispose()


def _create_engine(url: str) -> sa.Engine:
    shown = mask_url(url)
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise DatabaseSourceError(
            f"Database URL {shown} is not valid: use e.g. postgresql://user@host:5432/db or sqlite:///path.db"
        ) from None
    backend = parsed.get_backend_name()
    if backend in {"postgresql", "postgres"}:
        if parsed.drivername in {"postgresql", "postgres"}:
            parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3 is what the workbench ships
        options = " ".join(filter(None, [parsed.query.get("options"), "-c default_transaction_read_only=on"]))
        args = {"options": options, "connect_timeout": 10, "application_name": "workbench-sample"}
        return _engine_or_error(parsed, url, connect_args=args)
    if backend == "sqlite":
        path = parsed.database or ""
        if path in {"", ":memory:"} or path.startswith("file:"):
            raise DatabaseSourceError(
                f"Database URL {shown} names no SQLite file: use sqlite:///relative/path.db "
                "or sqlite:////absolute/path.db"
            )
        file = Path(path).expanduser().resolve()
        if not file.is_file():
            raise DatabaseSourceError(
                f"SQLite file {str(file)!r} (from {shown}) does not exist: check the path "
                "(sqlite:///relative/path.db or sqlite:////absolute/path.db)"
            )
        ro_uri = file.as_uri() + "?mode=ro"  # the file itself refuses writes, whatever runs later

        def connect() -> sqlite3.Connection:
            con = sqlite3.connect(ro_uri, uri=True, isolation_level=None)  # BEGIN is ours to send
            con.execute("PRAGMA query_only = ON")
            con.create_function(_Hash32.name, 2, _sqlite_hash32, deterministic=True)
            return con

        return _engine_or_error(make_url("sqlite://"), url, creator=connect)
    return _engine_or_error(parsed, url)


def _engine_or_error(parsed: sa.URL, url: str, **kwargs: Any) -> sa.Engine:
    """``sa.create_engine(parsed)``; a driver error names the masked ``url``, scrubbed of its password."""
    try:
        return sa.create_engine(parsed, poolclass=NullPool, **kwargs)
    except (sa.exc.NoSuchModuleError, ModuleNotFoundError, sa.exc.ArgumentError) as e:
        # Scrub with the real URL: its password is what must not appear.
        raise DatabaseSourceError(
            f"No SQLAlchemy driver for {mask_url(url)} ({type(e).__name__}: {_scrub(str(e), url)}): "
            "use postgresql://, postgresql+psycopg:// or sqlite:///, or install the dialect's driver"
        ) from None


def _begin_read_only(conn: sa.Connection) -> None:
    name = conn.dialect.name
    if name == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        if conn.exec_driver_sql("SHOW transaction_read_only").scalar() != "on":
            raise DatabaseSourceError("The server did not make the transaction read-only: refusing to read")
    elif name == "sqlite":
        if conn.exec_driver_sql("PRAGMA query_only").scalar() != 1:
            raise DatabaseSourceError("SQLite did not switch to query_only: refusing to read")
        conn.exec_driver_sql("BEGIN")  # one read transaction: every query sees the same snapshot
    else:
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")


def _scrub(text: str, url: str) -> str:
    """``text`` without ``url``'s password (raw or URL-encoded) or the raw URL itself."""
    text = text.split("\n(Background on this error")[0].strip()
    with contextlib.suppress(Exception):
        password = make_url(url).password
        if password:
            for secret in {url, str(password), quote_plus(str(password)), quote_plus(str(password), safe="")}:
                text = text.replace(secret, "***")
    return text


@contextlib.contextmanager
def _reading(url: str, doing: str) -> Iterator[None]:
    """Turn driver errors into a :class:`DatabaseSourceError` with the password masked."""
    try:
        yield
    except sa.exc.SQLAlchemyError as e:
        detail = _scrub(str(getattr(e, "orig", None) or e), url)
        fix = (
            "Check the host, port, user and password in the URL and that the server accepts connections."
            if doing == "connecting to"
            else "Check that the user may read these tables (the workbench only reads)."
        )
        raise DatabaseSourceError(f"Failed {doing} {mask_url(url)}: {detail}. {fix}") from None


# ---- options and mapping ------------------------------------------------------------------------


def _check_request(fraction: float | None, sessions: int | None, method: str, batch_size: int) -> None:
    check_sample_size(fraction, sessions, DatabaseSourceError)
    if fraction is not None and (
        isinstance(fraction, bool)
        or not isinstance(fraction, int | float)
        or not math.isfinite(fraction)
        or not 0 < fraction <= 1
    ):
        raise DatabaseSourceError(f"Sample fraction {fraction!r} is out of range: use 0 < fraction <= 1")
    if sessions is not None and (isinstance(sessions, bool) or not isinstance(sessions, int) or sessions < 1):
        raise DatabaseSourceError(f"Sample size {sessions!r} is out of range: use a count of at least 1")
    if method not in METHODS:
        raise DatabaseSourceError(f"Unknown sampling method {method!r}: expected one of {', '.join(METHODS)}")
    if method != "hash" and fraction is None:
        raise DatabaseSourceError(
            f"Method {method!r} samples a fraction: pass fraction, or use method 'hash'"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise DatabaseSourceError(f"Batch size {batch_size!r} is not a positive number of sessions")


def _ident(name: Any, what: str, fix: str) -> str:
    try:
        return identifier(name)
    except WorkbenchError:
        raise DatabaseSourceError(
            f"Invalid identifier {name!r} in {what}: {fix}, using letters, digits and underscores, "
            "starting with a letter (at most 63 characters)"
        ) from None


def _check_mapping(mapping: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Normalise ``mapping`` to ``{table: {"table": name, "columns": {col: name|None}}}``."""
    example = "{'messages': {'table': 'chat_messages', 'columns': {'timestamp': 'created_at'}}}"
    out: dict[str, dict[str, Any]] = {}
    if not isinstance(mapping, Mapping):
        raise DatabaseSourceError(f"mapping must be a dict like {example}, not {mapping!r}")
    for table, spec in mapping.items():
        if table not in wb.TABLES:
            raise DatabaseSourceError(
                f"mapping names unknown table {table!r}: keys are workbench tables ({', '.join(wb.TABLES)})"
            )
        spec = {"table": spec} if isinstance(spec, str) else spec
        if not isinstance(spec, Mapping) or set(spec) - {"table", "columns"}:
            raise DatabaseSourceError(
                f"mapping[{table!r}] must be a dict with 'table' and/or 'columns': {example}"
            )
        entry: dict[str, Any] = {}
        if "table" in spec:
            _ident(spec["table"], f"mapping[{table!r}]['table']", "give the table's name in the database")
            entry["table"] = spec["table"]
        columns = spec.get("columns", {})
        if not isinstance(columns, Mapping):
            raise DatabaseSourceError(f"mapping[{table!r}]['columns'] must be a dict: {example}")
        known = wb.table(table).columns
        for column, name in columns.items():
            if column not in known:
                raise DatabaseSourceError(
                    f"mapping[{table!r}]['columns'] names unknown column {column!r}: "
                    f"{table} has {', '.join(c.name for c in known)}"
                )
            if name is None and not known[column].nullable:
                raise DatabaseSourceError(
                    f"mapping[{table!r}]['columns'][{column!r}] is None, but {table}.{column} cannot be "
                    "NULL: map it to the database column that holds it"
                )
            if name is not None:
                _ident(name, f"mapping[{table!r}]['columns'][{column!r}]", "give the column's name")
        if columns:
            entry["columns"] = dict(columns)
        out[table] = entry
    return out


def _resolve(
    conn: sa.Connection, schema: str | None, mapping: dict[str, dict[str, Any]], url: str
) -> dict[str, sa.Select]:
    """Per workbench table, a SELECT of the source table with columns labelled as the workbench's."""
    shown = mask_url(url)
    where = f"{shown}" + (f" (schema {schema})" if schema else "")
    with _reading(url, "reading the catalog of"):
        inspector = sa.inspect(conn)
        found = set(inspector.get_table_names(schema=schema)) | set(inspector.get_view_names(schema=schema))
    selects: dict[str, sa.Select] = {}
    for name in wb.TABLES:
        spec = mapping.get(name, {})
        source = spec.get("table", name)
        if source not in found:
            listed = ", ".join(sorted(found)[:12]) or "none"
            raise SchemaMismatchError(
                f"Table {source!r} (workbench table {name!r}) not found in {where}; it has: {listed}. "
                f"If it has another name, map it: mapping={{{name!r}: {{'table': 'ITS_NAME'}}}}"
                + ("" if schema else ", or pass schema='...' if it lives in another schema")
            )
        with _reading(url, "reading the catalog of"):
            reflected = {c["name"]: c["type"] for c in inspector.get_columns(source, schema=schema)}
        renames = spec.get("columns", {})
        columns: list[sa.Column] = []
        wanted: list[tuple[str, str | None]] = []
        for column in wb.table(name).columns:
            col = renames.get(column.name, column.name)
            wanted.append((column.name, col))
            if col is None:
                continue
            if col not in reflected:
                raise SchemaMismatchError(
                    f"Column {col!r} (workbench {name}.{column.name}) not found in table {source!r} of "
                    f"{where}; it has: {', '.join(reflected)}. If it has another name, map it: "
                    f"mapping={{{name!r}: {{'columns': {{{column.name!r}: 'ITS_NAME'}}}}}}"
                    + (" (or None to fill NULLs)" if column.nullable else "")
                )
            if all(c.name != col for c in columns):  # two workbench columns may share one
                columns.append(sa.Column(col, column.type, quote=True))
        table = sa.Table(source, sa.MetaData(), *columns, schema=schema, quote=True, quote_schema=True)
        exprs = []
        for wb_name, col in wanted:
            wb_type = wb.table(name).c[wb_name].type
            if col is None:
                expr = sa.cast(sa.null(), wb_type)
            elif getattr(reflected[col], "timezone", False) and conn.dialect.name == "postgresql":
                expr = sa.func.timezone("UTC", table.c[col], type_=wb_type)  # timestamptz -> naive UTC
            else:
                expr = table.c[col]
            exprs.append(expr.label(wb_name))
        selects[name] = sa.select(*exprs)
    return selects


# ---- sampling -----------------------------------------------------------------------------------


def salt(seed: int, purpose: str) -> int:
    """A 32-bit salt for ``seed`` (``purpose`` keeps the session and job draws independent)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{purpose}".encode()).digest()[:4], "big")


def hash_id(value: int, salt_value: int) -> int:
    """The Python twin of :func:`hash_expr` (tests check both agree on every engine)."""
    x = (value & _M32) ^ ((value >> 32) & _M32) ^ salt_value
    x = (((x >> 16) ^ x) * _MIX) & _M32
    x = (((x >> 16) ^ x) * _MIX) & _M32
    return (x >> 16) ^ x


def hash_expr(column: sa.ColumnElement, salt_value: int) -> sa.ColumnElement:
    """:func:`hash_id` of an integer column, computed in the database.

    SQLite runs ``hash_id`` itself, registered on each connection this module opens as a
    deterministic function (connection-local: nothing is written). PostgreSQL has an XOR
    operator (``#``). Other engines emulate XOR as ``(a | b) - (a & b)``, which repeats
    its operands, so their SQL holds the column 512 times: portable, but slow.
    """
    return _Hash32(column, sa.bindparam(None, salt_value, sa.BigInteger))


class _Hash32(FunctionElement):
    type = sa.BigInteger()
    name = "workbench_hash32"  # the SQLite function
    inherit_cache = True


def _sqlite_hash32(value: int | None, salt_value: int) -> int | None:
    return None if value is None else hash_id(value, salt_value)


def xor_portable(a: Any, b: Any) -> sa.ColumnElement:
    """``a ^ b`` with the operators every engine has."""
    return Grouping(sa.type_coerce(_op(a, "|", b) - _op(a, "&", b), sa.BigInteger))


@compiles(_Hash32)
def _compile_portable(element: _Hash32, compiler: Any, **kw: Any) -> str:
    return compiler.process(mix(*element.clauses, xor_portable), **kw)


@compiles(_Hash32, "postgresql")
def _compile_postgres(element: _Hash32, compiler: Any, **kw: Any) -> str:
    return compiler.process(mix(*element.clauses, lambda a, b: _op(a, "#", b)), **kw)


@compiles(_Hash32, "sqlite")
def _compile_sqlite(element: _Hash32, compiler: Any, **kw: Any) -> str:
    column, salt_param = (compiler.process(c, **kw) for c in element.clauses)
    # CAST: a text or real id becomes the integer SQLite's own & and >> would see
    return f"{_Hash32.name}(CAST({column} AS INTEGER), {salt_param})"


def _op(a: Any, o: str, b: Any) -> sa.ColumnElement:
    # Every step is parenthesised: PostgreSQL and SQLite rank - above & | >>, other engines may not.
    return Grouping(sa.type_coerce(a, sa.BigInteger).op(o, return_type=sa.BigInteger)(b))


def mix(column: Any, salt_param: Any, xor: Any) -> sa.ColumnElement:
    """``hash_id``'s steps as SQL, with ``xor(a, b)`` as the engine can write it."""

    def lit(n: int) -> sa.ColumnElement:
        return sa.literal_column(str(n), sa.BigInteger)  # our constants, never input

    x = xor(
        xor(_op(column, "&", lit(_M32)), _op(_op(column, ">>", lit(32)), "&", lit(_M32))),
        sa.cast(salt_param, sa.BigInteger),
    )
    for _ in range(2):
        x = _op(xor(_op(x, ">>", lit(16)), x) * lit(_MIX), "&", lit(_M32))
    return xor(_op(x, ">>", lit(16)), x)


def _stratum(count: sa.ColumnElement) -> sa.ColumnElement:
    """floor(log2(max(count, 1))) as a CASE (SQLite may lack log2)."""
    whens = [
        (count < sa.literal_column(str(2 ** (k + 1))), sa.literal_column(str(k))) for k in range(_MAX_STRATUM)
    ]
    return sa.case(*whens, else_=sa.literal_column(str(_MAX_STRATUM)))


def _sample_into(
    writer: DatasetWriter,
    conn: sa.Connection,
    tables: dict[str, sa.Select],
    fraction: float | None,
    sessions: int | None,
    seed: int,
    method: str,
    stratify: bool,
    batch_size: int,
    progress: bool,
) -> None:
    sess = tables["sessions"].subquery("s")
    total = conn.execute(sa.select(sa.func.count()).select_from(sess)).scalar_one()
    if sessions is not None and sessions > total:
        raise DatabaseSourceError(
            f"Sample size {sessions!r} is out of range: the database has {total} sessions"
        )
    target = sessions if sessions is not None else max(1, round(fraction * total)) if total else 0
    if method == "hash":
        chosen, strata = _hash_choice(conn, sess, total, target, seed, stratify)
    else:
        chosen, strata = _tablesample_choice(conn, tables["sessions"], fraction, seed, method), None
    writer.source.update(sessions_total=total, stratified=strata is not None, strata=strata)

    session_ids: list[int] = []
    project_ids: set[int] = set()
    for frame in _stream(conn, chosen, "sessions", progress, target):
        writer.write("sessions", frame)
        session_ids += frame["id"].to_list()
        project_ids.update(frame["project_id"].to_list())

    batch_size = min(batch_size, _bind_limit(conn))
    batches = [session_ids[i : i + batch_size] for i in range(0, len(session_ids), batch_size)]
    for name in ("messages", "session_windows", "jobs"):
        sub = tables[name].subquery("t")
        writer.write(name, _empty(name))  # an empty result still makes an (empty) file
        bar = progress_bar(progress, None, f"sample {name}")
        for ids in batches:
            stmt = sa.select(sub).where(_in(conn, sub.c.session_id, ids)).order_by(sub.c.session_id, sub.c.id)
            for frame in _stream(conn, stmt, name, False):
                writer.write(name, frame)
                bar.update(frame.height)
        bar.close()
    # Jobs that belong to no session, at the same share, by the same hash (another salt).
    jobs = tables["jobs"].subquery("t")
    share = target / total if total else 0
    orphan = sa.select(jobs).where(jobs.c.session_id.is_(None)).order_by(jobs.c.id)
    if share < 1:
        orphan = orphan.where(hash_expr(jobs.c.id, salt(seed, "jobs")) < int(share * 2**32))
    for frame in _stream(conn, orphan, "jobs", False):
        writer.write("jobs", frame)

    projects = tables["projects"].subquery("t")
    writer.write("projects", _empty("projects"))
    ordered = sorted(project_ids)
    for i in range(0, len(ordered), batch_size):
        stmt = sa.select(projects).where(_in(conn, projects.c.id, ordered[i : i + batch_size]))
        for frame in _stream(conn, stmt.order_by(projects.c.id), "projects", False):
            writer.write("projects", frame)


def _hash_choice(
    conn: sa.Connection, sess: sa.Subquery, total: int, target: int, seed: int, stratify: bool
) -> tuple[sa.Select, dict[str, int] | None]:
    """The ``target`` sessions first by hash (per size class with ``stratify``), ordered by id."""
    ranked = sa.select(
        sess,
        _stratum(sess.c.message_count).label("_stratum"),
        hash_expr(sess.c.id, salt(seed, "sessions")).label("_h"),
    ).subquery("r")
    if not stratify or target in (0, total):
        pick = sa.select(ranked.c.id).order_by(ranked.c._h, ranked.c.id).limit(target).subquery("p")
        strata = None
        keep = sess.c.id.in_(sa.select(pick.c.id))
    else:
        sizes = conn.execute(
            sa.select(ranked.c._stratum, sa.func.count())
            .group_by(ranked.c._stratum)
            .order_by(ranked.c._stratum)
        ).all()
        take = allocate([n for _, n in sizes], target)
        strata = {str(s): t for (s, _), t in zip(sizes, take, strict=True)}
        numbered = sa.select(
            ranked.c.id,
            ranked.c._stratum,
            sa.func.row_number()
            .over(partition_by=ranked.c._stratum, order_by=(ranked.c._h, ranked.c.id))
            .label("_rn"),
        ).subquery("n")
        quota = sa.case(
            *[(numbered.c._stratum == s, t) for (s, _), t in zip(sizes, take, strict=True)], else_=0
        )
        keep = sess.c.id.in_(sa.select(numbered.c.id).where(numbered.c._rn <= quota))
    return sa.select(sess).where(keep).order_by(sess.c.id), strata


def _tablesample_choice(
    conn: sa.Connection, sessions: sa.Select, fraction: float, seed: int, method: str
) -> sa.Select:
    if conn.dialect.name != "postgresql":
        raise DatabaseSourceError(
            f"Method {method!r} uses TABLESAMPLE, which only PostgreSQL has here "
            f"({conn.dialect.name}): use 'hash'"
        )
    # TABLESAMPLE applies to a base table: rebuild the FROM of the resolved select.
    (table,) = sessions.get_final_froms()
    sampled = sa.tablesample(
        table,
        getattr(sa.func, method)(sa.cast(sa.literal(fraction * 100), sa.Float)),
        name="ts",
        seed=sa.cast(sa.literal(seed), sa.Float),
    )
    return sa.sql.util.ClauseAdapter(sampled).traverse(sessions).order_by(sa.literal_column("id"))


def _empty(table: str) -> pl.DataFrame:
    return pl.DataFrame(schema=wb.polars_schema(table))


def _bind_limit(conn: sa.Connection) -> int:
    """How many ids one ``IN`` query may bind: PostgreSQL binds them as one array; SQLite
    has a per-statement limit on bound values (32,766 by default); elsewhere 1,000, the
    smallest common limit (Oracle's IN list; SQL Server allows 2,100 parameters)."""
    if conn.dialect.name == "postgresql":
        return 2**62
    if conn.dialect.name == "sqlite":
        return conn.connection.driver_connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return 1_000


def _in(conn: sa.Connection, column: sa.ColumnElement, ids: list[int]) -> sa.ColumnElement:
    """``column IN ids`` as one bound array on PostgreSQL, a bound IN list elsewhere."""
    if conn.dialect.name == "postgresql":
        array = sa.cast(
            sa.bindparam(None, ids, postgresql.ARRAY(sa.BigInteger)), postgresql.ARRAY(sa.BigInteger)
        )
        return column == sa.any_(array)
    return column.in_(ids)


def _stream(
    conn: sa.Connection, stmt: sa.Select, table: str, progress: bool, total: int | None = None
) -> Iterator[pl.DataFrame]:
    """Rows of ``stmt`` in chunks of :data:`CHUNK_ROWS` from a server-side cursor."""
    bar = progress_bar(progress, total, f"sample {table}")
    names = list(wb.polars_schema(table))
    result = conn.execution_options(stream_results=True, yield_per=CHUNK_ROWS).execute(stmt)
    try:
        for rows in result.partitions():
            frame = pl.DataFrame(
                [tuple(r) for r in rows], schema=names, orient="row", infer_schema_length=None
            )
            try:
                frame = wb.conform(table, frame)
            except pl.exceptions.PolarsError as e:
                raise DatabaseSourceError(
                    f"Table {table!r} holds values that do not fit the workbench schema ({e}); "
                    "map the right columns with mapping=, or convert them in a view"
                ) from None
            bar.update(frame.height)
            yield frame
    finally:
        result.close()
        bar.close()

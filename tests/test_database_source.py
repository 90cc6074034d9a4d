"""Sampling a live database (PostgreSQL server, SQLite file) into a Dataset, read-only."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import polars as pl
import psycopg
import pytest
import sqlalchemy as sa

from workbench.dataset import Dataset
from workbench.engines import open_engine
from workbench.engines.server import free_port
from workbench.sources.database import (
    DatabaseSourceError,
    SchemaMismatchError,
    hash_expr,
    hash_id,
    mix,
    read_only_connection,
    salt,
    sample_database,
    xor_portable,
)

CONTENT = {"projects", "sessions", "messages", "session_windows", "jobs"}


@pytest.fixture
def pg_source(postgres_url: str, tiny: Dataset) -> str:
    with open_engine("postgres", postgres_url) as engine:
        engine.load(tiny)
    return postgres_url


@pytest.fixture
def sqlite_source(tmp_path: Path, tiny: Dataset) -> str:
    path = tmp_path / "source.sqlite"
    with open_engine("sqlite", str(path)) as engine:
        engine.load(tiny)
    return f"sqlite:///{path}"


@pytest.fixture(params=["postgres", "sqlite"])
def source_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("pg_source" if request.param == "postgres" else "sqlite_source")


def _ids(ds: Dataset, table: str = "sessions") -> list[int]:
    return ds.read(table)["id"].to_list()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ---- what a sample holds ------------------------------------------------------------------------


def test_sample_keeps_whole_clusters_with_the_source_rows(source_url, tiny, tmp_path):
    ds = sample_database(source_url, tmp_path / "s", fraction=0.3, seed=3, batch_size=7, progress=True)
    kept = _ids(ds)
    assert len(kept) == round(0.3 * 60) and kept == sorted(kept)

    def rows(table: str, frame: pl.DataFrame | None = None) -> pl.DataFrame:
        return (frame if frame is not None else tiny.read(table)).sort("id")

    src_sessions = tiny.read("sessions").filter(pl.col("id").is_in(kept))
    assert rows("sessions", ds.read("sessions")).equals(rows("sessions", src_sessions))
    # Every kept session has all its messages and windows, with identical values.
    for table in ("messages", "session_windows"):
        expected = tiny.read(table).filter(pl.col("session_id").is_in(kept)).sort("id")
        assert ds.read(table).sort("id").equals(expected), table
    # Jobs: all of the kept sessions' jobs, plus some session-less ones, nothing else.
    jobs = ds.read("jobs")
    source_jobs = tiny.read("jobs")
    assert (
        jobs.filter(pl.col("session_id").is_not_null())
        .sort("id")
        .equals(source_jobs.filter(pl.col("session_id").is_in(kept)).sort("id"))
    )
    orphans = jobs.filter(pl.col("session_id").is_null())
    assert not orphans.is_empty()
    assert orphans.sort("id").equals(
        source_jobs.filter(pl.col("id").is_in(orphans["id"].to_list())).sort("id")
    )
    # Exactly the referenced projects.
    assert _ids(ds, "projects") == sorted(set(ds.read("sessions")["project_id"]))
    assert rows("projects", ds.read("projects")).equals(
        rows("projects", tiny.read("projects").filter(pl.col("id").is_in(_ids(ds, "projects"))))
    )
    source = ds.manifest["source"]
    assert source["kind"] == "database" and source["fraction"] == 0.3 and source["method"] == "hash"
    assert source["sessions_total"] == 60 and source["stratified"]


def test_same_seed_same_sample_on_every_engine(pg_source, sqlite_source, tmp_path):
    pg = sample_database(pg_source, tmp_path / "pg", fraction=0.25, seed=11)
    lite = sample_database(sqlite_source, tmp_path / "lite", fraction=0.25, seed=11)
    again = sample_database(pg_source, tmp_path / "again", fraction=0.25, seed=11)
    other = sample_database(pg_source, tmp_path / "other", fraction=0.25, seed=12)
    assert again.content_hash == pg.content_hash
    # The hash is computed in SQL the same way everywhere: the same sessions, the same bytes.
    assert lite.content_hash == pg.content_hash
    assert _ids(other) != _ids(pg)


def test_sample_size_is_exact_and_smaller_samples_nest(sqlite_source, tmp_path):
    small = sample_database(sqlite_source, tmp_path / "a", fraction=0.2, seed=5, stratify=False)
    large = sample_database(sqlite_source, tmp_path / "b", fraction=0.4, seed=5, stratify=False)
    counted = sample_database(sqlite_source, tmp_path / "c", sessions=7, seed=5, stratify=False)
    everything = sample_database(sqlite_source, tmp_path / "d", fraction=1.0)
    assert (len(_ids(small)), len(_ids(large)), len(_ids(counted))) == (12, 24, 7)
    assert set(_ids(small)) <= set(_ids(large)) and set(_ids(counted)) <= set(_ids(small))
    assert everything.counts == Dataset.open(tmp_path / "d").counts
    assert everything.counts["sessions"] == 60


def test_stratified_sample_keeps_the_largest_sessions_class(pg_source, tiny, tmp_path):
    ds = sample_database(pg_source, tmp_path / "s", sessions=5, seed=1)
    sizes = tiny.read("sessions").select("id", "message_count")
    top = math.floor(math.log2(sizes["message_count"].max()))
    kept = sizes.filter(pl.col("id").is_in(_ids(ds)))["message_count"]
    assert len(kept) == 5 and math.floor(math.log2(kept.max())) == top
    assert sum(ds.manifest["source"]["strata"].values()) == 5


def test_tablesample_bernoulli_on_postgres(pg_source, tiny, tmp_path):
    a = sample_database(pg_source, tmp_path / "a", fraction=0.5, seed=2, method="bernoulli")
    b = sample_database(pg_source, tmp_path / "b", fraction=0.5, seed=2, method="bernoulli")
    assert a.content_hash == b.content_hash
    kept = _ids(a)
    assert 10 <= len(kept) <= 50  # Binomial(60, 0.5): far outside would mean a wrong percentage
    expected = tiny.read("messages").filter(pl.col("session_id").is_in(kept))
    assert a.counts["messages"] == expected.height
    assert a.manifest["source"]["method"] == "bernoulli" and not a.manifest["source"]["stratified"]


def test_hash_in_sql_matches_python(source_url):
    values = [0, 1, 2, 59, 2**31 - 1, 2**32 + 5, 2**40 + 123, 2**62, 2**63 - 1, -1, -(2**63)]
    s = salt(9, "sessions")
    with read_only_connection(source_url) as conn:
        fast = sa.select(hash_expr(sa.literal(1, sa.BigInteger), s)).compile(conn)
        assert ("workbench_hash32(" if conn.dialect.name == "sqlite" else " # ") in str(fast)
        got = [
            conn.execute(sa.select(hash_expr(sa.literal(v, sa.BigInteger), s))).scalar_one() for v in values
        ]
        null = conn.execute(sa.select(hash_expr(sa.null(), s))).scalar_one()
    assert got == [hash_id(v, s) for v in values]
    assert all(0 <= h < 2**32 for h in got)
    assert null is None
    # the SQL other engines get (XOR as (a | b) - (a & b)), run here on SQLite and PostgreSQL
    with read_only_connection(source_url) as conn:
        salt_param = sa.bindparam(None, s, sa.BigInteger)
        portable = [
            conn.execute(sa.select(mix(sa.literal(v, sa.BigInteger), salt_param, xor_portable))).scalar_one()
            for v in values
        ]
    assert portable == got


# ---- read-only, always --------------------------------------------------------------------------


def _pg_checksums(url: str) -> dict[str, str]:
    with psycopg.connect(url) as con:
        return {
            t: con.execute(
                f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY id), '')) FROM {t} t"
            ).fetchone()[0]
            for t in CONTENT
        }


def test_postgres_is_only_read_in_a_read_only_transaction(pg_source, tmp_path):
    before = _pg_checksums(pg_source)
    seen: list[tuple[str, str]] = []
    streamed: list[str] = []

    def check(conn, cursor, statement, parameters, context, executemany):
        # Ask the server itself, on the same connection, after every statement the sampler sends.
        with cursor.connection.cursor() as probe:
            probe.execute("SHOW transaction_read_only")
            seen.append((statement, probe.fetchone()[0]))
        if isinstance(cursor, psycopg.ServerCursor):  # rows stream from a server-side cursor
            streamed.append(statement)

    sa.event.listen(sa.Engine, "after_cursor_execute", check)
    try:
        sample_database(pg_source, tmp_path / "s", fraction=0.5, seed=1, batch_size=9)
    finally:
        sa.event.remove(sa.Engine, "after_cursor_execute", check)
    assert len(seen) > 10
    assert {ro for _, ro in seen} == {"on"}
    verbs = {s.split()[0].upper() for s, _ in seen}
    assert verbs <= {"SELECT", "SET", "SHOW", "WITH"}, verbs
    assert sum('FROM "messages"' in s for s in streamed) == 4  # 30 sessions in batches of 9

    with read_only_connection(pg_source) as conn:
        assert conn.exec_driver_sql("SHOW transaction_read_only").scalar() == "on"
        with pytest.raises(sa.exc.DBAPIError, match="read-only transaction"):
            conn.exec_driver_sql("DELETE FROM messages")
    assert _pg_checksums(pg_source) == before


def test_sqlite_file_is_opened_read_only_and_left_byte_identical(sqlite_source, tmp_path):
    path = Path(sqlite_source.removeprefix("sqlite:///"))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    files = sorted(p.name for p in path.parent.iterdir())
    sample_database(sqlite_source, tmp_path / "s", fraction=0.5)
    with read_only_connection(sqlite_source) as conn:
        with pytest.raises(sa.exc.OperationalError, match="readonly|read-only|query_only"):
            conn.exec_driver_sql("DELETE FROM messages")
        conn.exec_driver_sql("PRAGMA query_only = OFF")  # even then, the file was opened mode=ro
        with pytest.raises(sa.exc.OperationalError, match="readonly"):
            conn.exec_driver_sql("DELETE FROM messages")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([*files, "s"])


# ---- a backend with other names -----------------------------------------------------------------


def test_mapped_schema_with_renamed_tables_and_columns(pg_source, tmp_path):
    with psycopg.connect(pg_source, autocommit=True) as con:
        con.execute("SET TimeZone = 'Asia/Tokyo'")  # timestamptz must come back as naive UTC regardless
        con.execute("CREATE SCHEMA app")
        con.execute("CREATE TABLE app.projects AS SELECT * FROM public.projects")
        con.execute(
            'CREATE TABLE app.chat_sessions AS SELECT id, project_id AS "projectId", external_id, title,'
            " model, is_sidechain, message_count, created_at AT TIME ZONE 'UTC' AS created_at,"
            " updated_at FROM public.sessions"
        )
        con.execute(
            'CREATE TABLE app.chat_messages AS SELECT *, "timestamp" AS created_at FROM public.messages'
        )
        con.execute('ALTER TABLE app.chat_messages DROP COLUMN "timestamp"')
        con.execute("CREATE TABLE app.session_windows AS SELECT * FROM public.session_windows")
        con.execute("CREATE VIEW app.jobs AS SELECT * FROM public.jobs")
    mapping = {
        "sessions": {"table": "chat_sessions", "columns": {"project_id": "projectId", "git_branch": None}},
        "messages": {"table": "chat_messages", "columns": {"timestamp": "created_at"}},
    }
    mapped = sample_database(pg_source, tmp_path / "m", fraction=0.4, seed=4, schema="app", mapping=mapping)
    plain = sample_database(pg_source, tmp_path / "p", fraction=0.4, seed=4)
    for table in ("projects", "messages", "session_windows", "jobs"):
        assert mapped.read(table).equals(plain.read(table)), table
    sessions = mapped.read("sessions")
    assert sessions["git_branch"].null_count() == sessions.height
    assert sessions.drop("git_branch").equals(plain.read("sessions").drop("git_branch"))
    assert mapped.manifest["source"]["mapping"] == mapping and mapped.manifest["source"]["schema"] == "app"


# ---- bad input: clear errors, nothing written ---------------------------------------------------


def test_unreachable_server_error_masks_the_password(tmp_path):
    url = f"postgresql://alice:Sup3r%2FSecret@127.0.0.1:{free_port()}/prod"
    with pytest.raises(DatabaseSourceError) as e:
        sample_database(url, tmp_path / "s", fraction=0.1)
    message = str(e.value)
    assert "Sup3r" not in message and "Secret" not in message
    assert "postgresql://alice:***@127.0.0.1" in message and "Check the host, port" in message
    assert not (tmp_path / "s").exists() and _leftovers(tmp_path) == []


def test_password_never_reaches_the_dataset_or_errors(pg_source, tmp_path):
    # The test server trusts local users, so a URL with a password connects, and must stay secret.
    url = pg_source.replace("postgres@", "postgres:hunter2-pw@")
    ds = sample_database(url, tmp_path / "s", sessions=3)
    assert ds.manifest["source"]["url"] == pg_source.replace("postgres@", "postgres:***@")
    assert not [p.name for p in ds.path.iterdir() if b"hunter2" in p.read_bytes()]
    with pytest.raises(SchemaMismatchError) as e:
        sample_database(url, tmp_path / "t", sessions=3, mapping={"jobs": {"columns": {"error": "err"}}})
    assert "hunter2" not in str(e.value) and "postgres:***@" in str(e.value)
    with pytest.raises(DatabaseSourceError) as e:
        sample_database(url.rsplit("/", 1)[0] + "/no_such_db", tmp_path / "u", sessions=3)
    assert "hunter2" not in str(e.value) and 'database "no_such_db" does not exist' in str(e.value)


def test_missing_table_names_it_and_the_mapping_fix(sqlite_source, tmp_path):
    with pytest.raises(SchemaMismatchError) as e:
        sample_database(sqlite_source, tmp_path / "s", fraction=0.1, mapping={"messages": "chat_messages"})
    assert "Table 'chat_messages' (workbench table 'messages') not found" in str(e.value)
    assert "mapping={'messages': {'table': 'ITS_NAME'}}" in str(e.value)

    with pytest.raises(SchemaMismatchError) as e:
        sample_database(
            sqlite_source,
            tmp_path / "s",
            fraction=0.1,
            mapping={"messages": {"columns": {"timestamp": "ts"}}},
        )
    assert "Column 'ts' (workbench messages.timestamp) not found in table 'messages'" in str(e.value)
    assert "mapping={'messages': {'columns': {'timestamp': 'ITS_NAME'}}}" in str(e.value)
    assert not (tmp_path / "s").exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"fraction": 0}, "Sample fraction 0 is out of range: use 0 < fraction <= 1"),
        ({"fraction": 1.5}, "Sample fraction 1.5 is out of range"),
        ({"fraction": math.nan}, "Sample fraction nan is out of range"),
        ({"sessions": 0}, "Sample size 0 is out of range"),
        ({"sessions": 61}, "Sample size 61 is out of range: the database has 60 sessions"),
        ({"fraction": 0.1, "sessions": 3}, "Give exactly one of fraction"),
        ({"sessions": 3, "method": "bernoulli"}, "Method 'bernoulli' samples a fraction"),
        ({"fraction": 0.1, "method": "system"}, "only PostgreSQL has"),
        ({"fraction": 0.1, "method": "random"}, "Unknown sampling method 'random'"),
        (
            {"fraction": 0.1, "schema": "x; drop"},
            "Invalid identifier 'x; drop' in schema: pass the schema name",
        ),
        ({"fraction": 0.1, "mapping": {"messages": {"table": 'm"; DROP TABLE x'}}}, "Invalid identifier"),
        ({"fraction": 0.1, "mapping": {"chats": "c"}}, "mapping names unknown table 'chats'"),
        ({"fraction": 0.1, "mapping": {"messages": {"columns": {"role": None}}}}, "cannot be NULL"),
    ],
)
def test_bad_options_are_refused_before_anything_is_written(sqlite_source, tmp_path, options, expected):
    with pytest.raises(DatabaseSourceError) as e:
        sample_database(sqlite_source, tmp_path / "s", **options)
    assert expected in str(e.value)
    assert not (tmp_path / "s").exists() and _leftovers(tmp_path) == []


def test_values_that_do_not_fit_fail_midway_and_leave_nothing(sqlite_source, tmp_path):
    mapping = {"messages": {"columns": {"input_tokens": "content"}}}  # text into an integer column
    with pytest.raises(DatabaseSourceError, match="'messages' holds values that do not fit"):
        sample_database(sqlite_source, tmp_path / "s", fraction=0.5, mapping=mapping)
    assert not (tmp_path / "s").exists() and _leftovers(tmp_path) == []


def test_missing_sqlite_file_and_existing_destination(sqlite_source, tmp_path):
    with pytest.raises(DatabaseSourceError, match="does not exist"):
        sample_database(f"sqlite:///{tmp_path}/nope.sqlite", tmp_path / "s", fraction=0.1)
    assert not (tmp_path / "nope.sqlite").exists()
    sample_database(sqlite_source, tmp_path / "s", fraction=0.1)
    with pytest.raises(Exception, match="already exists"):
        sample_database(sqlite_source, tmp_path / "s", fraction=0.2)
    assert (
        sample_database(sqlite_source, tmp_path / "s", fraction=0.2, overwrite=True).counts["sessions"] == 12
    )


def test_driver_errors_are_scrubbed_with_the_real_password(monkeypatch, tmp_path):
    url = "postgresql://alice:hunter2-pw@127.0.0.1:1/prod"

    def refuses(parsed, **kwargs):  # a driver error that echoes the URL it was given
        raise sa.exc.ArgumentError(f"cannot use {parsed.render_as_string(hide_password=False)}")

    monkeypatch.setattr(sa, "create_engine", refuses)
    with pytest.raises(DatabaseSourceError) as e:
        sample_database(url, tmp_path / "s", fraction=0.1)
    assert "hunter2" not in str(e.value) and "alice:***@127.0.0.1" in str(e.value)


def test_batches_larger_than_sqlite_bind_limit_are_split(tmp_path):
    """A batch size above SQLite's limit of bound values per statement (lowered here to
    200) still samples, in batches within the limit, the same rows as small batches."""
    import sqlite3

    from workbench.sources.synthetic import Scale, generate

    ds = generate(tmp_path / "ds", scale=Scale(projects=3, sessions=300, messages=1_500, jobs=10), seed=2)
    with open_engine("sqlite", str(tmp_path / "src.sqlite")) as engine:
        engine.load(ds)
    url = f"sqlite:///{tmp_path / 'src.sqlite'}"

    def lower_limit(dbapi_conn, _record) -> None:
        if isinstance(dbapi_conn, sqlite3.Connection):
            dbapi_conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 200)

    sa.event.listen(sa.engine.Engine, "connect", lower_limit)
    try:
        big = sample_database(url, tmp_path / "big", fraction=1.0, batch_size=50_000)
    finally:
        sa.event.remove(sa.engine.Engine, "connect", lower_limit)
    small = sample_database(url, tmp_path / "small", fraction=1.0, batch_size=30)
    assert big.counts["sessions"] == 300
    for table in ("sessions", "messages", "session_windows", "projects"):
        assert big.read(table).equals(small.read(table)), table

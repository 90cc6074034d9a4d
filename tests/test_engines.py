"""Every engine against real databases: DuckDB and SQLite files, a real PostgreSQL server."""

import shutil
import sqlite3
from datetime import datetime

import duckdb
import psycopg
import pytest

from workbench.dataset import Dataset
from workbench.engines import open_engine
from workbench.engines.base import bind, identifier
from workbench.engines.postgres import mask_url
from workbench.errors import EngineError, UnsafeTargetError, WorkbenchError


@pytest.fixture(params=["duckdb", "sqlite", "postgres"])
def engine(request, tmp_path):
    name = request.param
    target = request.getfixturevalue("postgres_url") if name == "postgres" else str(tmp_path / f"db.{name}")
    with open_engine(name, target) as e:
        yield e


def test_load_round_trips_every_row(engine, tiny):
    report = engine.load(tiny)
    assert not report.reused
    assert engine.table_counts() == tiny.counts
    assert report.frame()["rows"].sum() == sum(tiny.counts.values())
    # Values survive the bulk path: text, timestamps with microseconds, NULLs, booleans.
    expected = tiny.read("messages").sort("id").row(1, named=True)
    got = engine.query(
        "SELECT id, content, timestamp, model, output_tokens FROM messages WHERE id = :id",
        {"id": expected["id"]},
    ).row(0, named=True)
    assert got == {k: expected[k] for k in got}
    sessions = engine.query("SELECT count(*) AS n FROM sessions WHERE is_sidechain")["n"][0]
    assert sessions == tiny.read("sessions")["is_sidechain"].sum()


def test_second_load_is_reused_and_force_reloads(engine, tiny):
    engine.load(tiny)
    assert engine.load(tiny).reused
    assert not engine.load(tiny, force=True).reused
    assert engine.marker()["content_hash"] == tiny.content_hash


def test_bound_parameters_lists_and_datetimes(engine, tiny):
    engine.load(tiny)
    rows = engine.execute(
        "SELECT id FROM sessions WHERE id IN :ids AND created_at > :since ORDER BY id",
        {"ids": [3, 1, 2], "since": datetime(2000, 1, 1)},
    )
    assert rows == [(1,), (2,), (3,)]
    assert engine.execute("SELECT count(*) FROM sessions WHERE id IN :ids", {"ids": []}) == [(0,)]
    # A quote in a value is data, never SQL.
    assert engine.execute("SELECT count(*) FROM projects WHERE name = :n", {"n": "x' OR '1'='1"}) == [(0,)]


def test_indexes_and_explain(engine, tiny):
    engine.load(tiny)
    engine.create_index("ix_messages_session", "messages", ["session_id", "timestamp"])
    assert "ix_messages_session" in engine.list_indexes()["name"].to_list()
    assert engine.explain("SELECT * FROM messages WHERE session_id = :s", {"s": 1})
    engine.drop_index("ix_messages_session")
    assert "ix_messages_session" not in engine.list_indexes()["name"].to_list()
    with pytest.raises(WorkbenchError, match="Invalid identifier"):
        engine.create_index("bad; DROP TABLE messages", "messages", ["session_id"])


def test_refuses_to_touch_a_foreign_database(tmp_path, tiny, postgres_url):
    sqlite_path = tmp_path / "app.sqlite"
    with sqlite3.connect(sqlite_path) as con:
        con.execute("CREATE TABLE users (id INTEGER)")
    duck_path = tmp_path / "app.duckdb"
    duckdb.connect(str(duck_path)).execute("CREATE TABLE users (id INTEGER)").close()
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute("CREATE TABLE users (id integer)")
    for name, target in (("sqlite", sqlite_path), ("duckdb", duck_path), ("postgres", postgres_url)):
        with open_engine(name, str(target)) as e:
            with pytest.raises(UnsafeTargetError, match=r"did not create \(users\): it will not drop"):
                e.load(tiny)
            with pytest.raises(UnsafeTargetError):
                e.create_index("ix", "users", ["id"])
            assert e.existing_tables() == ["users"]


def test_postgres_loads_into_a_new_schema_beside_foreign_tables(tiny, postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute("CREATE TABLE users (id integer)")
    with open_engine("postgres", postgres_url, schema_name="wb") as e:
        e.load(tiny)
        assert e.table_counts() == tiny.counts
        assert "(schema wb)" in e.display_target


@pytest.mark.parametrize("name", ["duckdb", "sqlite"])
def test_interrupted_load_leaves_the_previous_database_intact(name, tmp_path, tiny):
    target = tmp_path / f"db.{name}"
    with open_engine(name, str(target)) as e:
        e.load(tiny)
    broken_dir = tmp_path / "broken"
    shutil.copytree(tiny.path, broken_dir)
    broken = Dataset.open(broken_dir)
    (broken_dir / "messages.parquet").write_bytes(b"corrupted after opening")
    with open_engine(name, str(target)) as e:
        with pytest.raises(Exception):  # noqa: B017 - whatever the engine raises
            e.load(broken, force=True)
        assert e.table_counts() == tiny.counts
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["broken", f"db.{name}"])


def test_interrupted_postgres_load_rolls_back(tmp_path, tiny, postgres_url):
    broken_dir = tmp_path / "broken"
    shutil.copytree(tiny.path, broken_dir)
    broken = Dataset.open(broken_dir)
    (broken_dir / "messages.parquet").write_bytes(b"corrupted after opening")
    with open_engine("postgres", postgres_url) as e:
        with pytest.raises(Exception):  # noqa: B017
            e.load(broken)
        assert e.existing_tables() == []


def test_not_a_database_file(tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_text("hello")
    with pytest.raises(EngineError, match="is not an SQLite database"):
        open_engine("sqlite", str(junk))
    with pytest.raises(EngineError, match="is a folder"):
        open_engine("duckdb", str(tmp_path))


def test_unknown_engine():
    with pytest.raises(
        EngineError, match="Unknown engine 'postgress': expected one of duckdb, sqlite, postgres"
    ):
        open_engine("postgress", "x")


def test_unreachable_postgres_masks_the_password():
    with pytest.raises(EngineError) as info:
        open_engine("postgres", "postgresql://alice:hunter2@127.0.0.1:1/db")
    assert "hunter2" not in str(info.value)
    assert "postgresql://alice:***@127.0.0.1:1/db" in str(info.value)
    assert mask_url("postgresql+psycopg://u:p%40ss@h/db") == "postgresql+psycopg://u:***@h/db"


def test_identifiers_and_in_lists():
    assert identifier("session_windows") == '"session_windows"'
    for bad in ("1abc", "a-b", 'x"y', "", "a" * 64):
        with pytest.raises(WorkbenchError):
            identifier(bad)
    sql, params = bind("SELECT 1 WHERE a IN :ids AND b = :b", {"ids": [1, 2], "b": 3})
    assert sql == "SELECT 1 WHERE a IN (:ids_0, :ids_1) AND b = :b"
    assert params == {"ids_0": 1, "ids_1": 2, "b": 3}
    with pytest.raises(WorkbenchError, match="must be a list"):
        bind("WHERE a IN :ids", {"ids": 5})
    with pytest.raises(WorkbenchError, match="Parameter 'b' is missing: pass a value for `:b`"):
        bind("WHERE a = :b", {})


def test_only_parameters_are_bound_not_strings_comments_or_casts(engine):
    """A colon in a quoted string or a comment, and a ``::`` cast, are left as written."""
    cast = "CAST(:n AS BIGINT)" if engine.name == "sqlite" else ":n::bigint"
    sql = f"""
        SELECT ':not_a_param' AS s,  -- :nor_this
               'it''s :x' AS t, /* :nor :these */ {cast} + 1 AS n,
               '100%' AS pct
        WHERE 1 NOT IN :ids"""
    assert engine.execute(sql, {"n": 41, "ids": [2, 3]}) == [(":not_a_param", "it's :x", 42, "100%")]
    assert engine.execute("SELECT '50%', ':a'") == [("50%", ":a")]


def test_throwaway_server_stops_when_its_owner_is_killed(pg_bindir):
    import subprocess
    import sys
    import time

    from workbench.engines.server import PostgresServer

    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    server = PostgresServer.start()
    try:
        server.stop_with(owner.pid)
        assert server.running()
        owner.kill()
        owner.wait()
        deadline = time.monotonic() + 20
        while server.running() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not server.running()
    finally:
        server.stop()


AWKWARD = [
    "",
    "plain",
    'say "hi", then leave',
    "line\nbreak\r\nand tab\t",
    "back\\slash \\.",
    "ünïcødé ✓",
    None,
]


@pytest.fixture(scope="module")
def awkward(tmp_path_factory, tiny):
    """tiny, with message contents and titles that stress every bulk path's escaping."""
    import polars as pl

    from workbench.dataset import DatasetWriter

    dest = tmp_path_factory.mktemp("awkward") / "ds"
    with DatasetWriter(dest, source={"kind": "test"}, seed=0) as w:
        for table in ("projects", "jobs", "session_windows"):
            w.write(table, tiny.read(table))
        messages = tiny.read("messages")
        content = [AWKWARD[i % (len(AWKWARD) - 1)] for i in range(messages.height)]  # content is NOT NULL
        w.write("messages", messages.with_columns(content=pl.Series(content)))
        sessions = tiny.read("sessions")
        titles = [AWKWARD[i % len(AWKWARD)] for i in range(sessions.height)]
        w.write("sessions", sessions.with_columns(title=pl.Series(titles, dtype=pl.String)))
    return w.dataset


def test_every_table_round_trips_exactly(engine, awkward):
    engine.load(awkward)
    for table in ("projects", "sessions", "messages", "session_windows", "jobs"):
        expected = awkward.read(table).sort("id")
        got = engine.query(f'SELECT * FROM "{table}" ORDER BY id')
        assert got.columns == expected.columns
        got = got.with_columns(got[c].cast(expected.schema[c]) for c in got.columns)
        assert got.equals(expected, null_equal=True), table


def test_not_in_and_missing_lists(engine, tiny):
    engine.load(tiny)
    everything = engine.execute("SELECT count(*) FROM sessions WHERE id NOT IN :ids", {"ids": []})
    assert everything == [(tiny.counts["sessions"],)]
    assert engine.execute("SELECT count(*) FROM sessions WHERE id NOT IN :ids", {"ids": [1, 2]}) == [
        (tiny.counts["sessions"] - 2,)
    ]
    with pytest.raises(WorkbenchError, match="Parameter 'ids' is missing: pass a list"):
        engine.execute("SELECT 1 FROM sessions WHERE id IN :ids", {})


@pytest.mark.parametrize(
    ("where", "ids", "expected"),
    [
        # one known answer each: the empty list must not swallow its neighbours
        ("project_id = :p AND id NOT IN :ids", [], "project"),
        ("project_id = :p AND id IN :ids", [], "none"),
        ("id NOT IN :ids AND project_id = :p", [], "project"),
        ("project_id = :p OR id IN :ids", [], "project"),
        ("project_id = :p OR id NOT IN :ids", [], "all"),
        ("NOT (id NOT IN :ids) AND project_id = :p", [], "none"),
        ("project_id = :p AND title NOT IN :ids", [], "project"),  # a text column: the type follows
        ("project_id = :p AND id NOT IN :ids", "first", "project-1"),
    ],
)
def test_in_lists_keep_their_neighbours(engine, tiny, where, ids, expected):
    engine.load(tiny)
    p = engine.execute("SELECT min(project_id) FROM sessions")[0][0]
    first = engine.execute("SELECT min(id) FROM sessions WHERE project_id = :p", {"p": p})[0][0]
    counts = {
        "all": tiny.counts["sessions"],
        "none": 0,
        "project": engine.execute("SELECT count(*) FROM sessions WHERE project_id = :p", {"p": p})[0][0],
    }
    counts["project-1"] = counts["project"] - 1
    params = {"p": p, "ids": [first] if ids == "first" else ids}
    assert engine.execute(f"SELECT count(*) FROM sessions WHERE {where}", params) == [(counts[expected],)]


def test_aware_datetimes_compare_in_utc(engine, tiny):
    from datetime import UTC, timedelta, timezone

    engine.load(tiny)
    first = tiny.read("messages")["timestamp"].sort()[100]
    aware = first.replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=2)))
    sql = "SELECT count(*) FROM messages WHERE timestamp >= :t"
    naive = engine.execute(sql, {"t": first})
    if engine.name == "duckdb":  # DuckDB compares an aware value in its session time zone
        return
    assert engine.execute(sql, {"t": aware}) == naive


@pytest.mark.parametrize("name", ["duckdb", "sqlite"])
def test_tables_added_beside_a_loaded_dataset_are_not_dropped(name, tmp_path, tiny):
    target = tmp_path / f"db.{name}"
    with open_engine(name, str(target)) as e:
        e.load(tiny)
        e.con.execute("CREATE TABLE my_results (x INTEGER)")
        with pytest.raises(UnsafeTargetError, match=r"\(my_results\)"):
            e.load(tiny, force=True)
        assert "my_results" in e.existing_tables()


def test_postgres_load_analyzes_only_its_own_tables(tiny, postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute("CREATE TABLE users (id integer)")
        con.execute("INSERT INTO users VALUES (1)")
    with open_engine("postgres", postgres_url, schema_name="wb") as e:
        e.load(tiny)
    with psycopg.connect(postgres_url) as con:
        analyzed = dict(
            con.execute("SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables").fetchall()
        )
    assert analyzed["users"] is False and analyzed["messages"] is True


def test_passwords_in_query_parameters_are_masked_too():
    url = "postgresql://bob@127.0.0.1:1/db?password=hunter2&sslmode=disable"
    assert "hunter2" not in mask_url(url) and "sslmode=disable" in mask_url(url)
    with pytest.raises(EngineError) as info:
        open_engine("postgres", url)
    assert "hunter2" not in str(info.value)
    with pytest.raises(EngineError, match="Cannot connect to PostgreSQL at <unparseable database URL>"):
        open_engine("postgres", "postgres ql://alice:hunter2@h/db")


def test_a_duckdb_file_locked_by_another_process(tmp_path):
    import subprocess
    import sys
    import time

    path = tmp_path / "locked.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(path)!r}); print(1, flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        holder.stdout.readline()
        time.sleep(0.2)
        with pytest.raises(EngineError, match="is open in another process .* close that kernel or process"):
            open_engine("duckdb", str(path))
    finally:
        holder.kill()
        holder.wait()


def test_percent_signs_with_and_without_parameters(engine, tiny):
    engine.load(tiny)
    assert engine.execute("SELECT 7 % 3") == [(1,)]
    assert engine.execute("SELECT count(*) FROM projects WHERE name LIKE '%' AND id > :i", {"i": 0}) == [
        (tiny.counts["projects"],)
    ]

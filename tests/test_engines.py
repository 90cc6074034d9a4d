"""Every engine against real databases: DuckDB and SQLite files, a real PostgreSQL server."""

import shutil
import sqlite3
from datetime import datetime

import duckdb
import psycopg
import pytest

from workbench.dataset import Dataset
from workbench.engines import open_engine
from workbench.engines.base import expand_in_lists, identifier
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
    sql, params = expand_in_lists("SELECT 1 WHERE a IN :ids AND b = :b", {"ids": [1, 2], "b": 3})
    assert sql == "SELECT 1 WHERE a IN (:ids_0, :ids_1) AND b = :b"
    assert params == {"ids_0": 1, "ids_1": 2, "b": 3}
    with pytest.raises(WorkbenchError, match="must be a list"):
        expand_in_lists("WHERE a IN :ids", {"ids": 5})


def test_throwaway_server_stops_when_its_owner_is_killed(tmp_path):
    import subprocess
    import sys
    import time

    from workbench.engines.server import PostgresServer, find_bindir

    try:
        find_bindir()
    except EngineError as e:  # pragma: no cover - laptops without PostgreSQL
        pytest.skip(str(e))
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

"""Every named query on every engine (DuckDB, SQLite, a real PostgreSQL), rows compared."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from workbench import queries
from workbench.engines import open_engine
from workbench.queries import QueryError

PARAMS = {
    "project_id": 1,
    "limit": 5,
    "session_id": 3,
    "session_ids": [3, 1, 2, 40],
    "status": "failed",
    # the index lab's queries (pagination, a day's messages; a month here, so tiny has rows)
    "cursor": 0,
    "offset": 2,
    "after_created_at": datetime(2100, 1, 1),
    "after_id": 0,
    "day_start": datetime(2026, 10, 1),
    "day_end": datetime(2026, 11, 1),
}
# Aggregated rows hold engine-specific containers (JSON text, lists of structs, parsed
# JSON): test_strategies compares them after normalisation.
RAW_COMPARABLE = [n for n in queries.names() if n != "project_sessions_aggregated"]


@pytest.fixture(scope="module")
def embedded(tiny, tmp_path_factory):
    folder = tmp_path_factory.mktemp("queries")
    engines = {name: open_engine(name, str(folder / f"tiny.{name}")) for name in ("duckdb", "sqlite")}
    for engine in engines.values():
        engine.load(tiny)
    yield engines
    for engine in engines.values():
        engine.close()


@pytest.fixture
def engines(embedded, tiny, postgres_url):
    with open_engine("postgres", postgres_url) as pg:
        pg.load(tiny)
        yield {**embedded, "postgres": pg}


def run(engine, name, **kwargs):
    sql = queries.load(name, engine.dialect, **kwargs)
    return engine.execute(sql, {p: PARAMS[p] for p in queries.parameters(name)})


def test_every_query_gives_the_same_rows_on_every_engine(engines):
    for name in RAW_COMPARABLE:
        results = {engine_name: run(engine, name) for engine_name, engine in engines.items()}
        assert results["duckdb"], f"{name} returned no rows: pick parameters that match data"
        assert results["sqlite"] == results["duckdb"], name
        assert results["postgres"] == results["duckdb"], name


def test_queries_match_the_dataset(engines, tiny):
    sessions = tiny.read("sessions")
    expected = (
        sessions.filter(pl.col("project_id") == 1).sort(["created_at", "id"], descending=True).head(5).rows()
    )
    for engine in engines.values():
        assert run(engine, "project_sessions") == expected
    messages = tiny.read("messages").filter(pl.col("session_id") == 3).sort("timestamp", "id")
    for engine in engines.values():
        assert run(engine, "session_messages") == messages.rows()
    jobs = tiny.read("jobs").filter(pl.col("status") == "failed").sort(["created_at", "id"], descending=True)
    for engine in engines.values():
        assert run(engine, "jobs_by_status") == jobs.head(5).rows()


def test_postgres_array_form_matches_the_in_list(engines):
    pg = engines["postgres"]
    for name in ("messages_for_sessions", "windows_for_sessions"):
        sql = queries.load(name, "postgres", arrays=True)
        assert (
            "= ANY(" in sql.replace("\n", "").replace(" (", "(") and "CAST(:session_ids AS BIGINT[])" in sql
        )
        assert pg.execute(sql, {"session_ids": PARAMS["session_ids"]}) == run(pg, name)


def test_placeholders_stay_named_in_every_dialect():
    for name in queries.names():
        for dialect in queries.DIALECTS:
            sql = queries.load(name, dialect)
            for param in queries.parameters(name):
                assert f":{param}" in sql, (name, dialect, param)
            assert "$" not in sql and "%(" not in sql
            assert "--" not in sql  # comments are dropped: a ':name' in one would be bound


def test_dialect_differences_come_from_translation():
    assert "NULLS LAST" in queries.load("session_messages", "sqlite")
    duck = " ".join(queries.load("project_sessions_aggregated", "duckdb").split())
    assert "ARRAY_AGG( {'id': m.id" in duck and "JSON" not in duck.upper()
    lite = " ".join(queries.load("project_sessions_aggregated", "sqlite").split())
    assert "JSON_GROUP_ARRAY( JSON_OBJECT(" in lite and "ORDER BY m." not in lite
    pg = " ".join(queries.load("project_sessions_aggregated", "postgres").split())
    assert "JSON_AGG( JSON_BUILD_OBJECT(" in pg.upper() and "ORDER BY m.timestamp, m.id" in pg


def test_every_query_documents_its_parameters():
    table = queries.describe()
    assert table["query"].to_list() == queries.names()
    for name in queries.names():
        header = " ".join(ln for ln in queries.source(name).splitlines() if ln.startswith("--"))
        assert "Parameters:" in header, name
        for param in queries.parameters(name):
            assert f":{param}" in header, (name, param)


def test_clear_errors():
    with pytest.raises(QueryError, match=r"Unknown query 'nope': expected one of .*project_sessions"):
        queries.load("nope", "duckdb")
    with pytest.raises(QueryError, match="Unknown dialect 'mysql'"):
        queries.load("project_sessions", "mysql")
    with pytest.raises(QueryError, match="sqlite has none"):
        queries.load("messages_for_sessions", "sqlite", arrays=True)
    # The known transpile pitfall: DATE_TRUNC becomes TIMESTAMP_TRUNC, which SQLite rejects.
    with pytest.raises(QueryError, match="TIMESTAMPTRUNC.*sqlite"):
        queries.translate("SELECT date_trunc('day', created_at) FROM jobs", "sqlite")
    assert "DATE_TRUNC" in queries.translate("SELECT date_trunc('day', created_at) FROM jobs", "duckdb")


def test_loaded_sql_is_cached_until_the_file_changes(tmp_path, monkeypatch):
    import os

    monkeypatch.setattr(queries, "QUERIES_DIR", tmp_path)
    file = tmp_path / "q.sql"
    file.write_text("-- Parameters: :a\nSELECT :a AS x")
    first = queries.load("q", "sqlite")
    reads = []
    monkeypatch.setattr(type(file), "read_text", lambda self, *a, **k: reads.append(self) or "")
    assert queries.load("q", "sqlite") == first and reads == []  # timed runs never read files
    monkeypatch.undo()
    monkeypatch.setattr(queries, "QUERIES_DIR", tmp_path)
    file.write_text("-- Parameters: :a\nSELECT :a AS y")
    os.utime(file, ns=(1, file.stat().st_mtime_ns + 1_000_000))
    assert "y" in queries.load("q", "sqlite") and queries.load("q", "duckdb") != first


def test_the_example_strategies_are_not_named_queries_and_translate_everywhere():
    examples = queries.QUERIES_DIR / "examples"
    assert {p.stem for p in examples.glob("*.sql")} == {"last10_lateral", "last10_window"}
    assert not set(queries.names()) & {"last10_lateral", "last10_window"}  # not the backend's access paths
    window = (examples / "last10_window.sql").read_text()
    for dialect in queries.DIALECTS:
        assert "ROW_NUMBER() OVER" in queries.translate(window, dialect).upper()

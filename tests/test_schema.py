import duckdb
import pytest

from workbench import schema
from workbench.errors import WorkbenchError


def test_tables_in_dependency_order():
    assert schema.TABLES.index("projects") < schema.TABLES.index("sessions") < schema.TABLES.index("messages")
    assert set(schema.TABLES) == {"projects", "sessions", "messages", "session_windows", "jobs"}
    # the declaration's order is the one SQLAlchemy derives from the foreign keys
    assert tuple(t.name for t in schema.METADATA.sorted_tables) == schema.TABLES
    assert [c.name for c in schema.messages.columns] == list(schema.polars_schema("messages"))


def test_ingest_loads_neither_polars_nor_sqlalchemy(tmp_path):
    """An ingest (full, then incremental) needs neither Polars nor SQLAlchemy (~40 MB of
    RSS together); reading the Dataset back needs Polars, still not SQLAlchemy."""
    import subprocess
    import sys
    from pathlib import Path

    fixtures = Path(__file__).parent / "fixtures" / "claude-code"
    code = (
        "import sys; from workbench.sources.claude_code import ingest; "
        f"args = [{str(fixtures)!r}], {str(tmp_path / 'ds')!r}; "
        "ingest(*args, progress=False); ds = ingest(*args, progress=False).dataset; "
        "assert not {'polars', 'sqlalchemy'} & set(sys.modules), 'loaded by the ingest'; "
        "ds.read('messages'); assert 'sqlalchemy' not in sys.modules, 'sqlalchemy loaded by a read'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("dialect", ["duckdb", "sqlite", "postgres"])
def test_ddl_has_keys_but_no_secondary_indexes(dialect):
    statements = schema.ddl(dialect)
    assert len(statements) == 5
    text = "\n".join(statements)
    assert text.count("PRIMARY KEY") == 5
    assert "CREATE INDEX" not in text
    # DuckDB would back foreign keys with ART indexes, which the analysis has not chosen.
    assert ("REFERENCES" in text) == (dialect != "duckdb")


def test_duckdb_accepts_its_ddl():
    con = duckdb.connect()
    for statement in schema.ddl("duckdb"):
        con.execute(statement)
    assert con.execute("SELECT count(*) FROM duckdb_indexes()").fetchone()[0] == 0


def test_polars_schema_and_unknown_table():
    assert schema.polars_schema("messages")["timestamp"].time_unit == "us"
    with pytest.raises(WorkbenchError, match="Unknown table 'message': expected one of"):
        schema.table("message")

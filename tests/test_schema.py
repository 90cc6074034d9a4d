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


def test_datasets_do_not_load_sqlalchemy(tmp_path):
    """Reading, writing and ingesting Datasets leave SQLAlchemy unloaded (~12 MB of RSS)."""
    import subprocess
    import sys
    from pathlib import Path

    fixtures = Path(__file__).parent / "fixtures" / "claude-code"
    code = (
        "import sys; from workbench.sources.claude_code import ingest; "
        f"ds = ingest([{str(fixtures)!r}], {str(tmp_path / 'ds')!r}, progress=False).dataset; "
        "ds.read('messages'); assert 'sqlalchemy' not in sys.modules, 'sqlalchemy was loaded'"
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

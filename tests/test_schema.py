import duckdb
import pytest

from workbench import schema
from workbench.errors import WorkbenchError


def test_tables_in_dependency_order():
    assert schema.TABLES.index("projects") < schema.TABLES.index("sessions") < schema.TABLES.index("messages")
    assert set(schema.TABLES) == {"projects", "sessions", "messages", "session_windows", "jobs"}


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

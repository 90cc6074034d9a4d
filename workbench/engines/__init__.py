"""Engine adapters: one interface (``base.Engine``), one module per database."""

from workbench.engines.base import Engine, LoadReport, open_engine
from workbench.engines.duckdb import DuckDBEngine
from workbench.engines.postgres import PostgresEngine, mask_url
from workbench.engines.sqlite import SQLiteEngine

ENGINES: dict[str, type[Engine]] = {
    "duckdb": DuckDBEngine,
    "sqlite": SQLiteEngine,
    "postgres": PostgresEngine,
}
EMBEDDED = ("duckdb", "sqlite")

__all__ = ["ENGINES", "EMBEDDED", "Engine", "LoadReport", "mask_url", "open_engine"]

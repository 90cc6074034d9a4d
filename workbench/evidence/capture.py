"""A throwaway PostgreSQL that logs every statement, for known answers and demos.

The server (:class:`workbench.engines.server.PostgresServer`) is started as usual, then
told to log each statement with its duration (``log_min_duration_statement = 0``) in the
chosen destination, and restarted when the destination needs the logging collector
(jsonlog, csvlog). Its log files are then what a production server would write.

>>> with logging_server("jsonlog") as (server, logs):    # doctest: +SKIP
...     ...                                               # run traffic against server.url
...     files = logs()                                    # the log files written so far
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg

from workbench.engines.server import PostgresServer
from workbench.errors import WorkbenchError

#: The prefix the stderr log is written with: every field the grouping can use.
PREFIX = "%m [%p] %q%u@%d/%a %c %v %x "
DESTINATIONS = ("jsonlog", "csvlog", "stderr")
_SUFFIX = {"jsonlog": ".json", "csvlog": ".csv", "stderr": ".log"}


def _settings(destination: str, folder: Path) -> dict[str, str]:
    settings = {
        "log_min_duration_statement": "0",
        "log_line_prefix": PREFIX,
        "log_destination": destination,
        "logging_collector": "on",
        "log_directory": str(folder),
        "log_filename": "postgresql.log",
        "log_rotation_size": "0",
        "log_rotation_age": "0",
    }
    return settings


@contextlib.contextmanager
def logging_server(destination: str = "jsonlog") -> Iterator[tuple[PostgresServer, Callable[[], list[Path]]]]:
    """A started throwaway server logging every statement to ``destination``.

    Yields the server and a function returning its log files (flushed: the collector
    writes each message as it comes; the function waits a moment for the last ones).
    """
    if destination not in DESTINATIONS:
        raise WorkbenchError(
            f"Unknown log destination {destination!r}: expected one of {', '.join(DESTINATIONS)}"
        )
    server = PostgresServer.start()
    try:
        folder = Path(server.directory) / "log"
        with psycopg.connect(server.url, autocommit=True) as con:
            for name, value in _settings(destination, folder).items():
                con.execute(f"ALTER SYSTEM SET {name} = '{value}'")  # constants of this module
        server._run(
            "pg_ctl", "-D", str(server.data), "-l", str(server.log), "-m", "fast", "-w", "-t", "30", "restart"
        )
        suffix = _SUFFIX[destination]

        def logs() -> list[Path]:
            with psycopg.connect(server.url, autocommit=True) as con:
                con.execute("SELECT 1 AS flush")  # the collector writes in order: this marks the end
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                files = sorted(p for p in folder.glob("postgresql*") if p.suffix == suffix)
                if files and any(b"flush" in p.read_bytes()[-4096:] for p in files):
                    return files
                time.sleep(0.05)
            return sorted(p for p in folder.glob("postgresql*") if p.suffix == suffix)

        yield server, logs
    finally:
        with contextlib.suppress(subprocess.SubprocessError, WorkbenchError):
            server.stop()

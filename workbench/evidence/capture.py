"""A throwaway PostgreSQL that logs every statement, for known answers and demos.

The server (:class:`workbench.engines.server.PostgresServer`) is started as usual, then
told to log each statement with its duration (``log_min_duration_statement = 0``) in the
chosen destination, and restarted when the destination needs the logging collector
(jsonlog, csvlog). Its log files are then what a production server would write.

>>> with logging_server(("jsonlog", "stderr")) as (server, logs):   # doctest: +SKIP
...     mark = logs.mark()
...     ...                                    # run traffic against server.url
...     logs.since(mark, "jsonlog", "traffic.json")
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

from workbench.engines.server import PostgresServer
from workbench.errors import WorkbenchError

#: The prefix the stderr log is written with: every field the grouping can use.
PREFIX = "%m [%p] %q%u@%d/%a %c %v %x "
DESTINATIONS = ("jsonlog", "csvlog", "stderr")
_SUFFIX = {"jsonlog": ".json", "csvlog": ".csv", "stderr": ".log"}


def _settings(destinations: tuple[str, ...], folder: Path) -> dict[str, str]:
    return {
        "log_min_duration_statement": "0",
        "log_line_prefix": PREFIX,
        "log_destination": ",".join(destinations),
        "logging_collector": "on",
        "log_directory": str(folder),
        "log_filename": "postgresql.log",
        "log_rotation_size": "0",
        "log_rotation_age": "0",
    }


class Logs:
    """The server's log files, one per destination; :meth:`mark` and :meth:`since` cut them."""

    def __init__(self, url: str, folder: Path, destinations: tuple[str, ...]) -> None:
        self.url, self.folder, self.destinations = url, folder, destinations

    def file(self, destination: str) -> Path:
        return self.folder / ("postgresql" + _SUFFIX[destination])

    def flush(self) -> None:
        """Wait until every statement so far is in the files (a marker statement arrives)."""
        marker = f"flush_{time.monotonic_ns()}"
        with psycopg.connect(self.url, autocommit=True) as con:
            con.execute(f"SELECT 1 AS {marker}")
        deadline = time.monotonic() + 10
        for d in self.destinations:
            f = self.file(d)
            while time.monotonic() < deadline and not (
                f.exists() and marker.encode() in f.read_bytes()[-8192:]
            ):
                time.sleep(0.05)

    def mark(self) -> dict[str, int]:
        """Where each file ends now (after a flush)."""
        self.flush()
        return {d: self.file(d).stat().st_size for d in self.destinations}

    def since(self, mark: dict[str, int], destination: str, dest: str | Path, flush: bool = True) -> Path:
        """Copy what ``destination``'s file gained after ``mark`` into ``dest`` (flushed first)."""
        if flush:
            self.flush()
        with self.file(destination).open("rb") as f:
            f.seek(mark[destination])
            Path(dest).write_bytes(f.read())
        return Path(dest)


@contextlib.contextmanager
def logging_server(destinations: tuple[str, ...] = DESTINATIONS) -> Iterator[tuple[PostgresServer, Logs]]:
    """A started throwaway server logging every statement to each of ``destinations``."""
    unknown = [d for d in destinations if d not in DESTINATIONS]
    if unknown or not destinations:
        bad = unknown[0] if unknown else ""
        raise WorkbenchError(f"Unknown log destination {bad!r}: expected some of {', '.join(DESTINATIONS)}")
    server = PostgresServer.start()
    try:
        folder = Path(server.directory) / "log"
        with psycopg.connect(server.url, autocommit=True) as con:
            for name, value in _settings(tuple(destinations), folder).items():
                con.execute(f"ALTER SYSTEM SET {name} = '{value}'")  # constants of this module
        server._run(
            "pg_ctl", "-D", str(server.data), "-l", str(server.log), "-m", "fast", "-w", "-t", "30", "restart"
        )
        yield server, Logs(server.url, folder, tuple(destinations))
    finally:
        with contextlib.suppress(subprocess.SubprocessError, WorkbenchError):
            server.stop()

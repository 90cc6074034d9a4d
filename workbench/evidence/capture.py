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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
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


def start(destinations: tuple[str, ...] = DESTINATIONS) -> tuple[PostgresServer, Logs]:
    """A started throwaway server logging every statement to each of ``destinations``
    (the caller stops it: ``server.stop()``)."""
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
    except BaseException:
        server.stop()
        raise
    return server, Logs(server.url, folder, tuple(destinations))


@contextlib.contextmanager
def logging_server(destinations: tuple[str, ...] = DESTINATIONS) -> Iterator[tuple[PostgresServer, Logs]]:
    """:func:`start` as a context manager: the server stops at the end."""
    server, logs = start(destinations)
    try:
        yield server, logs
    finally:
        with contextlib.suppress(subprocess.SubprocessError, WorkbenchError):
            server.stop()


@dataclass
class Recorded:
    """Traffic sent to the workbench's service and the log PostgreSQL wrote of it."""

    server: PostgresServer  # still running: the sample the rewrites are checked on
    logs: dict[str, Path]  # destination -> the traffic's log file
    sent: pl.DataFrame  # strategy, endpoint, path: what was sent, in order


def service_log(
    dataset: Any,
    out_dir: str | Path,
    strategies: tuple[str, ...] = ("n_plus_one", "batch"),
    requests: int = 12,
    mix: Any = None,
    seed: int = 0,
    pause: float = 0.15,
    destinations: tuple[str, ...] = ("jsonlog",),
) -> Recorded:
    """Run the service once per strategy over ``dataset`` and log its statements.

    ``requests`` requests per strategy, drawn from ``mix`` (the service's load mix) with
    ``seed``, one at a time with ``pause`` seconds between them (longer than the grouping's
    gap, as between a pooled connection's requests). The server keeps running (and stops
    when this process ends): stop it with ``recorded.server.stop()``.
    """
    from workbench import strategies as loading
    from workbench.engines import open_engine
    from workbench.service.app import Settings
    from workbench.service.load import Mix, paths, targets
    from workbench.service.process import ServiceProcess

    mix = mix or Mix()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    server, logs = start(destinations)
    server.stop_with()
    try:
        with open_engine("postgres", server.url) as engine:
            engine.load(dataset)
            loading.ensure_indexes(engine)
        drawn = targets(dataset, mix.hot_fraction)
        sent = []
        mark = logs.mark()
        for name in strategies:
            with ServiceProcess.start(Settings(database_url=server.url, strategy=name, pool_size=2)) as svc:
                for endpoint, path in paths(mix, drawn, requests, seed=seed):
                    svc.get_json(path)
                    sent.append((name, endpoint, path))
                    time.sleep(pause)
        logs.flush()
        files = {d: logs.since(mark, d, out / f"service{_SUFFIX[d]}", flush=False) for d in destinations}
    except BaseException:
        server.stop()
        raise
    frame = pl.DataFrame(sent, schema=["strategy", "endpoint", "path"], orient="row")
    return Recorded(server, files, frame)

"""A throwaway PostgreSQL cluster started from the system's binaries.

Tests, notebooks and demos use it when no ``WORKBENCH_POSTGRES_URL`` is given. The
cluster lives in a temp folder, listens on loopback only, trusts local connections
(no password to leak) and has the HypoPG extension available when the distribution
package is installed. ``initdb`` and ``postgres`` refuse to run as root, so as root
the server runs as the ``postgres`` user.

``with PostgresServer.start() as server:`` gives ``server.url``
(``postgresql://postgres@127.0.0.1:<port>/workbench``) and stops it on leaving the block.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from workbench.errors import EngineError

DATABASE = "workbench"
INSTALL_HINT = (
    "install them with: sudo apt-get install postgresql postgresql-15-hypopg, "
    "or set WORKBENCH_PG_BINDIR to the folder holding initdb and pg_ctl"
)


def find_bindir() -> Path:
    """The folder with ``initdb``/``pg_ctl``/``postgres``: env, Debian layout, then PATH."""
    candidates: list[str] = []
    if env := os.environ.get("WORKBENCH_PG_BINDIR"):
        candidates.append(env)  # an explicit choice: no fallback that would hide a typo
    else:
        candidates += sorted(
            glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True
        )
        if initdb := shutil.which("initdb"):
            candidates.append(str(Path(initdb).resolve().parent))
    for folder in candidates:
        if all((Path(folder) / b).exists() for b in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    where = ", ".join(candidates) or "PATH and /usr/lib/postgresql/*/bin"
    raise EngineError(f"PostgreSQL server binaries (initdb, pg_ctl) not found in {where}: {INSTALL_HINT}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class PostgresServer:
    """A running (or stopped) throwaway cluster."""

    directory: str
    port: int
    bindir: str

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def data(self) -> Path:
        return Path(self.directory) / "data"

    @property
    def log(self) -> Path:
        return Path(self.directory) / "server.log"

    @classmethod
    def start(cls, port: int | None = None) -> PostgresServer:
        """initdb a new cluster in a temp folder and start it on 127.0.0.1:``port``."""
        bindir = find_bindir()
        if port is not None and port_in_use(port):
            raise EngineError(
                f"Port {port} on 127.0.0.1 is in use: choose another with --port, "
                "or leave it out to pick a free one"
            )
        port = port or free_port()
        folder = Path(tempfile.mkdtemp(prefix="workbench-pg-"))  # ours alone: stop() deletes it
        server = cls(str(folder), port, str(bindir))
        try:
            if os.geteuid() == 0:
                user = pwd.getpwnam("postgres")
                os.chown(folder, user.pw_uid, user.pw_gid)
            server._run(
                "initdb",
                "-D",
                str(server.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            )
            options = (
                f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c shared_buffers=256MB -c max_connections=50 "
                # per-statement execution statistics for the service lab (Debian's
                # postgresql-15 ships the module; it needs preloading, and costs little)
                "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
            )
            server._run(
                "pg_ctl",
                "-D",
                str(server.data),
                "-o",
                options,
                "-l",
                str(server.log),
                "-w",
                "-t",
                "30",
                "start",
            )
            server._run("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", DATABASE)
        except BaseException:
            server.stop()
            raise
        return server

    def _run(self, binary: str, *args: str) -> str:
        kwargs: dict = {}
        if os.geteuid() == 0:
            kwargs = {"user": "postgres", "group": "postgres", "extra_groups": []}
        proc = subprocess.run(
            [str(Path(self.bindir) / binary), *args],
            capture_output=True,
            text=True,
            cwd=self.directory,
            **kwargs,
        )
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            log = self.log.read_text()[-800:] if self.log.exists() else ""
            raise EngineError(
                f"PostgreSQL {binary} failed (exit {proc.returncode}): {' '.join(detail)}"
                + (f"\nserver log:\n{log}" if log else "")
            )
        return proc.stdout

    def running(self) -> bool:
        if not self.data.exists():
            return False
        kwargs = {"user": "postgres"} if os.geteuid() == 0 else {}
        proc = subprocess.run(
            [str(Path(self.bindir) / "pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
            **kwargs,
        )
        return proc.returncode == 0

    def hypopg(self) -> str:
        """HypoPG's available version, or a hint how to install it."""
        import psycopg

        with psycopg.connect(self.url) as con:
            row = con.execute(
                "SELECT default_version FROM pg_available_extensions WHERE name = 'hypopg'"
            ).fetchone()
        return row[0] if row else "not installed (apt-get install postgresql-15-hypopg)"

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its folder."""
        if self.running():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)

    def stop_with(self, pid: int | None = None) -> None:
        """Stop this server when process ``pid`` (default: this one) ends, however it ends.

        Notebook kernels are killed rather than exited, so ``atexit`` never runs there;
        a small watchdog process polls the owner and stops the server after it.
        """
        code = "import sys; from workbench.engines.server import _watch; _watch(*sys.argv[1:])"
        subprocess.Popen(
            [sys.executable, "-c", code, str(pid or os.getpid()), json.dumps(asdict(self))],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # The CLI keeps one server per state file, so `pg start` / `pg stop` can be separate commands.
    def save(self, state: Path) -> None:
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, state: Path) -> PostgresServer | None:
        try:
            return cls(**json.loads(state.read_text()))
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            return None


def _watch(pid: str, server: str, interval: float = 1.0) -> None:
    """Wait for process ``pid`` to end, then stop ``server`` (its JSON fields)."""
    while True:
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            break
        except PermissionError:
            pass
        time.sleep(interval)
    PostgresServer(**json.loads(server)).stop()

"""The service as a child process on a loopback port, and what its processes cost.

:class:`ServiceProcess` starts ``uvicorn`` (with the settings in the environment),
waits for ``/health``, and stops it. :class:`ProcessSampler` reads the CPU time and
peak resident memory of a set of processes (the service and its workers, PostgreSQL,
the load generator itself) at the start and end of a load run.

>>> with ServiceProcess.start(Settings(database_url=url)) as svc:   # doctest: +SKIP
...     svc.url
'http://127.0.0.1:41234'
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

from workbench.engines.server import free_port, port_in_use
from workbench.service.settings import MULTIPROC_ENV, SETTINGS_ENV, ServiceError, Settings

HOST = "127.0.0.1"


def check_port(port: int, host: str = HOST) -> None:
    """Refuse a port that something already listens on, naming it and the fix."""
    if not 0 < port < 65536:
        raise ServiceError(f"Port {port} is not a TCP port: choose one in 1..65535")
    if port_in_use(port):
        raise ServiceError(
            f"Port {port} on {host} is in use: choose another --port, or stop what listens there"
        )


def uvicorn_command(settings: Settings, port: int, host: str = HOST) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "workbench.service.app:app_from_env",
        "--factory",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(settings.workers),
        "--log-level",
        "warning",
        "--no-access-log",
        "--backlog",
        "4096",
    ]


def service_env(settings: Settings, multiproc_dir: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env[SETTINGS_ENV] = settings.to_json()
    env.pop(MULTIPROC_ENV, None)
    if multiproc_dir:
        env[MULTIPROC_ENV] = multiproc_dir
    return env


def answers(url: str, timeout: float = 1.0) -> bool:
    """True when ``GET url`` answers 200 (a child process's readiness probe)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


def wait_until_ready(
    proc: subprocess.Popen,
    ready: Callable[[], bool],
    what: str,
    output: Callable[[], str],
    stop: Callable[[], None],
    error: type[Exception],
    timeout: float = 30.0,
) -> None:
    """Poll ``ready()`` until it is true; when ``proc`` exits first or ``timeout`` passes, read
    ``output()`` (its log), ``stop()`` it and raise ``error`` naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = output()
            stop()
            raise error(f"{what} exited with code {proc.returncode} on start: {text}")
        if ready():
            return
        time.sleep(0.1)
    text = output()
    stop()
    raise error(f"{what} did not become ready within {timeout:.0f} s: {text}")


def end_process(proc: subprocess.Popen, kill: Callable[[], None] | None = None) -> None:
    """Terminate ``proc`` and wait; ``kill`` (default: SIGKILL to it alone) when it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            (kill or proc.kill)()
            proc.wait(5)


@dataclass
class ServiceProcess:
    """A running service: ``url``, ``pids()`` (the parent and its workers), ``stop()``."""

    settings: Settings
    port: int
    proc: subprocess.Popen
    multiproc_dir: str | None = None
    log: Any = field(default=None, repr=False)

    @classmethod
    def start(cls, settings: Settings, port: int | None = None, timeout: float = 30.0) -> ServiceProcess:
        port = port or free_port()
        check_port(port)
        multiproc = tempfile.mkdtemp(prefix="workbench-prom-") if settings.workers > 1 else None
        log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in __exit__)
        proc = subprocess.Popen(
            uvicorn_command(settings, port), env=service_env(settings, multiproc), stdout=log, stderr=log
        )
        svc = cls(settings, port, proc, multiproc, log)
        wait_until_ready(
            proc, svc.healthy, f"The service on port {port}", svc.output, svc.stop, ServiceError, timeout
        )
        return svc

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def healthy(self) -> bool:
        return answers(self.url + "/health")

    def get_text(self, path: str) -> str:
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return r.read().decode()

    def get_json(self, path: str) -> Any:
        import json

        return json.loads(self.get_text(path))

    def pids(self) -> list[int]:
        try:
            parent = psutil.Process(self.proc.pid)
            return [parent.pid] + [c.pid for c in parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def output(self, tail: int = 2000) -> str:
        if self.log is None:
            return ""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-tail:].strip()

    def kill(self) -> None:
        """End the service abruptly (a crash mid-run, for the tests)."""
        for pid in reversed(self.pids()):
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()
        self.proc.wait(10)

    def stop(self) -> None:
        end_process(self.proc, self.kill)
        if self.multiproc_dir:
            shutil.rmtree(self.multiproc_dir, ignore_errors=True)
            self.multiproc_dir = None

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self.log is not None:
            self.log.close()
            self.log = None


def serve(settings: Settings, port: int = 8000, host: str = HOST) -> None:
    """Run the service in the foreground until interrupted (``workbench serve``)."""
    import uvicorn

    check_port(port, host)
    multiproc = tempfile.mkdtemp(prefix="workbench-prom-") if settings.workers > 1 else None
    os.environ.update(
        {k: v for k, v in service_env(settings, multiproc).items() if k in (SETTINGS_ENV, MULTIPROC_ENV)}
    )
    try:
        uvicorn.run(
            "workbench.service.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=settings.workers,
            log_level="info",
            access_log=False,
        )
    finally:
        if multiproc:
            shutil.rmtree(multiproc, ignore_errors=True)


def postgres_pids(url: str) -> list[int]:
    """The PostgreSQL server processes behind a loopback ``url`` (empty for a remote one)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.host not in (None, "127.0.0.1", "localhost", "::1"):
        return []
    port = str(parsed.port or 5432)
    for p in psutil.process_iter(["name", "cmdline"]):
        cmd = p.info.get("cmdline") or []
        if p.info.get("name") == "postgres" and "-p" in cmd and port in cmd:
            with contextlib.suppress(psutil.NoSuchProcess):
                return [p.pid] + [c.pid for c in p.children(recursive=True)]
    return []


@dataclass
class Usage:
    """CPU and memory of one group of processes over a sampled interval."""

    name: str
    cpu_seconds: float
    wall_seconds: float
    peak_rss_mb: float

    @property
    def cores(self) -> float:
        """Average cores busy (1.0 = one core fully used)."""
        return self.cpu_seconds / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def machine_share(self) -> float:
        """Share of the whole machine's CPU (cores / logical CPUs)."""
        return self.cores / (psutil.cpu_count() or 1)


class ProcessSampler:
    """CPU time and peak resident memory of named process groups over an interval.

    Groups are lists of pids, or callables giving them, resolved when the interval starts.
    Nothing runs during the interval: the CPU seconds are read at its start and its end
    (the kernel counts them), and the peak is each process's resident high-water mark
    (``VmHWM`` in /proc, Linux; elsewhere the resident size at the end), summed over the
    group. A sampling thread in the generator's process used to hold the GIL for a few
    milliseconds per sample, and the sends due meanwhile went late: reading twice costs
    the schedule nothing. The high-water mark runs from each process's start, so a
    service's peak covers every run it has served so far (what a memory SLO asks).
    """

    def __init__(self, groups: dict[str, Any]) -> None:
        self.groups = groups
        self._start_cpu: dict[str, dict[int, float]] = {g: {} for g in groups}
        self._cpu: dict[str, dict[int, float]] = {g: {} for g in groups}
        self._peak: dict[str, float] = dict.fromkeys(groups, 0.0)
        self._machine: list[Any] = [None, None]
        self.started = self.stopped = 0.0

    def _read(self, into: dict[str, dict[int, float]], peaks: bool) -> None:
        for group, pids in self._resolved.items():
            rss = 0
            for pid in pids:
                try:
                    p = self._procs.get(pid) or self._procs.setdefault(pid, psutil.Process(pid))
                    t = p.cpu_times()
                    into[group][pid] = t.user + t.system
                    if peaks:
                        rss += peak_rss(p)
                except psutil.Error:
                    continue
            if peaks:
                self._peak[group] = rss / 2**20

    def __enter__(self) -> ProcessSampler:
        self._resolved = {g: list(v() if callable(v) else v) for g, v in self.groups.items()}
        self._procs: dict[int, psutil.Process] = {}
        self._machine[0] = psutil.cpu_times()
        self._read(self._start_cpu, peaks=False)
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped = time.monotonic()
        self._read(self._cpu, peaks=True)
        self._machine[1] = psutil.cpu_times()

    def usage(self) -> list[Usage]:
        wall = (self.stopped or time.monotonic()) - self.started
        out = []
        for group in self.groups:
            cpu = sum(v - self._start_cpu[group].get(pid, 0.0) for pid, v in self._cpu[group].items())
            out.append(Usage(group, cpu, wall, self._peak[group]))
        if self._machine[1] is not None:
            a, b = self._machine
            busy = (sum(b) - b.idle - getattr(b, "iowait", 0)) - (sum(a) - a.idle - getattr(a, "iowait", 0))
            out.append(Usage("machine", busy, wall, 0.0))  # every process, others' included
        return out


def peak_rss(process: psutil.Process) -> int:
    """A process's resident high-water mark in bytes (``VmHWM``; its current RSS where /proc lacks it)."""
    try:
        with open(f"/proc/{process.pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return process.memory_info().rss

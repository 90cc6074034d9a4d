"""Closed-loop saturation with ``wrk`` (a Debian package): throughput and latency of one URL.

``wrk`` keeps ``connections`` requests in flight on ``threads`` threads for ``seconds``
and counts what came back; a Lua ``done`` hook prints its summary as JSON, so nothing is
scraped from its text. It measures throughput at saturation (what the service can do at
most), which the open-loop generator cannot: past the generator's own ceiling, use this.
Loopback targets only, as for the generator.

>>> result = run_wrk("http://127.0.0.1:8000/health", seconds=2)     # doctest: +SKIP
>>> result.rps                                                       # doctest: +SKIP
24000.0
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path

from workbench.service.load.generator import is_loopback
from workbench.service.load.schedule import LoadError

INSTALL_HINT = "install it with: sudo apt-get install wrk"
_REPORT = """
done = function(summary, latency, requests)
  io.write(string.format(
    '\\n{"requests": %d, "micros": %d, "status_errors": %d, "socket_errors": %d, '
    .. '"p50_us": %d, "p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class WrkResult:
    """One ``wrk`` run: answers, seconds, answers that were not 2xx/3xx, socket errors, latency."""

    url: str
    threads: int
    connections: int
    requests: int
    seconds: float
    status_errors: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rps(self) -> float:
        """Answers per second (all statuses)."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def ok_rps(self) -> float:
        """2xx/3xx answers per second."""
        return (self.requests - self.status_errors) / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return asdict(self) | {"rps": self.rps, "ok_rps": self.ok_rps}


def find_wrk() -> str:
    path = shutil.which("wrk")
    if not path:
        raise LoadError(f"The wrk binary was not found: {INSTALL_HINT}")
    return path


def run_wrk(url: str, *, threads: int = 2, connections: int = 16, seconds: float = 5.0) -> WrkResult:
    """Run ``wrk -t threads -c connections -d seconds url`` (loopback only) and return its summary."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if not is_loopback(host):
        raise LoadError(f"{host!r} in {url!r} is not loopback: wrk runs against this machine only")
    if connections < threads or seconds <= 0:
        raise LoadError(
            f"wrk needs connections ({connections}) >= threads ({threads}) and seconds ({seconds}) > 0"
        )
    with tempfile.TemporaryDirectory(prefix="workbench-wrk-") as folder:
        script = Path(folder) / "report.lua"
        script.write_text(_REPORT)
        command = [find_wrk(), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
        command += ["-s", str(script), url]
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise LoadError(f"wrk failed on {url}: {(done.stderr or done.stdout).strip()[-500:]}")
    last = done.stdout.strip().splitlines()[-1]
    data = json.loads(last)
    return WrkResult(
        url=url,
        threads=threads,
        connections=connections,
        requests=data["requests"],
        seconds=data["micros"] / 1e6,
        status_errors=data["status_errors"],
        socket_errors=data["socket_errors"],
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
    )

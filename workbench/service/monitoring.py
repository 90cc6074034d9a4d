"""Prometheus scraping the service, its HTTP API, and the Grafana dashboard of the SLIs.

:class:`PrometheusServer` runs the distribution's ``prometheus`` binary as a plain
process (no systemd) with a temporary config and data folder on a loopback port,
scraping the service's ``/metrics`` every ``interval`` seconds. :meth:`query` reads an
instant value through ``/api/v1/query``, so the SLIs Prometheus computes can be set
beside the load tool's own. :func:`export_dashboard` writes a Grafana dashboard (plain
JSON, importable as is) with one panel per SLI and the SLO as its threshold, plus the
PromQL of each SLO.

>>> with PrometheusServer.start(["127.0.0.1:8000"]) as prom:      # doctest: +SKIP
...     prom.query("sum(workbench_http_request_duration_seconds_count)")
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.engines.server import free_port
from workbench.errors import WorkbenchError
from workbench.service.process import answers, end_process, wait_until_ready
from workbench.service.slo import SLOS

INSTALL_HINT = "install it with: sudo apt-get install prometheus (make system-deps does)"

_OK = 'status!~"5.."'
_REQ = "workbench_http_request_duration_seconds"
#: Each SLO's SLI in PromQL, by SLO name; ``{window}`` is the rate window and ``{cores}`` the
#: service machine's core count (a dashboard variable, or a number when querying).
PROMQL = {
    "p50": f"histogram_quantile(0.5, sum by (le) (rate({_REQ}_bucket{{{{{_OK}}}}}[{{window}}]))) * 1000",
    "p99": f"histogram_quantile(0.99, sum by (le) (rate({_REQ}_bucket{{{{{_OK}}}}}[{{window}}]))) * 1000",
    "throughput": f"sum(rate({_REQ}_count{{{{{_OK}}}}}[{{window}}]))",
    "errors": (
        "(sum(rate(workbench_http_errors_total[{window}])) or vector(0))"
        f" / sum(rate({_REQ}_count[{{window}}]))"
    ),
    "db_p99": (
        "histogram_quantile(0.99, sum by (le) (rate(workbench_db_statement_seconds_bucket[{window}]))) * 1000"
    ),
    "memory": 'sum(process_resident_memory_bytes{{job="workbench"}}) / 2^20',
    "cpu": 'sum(rate(process_cpu_seconds_total{{job="workbench"}}[{window}])) / {cores}',
}


def promql(name: str, window: str = "1m", cores: int | str = "$cores") -> str:
    """The PromQL of SLO ``name`` over the rate window ``window``.

    ``cores``: what the CPU share divides by: the dashboard's ``$cores`` variable (the
    production machine's count, set where the dashboard is used), or a number.

    >>> promql("cpu", "30s", cores=8)
    'sum(rate(process_cpu_seconds_total{job="workbench"}[30s])) / 8'
    """
    return PROMQL[name].format(window=window, cores=cores)


class MonitoringError(WorkbenchError):
    """Prometheus is missing, did not start, or refused a query."""


def find_prometheus() -> str:
    """The ``prometheus`` binary ($WORKBENCH_PROMETHEUS, else PATH), or an error saying how to install it."""
    path = os.environ.get("WORKBENCH_PROMETHEUS") or shutil.which("prometheus")
    if not path or not Path(path).exists():
        raise MonitoringError(f"The prometheus binary was not found: {INSTALL_HINT}")
    return path


@dataclass
class PrometheusServer:
    """A running Prometheus (temp config and data folder) scraping ``targets``."""

    port: int
    folder: str
    proc: subprocess.Popen

    @classmethod
    def start(
        cls,
        targets: list[str],
        interval: float = 1.0,
        timeout: float = 30.0,
        rules: list[str | os.PathLike[str]] | None = None,
    ) -> PrometheusServer:
        """Scrape ``targets`` every ``interval`` seconds; ``rules``: rule files it evaluates as often."""
        binary = find_prometheus()
        folder = tempfile.mkdtemp(prefix="workbench-prometheus-")
        config = Path(folder) / "prometheus.yml"
        scrape = f"{max(100, round(interval * 1000))}ms"  # Prometheus durations are integers
        files = "".join(f"  - {json.dumps(str(Path(r).resolve()))}\n" for r in rules or [])
        config.write_text(
            "global:\n"
            f"  scrape_interval: {scrape}\n"
            f"  evaluation_interval: {scrape}\n"
            + (f"rule_files:\n{files}" if files else "")
            + "scrape_configs:\n"
            "  - job_name: workbench\n"
            f"    static_configs:\n      - targets: {json.dumps(targets)}\n"
        )
        port = free_port()
        log = open(Path(folder) / "prometheus.log", "wb")  # noqa: SIM115 (the process writes it until stop)
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={Path(folder) / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=log,
            stderr=log,
        )
        log.close()
        server = cls(port, folder, proc)
        what = f"prometheus on port {port}"
        wait_until_ready(proc, server.ready, what, server.log_tail, server.stop, MonitoringError, timeout)
        return server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        return answers(self.url + "/-/ready")

    def log_tail(self, n: int = 1500) -> str:
        try:
            return (Path(self.folder) / "prometheus.log").read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def query(self, promql: str, at: float | None = None) -> float | None:
        """The instant value of ``promql`` (a single number) now or at unix time ``at``;
        None when it has no data."""
        params = {"query": promql} | ({"time": f"{at:.3f}"} if at is not None else {})
        data = self._api("query", params)
        result = data["result"]
        if not result:
            return None
        value = float(result[0]["value"][1]) if data["resultType"] == "vector" else float(result[1])
        return value

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts pending or firing now (each with ``labels`` and ``state``)."""
        return self._api("alerts", {})["alerts"]

    def targets_up(self) -> bool:
        data = self._api("query", {"query": 'up{job="workbench"}'})
        return bool(data["result"]) and all(r["value"][1] == "1" for r in data["result"])

    def wait_for_scrape(self, timeout: float = 15.0) -> None:
        """Block until every target has been scraped successfully once (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.targets_up():
                return
            time.sleep(0.2)
        raise MonitoringError(
            f"prometheus did not scrape its targets within {timeout:.0f} s: {self.log_tail()}"
        )

    def _api(self, path: str, params: dict[str, str]) -> Any:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as e:
            body = json.loads(e.read() or b"{}")
        if body.get("status") != "success":
            raise MonitoringError(f"prometheus refused {params}: {body.get('error', body)}")
        return body["data"]

    def stop(self) -> None:
        end_process(self.proc)
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PrometheusServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def slis(prom: PrometheusServer, window: str = "1m", at: float | None = None) -> dict[str, float | None]:
    """Every SLO's SLI as Prometheus computes it (its PromQL with the rate window ``window``,
    evaluated now or at unix time ``at``)."""
    cores = os.cpu_count() or 1  # the service runs on this machine
    return {s.name: prom.query(promql(s.name, window, cores), at) for s in SLOS}


def dashboard(cores: int = 1) -> dict[str, Any]:
    """A Grafana dashboard (schema 39) with one time-series panel per SLO and its threshold.

    The CPU panel divides by the dashboard variable ``cores`` (a textbox, ``cores`` by
    default): the machine that runs the service, not the one that exported the dashboard.
    """
    panels = []
    for i, s in enumerate(SLOS):
        unit = {"ms": "ms", "MB": "decmbytes", "req/s": "reqps", "": "percentunit"}[s.unit]
        color = "red" if s.op == "<" else "green"
        other = "green" if s.op == "<" else "red"
        panels.append(
            {
                "id": i + 1,
                "type": "timeseries",
                "title": s.text,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
                "targets": [{"refId": "A", "expr": promql(s.name), "legendFormat": s.name}],
                "fieldConfig": {
                    "defaults": {
                        "unit": unit,
                        "thresholds": {
                            "mode": "absolute",
                            "steps": [{"color": other, "value": None}, {"color": color, "value": s.target}],
                        },
                        "custom": {"thresholdsStyle": {"mode": "line"}},
                    },
                    "overrides": [],
                },
            }
        )
    return {
        "title": "workbench service: the plan's SLOs",
        "uid": "workbench-service-slo",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-15m", "to": "now"},
        "refresh": "5s",
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
                {
                    "name": "cores",
                    "type": "textbox",
                    "label": "CPU cores of the service's machine",
                    "query": str(cores),
                    "current": {"text": str(cores), "value": str(cores)},
                },
            ]
        },
        "panels": panels,
    }


def export_dashboard(out_dir: str | os.PathLike[str], cores: int = 1) -> list[Path]:
    """Write ``grafana-dashboard.json`` and ``slo-promql.md`` into ``out_dir``
    (``cores``: the default of the dashboard's core-count variable)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    board = out / "grafana-dashboard.json"
    board.write_text(json.dumps(dashboard(cores), indent=2) + "\n")
    lines = [
        "# The plan's SLOs in PromQL",
        "",
        "`$cores` is the core count of the machine that runs the service.",
        "",
        "| SLO | target | PromQL |",
        "|---|---|---|",
    ]
    for s in SLOS:
        lines.append(f"| {s.text} | {s.op} {s.target:g} {s.unit} | `{promql(s.name)}` |")
    table = out / "slo-promql.md"
    table.write_text("\n".join(lines) + "\n")
    return [board, table]


def side_by_side(row: dict[str, Any], measured: dict[str, float | None]) -> Any:
    """Each SLO's value from the load tool's run summary ``row`` beside Prometheus's ``measured``.

    They differ by design: the load tool times from the intended send (queueing in the
    client and the network included) and keeps every value; Prometheus times inside the
    app and interpolates within histogram buckets; memory is psutil's peak against the
    last scraped resident size.
    """
    import polars as pl

    from workbench.service.slo import _fmt

    rows = []
    for s in SLOS:
        mine, theirs = row.get(s.column), measured.get(s.name)
        rows.append(
            {
                "slo": s.text,
                "target": float(s.target),
                "load_tool": None if mine is None else float(mine),
                "prometheus": None if theirs is None else float(theirs),
                "load_tool_shown": "" if mine is None else _fmt(mine, s.unit),
                "prometheus_shown": "" if theirs is None else _fmt(theirs, s.unit),
            }
        )
    return pl.DataFrame(rows)


def monitored_run(
    settings: Any, profile: Any, requests: Any, interval: float = 0.5
) -> tuple[Any, Any] | None:
    """One constant-rate run with Prometheus scraping the service: (run summary, side by side).

    None, with a printed note, when the prometheus binary is missing (notebooks still run).
    """
    import os as _os

    from workbench.service import experiment
    from workbench.service.load import Profile, run_load
    from workbench.service.process import ServiceProcess, postgres_pids

    try:
        find_prometheus()
    except MonitoringError as e:
        print(f"Note: the Prometheus view is left out: {e}")
        return None
    with (
        ServiceProcess.start(settings) as svc,
        PrometheusServer.start([f"127.0.0.1:{svc.port}"], interval) as prom,
    ):
        prom.wait_for_scrape()
        run_load(svc.url, Profile.constant(profile.stages[0].rate, 1.0), requests, label="warm-up")
        groups = {
            "service": svc.pids,
            "postgres": postgres_pids(settings.database_url),
            "generator": [_os.getpid()],
        }
        total = "sum(workbench_http_request_duration_seconds_count)"
        time.sleep(2 * interval)  # the warm-up's answers are scraped before the count starts
        before = prom.query(total) or 0.0
        started = time.time()
        run = experiment.measured_run(svc.url, profile, requests, label=settings.label, groups=groups)
        ended = time.time() + interval  # the scrape after the last answer
        time.sleep(3 * interval)
        # The rates over exactly the run: evaluated at its end, over its length.
        measured = slis(prom, f"{max(1, round((ended - started) * 1000))}ms", at=ended)
        after = prom.query(total)
        run.settings = {
            "strategy": settings.strategy,
            "pool_size": settings.pool_size,
            "workers": settings.workers,
        }
    summary = experiment.summary([run])
    row = summary.row(0, named=True)
    counts = {"load_tool": row["sent"], "prometheus": None if after is None else after - before}
    return summary, side_by_side(row, measured), counts

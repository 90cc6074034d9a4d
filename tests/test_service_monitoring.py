"""A real Prometheus scrapes the service during a load run; its SLIs agree with the load tool's."""

from __future__ import annotations

import json
import math
import time

import pytest
import service_db

from workbench.service.load import Mix, Profile, paths, run_load, targets
from workbench.service.monitoring import (
    MonitoringError,
    PrometheusServer,
    dashboard,
    export_dashboard,
    find_prometheus,
    promql,
    slis,
)
from workbench.service.process import ServiceProcess
from workbench.service.settings import Settings
from workbench.service.slo import SLOS, slo

loaded_url = service_db.loaded_url  # the shared fixture


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    """Skipped without the binary on a laptop (with the install hint); failed in CI."""
    from conftest import IN_CI

    try:
        return find_prometheus()
    except MonitoringError as e:
        if IN_CI:
            pytest.fail(f"Prometheus is required in CI: {e}")
        pytest.skip(f"Prometheus tests skipped: {e}")


def test_the_dashboard_has_one_panel_per_slo_with_its_promql(tmp_path):
    board = dashboard()
    assert [p["title"] for p in board["panels"]] == [s.text for s in SLOS]
    assert [p["targets"][0]["expr"] for p in board["panels"]] == [promql(s.name) for s in SLOS]
    files = export_dashboard(tmp_path / "05_service_slo", cores=16)
    exported = json.loads(files[0].read_text())
    assert exported["uid"] == "workbench-service-slo"
    assert "histogram_quantile(0.99" in files[1].read_text()
    # The CPU share divides by a dashboard variable, not by the exporting machine's cores.
    cpu = next(p for p in exported["panels"] if p["title"] == slo("cpu").text)
    assert cpu["targets"][0]["expr"].endswith("/ $cores")
    cores = {v["name"]: v for v in exported["templating"]["list"]}["cores"]
    assert (cores["type"], cores["query"]) == ("textbox", "16")
    assert promql("cpu", "30s", cores=8) == 'sum(rate(process_cpu_seconds_total{job="workbench"}[30s])) / 8'


def _settled(prom: PrometheusServer, query: str, expected: float, timeout: float = 15.0) -> float | None:
    """``query``'s value once it equals ``expected`` (polled: scrapes land when they land), or
    the last value seen when the bound runs out."""
    deadline = time.monotonic() + timeout
    while True:
        value = prom.query(query)
        if value == expected or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_a_missing_binary_is_named_with_the_install_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_PROMETHEUS", str(tmp_path / "nowhere" / "prometheus"))
    with pytest.raises(MonitoringError, match="apt-get install prometheus"):
        find_prometheus()


@pytest.mark.postgres
@pytest.mark.slow
def test_prometheus_scrapes_the_service_and_its_slis_match_the_load_tool(prometheus_binary, loaded_url, tiny):
    profile = Profile.constant(25, 3)
    reqs = paths(Mix(), targets(tiny), len(profile.intended()[0]), seed=2)
    settings = Settings(database_url=loaded_url, strategy="batch", pool_size=2)
    with (
        ServiceProcess.start(settings) as svc,
        PrometheusServer.start([f"127.0.0.1:{svc.port}"], 0.5) as prom,
    ):
        prom.wait_for_scrape()
        run = run_load(svc.url, profile, reqs)
        row = run.summary().row(0, named=True)
        stats = svc.get_json("/stats")
        # Poll until Prometheus has scraped every answer (no fixed sleep), then read the rest.
        answered = _settled(prom, "sum(workbench_http_request_duration_seconds_count)", row["sent"])
        statements = _settled(prom, "sum(workbench_db_statement_seconds_count)", stats["db_statements"])
        ok = prom.query('sum(workbench_http_request_duration_seconds_count{status!~"5.."})')
        errors = prom.query("sum(workbench_http_errors_total)")
        measured = slis(prom, window="30s")
    # Counts agree exactly: every answer the load tool got, Prometheus counted.
    assert answered == row["sent"] == 75
    assert ok == row["ok"]
    assert (errors or 0.0) == row["errors"] == 0
    assert statements == stats["db_statements"]
    # The SLIs exist and are plausible numbers (no assertion on real latencies).
    for name in ("p50", "p99", "throughput", "db_p99", "memory", "cpu"):
        assert measured[name] is not None and math.isfinite(measured[name]), name
    assert measured["memory"] > 10  # MB of the service process

"""A real Prometheus scrapes the service during a load run; its SLIs agree with the load tool's."""

from __future__ import annotations

import json
import math
import time

import pytest
import service_db

from workbench.service.app import Settings
from workbench.service.load import Mix, Profile, paths, run_load, targets
from workbench.service.monitoring import (
    MonitoringError,
    PrometheusServer,
    dashboard,
    export_dashboard,
    find_prometheus,
    slis,
)
from workbench.service.process import ServiceProcess
from workbench.service.slo import SLOS

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
    assert [p["targets"][0]["expr"] for p in board["panels"]] == [s.promql for s in SLOS]
    files = export_dashboard(tmp_path / "05_service_slo")
    assert json.loads(files[0].read_text())["uid"] == "workbench-service-slo"
    assert "histogram_quantile(0.99" in files[1].read_text()


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
        time.sleep(1.5)  # three scrape intervals: the last answers are in Prometheus
        answered = prom.query("sum(workbench_http_request_duration_seconds_count)")
        ok = prom.query('sum(workbench_http_request_duration_seconds_count{status!~"5.."})')
        errors = prom.query("sum(workbench_http_errors_total)")
        statements = prom.query("sum(workbench_db_statement_seconds_count)")
        measured = slis(prom, window="30s")
        stats = svc.get_json("/stats")
    row = run.summary().row(0, named=True)
    # Counts agree exactly: every answer the load tool got, Prometheus counted.
    assert answered == row["sent"] == 75
    assert ok == row["ok"]
    assert (errors or 0.0) == row["errors"] == 0
    assert statements == stats["db_statements"]
    # The SLIs exist and are plausible numbers (no assertion on real latencies).
    for name in ("p50", "p99", "throughput", "db_p99", "memory", "cpu"):
        assert measured[name] is not None and math.isfinite(measured[name]), name
    assert measured["memory"] > 10  # MB of the service process

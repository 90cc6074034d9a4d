"""The SLO alerting rules: promtool's unit tests on recorded series, and one alert firing for real."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
import service_db
import yaml

from workbench.service import alerts
from workbench.service.load import Profile, run_load
from workbench.service.monitoring import MonitoringError, PrometheusServer, find_prometheus
from workbench.service.process import ServiceProcess
from workbench.service.settings import ServiceError, Settings

loaded_url = service_db.loaded_url  # the shared fixture

REQ = "workbench_http_request_duration_seconds"


@pytest.fixture(scope="module")
def promtool() -> str:
    from conftest import IN_CI

    path = shutil.which("promtool")
    if not path:
        if IN_CI:
            pytest.fail("promtool (Debian's prometheus package) is required in CI")
        pytest.skip("promtool not found: sudo apt-get install prometheus")
    return path


def _series(ok_per_min: int, errors_per_min: int, slow_per_min: int, minutes: int) -> list[dict]:
    """Counters growing by a fixed amount per minute: answered requests (``slow`` of them above
    200 ms), and 5xx answers counted both in the histogram and in the errors counter."""
    fast = ok_per_min - slow_per_min
    grow = lambda n: f"0+{n}x{minutes}"  # noqa: E731
    return [
        {"series": f'{REQ}_count{{endpoint="recent",status="200"}}', "values": grow(ok_per_min)},
        {"series": f'{REQ}_bucket{{endpoint="recent",status="200",le="0.2"}}', "values": grow(fast)},
        {"series": f'{REQ}_count{{endpoint="recent",status="503"}}', "values": grow(errors_per_min)},
        {
            "series": 'workbench_http_errors_total{endpoint="recent",kind="pool_queue"}',
            "values": grow(errors_per_min),
        },
    ]


def _fired(groups: dict, name: str, value: str, *windows: tuple[str, str]) -> list[dict]:
    """The alerts ``name`` expected firing in ``windows`` (severity, long/short), their summaries
    as the rules word them and the long window's bad share as ``value``."""
    rules = {(r["alert"], r["labels"]["window"]): r for r in groups["groups"][1]["rules"]}
    return [
        {
            "exp_labels": {"severity": sev, "window": w},
            "exp_annotations": {
                "summary": rules[name, w]["annotations"]["summary"],
                "bad": f"{value} of requests over {w.split('/')[0]}",
            },
        }
        for sev, w in windows
    ]


def test_promtool_passes_the_rules_and_their_unit_tests(tmp_path, promtool):
    groups = alerts.rules(error_percent=0.1, p99_ms=200)
    rules = alerts.write_rules(tmp_path / "alerts.yml", groups)
    page = [("page", "1h/5m"), ("page", "6h/30m"), ("ticket", "3d/6h")]
    tests = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [
            {  # 2% of requests fail for 2 h: 20x the 0.1% budget, every window burns
                "interval": "1m",
                "input_series": _series(980, 20, 0, 120),
                "alert_rule_test": [
                    {
                        "eval_time": "90m",
                        "alertname": "WorkbenchErrorBudgetBurn",
                        "exp_alerts": _fired(groups, "WorkbenchErrorBudgetBurn", "2%", *page),
                    },
                    {"eval_time": "90m", "alertname": "WorkbenchLatencyBudgetBurn", "exp_alerts": []},
                ],
            },
            {  # 0.05% fail: within the budget, nothing fires
                "interval": "1m",
                "input_series": _series(19_990, 10, 0, 120),
                "alert_rule_test": [
                    {"eval_time": "90m", "alertname": "WorkbenchErrorBudgetBurn", "exp_alerts": []},
                ],
            },
            {  # 0.3% fail: 3x the budget: the ticket (burn 1), not the pages (burn 6 and 14.4)
                "interval": "1m",
                "input_series": _series(9_970, 30, 0, 120),
                "alert_rule_test": [
                    {
                        "eval_time": "90m",
                        "alertname": "WorkbenchErrorBudgetBurn",
                        "exp_alerts": _fired(groups, "WorkbenchErrorBudgetBurn", "0.3%", ("ticket", "3d/6h")),
                    },
                ],
            },
            {  # 20% of answers above 200 ms: the latency budget (1%) burns 20x
                "interval": "1m",
                "input_series": _series(1000, 0, 200, 120),
                "alert_rule_test": [
                    {
                        "eval_time": "90m",
                        "alertname": "WorkbenchLatencyBudgetBurn",
                        "exp_alerts": _fired(groups, "WorkbenchLatencyBudgetBurn", "20%", *page),
                    },
                    {"eval_time": "90m", "alertname": "WorkbenchErrorBudgetBurn", "exp_alerts": []},
                ],
            },
        ],
    }
    spec = tmp_path / "alerts_test.yml"
    spec.write_text(yaml.safe_dump(tests, sort_keys=False))
    checked = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    done = subprocess.run(
        [promtool, "test", "rules", str(spec)], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def test_the_exported_rules_sit_beside_the_dashboard(tmp_path):
    path = alerts.export_rules(tmp_path / "05_service_slo", error_percent=0.1, p99_ms=200)
    groups = yaml.safe_load(path.read_text())["groups"]
    names = {r["alert"] for r in groups[1]["rules"]}
    assert path.name == "prometheus-alerts.yml" and names == {
        "WorkbenchErrorBudgetBurn",
        "WorkbenchLatencyBudgetBurn",
    }
    assert any('le="0.2"' in r["expr"] for r in groups[0]["rules"])


def test_a_latency_target_off_the_histograms_buckets_is_refused_naming_them():
    with pytest.raises(ServiceError, match=r"180 ms needs that bucket.*200"):
        alerts.rules(0.1, 180)
    with pytest.raises(ServiceError, match="error_percent 0"):
        alerts.rules(0, 200)


def test_an_error_budget_alert_fires_against_the_real_service(loaded_url, tmp_path):
    """A real Prometheus scrapes a real service every 0.5 s and evaluates rules with windows of
    10 s and 4 s; the service answers 500 to ``/_fail``: the error-budget alert fires."""
    try:
        find_prometheus()
    except MonitoringError as e:
        pytest.skip(str(e))
    short = (alerts.Window("page", "10s", "4s", 14.4),)
    rules = alerts.write_rules(tmp_path / "fast.yml", alerts.rules(0.1, 200, windows=short))
    settings = Settings(database_url=loaded_url, pool_size=2, debug_routes=True)
    with ServiceProcess.start(settings) as svc:
        host = svc.url.removeprefix("http://")
        with PrometheusServer.start([host], interval=0.5, rules=[rules]) as prom:
            prom.wait_for_scrape()
            quiet = run_load(svc.url, Profile.constant(40, 2), [("health", "/jobs")] * 80)
            assert quiet.summary()["errors"][0] == 0
            assert not [a for a in prom.alerts() if a["state"] == "firing"]  # healthy: silent
            failing = run_load(svc.url, Profile.constant(40, 4), [("fail", "/_fail")] * 160)
            assert failing.summary()["ok"][0] == 0  # every request answered 500
            firing: list[dict] = []
            deadline = time.monotonic() + 20  # bounded poll: evaluations land when they land
            while not firing and time.monotonic() < deadline:
                firing = [a for a in prom.alerts() if a["state"] == "firing"]
                time.sleep(0.5)
    assert [a["labels"]["alertname"] for a in firing] == ["WorkbenchErrorBudgetBurn"]
    assert firing[0]["labels"]["window"] == "10s/4s"

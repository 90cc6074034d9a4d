"""The load generator: schedule on a fake clock, HDR percentiles, bad input, k6 import,
and real runs against the service (small rates; no assertion on real latencies)."""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import threading
import urllib.request

import numpy as np
import pytest
import service_db

from workbench.engines.server import free_port
from workbench.service.load import (
    LoadError,
    Mix,
    OpenLoop,
    Profile,
    Stage,
    check_reachable,
    check_url,
    import_summary,
    new_histogram,
    paths,
    quantile_interval,
    record,
    run_load,
    run_wrk,
    targets,
)
from workbench.service.load.generator import realtime_scheduling
from workbench.service.process import ServiceProcess
from workbench.service.settings import ServiceError, Settings

loaded_url = service_db.loaded_url  # the shared fixture


# ---- the schedule, on a fake clock ---------------------------------------------------------------
class FakeClock:
    """Time moves only when the generator sleeps (or the test moves it)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)  # tasks started before the sleep run first, at the time they started
        self.now += seconds


def test_intended_times_not_responses_drive_the_sends():
    clock = FakeClock()
    gate = asyncio.Event
    profile = Profile.constant(10, 1)
    times, stages = profile.intended()
    sent: list[float] = []

    async def main():
        released = gate()

        async def stalled_send(path: str) -> int:
            sent.append(clock())
            if len(sent) == len(times):  # every send went out while no response had come back
                clock.now = 5.0
                released.set()
            await released.wait()
            return 200

        loop = OpenLoop(stalled_send, clock=clock, sleep=clock.sleep)
        return await loop.run(times, stages, [("jobs", "/jobs")] * len(times))

    rec, hdr, lag = asyncio.run(main())
    assert sent == pytest.approx([i / 10 for i in range(10)])  # on schedule, none waited for a response
    # Latency counts from the intended send time: the earliest request waited longest.
    assert rec["latency_ms"] == pytest.approx([5000 - 100 * i for i in range(10)])
    assert rec["outcome"] == ["ok"] * 10
    assert lag.get_max_value() <= 1  # microseconds: the fake clock never runs late
    assert hdr[0].get_total_count() == 10


def test_a_target_that_stops_answering_ends_the_run_partial_keeping_what_was_measured():
    clock = FakeClock()
    profile = Profile.constant(10, 2)
    times, stages = profile.intended()

    async def main():
        calls = {"n": 0}

        async def send(path: str) -> int:
            calls["n"] += 1
            if calls["n"] > 5:
                raise ConnectionResetError("gone")
            return 200

        loop = OpenLoop(send, clock=clock, sleep=clock.sleep, abort_after=3)
        out = await loop.run(times, stages, [("jobs", "/jobs")] * len(times))
        return loop, out

    loop, (rec, _, _) = asyncio.run(main())
    assert "stopped answering" in loop.reason
    assert rec["outcome"][:5] == ["ok"] * 5
    assert rec["outcome"][5:8] == ["connection_reset"] * 3
    assert set(rec["outcome"][9:]) == {"aborted"}


def test_profiles_count_and_order_their_sends():
    times, stages = Profile.steps([50, 100], seconds=2).intended()
    assert len(times) == 300 and times[100] == pytest.approx(2.0) and list(np.unique(stages)) == [0, 1]
    ramp, _ = Profile.ramp(10, 30, 10).intended()
    assert len(ramp) == 200 and np.all(np.diff(ramp) > 0)
    assert 1 / np.diff(ramp)[-1] == pytest.approx(30, rel=0.02)  # the rate at the end of the ramp
    bounded, _ = Profile.constant(100, 10, max_requests=25).intended()
    assert len(bounded) == 25


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Stage(0, 5), "Arrival rate 0 req/s"),
        (lambda: Stage(10, -1), "Duration -1 s"),
        (lambda: Stage(float("nan"), 1), "Arrival rate nan"),
        (lambda: Profile.constant(10, 7200), "7200 s, over the bound"),
        (lambda: Profile.steps([], 1), "at least one rate"),
        (lambda: Mix(weights={"sesions": 1}), "Unknown endpoint 'sesions'"),
    ],
)
def test_bad_profiles_name_the_value(make, message):
    with pytest.raises(LoadError, match=message.replace("(", r"\(")):
        make()


# ---- HDR percentiles against known distributions -------------------------------------------------
def test_hdr_percentiles_match_a_known_distribution():
    h = new_histogram()
    for us in range(1, 100_001):  # uniform 1 µs .. 100 ms, each value once
        h.record_value(us)
    for q in (50, 90, 99, 99.9):
        assert h.get_value_at_percentile(q) == pytest.approx(q / 100 * 100_000, rel=1e-3)

    rng = np.random.default_rng(3)
    seconds = rng.exponential(0.010, 200_000)  # mean 10 ms: p99 = 10 ms * ln(100) = 46.05 ms
    e = new_histogram()
    for s in seconds:
        record(e, s)
    true_p99_ms = 10 * math.log(100)
    assert e.get_value_at_percentile(99) / 1000 == pytest.approx(true_p99_ms, rel=0.01)
    lo, hi = quantile_interval(seconds * 1000, 0.99)
    assert lo < true_p99_ms < hi and hi - lo < 2


# ---- bad targets ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http//127.0.0.1:8000", "Malformed URL 'http//127.0.0.1:8000'"),
        ("http://127.0.0.1:99999", "Malformed URL 'http://127.0.0.1:99999'"),
        ("ftp://127.0.0.1/", "Malformed URL 'ftp://127.0.0.1/'"),
        ("http://example.com:8000", "'example.com' in 'http://example.com:8000' is not loopback"),
    ],
)
def test_bad_urls_are_refused_naming_them(url, message):
    with pytest.raises(LoadError, match=message):
        check_url(url)


def test_a_url_the_user_names_may_be_remote_and_loopback_needs_nothing():
    assert (
        check_url("http://staging.internal:8080/api/", allow_remote=True)
        == "http://staging.internal:8080/api"
    )
    assert check_url("http://localhost:8000") == "http://localhost:8000"


def test_a_target_refusing_connections_is_named():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(LoadError, match=f"Nothing answers at {url} \\(connection refused\\)"):
        check_reachable(url)


# ---- k6 import -----------------------------------------------------------------------------------
K6_SUMMARY_EXPORT = {
    # Written by hand from k6's documented --summary-export format (k6 run --summary-export=FILE
    # --summary-trend-stats="avg,min,med,max,p(90),p(95),p(99),p(99.9)"); milliseconds.
    "root_group": {
        "name": "",
        "path": "",
        "id": "d41d8cd98f00b204e9800998ecf8427e",
        "groups": {},
        "checks": {},
    },
    "metrics": {
        "checks": {"passes": 1190, "fails": 10, "value": 0.9916666666666667},
        "data_received": {"count": 5432100, "rate": 90535.0},
        "http_req_duration": {
            "avg": 23.4,
            "min": 1.9,
            "med": 18.2,
            "max": 412.7,
            "p(90)": 41.3,
            "p(95)": 55.0,
            "p(99)": 120.5,
            "p(99.9)": 301.2,
            "thresholds": {"p(99)<200": False},
        },
        "http_req_failed": {"passes": 10, "fails": 1190, "value": 0.008333333333333333},
        "http_reqs": {"count": 1200, "rate": 20.0},
        "iterations": {"count": 1200, "rate": 20.0},
        "vus": {"value": 3, "min": 1, "max": 12},
    },
}


def test_k6_summary_export_imports_into_the_same_columns(tmp_path):
    path = tmp_path / "k6-summary.json"
    path.write_text(json.dumps(K6_SUMMARY_EXPORT, indent=2))
    row = import_summary(path, label="staging").row(0, named=True)
    assert row["label"] == "staging" and row["sent"] == 1200 and row["errors"] == 10
    assert (row["p50_ms"], row["p90_ms"], row["p99_ms"], row["p999_ms"]) == (18.2, 41.3, 120.5, 301.2)
    assert row["error_rate"] == pytest.approx(10 / 1200)
    assert row["achieved_rps"] == pytest.approx(20.0 * 1190 / 1200)


def test_k6_handle_summary_json_and_missing_percentiles(tmp_path):
    nested = {
        "metrics": {
            "http_req_duration": {"type": "trend", "contains": "time", "values": {"med": 5.0, "p(90)": 9.0}},
            "http_reqs": {"type": "counter", "contains": "default", "values": {"count": 10, "rate": 2.0}},
        }
    }
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(nested))
    row = import_summary(path).row(0, named=True)
    assert row["p50_ms"] == 5.0 and math.isnan(row["p99_ms"]) and row["errors"] == 0


def test_k6_files_in_another_format_are_refused_naming_the_fix(tmp_path):
    stream = tmp_path / "out.json"
    stream.write_text(
        '{"type":"Metric","data":{"type":"trend","contains":"time"},"metric":"http_req_duration"}\n'
        '{"type":"Point","data":{"time":"2024-01-01T00:00:00Z","value":12.3,"tags":null},"metric":"http_req_duration"}\n'
    )
    with pytest.raises(LoadError, match="--out json stream .* --summary-export"):
        import_summary(stream)
    other = tmp_path / "other.json"
    other.write_text('{"metrics": {"vus": {"value": 1}}}')
    with pytest.raises(LoadError, match="not a k6 summary: it has no metrics.http_req_duration"):
        import_summary(other)
    broken = tmp_path / "broken.json"
    broken.write_text("hello")
    with pytest.raises(LoadError, match="is not JSON"):
        import_summary(broken)
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"metrics": {"http_req_duration": {"med": "fast"}, "http_reqs": {"count": 1, "rate": 1}}}'
    )
    with pytest.raises(LoadError, match="http_req_duration.med is 'fast', not a number"):
        import_summary(bad)


# ---- real runs (loopback, small rates) -----------------------------------------------------------
@pytest.mark.postgres
def test_a_real_run_sends_the_mix_and_measures_it(loaded_url, tiny):
    profile = Profile.steps([20, 40], seconds=1)
    reqs = paths(Mix(), targets(tiny), len(profile.intended()[0]), seed=1)
    gc_before, policy_before = gc.isenabled(), os.sched_getscheduler(0)
    with ServiceProcess.start(Settings(database_url=loaded_url, strategy="batch", pool_size=2)) as svc:
        run = run_load(svc.url, profile, reqs, label="batch")
        stats = svc.get_json("/stats")
        assert gc.isenabled() == gc_before  # nothing process-wide changed, during or after
        assert os.sched_getscheduler(0) == policy_before and not run.realtime
        wrk = run_wrk(svc.url + "/health", threads=1, connections=2, seconds=1)
    summary = run.summary(per_stage=True)
    assert summary["sent"].to_list() == [20, 40]
    assert summary["errors"].sum() == 0 and not run.partial
    assert set(run.latencies()["endpoint"]) == {"sessions", "recent", "session", "usage", "jobs"}
    assert stats["db_statements"] > 60 and stats["requests"]["200"] == 60
    assert wrk.requests > 0 and wrk.status_errors == wrk.socket_errors == 0
    assert wrk.ok_rps == wrk.rps > 0 and 0 < wrk.p50_ms <= wrk.p99_ms <= wrk.max_ms


def test_realtime_scheduling_is_inherited_by_new_threads_and_restored_after():
    seen = {}

    def probe() -> None:
        seen["policy"] = os.sched_getscheduler(0)

    with realtime_scheduling() as granted:
        thread = threading.Thread(target=probe)
        thread.start()
        thread.join()
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
    assert seen["policy"] == (os.SCHED_FIFO if granted else os.SCHED_OTHER)


def test_wrk_is_refused_off_loopback_and_with_bad_bounds():
    with pytest.raises(LoadError, match="'db.example.com' .* is not loopback"):
        run_wrk("http://db.example.com/health")
    with pytest.raises(LoadError, match=r"connections \(1\) >= threads \(2\)"):
        run_wrk("http://127.0.0.1:1/health", threads=2, connections=1)


@pytest.mark.postgres
def test_a_service_dying_mid_run_leaves_a_partial_run_marked(loaded_url, tiny):
    profile = Profile.constant(20, 4)
    reqs = paths(Mix(weights={"jobs": 1}), targets(tiny), 80)
    with ServiceProcess.start(Settings(database_url=loaded_url, pool_size=1)) as svc:
        killer = threading.Timer(1.5, svc.kill)
        run = run_load(svc.url, profile, reqs, abort_after=5, timeout=2, on_start=killer.start)
        killer.join()
    row = run.summary().row(0, named=True)
    assert run.partial and "stopped answering" in run.reason
    assert row["partial"] and row["ok"] >= 5  # what was measured before the crash is kept
    assert row["errors"] >= 5


@pytest.mark.postgres
def test_a_port_in_use_is_named(loaded_url):
    with ServiceProcess.start(Settings(database_url=loaded_url, pool_size=1)) as svc:
        in_use = pytest.raises(ServiceError, match=f"Port {svc.port} on 127.0.0.1 is in use")
        with in_use:
            ServiceProcess.start(Settings(database_url=loaded_url), port=svc.port)


@pytest.mark.postgres
@pytest.mark.slow
def test_two_worker_processes_serve_and_metrics_sum_across_them(loaded_url, tiny):
    profile = Profile.constant(20, 1)
    reqs = paths(Mix(weights={"jobs": 1, "session": 1}), targets(tiny), 20)
    with ServiceProcess.start(Settings(database_url=loaded_url, pool_size=1, workers=2)) as svc:
        assert len(svc.pids()) >= 3  # the supervisor and its two workers
        run = run_load(svc.url, profile, reqs)
        with urllib.request.urlopen(svc.url + "/metrics") as r:
            text = r.read().decode()
    counted = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("workbench_http_request_duration_seconds_count")
    )
    assert counted == run.summary()["sent"][0] == 20

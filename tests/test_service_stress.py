"""The spike and the soak against a real service on the tiny dataset; recovery read from the
recorded per-second results, never from wall-clock sleeps."""

from __future__ import annotations

import math

import polars as pl
import pytest
import service_db

from workbench.service import stress
from workbench.service.load import LoadError, Mix, paths, targets
from workbench.service.process import ServiceProcess
from workbench.service.settings import Settings

loaded_url = service_db.loaded_url  # the shared fixture

#: What the spike test states: a 5x spike of 3 s on the tiny dataset is over (3 s in a row
#: error-free with P99 under 500 ms) within 4 s of its end.
RECOVERY_S = 4.0


def test_a_spike_recovers_within_the_stated_time(loaded_url, tiny):
    settings = Settings(database_url=loaded_url, pool_size=2, max_waiting=4)
    requests = paths(Mix(), targets(tiny), 400, seed=5)
    with ServiceProcess.start(settings) as svc:
        result = stress.spike(svc.url, 12, requests, p99_ms=500, factor=5, before=2, spike_seconds=3, after=8)
    seconds = result.seconds
    # the recorded seconds account for every scheduled request, by phase
    assert seconds["sent"].sum() == 12 * 2 + 60 * 3 + 12 * 8 == result.run.requests.height
    by_phase = dict(seconds.group_by("phase").agg(pl.col("sent").sum()).iter_rows())
    assert by_phase == {"hold": 24, "spike": 180, "after": 96}
    assert result.served_503 == result.run.requests.filter(pl.col("outcome") == "http_503").height
    assert result.recovered_s is not None and result.recovered_s <= RECOVERY_S, seconds
    assert "held again" in result.describe()


def test_recovery_is_none_while_the_service_still_fails_at_the_end():
    seconds = pl.DataFrame(
        {
            "second": [0, 1, 2],
            "phase": ["spike", "after", "after"],
            "errors": [5, 0, 2],
            "p99_ms": [9.0, 9.0, 9.0],
        }
    )
    assert stress.recovery_seconds(seconds, p99_ms=200) is None
    with pytest.raises(LoadError, match="factor of 1"):
        stress.spike_profile(10, factor=1)


def test_a_soak_records_latency_and_the_services_memory_per_window(loaded_url, tiny):
    requests = paths(Mix(), targets(tiny), 200, seed=6)
    with ServiceProcess.start(Settings(database_url=loaded_url, pool_size=2)) as svc:
        windows = stress.soak(svc.url, 20, 3, requests, window=1)
    assert windows["window"].to_list() == [1, 2, 3] and windows["sent"].to_list() == [20, 20, 20]
    assert windows["errors"].sum() == 0 and (windows["rss_mb"] > 10).all()
    figures = stress.drift(windows)
    assert not math.isnan(figures["memory_mb_per_hour"]) and figures["rss_mb_first"] == round(
        windows["rss_mb"][0], 3
    )
    with pytest.raises(LoadError, match="shorter than its window"):
        stress.soak(svc.url, 20, 1, requests, window=60)

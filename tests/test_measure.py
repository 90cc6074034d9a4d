"""The timing harness and its statistics, on a fake clock: logic, never the machine's speed."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest

from workbench import measure
from workbench.measure import MeasureError, Results


class FakeClock:
    """Returns the next of ``durations`` as the gap between each start and stop reading."""

    def __init__(self, durations_ns):
        self.durations = iter(durations_ns)
        self.now = 0
        self.reads = 0
        self._started = False

    def __call__(self) -> int:
        self.reads += 1
        if self._started:
            self.now += next(self.durations)
        self._started = not self._started
        return self.now


def test_measure_times_only_the_repeats_with_warmup_untimed():
    calls = []
    clock = FakeClock([5, 7, 9])
    times = measure.measure(lambda: calls.append(clock.reads), repeat=3, warmup=2, clock=clock)
    assert times == [5, 7, 9]
    assert len(calls) == 5 and calls[:2] == [0, 0]  # warm-up calls read no clock
    assert clock.reads == 6


def test_cold_cache_needs_a_reset_and_skips_warmup():
    with pytest.raises(MeasureError, match="needs reset="):
        measure.measure(lambda: None, cache="cold")
    with pytest.raises(MeasureError, match="Unknown cache state 'hot'"):
        measure.measure(lambda: None, cache="hot")
    with pytest.raises(MeasureError, match="repeat=0"):
        measure.measure(lambda: None, repeat=0)
    events = []
    measure.measure(
        lambda: events.append("run"),
        repeat=2,
        warmup=3,
        cache="cold",
        reset=lambda: events.append("reset"),
        clock=FakeClock([1, 1]),
    )
    assert events == ["reset", "run", "reset", "run"]


def test_interleaved_runs_round_robin_starting_one_further_each_round():
    order = []
    times = measure.measure_interleaved(
        {name: (lambda name=name: order.append(name)) for name in "abc"},
        repeat=4,
        warmup=1,
        clock=FakeClock(range(1, 13)),
        after=lambda name: order.append(name.upper()),
    )
    warm, timed = order[:3], [x for x in order[3:] if x.isupper()]
    assert warm == ["a", "b", "c"]
    assert timed == list("ABCBCACABABC")  # no function always follows the same one
    assert order[3:9] == ["a", "A", "b", "B", "c", "C"]  # after() right after each timed call
    assert times == {"a": [1, 6, 8, 10], "b": [2, 4, 9, 11], "c": [3, 5, 7, 12]}


def test_garbage_collector_is_paused_only_while_timing():
    import gc

    seen = []
    assert gc.isenabled()
    measure.measure(lambda: seen.append(gc.isenabled()), repeat=2, warmup=1, clock=FakeClock([1, 1]))
    measure.measure_interleaved(
        {"a": lambda: seen.append(gc.isenabled())}, repeat=1, warmup=0, clock=FakeClock([1])
    )
    assert seen == [True, False, False, False] and gc.isenabled()
    measure.measure(
        lambda: seen.append(gc.isenabled()), repeat=1, warmup=0, pause_gc=False, clock=FakeClock([1])
    )
    assert seen[-1] is True
    with pytest.raises(ZeroDivisionError), measure.gc_paused():
        raise ZeroDivisionError
    assert gc.isenabled()  # restored even when the timed code raises


def test_summary_statistics_and_intervals():
    values = [int(v * 1e6) for v in (10, 11, 12, 13, 14, 15, 16, 17, 18, 100)]
    s = measure.summarize(values, seed=1)
    ms = np.array(values) / 1e6
    assert s["n"] == 10
    assert s["median_ms"] == pytest.approx(14.5) == pytest.approx(s["p50_ms"])
    assert s["p95_ms"] == pytest.approx(np.percentile(ms, 95))
    assert s["p99_ms"] == pytest.approx(np.percentile(ms, 99))
    for name in ("median", "p95", "p99"):
        assert s[f"{name}_lo"] <= s[f"{name}_ms"] <= s[f"{name}_hi"]
    assert s["unstable"] and s["cv"] == pytest.approx(ms.std(ddof=1) / ms.mean())
    assert measure.summarize(values, seed=1) == s  # seeded: reproducible
    steady = measure.summarize([1_000_000 + i for i in range(10)])
    assert not steady["unstable"] and steady["cv"] < 0.01


def test_bootstrap_interval_narrows_with_more_data():
    rng = np.random.default_rng(0)
    small, large = rng.normal(100, 10, 10), rng.normal(100, 10, 1000)
    lo_s, hi_s = measure.bootstrap(small, seed=3)
    lo_l, hi_l = measure.bootstrap(large, seed=3)
    assert hi_l - lo_l < hi_s - lo_s
    assert lo_l <= np.median(large) <= hi_l and 98 < lo_l < hi_l < 102
    assert measure.bootstrap([5.0, 5.0, 5.0]) == (5.0, 5.0)
    # A statistic without an axis argument works too (applied per resample).
    assert measure.bootstrap([1, 2, 3], statistic=lambda a: float(max(a)), seed=0)[1] == 3.0
    with pytest.raises(MeasureError, match="No values"):
        measure.bootstrap([])


def test_ratio_with_interval():
    r, lo, hi = measure.ratio([20, 20, 20], [10, 10, 10])
    assert (r, lo, hi) == (2.0, 2.0, 2.0)
    a = [200, 210, 190, 205, 195]
    b = [100, 105, 95, 102, 98]
    r, lo, hi = measure.ratio(a, b, seed=2)
    assert r == pytest.approx(2.0) and lo < 2.0 < hi and lo > 1.7 and hi < 2.3


def runs_frame():
    rows = [
        {
            "engine": "duckdb",
            "strategy": s,
            "sessions": 10,
            "run": i,
            "wall_ns": t,
            "statements": k,
            "rows": 5,
        }
        for s, k, ts in (("n_plus_one", 21, [100, 110, 90]), ("batch", 3, [10, 11, 9]))
        for i, t in enumerate(ts)
    ]
    ctx = {
        "run_id": "abc",
        "cpu": "Test CPU",
        "python": "3.11",
        "git_commit": "deadbeef",
        "engines": {"duckdb": {"version": "DuckDB 2.0.1"}},
        "dataset": {"content_hash": "h", "source": {"kind": "synthetic"}},
    }
    return Results.from_runs(rows, ctx)


def test_results_are_tidy_versioned_and_round_trip(tmp_path):
    results = runs_frame()
    frame = results.frame
    assert frame.height == 6
    assert frame["format_version"].unique().to_list() == [measure.FORMAT_VERSION]
    assert frame["engine_version"].unique().to_list() == ["DuckDB 2.0.1"]
    assert frame["cache"].unique().to_list() == ["warm"]
    path = results.save(tmp_path / "runs" / "r.parquet")
    back = Results.load(path)
    assert back.frame.equals(frame)
    assert back.context["git_commit"] == "deadbeef"
    # Concatenating runs from two commits keeps them apart.
    both = pl.concat([frame, back.frame.with_columns(git_commit=pl.lit("cafe"))])
    assert both.group_by("git_commit").len().height == 2


def test_loading_another_format_version_is_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "old.parquet"
    pq.write_table(pa.table({"x": [1]}).replace_schema_metadata({b"workbench.format_version": b"0"}), path)
    with pytest.raises(MeasureError, match="results format 0, this workbench reads 1"):
        Results.load(path)


def test_summary_and_ratios_from_results():
    results = runs_frame()
    summary = results.summary()
    assert summary.filter(pl.col("strategy") == "batch")["median_ms"][0] == pytest.approx(10 / 1e6)
    assert summary["statements"].to_list() == [21, 3]
    ratios = results.ratios("n_plus_one")
    batch = ratios.filter(pl.col("strategy") == "batch").row(0, named=True)
    assert batch["speedup"] == pytest.approx(10.0) and batch["lo"] <= 10.0 <= batch["hi"]


def test_context_describes_the_run(tiny, tmp_path):
    from workbench.engines import open_engine

    with open_engine("duckdb", str(tmp_path / "c.duckdb")) as engine:
        ctx = measure.context([engine], tiny, experiment="x")
        assert ctx["engines"]["duckdb"]["version"].startswith("DuckDB")
    assert ctx["dataset"]["content_hash"] == tiny.content_hash
    assert ctx["format_version"] == measure.FORMAT_VERSION and ctx["experiment"] == "x"
    assert "cores" in ctx["cpu"] and ctx["python"].startswith("3.")
    assert ctx["git_commit"] is None or len(ctx["git_commit"]) >= 40


def test_latency_floor_uses_the_engine_and_the_clock(tmp_path):
    from workbench.engines import open_engine

    ticks = itertools.count(0, 250_000)
    with open_engine("sqlite", str(tmp_path / "f.sqlite")) as engine:
        floor = measure.latency_floor(engine, repeat=10, warmup=2, clock=lambda: next(ticks))
    assert floor == {"engine": "sqlite", "floor_ms": 0.25, "lo": 0.25, "hi": 0.25}

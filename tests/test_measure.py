"""The timing harness and its statistics, on a fake clock: logic, never the machine's speed."""

from __future__ import annotations

import itertools
import os

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


def test_paired_ratio_pairs_rounds_so_shared_drift_cancels():
    # Both sides slow down together round by round (drift): each pair's ratio is exactly 2.
    drift = [1, 3, 1.5, 4, 1, 2.5, 3.5, 1.2, 2, 5] * 2
    a = [200 * d for d in drift]
    b = [100 * d for d in drift]
    assert measure.paired_ratio(a, b) == (2.0, 2.0, 2.0)
    r, lo, hi = measure.ratio(a, b)  # resampling each side alone: drift widens the interval
    assert hi - lo > 1.0
    with pytest.raises(MeasureError, match="must pair up: 2 against 3"):
        measure.paired_ratio([1, 2], [1, 2, 3])


def test_paired_ratio_interval_on_a_fake_clock():
    rng = np.random.default_rng(4)
    noise = rng.normal(1.0, 0.02, 40)
    durations = []
    for k in noise:  # round-robin: a then b in even rounds, b then a in odd ones
        durations += [int(1_100_000 * k), int(1_000_000 * k)]
    times = measure.measure_interleaved(
        {"a": lambda: None, "b": lambda: None}, repeat=40, warmup=0, clock=FakeClock(durations)
    )
    r, lo, hi = measure.paired_ratio(times["a"], times["b"])
    assert lo <= r <= hi
    # Odd rounds start with b, so their durations land swapped: half the pairs are 1.1, half 1/1.1.
    assert sorted({round(x, 2) for x in np.array(times["a"]) / np.array(times["b"])}) == [0.91, 1.1]


def test_equivalence_margin_and_verdicts_that_do_not_flip_on_noise():
    assert measure.equivalence(0.95, 1.05) == "tie"
    assert measure.equivalence(1.12, 1.30) == "slower"
    assert measure.equivalence(0.5, 0.8) == "faster"
    assert measure.equivalence(0.97, 1.25) == "unclear"
    # 1.104 and 1.108 with the intervals such noise gives: the same class, the same words.
    a = measure.equivalence(1.06, 1.15)
    b = measure.equivalence(1.07, 1.16)
    assert a == b == "unclear"
    assert measure.compare_text(1.104, 1.06, 1.15).startswith("not clearly different")
    assert measure.compare_text(1.108, 1.07, 1.16).startswith("not clearly different")
    assert measure.compare_text(1.02, 0.98, 1.05).startswith("a tie (time ratio 1.02")
    assert measure.compare_text(3.1, 2.9, 3.3) == "3.10x slower (95% CI 2.90x-3.30x)"
    assert measure.compare_text(0.5, 0.4, 0.625) == "2.00x faster (95% CI 1.60x-2.50x)"
    assert measure.equivalence(0.93, 1.07, margin=0.05) == "unclear"


def test_calibration_fills_the_budget_with_at_least_the_minimum_runs():
    steady = measure.measure_interleaved(
        {"a": lambda: None, "b": lambda: None},
        repeat=20,
        warmup=0,
        budget_s=1.0,
        clock=FakeClock([10_000_000] * 400),
    )
    # 20 ms a round: 20 rounds use 0.4 s, so rounds go on until 1 s is spent (50 rounds).
    assert len(steady["a"]) == len(steady["b"]) == 50
    quick = measure.measure_interleaved(
        {"a": lambda: None}, repeat=20, warmup=0, budget_s=0.001, clock=FakeClock([1_000_000] * 100)
    )
    assert len(quick["a"]) == 20  # the minimum, even when the budget is spent sooner
    capped = measure.measure_interleaved(
        {"a": lambda: None}, repeat=5, warmup=0, budget_s=10, max_repeat=8, clock=FakeClock([1] * 100)
    )
    assert len(capped["a"]) == 8


def test_calibration_takes_more_runs_while_unstable():
    noisy = [1_000_000, 3_000_000] * 200  # CV about 50%
    times = measure.measure_interleaved(
        {"a": lambda: None}, repeat=20, warmup=0, budget_s=0.05, clock=FakeClock(noisy)
    )
    assert sum(times["a"]) >= 2 * 50_000_000 > sum(times["a"][:-1])  # a second budget, then stop
    assert measure.enough_rounds({"a": [1, 1]}, 2, 10, 2, None)
    assert not measure.enough_rounds({"a": [1, 1]}, 1, 10, 2, None)


def test_load_is_noted_only_when_too_high_and_says_by_how_much():
    assert measure.load_note(0.5, 1.2, limit=1.8) is None
    note = measure.load_note(0.4, 3.6, limit=1.8)
    assert note == "load average 0.40 before, 3.60 after timing: 2.0x the limit of 1.80, not ranked"
    assert measure.load_note(None, None) is None
    assert measure.load_limit(0.9) == pytest.approx(0.9 * (os.cpu_count() or 1))


def test_paired_ratios_from_results():
    rows = [
        {"engine": "e", "strategy": s, "sessions": 1, "run": i, "wall_ns": t, "statements": 1, "rows": 1}
        for s, ts in (("base", [100, 200, 100, 300]), ("fast", [50, 100, 50, 150]))
        for i, t in enumerate(ts)
    ]
    out = Results.from_runs(rows, {}).ratios("base", paired=True).filter(pl.col("strategy") == "fast")
    r = out.row(0, named=True)
    assert (r["speedup"], r["lo"], r["hi"], r["class"], r["n"]) == (2.0, 2.0, 2.0, "faster", 4)

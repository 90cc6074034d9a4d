"""The RTT sweep through the latency proxy: equal rows, the model, conclusions, the figure."""

from __future__ import annotations

import itertools
from collections import Counter

import polars as pl
import pytest

from workbench import figures
from workbench.engines import open_engine
from workbench.engines.proxy import ProxyError
from workbench.errors import WorkbenchError
from workbench.strategies import STRATEGIES, ensure_indexes, network, words


@pytest.fixture
def loaded(postgres_url, tiny):
    with open_engine("postgres", postgres_url) as engine:
        engine.load(tiny)
        ensure_indexes(engine)
    return postgres_url


def test_sweep_checks_rows_times_every_strategy_and_models(loaded):
    # A fake clock, 1 ms per reading: every timed run and ping takes exactly 1 ms, so what is
    # asserted is the sweep's bookkeeping, never this machine's speed (the proxy's own test
    # checks the delay it applies from what it recorded).
    clock = itertools.count(0, 1_000_000).__next__
    result = network.sweep(
        loaded, limit=5, rtts=(0, 1.0), budget_s=0.5, min_repeat=2, max_repeat=3, pings=20, clock=clock
    )
    summary = result.summary()
    assert set(summary.columns) >= {"rtt_ms", "strategy", "statements", "n", "median_ms", "lo_ms", "hi_ms"}
    assert set(summary.columns) >= {"added_rtt_ms", "work_ms", "model_ms"}
    assert summary.height == 2 * len(STRATEGIES)
    # Each cell's check took 1 ms of the 62.5 ms budget per cell: max_repeat runs, 1 ms each.
    assert summary["n"].to_list() == [3] * summary.height
    assert (summary["median_ms"] == 1.0).all()
    assert (summary["sessions"] == 5).all()
    statements = dict(zip(summary["strategy"], summary["statements"], strict=False))
    assert statements == {name: s.statements(5) for name, s in STRATEGIES.items()}
    zero = summary.filter(pl.col("rtt_ms") == 0)
    assert (zero["model_ms"] == zero["median_ms"]).all() and (zero["work_ms"] == zero["median_ms"]).all()
    one = summary.filter(pl.col("rtt_ms") == 1.0)
    assert (one["added_rtt_ms"] == 0).all()  # every ping 1 ms: the proxy added nothing measurable
    assert (one["model_ms"] == one["statements"] * one["added_rtt_ms"] + one["work_ms"]).all()
    assert result.pings["path"].to_list() == ["direct", "proxy", "proxy"]
    assert result.pings["n"].to_list() == [20, 20, 20]
    assert result.overhead() == {"direct_ms": 1.0, "proxy_ms": 1.0, "overhead_ms": 0.0, "ratio": 1.0}
    assert result.context["load_before"] is not None and result.context["load_after"] is not None


def test_sweep_refuses_what_it_cannot_measure():
    with pytest.raises(WorkbenchError, match="needs 0"):
        network.sweep("postgresql://u@127.0.0.1:1/x", rtts=(0.5, 1.0))
    with pytest.raises(ProxyError, match="not a loopback address"):
        network.sweep("postgresql://u@db.example.com:5432/x")


def test_schedule_spreads_each_strategy_runs_evenly():
    rounds = network._schedule({"a": 4, "b": 2, "c": 1})
    assert Counter(n for r in rounds for n in r) == {"a": 4, "b": 2, "c": 1}
    assert [("b" in r, "c" in r) for r in rounds] == [
        (False, False),
        (True, False),
        (False, False),
        (True, True),
    ]


# ---- conclusions on made-up numbers (no timing) ------------------------------------------
RTTS = (0.0, 0.2, 0.5, 1.0, 2.0)
FAKE = {  # strategy: (statements, work ms)
    "n_plus_one": (201, 10.0),
    "batch": (3, 20.0),
    "joined": (1, 40.0),
    "aggregate": (1, 1000.0),
}


def synthetic(tie_at: float | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    rows = []
    for rtt in RTTS:
        for name, (statements, work) in FAKE.items():
            ms = statements * rtt + work
            if name == "joined" and rtt == tie_at:
                ms = 3 * rtt + 20.0 + 0.1  # within batch's interval
            rows.append(
                {
                    "rtt_ms": rtt,
                    "strategy": name,
                    "label": STRATEGIES[name].label,
                    "sessions": 100,
                    "statements": statements,
                    "n": 5,
                    "median_ms": ms,
                    "lo_ms": ms * 0.98,
                    "hi_ms": ms * 1.02,
                    "cv": 0.01,
                    "unstable": False,
                }
            )
    pings = pl.DataFrame(
        {
            "path": ["direct"] + ["proxy"] * len(RTTS),
            "rtt_ms": [None, *RTTS],
            "median_ms": [0.05] + [0.08 + r for r in RTTS],
        }
    )
    return network.model(pl.DataFrame(rows), pings), pings


def test_beats_measured_and_modelled():
    summary, _ = synthetic()
    beats = {r["strategy"]: r for r in network.beats(summary).iter_rows(named=True)}
    assert beats["batch"]["measured_from_ms"] == 0.2
    assert beats["batch"]["model_from_ms"] == pytest.approx(10 / 198)
    assert beats["joined"]["measured_from_ms"] == 0.2
    assert beats["joined"]["model_from_ms"] == pytest.approx(30 / 200)
    assert beats["aggregate"]["measured_from_ms"] is None
    assert beats["aggregate"]["model_from_ms"] == pytest.approx(990 / 200)


def test_without_the_baseline_nothing_is_beaten():
    summary, pings = synthetic()
    summary = summary.filter(pl.col("strategy") != "n_plus_one")
    assert network.beats(summary).is_empty()
    assert network.verdicts(summary) == []
    assert "Fastest at each RTT: 0 ms: " in network.conclusions(summary, pings)


def test_conclusion_sentence():
    summary, pings = synthetic()
    text = network.conclusions(summary, pings)
    n1, batch = words("n_plus_one"), words("batch")
    assert (
        f"At 100 sessions {n1} runs 201 statements, so each added ms of round trip costs it about 201 ms"
        in text
    )
    assert "measured: 10.0 ms at 0 ms, 412.0 ms at 2 ms (model 412.0 ms)" in text
    assert f"{batch} from 0.2 ms (model: from 0.05 ms)" in text
    assert f"{words('aggregate')} not within the RTTs measured (model: from 4.95 ms)" in text
    assert f"Fastest at each RTT: 0 ms: {n1} (10.0 ms); 0.2 ms: {batch} (20.6 ms)" in text
    assert (
        "The proxy itself adds 30 µs per round trip at zero delay (SELECT 1: 0.050 ms direct, 0.080 ms"
        in text
    )


def test_conclusion_says_which_cells_rest_on_few_runs():
    summary, pings = synthetic()
    few = (pl.col("strategy") == "n_plus_one") & (pl.col("rtt_ms") == 2.0)
    text = network.conclusions(summary.with_columns(n=pl.when(few).then(4).otherwise(12)), pings)
    assert (
        f"n = 4-12 runs each; indicative only, on fewer than 10 runs: {words('n_plus_one')} at 2 ms." in text
    )
    assert "every cell" not in text


def test_conclusion_names_a_tie():
    summary, pings = synthetic(tie_at=1.0)
    text = network.conclusions(summary, pings)
    assert f"1 ms: {words('batch')} (23.0 ms, tied with {words('joined')})" in text


def test_network_figure_measured_points_beside_model_lines():
    summary, _ = synthetic()
    fig = figures.network_figure(summary)
    points = [t for t in fig.data if t.mode == "markers"]
    lines = [t for t in fig.data if t.mode == "lines"]
    assert len(points) == len(lines) == len(FAKE)
    assert all(t.error_y.array is not None for t in points)
    assert fig.layout.yaxis.type == "log"
    assert {10.0, 100.0, 1000.0} <= set(fig.layout.yaxis.tickvals)  # data from 9.8 to 416 ms
    assert "10" in fig.layout.yaxis.ticktext and "1,000" in fig.layout.yaxis.ticktext
    assert list(fig.layout.xaxis.tickvals) == list(RTTS)


def test_conclusion_refuses_to_rank_under_high_load():
    summary, pings = synthetic()
    text = network.conclusions(summary, pings, {"load_before": 6.0, "load_after": 1.0}, max_load=2)
    assert text.startswith("Not ranked: the load average reached 6.0, 3.0x the limit of 2 on this machine")
    assert "Fastest at each RTT" not in text
    assert f"{words('batch')} (model: from 0.05 ms)" in text
    assert (
        "0 of 20 cells unstable (CV > 10%), n = 5-5 runs each; load average 6.00 before, 1.00 after; "
        "every cell rests on fewer than 10 runs: indicative only." in text
    )
    calm = network.conclusions(summary, pings, {"load_before": 0.5, "load_after": 2.5}, max_load=2)
    assert "Not ranked" not in calm and "Fastest at each RTT" in calm


def test_verdicts_name_the_plans_join():
    summary, _ = synthetic()
    overall, join = network.verdicts(summary)
    n1, plan = "today's N+1", "the plan's JOIN"  # words, not labels: no nested parentheses
    assert (overall.topic, overall.verdict, overall.engine) == (
        f"{n1} across a network",
        "beaten from 0.2 ms",
        "postgres",
    )
    assert (join.topic, join.verdict) == (f"{plan} across a network", "faster from 0.2 ms")
    assert "the model (statements × RTT + work): from 0.15 ms" in join.detail

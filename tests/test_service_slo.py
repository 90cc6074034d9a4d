"""SLO verdicts, the highest holding rate, error budget, capacity and the notebook's figures,
on hand-made run summaries (known answers, no timing)."""

from __future__ import annotations

import json
import math
import os

import polars as pl
import pytest

from workbench.service import figures, slo
from workbench.service.monitoring import side_by_side


def _row(label, strategy, rate, p50, p99, errors=0, sent=None, service_cores=0.2, pg_cores=0.1):
    sent = sent or int(rate * 10)
    return {
        "label": label,
        "strategy": strategy,
        "pool_size": 4,
        "workers": 1,
        "stage": -1,
        "offered_rps": float(rate),
        "sent": sent,
        "ok": sent - errors,
        "achieved_rps": float(rate) * (sent - errors) / sent,
        "p50_ms": p50,
        "p50_lo": p50 * 0.9,
        "p50_hi": p50 * 1.1,
        "p90_ms": p99 * 0.7,
        "p99_ms": p99,
        "p99_lo": p99 * 0.8,
        "p99_hi": p99 * 1.3,
        "p999_ms": p99 * 1.5,
        "errors": errors,
        "error_rate": errors / sent,
        "errors_by_kind": json.dumps({"http_503": errors} if errors else {}),
        "db_p99_ms": 5.0,
        "pool_wait_p99_ms": 0.1,
        "service_peak_mb": 120.0,
        "service_cores": service_cores,
        "postgres_cores": pg_cores,
        "generator_cores": 0.05,
        "service_cpu_share": service_cores / 2,
        "service_cpu_ms_per_req": service_cores * 1000 / rate,
        "db_cpu_ms_per_req": pg_cores * 1000 / rate,
    }


@pytest.fixture
def summary() -> pl.DataFrame:
    return pl.DataFrame(
        [
            _row("n_plus_one pool=4", "n_plus_one", 25, 20, 80),
            _row("n_plus_one pool=4", "n_plus_one", 50, 45, 350, service_cores=0.95),
            _row("batch pool=4", "batch", 25, 5, 20),
            _row("batch pool=4", "batch", 50, 6, 30),
            _row("batch pool=4", "batch", 100, 9, 90, errors=3, sent=1000, service_cores=0.5),
        ]
    )


def test_verdicts_say_met_or_missed_and_by_how_much(summary):
    table = slo.verdicts(summary)
    row = table.filter((pl.col("label") == "n_plus_one pool=4") & (pl.col("offered_rps") == 50))
    by = dict(zip(row["slo"], row["verdict"], strict=True))
    assert by["API P50 < 50 ms"] == "met"
    assert by["API P99 < 200 ms"] == "missed by 1.8x"
    assert by["1,000 req/s"] == "missed (5% of target)"
    errors = table.filter((pl.col("offered_rps") == 100) & (pl.col("slo") == "error rate < 0.1%"))
    assert errors["verdict"][0] == "missed by 3.0x" and errors["shown"][0] == "0.30%"


def test_unknown_values_are_not_guessed():
    table = slo.verdicts(
        pl.DataFrame([{"label": "k6", "offered_rps": None, "p50_ms": 10.0, "p99_ms": math.nan}])
    )
    by = dict(zip(table["slo"], table["verdict"], strict=True))
    assert by["API P50 < 50 ms"] == "met" and by["API P99 < 200 ms"] == "unknown"
    assert by["DB query P99 < 100 ms"] == "unknown"


def test_max_rate_is_the_last_rate_before_the_first_miss(summary):
    m = {r["label"]: r for r in slo.max_rate(summary).iter_rows(named=True)}
    assert m["n_plus_one pool=4"]["max_rate"] == 25 and m["n_plus_one pool=4"]["missed_at"] == 50
    assert "API P99 < 200 ms" in m["n_plus_one pool=4"]["first_miss"]
    # batch at 100 misses the error-rate SLO (0.3%): it holds to 50.
    assert m["batch pool=4"]["max_rate"] == 50 and "error rate" in m["batch pool=4"]["first_miss"]


def test_error_budget(summary):
    budget = slo.error_budget(summary).filter(pl.col("offered_rps") == 100)
    assert budget["budget"][0] == pytest.approx(1.0) and budget["budget_used"][0] == pytest.approx(3.0)


def test_capacity_from_cpu_per_request(summary):
    cap = {r["label"]: r for r in slo.capacity(summary).iter_rows(named=True)}
    n1 = cap["n_plus_one pool=4"]
    # The cost per request at the highest rate that held (25 req/s), the limit past the knee (50).
    assert n1["cost_at_rps"] == 25 and n1["rate_tried"] == 50
    assert n1["service_cpu_ms_per_req"] == pytest.approx(8.0)  # 0.2 cores / 25 req/s
    assert n1["service_cores_at_target"] == pytest.approx(8.0)  # 1,000 req/s x 8 ms
    assert n1["cores_needed"] == pytest.approx((8.0 + 4.0) / 0.30)
    assert n1["limited_by"].startswith("the service's CPU (95% of a core")
    assert n1["missed"] == "API P99 < 200 ms, CPU < 30%"  # 0.95 of 2 cores
    assert cap["batch pool=4"]["limited_by"].startswith("nothing saturated")
    text = slo.capacity_sentence(slo.capacity(summary))
    assert "at 50 req/s offered it missed API P99 < 200 ms, CPU < 30%" in text
    assert "1,000 req/s needs ~8.0 + 4.0 cores busy" in text


def test_conclusions_and_verdicts_are_built_from_the_numbers(summary):
    maxima = slo.max_rate(summary)
    text = slo.conclusions(summary, maxima)
    assert "batch loading instead of N+1: 2.0x the rate; batch pool=4 holds every SLO up to 50 req/s" in text
    verdicts = slo.report_verdicts(summary, maxima, slo.capacity(summary))
    assert [(v.topic, v.verdict) for v in verdicts][:3] == [
        ("batch loading instead of N+1", "2.0x the rate"),
        ("highest arrival rate holding every SLO", "50 req/s (batch pool=4)"),
        ("1,000 req/s", "not reachable here (50 req/s holding the SLOs)"),
    ]
    assert verdicts[3].topic == "DB query P99 < 100 ms" and verdicts[3].verdict == "met"


def test_each_change_is_a_pair_differing_in_one_setting(summary):
    more = pl.DataFrame(
        [
            _row("batch pool=8", "batch", 100, 8, 60) | {"pool_size": 8},
            _row("batch pool=4 cache=5s", "batch", 100, 2, 20) | {"cache_seconds": 5.0},
            _row("batch pool=4 cache=5s", "batch", 200, 3, 40) | {"cache_seconds": 5.0},
        ]
    )
    both = pl.concat([summary.with_columns(cache_seconds=pl.lit(0.0)), more], how="diagonal_relaxed")
    table = slo.changes(both, slo.max_rate(both))
    found = {r["change"]: (r["before"], r["after"], r["ratio"]) for r in table.iter_rows(named=True)}
    assert found == {
        "batch loading instead of N+1": ("n_plus_one pool=4", "batch pool=4", 2.0),
        "pool size 4 → 8": ("batch pool=4", "batch pool=8", 2.0),
        "a query cache (5 s)": ("batch pool=4", "batch pool=4 cache=5s", 4.0),
    }
    cache = table.filter(pl.col("change") == "a query cache (5 s)").row(0, named=True)
    assert cache["after_above"] and slo.change_verdict(cache)[0] == "4.0x the rate or more"
    verdicts = {v.topic: v.verdict for v in slo.report_verdicts(both, slo.max_rate(both), slo.capacity(both))}
    # The cache held at every rate tried, all below 1,000 req/s: not shown, not "unreachable".
    assert verdicts["1,000 req/s"] == (
        "not shown: batch pool=4 cache=5s held at every rate tried, up to 200 req/s"
    )


def test_side_by_side_and_figures_build(summary):
    row = summary.row(2, named=True)
    side = side_by_side(row, {"p50": 4.0, "p99": 18.0, "throughput": 24.5, "errors": 0.0, "memory": 118.0})
    assert side.filter(pl.col("slo") == "API P99 < 200 ms")["prometheus_shown"][0] == "18.0 ms"
    assert side.filter(pl.col("slo") == "DB query P99 < 100 ms")["prometheus"][0] is None
    lat = pl.DataFrame(
        {"label": ["a"] * 100, "offered_rps": [25.0] * 100, "latency_ms": [float(i + 1) for i in range(100)]}
    )
    rounds = slo.max_rate(summary).row(0, named=True)
    spans = figures.holding_rates(slo.max_rate(summary))
    assert spans.data[0].x == (rounds["max_rate"], rounds["round_failed"][0])  # held → failed, one round
    assert spans.layout.xaxis.type == "log"
    for fig in (
        figures.latency_vs_load(summary, slo.max_rate(summary)),
        figures.distributions(lat),
        figures.prometheus_vs_tool(side),
    ):
        assert fig.data and fig.layout.yaxis.type == "log"


def test_a_tie_in_holding_rate_is_decided_by_p99_at_the_common_rate(summary):
    tied = summary.filter(pl.col("offered_rps") <= 25)  # both hold at 25, the only rate
    verdicts = slo.report_verdicts(tied, slo.max_rate(tied), slo.capacity(tied))
    change = next(v for v in verdicts if v.topic == "batch loading instead of N+1")
    assert change.verdict == "no clear change"
    assert "the knee lies above the highest rate tried" in change.detail


def test_a_busy_machine_is_named_as_the_limit_with_each_share(summary):
    busy = summary.with_columns(machine_cores=pl.lit(0.95 * os.cpu_count()), send_lag_p99_ms=pl.lit(12.0))
    cap = slo.capacity(busy).filter(pl.col("label") == "batch pool=4").row(0, named=True)
    assert cap["limited_by"].startswith(
        "the machine's CPU (95% busy: service 0.50, PostgreSQL 0.10, generator 0.05, other processes"
    )
    assert "send lag P99 was 12.0 ms" in slo.capacity_sentence(slo.capacity(busy))


def test_a_rate_run_again_after_a_failure_holds_if_the_rerun_held(summary):
    rerun = pl.concat(
        [summary, pl.DataFrame([_row("n_plus_one pool=4", "n_plus_one", 50, 10, 90)])], how="diagonal_relaxed"
    )
    m = slo.max_rate(rerun).filter(pl.col("label") == "n_plus_one pool=4").row(0, named=True)
    assert (m["max_rate"], m["first_miss"]) == (50, slo.NO_MISS)
    assert slo.max_rate(summary).filter(pl.col("label") == "n_plus_one pool=4")["max_rate"][0] == 25


def _rounds(label: str, strategy: str, held: list[float], failed: list[float]) -> list[dict]:
    """Per round: a steady run that held at ``held[i]`` and one that missed the CPU SLO at ``failed[i]``."""
    rows = []
    for i, (h, f) in enumerate(zip(held, failed, strict=True)):
        rows.append(_row(label, strategy, h, 10, 50) | {"round": i})
        rows.append(_row(label, strategy, f, 12, 60, service_cores=0.7) | {"round": i})
    return rows


def test_rounds_are_judged_apart_and_summed_up_by_their_median_and_range():
    summary = pl.DataFrame(_rounds("n_plus_one pool=4", "n_plus_one", [180, 150, 150], [210, 225, 225]))
    m = slo.max_rate(summary).row(0, named=True)
    assert m["round_rates"] == [180, 150, 150] and m["rounds"] == 3
    assert (m["max_rate"], m["max_rate_lo"], m["max_rate_hi"]) == (150, 150, 180)
    assert m["first_miss"] == "CPU < 30%" and m["missed_at"] in (225, 210)
    assert "every SLO holds up to 150 req/s (median of 3 rounds: 150–180)" in slo.conclusions(
        summary, slo.max_rate(summary)
    )


def test_a_change_is_named_only_when_every_round_agrees():
    # The rates of three interleaved rounds measured on this machine (2026-12-05, 20:25 UTC):
    # N+1 and the JOIN swap places between rounds; batch beats N+1 in every round.
    rows = (
        _rounds("n_plus_one pool=4", "n_plus_one", [180, 150, 150], [210, 225, 225])
        + _rounds("joined pool=4", "joined", [150, 225, 150], [225, 300, 225])
        + _rounds("batch pool=4", "batch", [320, 320, 320], [430, 430, 430])
    )
    summary = pl.DataFrame(rows)
    table = {r["change"]: r for r in slo.changes(summary, slo.max_rate(summary)).iter_rows(named=True)}
    join = table["the plan's JOIN instead of N+1"]
    assert join["round_ratios"] == pytest.approx([150 / 180, 1.5, 1.0])
    verdict, detail = slo.change_verdict(join)
    assert verdict == "no clear change"
    assert "round by round 0.83x, 1.50x, 1.00x" in detail
    assert join["round_moves"] == ["overlap", "up", "overlap"]  # 225 held by the JOIN, failed by N+1
    assert "separated in 1 of 3 rounds" in detail
    batch = table["batch loading instead of N+1"]
    assert batch["round_moves"] == ["up"] * 3
    assert slo.change_verdict(batch)[0] == "2.1x the rate"  # the median of 1.78, 2.13, 2.13
    # Brackets that overlap in every round are a tie, not a disagreement.
    close = join | {"round_moves": ["overlap"] * 3}
    assert slo.change_verdict(close)[0] == "no clear change"
    worse = join | {"round_moves": ["down"] * 3, "ratio": 0.6}
    assert slo.change_verdict(worse)[0] == "1.7x lower rate"


def test_the_runs_table_names_each_runs_round_and_missed_slos(summary):
    from workbench.service import experiment

    rounds = summary.with_columns(pl.lit(0).alias("round"))
    assert slo.missed_names(rounds.row(1, named=True)) == "P99, CPU"  # N+1 at 50 req/s
    assert slo.missed_names(rounds.row(0, named=True)) == "none"
    html = experiment.people(rounds)._repr_html_()
    assert "SLOs missed" in html and "P99, CPU" in html and ">round<" in html

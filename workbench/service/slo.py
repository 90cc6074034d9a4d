"""The plan's SLOs, judged honestly: the knee, each SLO met / missed / not shown, cost and capacity.

The plan's targets (or a profile's, :func:`limits`): API P50 < 50 ms and P99 < 200 ms,
1,000 req/s, memory < 500 MB, CPU < 30%, DB query P99 < 100 ms, error rate < 0.1%.

* **The knee** (:func:`max_rate`) is the highest offered rate at which latency and errors
  hold (P50, P99, the error rate: :data:`HOLDING`), judged per steady run by its point
  estimates, in interleaved rounds.
* **An SLO is judged** (:func:`judge`) only as far as the run's sample can show it: a
  percentile is "met" when its 95% interval lies below the target and the run has enough
  responses (:data:`MIN_RESPONSES`: 2,000 for P99), "missed" when the interval lies above
  it, "not shown" otherwise; the error rate by its one-sided 95% Clopper-Pearson bounds
  (:func:`error_bounds`): 0 errors in 292 responses bounds the rate at 1%, ten times the
  0.1% target, so that run says "not shown", never "met".
* **CPU and memory are cost and capacity** (:func:`capacity`), not a per-run pass/fail on
  a shared test box: CPU-ms per request of the service and of PostgreSQL and the service's
  peak memory at steady rates below the knee, then what the target rate needs on the
  profile's hardware at the CPU target.

>>> knees = max_rate(experiment.summary(runs))                    # doctest: +SKIP
>>> judge(row, "p99", 200.0)["verdict"]                           # doctest: +SKIP
'not shown'
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl


@dataclass(frozen=True)
class SLO:
    """One objective: ``column`` of a run summary compared with ``target`` by ``op``."""

    name: str
    text: str
    column: str
    target: float
    op: str  # "<" (below target) or ">=" (at least target)
    unit: str
    promql: str

    def met(self, value: float) -> bool | None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return value < self.target if self.op == "<" else value >= self.target


_OK = 'status!~"5.."'
_REQ = "workbench_http_request_duration_seconds"
SLOS: tuple[SLO, ...] = (
    SLO(
        "p50",
        "API P50 < 50 ms",
        "p50_ms",
        50,
        "<",
        "ms",
        f"histogram_quantile(0.5, sum by (le) (rate({_REQ}_bucket{{{_OK}}}[1m]))) * 1000",
    ),
    SLO(
        "p99",
        "API P99 < 200 ms",
        "p99_ms",
        200,
        "<",
        "ms",
        f"histogram_quantile(0.99, sum by (le) (rate({_REQ}_bucket{{{_OK}}}[1m]))) * 1000",
    ),
    SLO(
        "throughput",
        "1,000 req/s",
        "achieved_rps",
        1000,
        ">=",
        "req/s",
        f"sum(rate({_REQ}_count{{{_OK}}}[1m]))",
    ),
    SLO(
        "errors",
        "error rate < 0.1%",
        "error_rate",
        0.001,
        "<",
        "",
        f"(sum(rate(workbench_http_errors_total[1m])) or vector(0)) / sum(rate({_REQ}_count[1m]))",
    ),
    SLO(
        "db_p99",
        "DB query P99 < 100 ms",
        "db_p99_ms",
        100,
        "<",
        "ms",
        "histogram_quantile(0.99, sum by (le) (rate(workbench_db_statement_seconds_bucket[1m]))) * 1000",
    ),
    SLO(
        "memory",
        "memory < 500 MB",
        "service_peak_mb",
        500,
        "<",
        "MB",
        'sum(process_resident_memory_bytes{job="workbench"}) / 2^20',
    ),
    SLO(
        "cpu",
        "CPU < 30%",
        "service_cpu_share",
        0.30,
        "<",
        "",
        f'sum(rate(process_cpu_seconds_total{{job="workbench"}}[1m])) / {os.cpu_count() or 1}',
    ),
)
#: The knee: the highest arrival rate holding latency and errors (CPU and memory are cost).
HOLDING = ("p50", "p99", "errors")
#: Responses a run needs before its percentile can be called met: at 2,000 the P99's 95%
#: interval stops short of the largest samples (at 300 it is about the third largest).
MIN_RESPONSES = {"p50": 100, "p99": 2000}
#: Statements the service must have timed before its statement P99 is judged (it has no interval).
MIN_STATEMENTS = 2000
#: Steady runs below the knee before CPU per request has an interval to judge the CPU target by.
MIN_COST_RUNS = 3
MET, MISSED, NOT_SHOWN, UNKNOWN = "met", "missed", "not shown", "unknown"


def slo(name: str) -> SLO:
    for s in SLOS:
        if s.name == name:
            return s
    raise KeyError(f"Unknown SLO {name!r}: expected one of {', '.join(s.name for s in SLOS)}")


def limits(goal: Any = None) -> dict[str, float]:
    """Each SLO's target by name: the plan's, or a profile's (``prof.slo``, percentages as shares).

    >>> limits()["errors"], limits()["p99"]
    (0.001, 200)
    """
    if goal is None:
        return {s.name: s.target for s in SLOS}
    return {
        "p50": goal.p50_ms,
        "p99": goal.p99_ms,
        "throughput": goal.rate_rps,
        "errors": goal.error_percent / 100,
        "db_p99": goal.db_p99_ms,
        "memory": goal.memory_mb,
        "cpu": goal.cpu_percent / 100,
    }


def text(name: str, targets: Mapping[str, float] | None = None) -> str:
    """An SLO in words with its target: ``API P99 < 200 ms``, ``error rate < 0.1%``.

    >>> text("errors"), text("p99", {"p99": 150.0}), text("throughput")
    ('error rate < 0.1%', 'API P99 < 150 ms', '1,000 req/s')
    """
    s = slo(name)
    t = (targets or {}).get(name, s.target)
    if s.unit == "":
        return s.text.split("<")[0] + f"< {t * 100:g}%"
    if s.op == ">=":
        return f"{t:,.0f} {s.unit}"
    return s.text.split("<")[0] + f"< {t:,g} {s.unit}"


def _met(s: SLO, value: float | None, target: float) -> bool | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value < target if s.op == "<" else value >= target


def misses(
    row: dict, names: Sequence[str] = HOLDING, targets: Mapping[str, float] | None = None
) -> list[str]:
    """The SLOs among ``names`` whose point estimate in ``row`` (a summary row) misses its
    target (the knee search's test); values the row lacks are skipped."""
    t = targets or {}
    return [
        text(s.name, t)
        for s in SLOS
        if s.name in names and _met(s, row.get(s.column), t.get(s.name, s.target)) is False
    ]


_SHORT = {"p50": "P50", "p99": "P99", "db_p99": "DB P99", "cpu": "CPU"}  # the rest: their own name


def missed_names(
    row: dict, names: Sequence[str] = HOLDING, targets: Mapping[str, float] | None = None
) -> str:
    """The SLOs ``row`` misses in a word each (``P99, errors``), or ``none``: a table's column."""
    t = targets or {}
    missed = [
        s for s in SLOS if s.name in names and _met(s, row.get(s.column), t.get(s.name, s.target)) is False
    ]
    return ", ".join(_SHORT.get(s.name, s.name) for s in missed) or "none"


def _fmt(value: float, unit: str) -> str:
    if unit == "":
        return f"{value:.2%}" if value < 1 else f"{value:.0%}"
    return f"{value:,.1f} {unit}" if value < 1000 else f"{value:,.0f} {unit}"


# ---- how far a run's sample can show an SLO --------------------------------------------------
def _binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space (no scipy needed)."""
    if p <= 0:
        return 1.0
    if p >= 1:
        return 1.0 if k >= n else 0.0
    i = np.arange(1, k + 1)
    log_choose = np.concatenate([[0.0], np.cumsum(np.log(n - i + 1) - np.log(i))])
    terms = log_choose + np.arange(k + 1) * math.log(p) + (n - np.arange(k + 1)) * math.log1p(-p)
    top = terms.max()
    return float(min(1.0, math.exp(top) * np.exp(terms - top).sum()))


def _solve(f: Any) -> float:
    """The p in [0, 1] where the decreasing ``f`` crosses 0 (bisection to 1e-12)."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) > 0 else (lo, mid)
    return (lo + hi) / 2


def error_bounds(errors: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """One-sided Clopper-Pearson bounds on an error rate from ``errors`` in ``n``: the rate is
    above ``low`` and below ``high``, each with probability ``level``.

    0 errors in 292 bound the rate at about 1%; it takes 2,995 error-free responses to show
    it below 0.1%:

    >>> [f"{error_bounds(0, n)[1]:.3%}" for n in (292, 2995)]
    ['1.021%', '0.100%']
    >>> [round(x, 4) for x in error_bounds(30, 1000)]
    [0.0217, 0.0405]
    """
    if n <= 0:
        return 0.0, 1.0
    alpha = 1 - level
    high = 1.0 if errors >= n else _solve(lambda p: _binomial_cdf(errors, n, p) - alpha)
    low = 0.0 if errors <= 0 else _solve(lambda p: alpha - (1 - _binomial_cdf(errors - 1, n, p)))
    return low, high


def error_free_needed(target: float, level: float = 0.95) -> int:
    """Error-free responses a run needs before its upper bound falls below ``target``.

    >>> error_free_needed(0.001)
    2995
    """
    return math.floor(math.log(1 - level) / math.log1p(-target)) + 1


def judge(row: Mapping[str, Any], name: str, target: float | None = None) -> dict[str, Any]:
    """Whether one run (a summary row) shows the SLO ``name`` met, missed, or cannot show it.

    Returns ``verdict`` (met / missed / not shown / unknown), ``value`` with its 95%
    ``low``-``high`` (percentiles: the order-statistic interval; errors: Clopper-Pearson), the
    sample ``n`` and ``why`` in words when it is not shown. P50/P99: met needs the interval
    below the target and :data:`MIN_RESPONSES`; missed needs the interval above it. Errors:
    met when the upper bound is below the target, missed when the lower bound is above it.
    DB P99 (the service's own statement timing, no interval): judged from
    :data:`MIN_STATEMENTS` statements on.
    """
    s = slo(name)
    target = s.target if target is None else target
    out: dict[str, Any] = {"verdict": UNKNOWN, "value": math.nan, "low": math.nan, "high": math.nan}
    out |= {"n": 0, "why": "", "target": target}
    if name in MIN_RESPONSES:
        value, lo, hi = (row.get(f"{name}_{k}") for k in ("ms", "lo", "hi"))
        n, need = int(row.get("ok") or 0), MIN_RESPONSES[name]
        if value is None or math.isnan(value):
            return out | {"n": n, "why": "no response was timed"}
        lo, hi = (math.nan if x is None else x for x in (lo, hi))  # k6's summaries carry no interval
        out |= {"value": value, "low": lo, "high": hi, "n": n}
        if math.isnan(lo):
            return out | {"verdict": NOT_SHOWN, "why": "the run kept no interval"}
        if lo > target:
            return out | {"verdict": MISSED}
        if hi < target and n >= need:
            return out | {"verdict": MET}
        why = (
            f"{n:,} responses, {need:,} needed"
            if n < need
            else f"its 95% interval {lo:,.1f}-{hi:,.1f} ms straddles {target:g} ms"
        )
        return out | {"verdict": NOT_SHOWN, "why": why}
    if name == "errors":
        errors = int(row.get("errors") or 0)
        n = int(row.get("ok") or 0) + errors
        if n == 0:
            return out | {"why": "no request was sent"}
        lo, hi = error_bounds(errors, n)
        out |= {"value": errors / n, "low": lo, "high": hi, "n": n}
        if lo > target:
            return out | {"verdict": MISSED}
        if hi < target:
            return out | {"verdict": MET}
        need = error_free_needed(target)
        why = f"{errors:,} errors in {n:,}: the rate could be up to {hi:.2%}" + (
            f" ({need:,} error-free responses show < {target:.1%})" if errors == 0 else ""
        )
        return out | {"verdict": NOT_SHOWN, "why": why}
    if name == "db_p99":
        value, n = row.get("db_p99_ms"), int(row.get("db_statements") or 0)
        if value is None or math.isnan(value):
            return out | {"why": "the service's statement timing was not read"}
        out |= {"value": value, "n": n}
        if n < MIN_STATEMENTS:
            return out | {"verdict": NOT_SHOWN, "why": f"{n:,} statements timed, {MIN_STATEMENTS:,} needed"}
        return out | {"verdict": MET if value < target else MISSED}
    raise KeyError(f"SLO {name!r} is judged as cost and capacity (capacity()), not per run")


JUDGED = ("p50", "p99", "errors", "db_p99")


def verdicts(
    summary: pl.DataFrame,
    keys: tuple[str, ...] = ("label", "offered_rps"),
    targets: Mapping[str, float] | None = None,
) -> pl.DataFrame:
    """Long table: per run and SLO, the measured value with its interval and sample, and the
    verdict (:func:`judge`); the throughput target is the run's achieved rate against it.
    CPU and memory are not judged per run (see :func:`capacity`)."""
    t = limits() | dict(targets or {})
    rows = []
    for r in summary.iter_rows(named=True):
        for name in (*JUDGED, "throughput"):
            if name == "throughput":
                value = r.get("achieved_rps")
                ok = _met(slo(name), value, t[name])
                j = {"verdict": UNKNOWN if ok is None else MET if ok else MISSED, "value": value}
                j |= {"low": math.nan, "high": math.nan, "n": int(r.get("ok") or 0), "why": ""}
            else:
                j = judge(r, name, t[name])
            shown = "" if j["verdict"] == UNKNOWN else _fmt(j["value"], slo(name).unit)
            rows.append(
                {**{k: r.get(k) for k in keys}, "slo": text(name, t), "target": float(t[name])}
                | {"measured": j["value"] if j["value"] is not None else math.nan, "low": j["low"]}
                | {"high": j["high"], "n": j["n"], "shown": shown, "verdict": j["verdict"], "why": j["why"]}
            )
    if not rows:  # no run (nothing held, so nothing was confirmed): the same columns, empty
        columns = [*keys, "slo", "target", "measured", "low", "high", "n", "shown", "verdict", "why"]
        return pl.DataFrame(schema=dict.fromkeys(columns, pl.String))
    return pl.DataFrame(rows)


# ---- the knee ------------------------------------------------------------------------------------
def representatives(
    part: pl.DataFrame, holding: Sequence[str] = HOLDING, targets: Mapping[str, float] | None = None
) -> list[dict]:
    """One run per offered rate, ascending: one that held where any did (a rate re-run after a
    failure holds if the re-run held), else the last that failed."""
    out = []
    for (_,), runs in part.sort("offered_rps").group_by("offered_rps", maintain_order=True):
        rows = runs.to_dicts()
        held = [r for r in rows if not misses(r, holding, targets)]
        out.append(held[-1] if held else rows[-1])
    return out


def max_rate(
    summary: pl.DataFrame, holding: Sequence[str] = HOLDING, targets: Mapping[str, float] | None = None
) -> pl.DataFrame:
    """Per configuration (``label``): the highest offered rate at which every SLO in ``holding``
    held (unknowns ignored), and the first SLO to fail above it (and where).

    With a ``round`` column (:func:`workbench.service.experiment.find_knees`), each round is
    judged on its own runs: ``round_rates`` lists each round's rate in round order,
    ``round_failed`` the lowest rate above it that failed (∞: none did; the knee lies
    between the two), and ``max_rate`` is the rates' lower median (a rate that was run, and
    robust to one round hit by a burst of other work), ``max_rate_lo``–``max_rate_hi``
    their range; the P99 and the first miss are those of the median round
    (``median_round``). Without it, everything is one round. ``responses`` is the answered
    requests of the median round's run at ``max_rate`` (the sample behind the knee)."""
    rounds = summary if "round" in summary.columns else summary.with_columns(pl.lit(0).alias("round"))
    per_round = []
    for (label, round_), part in rounds.sort("offered_rps").group_by("label", "round", maintain_order=True):
        best, failed, failed_at = None, None, None
        for r in representatives(part, holding, targets):
            missed = misses(r, holding, targets)
            if missed:
                failed, failed_at = ", ".join(missed), r["offered_rps"]
                break
            best = r
        per_round.append(
            {
                "label": label,
                "round": round_,
                "max_rate": best["offered_rps"] if best else 0.0,
                "achieved_rps": best["achieved_rps"] if best else 0.0,
                "p50_ms": best["p50_ms"] if best else math.nan,
                "p99_ms": best["p99_ms"] if best else math.nan,
                "responses": int(best["ok"]) if best and best.get("ok") is not None else 0,
                "errors": int(best["errors"]) if best and best.get("errors") is not None else 0,
                "first_miss": failed or NO_MISS,
                "missed_at": failed_at,
            }
        )
    out = []
    labels = dict.fromkeys(r["label"] for r in per_round)
    for label in labels:
        mine = sorted((r for r in per_round if r["label"] == label), key=lambda r: r["round"])
        by_rate = sorted(mine, key=lambda r: r["max_rate"])
        median = by_rate[(len(by_rate) - 1) // 2]
        out.append(
            {
                **{k: v for k, v in median.items() if k != "round"},
                "median_round": median["round"],
                "max_rate_lo": by_rate[0]["max_rate"],
                "max_rate_hi": by_rate[-1]["max_rate"],
                "rounds": len(mine),
                "round_rates": [r["max_rate"] for r in mine],
                "round_failed": [r["missed_at"] if r["missed_at"] is not None else math.inf for r in mine],
            }
        )
    return pl.DataFrame(out)


# ---- cost and capacity ---------------------------------------------------------------------------
def _limit(r: dict, cpus: int) -> str:
    """What was saturated in run ``r`` (a summary row): the machine, one process, the pool, the DB."""
    gen = r.get("generator_cores") or 0.0
    svc, db = r.get("service_cores") or 0.0, r.get("postgres_cores") or 0.0
    machine = r.get("machine_cores")
    workers = r.get("workers") or 1
    busiest = max(
        [
            ("the service's CPU", svc / workers),
            ("PostgreSQL's CPU", db / cpus),
            ("the load generator's CPU", gen),
        ],
        key=lambda kv: kv[1],
    )
    p99 = r.get("p99_ms") or math.inf
    if machine is not None and machine / cpus >= 0.9:
        others = max(0.0, machine - svc - db - gen)
        return (
            f"the machine's CPU ({machine / cpus:.0%} busy: service {svc:.2f}, PostgreSQL "
            f"{db:.2f}, generator {gen:.2f}, other processes {others:.2f} cores)"
        )
    if busiest[1] >= 0.85:
        return f"{busiest[0]} ({busiest[1]:.0%} of a core per process)"
    if (r.get("pool_wait_p99_ms") or 0.0) > 0.5 * p99:
        return f"the connection pool (wait P99 {r['pool_wait_p99_ms']:.0f} ms of a {p99:.0f} ms P99)"
    if (r.get("db_p99_ms") or 0.0) > 0.5 * p99:
        return f"the database (statement P99 {r['db_p99_ms']:.0f} ms of a {p99:.0f} ms P99)"
    return f"nothing saturated (busiest: {busiest[0]}, {busiest[1]:.0%})"


def _median_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """(median, low, high): the 95% distribution-free interval of the median (order statistics)."""
    from workbench.service.load import quantile_interval

    v = np.array([x for x in values if x is not None and not math.isnan(x)], dtype=float)
    if not v.size:
        return math.nan, math.nan, math.nan
    lo, hi = quantile_interval(v, 0.5)
    return float(np.median(v)), lo, hi


def capacity(
    summary: pl.DataFrame,
    goal: Any = None,
    cores: int = 4,
    targets: Mapping[str, float] | None = None,
) -> pl.DataFrame:
    """Per configuration: what it costs below its knee, what limited it past the knee, and what
    the target rate needs on production hardware of ``cores`` (the profile's).

    Cost: CPU-ms per request of the service and of PostgreSQL, the median over the steady
    runs that held (below the knee, where queueing and contention do not inflate it) with
    the 95% interval of that median, and the service's peak resident memory there (its
    high-water mark since start). Capacity at ``goal.rate_rps`` (``goal`` is ``prof.slo``;
    None: the plan's): the service's cores busy, their share of ``cores`` against the CPU
    target (``cpu`` met / missed / not shown by the interval), the worker processes that
    takes (a worker uses at most one core), and their memory against the memory target.
    The limit is named from the lowest-rate run that missed a holding SLO (past the knee).
    """
    t = limits(goal) | dict(targets or {})
    rate, cpu_target, mem_target = t["throughput"], t["cpu"], t["memory"]
    cpus = os.cpu_count() or 1
    out = []
    for (label,), part in summary.sort("offered_rps").group_by("label", maintain_order=True):
        rows = part.to_dicts()
        reps = representatives(part, targets=t)
        missed = [r for r in reps if misses(r, targets=t)]
        past = missed[0] if missed else reps[-1]
        held = [r for r in rows if not misses(r, targets=t) and r["offered_rps"] < past["offered_rps"]]
        held = held or [r for r in rows if not misses(r, targets=t)]
        svc = _median_interval([r.get("service_cpu_ms_per_req") for r in held])
        db = _median_interval([r.get("db_cpu_ms_per_req") for r in held])
        peak = max((r.get("service_peak_mb") or 0.0 for r in held), default=math.nan) or math.nan
        need = tuple(rate * x / 1000 for x in svc)  # service cores busy at the target rate
        share = tuple(x / cores for x in need)
        if math.isnan(share[0]) or len(held) < MIN_COST_RUNS:
            cpu = NOT_SHOWN  # no interval from fewer runs
        else:
            cpu = MET if share[2] < cpu_target else MISSED if share[1] > cpu_target else NOT_SHOWN
        workers = max(1, math.ceil(need[2])) if not math.isnan(need[2]) else None
        memory = peak * workers if workers else math.nan
        out.append(
            {
                "label": label,
                "cost_runs": len(held),
                "cost_rate_lo": min((r["offered_rps"] for r in held), default=math.nan),
                "cost_rate_hi": max((r["offered_rps"] for r in held), default=math.nan),
                "service_cpu_ms_per_req": svc[0],
                "service_cpu_ms_lo": svc[1],
                "service_cpu_ms_hi": svc[2],
                "db_cpu_ms_per_req": db[0],
                "db_cpu_ms_lo": db[1],
                "db_cpu_ms_hi": db[2],
                "service_peak_mb": peak,
                "target_rps": rate,
                "service_cores_at_target": need[0],
                "service_cores_lo": need[1],
                "service_cores_hi": need[2],
                "db_cores_at_target": rate * db[0] / 1000,
                "cpu_share_at_target": share[0],
                "cpu_share_lo": share[1],
                "cpu_share_hi": share[2],
                "cores_for_cpu_target": need[2] / cpu_target if not math.isnan(need[2]) else math.nan,
                "cpu": cpu,
                "workers_at_target": workers,
                "memory_at_target_mb": memory,
                "memory": NOT_SHOWN  # the workers it takes come from the CPU cost's interval
                if math.isnan(memory) or len(held) < MIN_COST_RUNS
                else MET
                if memory < mem_target
                else MISSED,
                "rate_tried": past["offered_rps"],
                "missed": ", ".join(misses(past, targets=t)) or "none",
                "limited_by": _limit(past, cpus),
                "send_lag_p99_ms": past.get("send_lag_p99_ms"),
            }
        )
    return pl.DataFrame(out)


def _cores(x: float) -> str:
    """Cores in words, never rounded down: ``1.2 cores`` (1.18), ``0.4 cores``."""
    return f"{math.ceil(x * 10) / 10:.1f} cores" if x < 10 else f"{math.ceil(x):,} cores"


def _share(r: Mapping[str, Any]) -> str:
    lo, mid, hi = r["cpu_share_lo"], r["cpu_share_at_target"], r["cpu_share_hi"]
    return f"{mid:.0%}" + (f" (95% {lo:.0%}-{hi:.0%})" if hi > lo else "")


def capacity_sentence(r: Mapping[str, Any], cores: int = 4, cpu_target: float = 0.30) -> str:
    """One configuration's cost and capacity row (:func:`capacity`) in words."""
    if not r["cost_runs"]:
        return f"{r['label']}: no steady run held, so its cost per request was not measured."
    runs = r["cost_runs"]
    sample = (
        f"median of {runs} steady runs at {r['cost_rate_lo']:,.0f}-{r['cost_rate_hi']:,.0f} req/s that held, "
        f"95% {r['service_cpu_ms_lo']:.2f}-{r['service_cpu_ms_hi']:.2f}"
        if runs > 1
        else f"one steady run at {r['cost_rate_lo']:,.0f} req/s, no interval"
    )
    text = f"{r['label']}: {r['service_cpu_ms_per_req']:.2f} ms of service CPU per request ({sample})"
    if not math.isnan(r["db_cpu_ms_per_req"]):
        text += f" and {r['db_cpu_ms_per_req']:.2f} ms of PostgreSQL CPU" + (
            f" (95% {r['db_cpu_ms_lo']:.2f}-{r['db_cpu_ms_hi']:.2f})" if runs > 1 else ""
        )
    text += f", peak memory {r['service_peak_mb']:,.0f} MB. "
    text += (
        f"{r['target_rps']:,.0f} req/s needs {_cores(r['service_cores_at_target'])} of service CPU, "
        f"{_share(r)} of the profile's {cores} cores against {cpu_target:.0%} ({r['cpu']}); "
        f"at {cpu_target:.0%} it takes {_cores(r['cores_for_cpu_target'])}; "
        f"{r['workers_at_target']} worker process{'es' if r['workers_at_target'] != 1 else ''} "
        f"at about {r['memory_at_target_mb']:,.0f} MB ({r['memory']})"
    )
    if r["db_cores_at_target"] and not math.isnan(r["db_cores_at_target"]):
        text += f"; PostgreSQL adds {_cores(r['db_cores_at_target'])} on its own machine"
    return text + "."


def limit_sentence(r: Mapping[str, Any]) -> str:
    """What limited a configuration's knee, from the run just past it."""
    if r["missed"] == "none":
        where = f"held at every steady rate tried (up to {r['rate_tried']:,.0f} req/s); busiest there: "
    else:
        where = f"past its knee, at {r['rate_tried']:,.0f} req/s, it missed {r['missed']}; limited by "
    text = f"{r['label']}: {where}{r['limited_by']}."
    if (r.get("send_lag_p99_ms") or 0) > 1:
        text += (
            f" The generator's send lag P99 was {r['send_lag_p99_ms']:.1f} ms there: the latencies "
            "include the machine's contention, not only the service's."
        )
    return text


# ---- the plan's changes, round by round ----------------------------------------------------------
DIMENSIONS = ("strategy", "pool_size", "cache_seconds")
STRATEGY_NAMES = {"joined": "the plan's JOIN", "batch": "batch loading"}


def _configs(summary: pl.DataFrame, maxima: pl.DataFrame) -> list[dict]:
    cols = [c for c in DIMENSIONS if c in summary.columns]
    first = summary.group_by("label", maintain_order=True).agg(pl.col(c).first() for c in cols)
    out = first.join(maxima, on="label").to_dicts()
    for r in out:
        r.setdefault("cache_seconds", 0.0)
        r["cache_seconds"] = r["cache_seconds"] or 0.0
        r["above"] = r["first_miss"] == NO_MISS  # the knee lies above every rate tried
    return out


def _change_name(dim: str, before: dict, after: dict) -> str:
    if dim == "strategy":
        return f"{STRATEGY_NAMES.get(after['strategy'], after['strategy'])} instead of N+1"
    if dim == "pool_size":
        return f"pool size {before['pool_size']} → {after['pool_size']}"
    return f"a query cache ({after['cache_seconds']:g} s)"


def _move(before: tuple[float, float], after: tuple[float, float]) -> str:
    """One round's comparison of two knees, each known to lie in [held, failed): ``up`` when
    the after's held rate is at or above the before's failing one, ``down`` the reverse,
    ``overlap`` when the brackets overlap (the search cannot tell them apart)."""
    if after[0] >= before[1]:
        return "up"
    if after[1] <= before[0]:
        return "down"
    return "overlap"


def _ratio(after: float, before: float) -> float:
    if before:
        return after / before
    return math.inf if after else math.nan


def changes(summary: pl.DataFrame, maxima: pl.DataFrame) -> pl.DataFrame:
    """Each of the plan's changes as two configurations that differ in it alone (N+1 → another
    strategy, a smaller → larger pool, no cache → cache): the highest rate each held every
    SLO at (the median over rounds), the P99 at those rates, and round by round (round *i*
    of both was searched back to back) the ratio of the held rates (``round_ratios``, their
    median is ``ratio``) and whether the knees' brackets separate (``round_moves``)."""
    configs = _configs(summary, maxima)
    rows = []
    for after in configs:
        for dim in DIMENSIONS:
            same = [
                c
                for c in configs
                if c is not after and all(c.get(d) == after.get(d) for d in DIMENSIONS if d != dim)
            ]
            if dim == "strategy":
                before = [c for c in same if c["strategy"] == "n_plus_one" != after["strategy"]]
            elif dim == "pool_size":
                before = sorted(
                    (c for c in same if c["pool_size"] < after["pool_size"]), key=lambda c: -c["pool_size"]
                )
            else:
                before = [c for c in same if c["cache_seconds"] == 0 < after["cache_seconds"]]
            if not before:
                continue
            b = before[0]
            pairs = list(
                zip(
                    zip(b["round_rates"], b["round_failed"], strict=True),
                    zip(after["round_rates"], after["round_failed"], strict=True),
                    strict=False,
                )
            )  # round i of both: ((held, failed) before, (held, failed) after)
            ratios = [_ratio(a[0], x[0]) for x, a in pairs]
            rows.append(
                {
                    "change": _change_name(dim, b, after),
                    "before": b["label"],
                    "after": after["label"],
                    "before_rps": b["max_rate"],
                    "after_rps": after["max_rate"],
                    "ratio": statistics.median(ratios) if ratios else math.nan,
                    "round_ratios": ratios,
                    "round_moves": [_move(x, a) for x, a in pairs],
                    "before_p99_ms": b["p99_ms"],
                    "after_p99_ms": after["p99_ms"],
                    "before_above": b["above"],
                    "after_above": after["above"],
                    "_order": DIMENSIONS.index(dim),
                }
            )
    rows.sort(key=lambda r: r.pop("_order"))  # the strategies first, then the pool, then the cache
    return pl.DataFrame(rows)


def _rate(value: float, above: bool) -> str:
    return f"≥ {value:,.0f}" if above else f"{value:,.0f}"


def change_verdict(r: dict) -> tuple[str, str]:
    """(verdict, detail) for one row of :func:`changes`.

    The tie rule: each round's search places a knee between the highest rate that held and
    the lowest that failed above it. A change is named only when, in every round, the two
    configurations' brackets do not overlap and they separate the same way (each round's
    pair was searched back to back, so a slow minute hits both). Otherwise it is "no clear
    change", whether the brackets overlapped in every round (the search cannot resolve a
    difference) or the rounds disagreed (read as noise, never as an effect); the detail
    says which."""
    after, before = _rate(r["after_rps"], r["after_above"]), _rate(r["before_rps"], r["before_above"])

    def at(label: str, rate: str, p99: float) -> str:
        if rate == "0":
            return f"{label} at no rate tried"
        return f"{label} up to {rate} req/s" + ("" if math.isnan(p99) else f" (P99 {p99:.0f} ms there)")

    detail = (
        f"P50, P99 and errors hold for {at(r['after'], after, r['after_p99_ms'])}, "
        f"for {at(r['before'], before, r['before_p99_ms'])}"
    )
    ratios, moves = r["round_ratios"], r["round_moves"]
    if len(ratios) > 1:
        detail += (
            f"; round by round {ratios_text(ratios)} "
            f"(median of {len(ratios)} rounds, each pair searched back to back)"
        )
    ratio = r["ratio"]
    if not r["before_rps"] and not r["after_rps"]:
        verdict = "neither holds at any rate tried"
    elif set(moves) == {"up"}:
        verdict = (
            "holds where the other never does"
            if not r["before_rps"]
            else f"{ratio:.1f}x the rate" + (" or more" if r["after_above"] else "")
        )
    elif set(moves) == {"down"}:
        verdict = "holds at no rate tried" if not r["after_rps"] else f"{1 / ratio:.1f}x lower rate"
    elif set(moves) == {"overlap"}:
        verdict = "no clear change"
        detail += "; in every round the two knees' brackets (held–failed) overlapped"
    else:
        verdict = "no clear change"  # the same words as a tie: a split vote is not a finding
        detail += (
            f"; the knees' brackets separated in {sum(m != 'overlap' for m in moves)} of {len(moves)} "
            "rounds: a change is named only when they separate the same way in every round"
        )
    if r["after_above"] or r["before_above"]:
        detail += "; ≥: no steady run failed, so the knee lies above the highest rate tried"
    return verdict, detail


def ratios_text(ratios: list[float]) -> str:
    """Round-by-round ratios as people read them: ``0.83x, 1.50x, 1.00x`` (∞: from no rate held)."""
    return ", ".join("∞" if math.isinf(x) else "–" if math.isnan(x) else f"{x:.2f}x" for x in ratios)


NO_MISS = "none within the rates tried"


def _spread(r: dict) -> str:
    """`` (median of 3 rounds: 147–210)`` when there were rounds, else nothing."""
    if r["rounds"] < 2:
        return ""
    return f" (median of {r['rounds']} rounds: {r['max_rate_lo']:,.0f}–{r['max_rate_hi']:,.0f})"


def _holds(r: dict) -> str:
    if r["max_rate"] > 0:
        text = f"P50, P99 and errors hold up to {r['max_rate']:,.0f} req/s{_spread(r)}"
    else:
        text = "P50, P99 and errors hold at none of the rates tried"
    if r["missed_at"]:
        where = "above it" if r["max_rate"] > 0 else "already"
        text += f"; {where} at {r['missed_at']:,.0f} req/s: {r['first_miss']}"
    return text


def at_holding_rate(summary: pl.DataFrame, maxima: pl.DataFrame) -> pl.DataFrame:
    """Each configuration's run at its highest holding rate in its median round (its lowest
    rate when none held): one run per configuration."""
    rows = []
    for r in maxima.iter_rows(named=True):
        part = summary.filter(pl.col("label") == r["label"])
        if "round" in part.columns:
            part = part.filter(pl.col("round") == r["median_round"])
        reps = representatives(part)
        chosen = [x for x in reps if x["offered_rps"] == r["max_rate"]] or reps[:1]
        rows += chosen
    return pl.DataFrame(rows, schema=summary.schema)


def conclusions(summary: pl.DataFrame, maxima: pl.DataFrame) -> str:
    """Each configuration's knee and each change's effect, in sentences from the numbers."""
    lines = [f"{r['label']}: {_holds(r)}." for r in maxima.iter_rows(named=True)]
    for r in changes(summary, maxima).iter_rows(named=True):
        verdict, detail = change_verdict(r)
        lines.append(f"{r['change']}: {verdict}; {detail}.")
    return "\n".join(lines)


def bracket_ratio(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[float, float]:
    """How far the ratio of two knees (``after`` / ``before``, rows of :func:`max_rate`) can lie
    over the rounds: each round's knees lie in [held, failed), so its ratio lies between
    after-held / before-failed and after-failed / before-held; the range spans every round.

    >>> bracket_ratio({"round_rates": [100, 120], "round_failed": [130, 140]},
    ...               {"round_rates": [300, 280], "round_failed": [350, math.inf]})
    (2.0, inf)
    """
    pairs = zip(
        before["round_rates"],
        before["round_failed"],
        after["round_rates"],
        after["round_failed"],
        strict=False,
    )
    lows, highs = [], []
    for bh, bf, ah, af in pairs:
        lows.append(ah / bf if math.isfinite(bf) and bf else 0.0)
        highs.append(af / bh if bh else math.inf)
    return (min(lows), max(highs)) if lows else (math.nan, math.nan)


def _by_label(frame: pl.DataFrame) -> dict[str, dict]:
    return {r["label"]: r for r in frame.iter_rows(named=True)}


def choose(
    summary: pl.DataFrame, maxima: pl.DataFrame, cap: pl.DataFrame, goal: Any = None, cores: int = 4
) -> dict[str, Any]:
    """What this lab would ship, from its own measurements: today's configuration (N+1 at the
    smallest pool, no cache), and the measured configuration closest to the chosen set: the
    loading strategy that beats N+1 in every round (the highest if several), the larger
    pool only if it beats the smaller in every round, the cache only when it beats no cache
    in every round *and* the target rate does not fit the profile's cores at the CPU target
    without it (:func:`capacity`). Each change's row of :func:`changes` comes with it."""
    configs = {c["label"]: c for c in _configs(summary, maxima)}
    dims: dict[str, list[dict]] = {}
    for r in changes(summary, maxima).iter_rows(named=True):
        before, after = configs[r["before"]], configs[r["after"]]
        dims.setdefault(next(d for d in DIMENSIONS if after.get(d) != before.get(d)), []).append(r)
    plain = [c for c in configs.values() if c["strategy"] == "n_plus_one" and not c["cache_seconds"]]
    today = min(plain or list(configs.values())[:1], key=lambda c: c.get("pool_size") or 0)

    def up(r: dict) -> bool:
        return set(r["round_moves"]) == {"up"}

    wins = [r for r in dims.get("strategy", []) if up(r)]
    strategy = max(wins, key=lambda r: r["after_rps"]) if wins else None
    pools = [configs[r["after"]]["pool_size"] for r in dims.get("pool_size", []) if up(r)]
    cache = next(iter(dims.get("cache_seconds", [])), None)
    ships, why = False, "not measured"
    if cache is not None:
        fits = _by_label(cap).get(cache["before"], {}).get("cpu") == MET
        if not up(cache):
            why = "no clear gain"
        elif fits:
            why = f"the target rate fits the profile's {cores} cores without it"
        else:
            ships, why = True, f"without it the target rate does not fit the profile's {cores} cores"
    want = {
        "strategy": configs[strategy["after"]]["strategy"] if strategy else "n_plus_one",
        "pool_size": max(pools, default=today.get("pool_size")),
        "cache_seconds": configs[cache["after"]]["cache_seconds"] if ships and cache else 0.0,
    }
    ship = max(configs.values(), key=lambda c: (sum(c.get(d) == want[d] for d in DIMENSIONS), c["max_rate"]))
    return {
        "today": today["label"],
        "shipped": ship["label"],
        "wanted": want,
        "strategy": strategy,
        "strategies": dims.get("strategy", []),
        "pool": next(iter(dims.get("pool_size", [])), None),
        "cache": cache,
        "cache_ships": ships,
        "cache_why": why,
    }


# ---- the notebook's verdicts ----------------------------------------------------------------------
EVIDENCE = "05_service_slo.html"
_DECISION = {MET: "ship", MISSED: "don't ship"}  # for targets the decision page reads them as met / missed


def _decision(verdict: str) -> str:
    return _DECISION.get(verdict, "not measured here")


def _ms(j: Mapping[str, Any]) -> str:
    return f"{j['value']:,.1f} ms (95% {j['low']:,.1f}-{j['high']:,.1f}, {j['n']:,} responses)"


def _shown(name: str, j: Mapping[str, Any]) -> str:
    """A judgement in words: ``P99 42.0 ms (95% 38.1-47.2, 3,012 responses): met``."""
    if name == "errors":
        what = f"errors {j['value']:.2%} ({j['n']:,} requests; 95% bounds {j['low']:.2%}-{j['high']:.2%})"
    elif name == "db_p99":
        what = f"DB P99 {j['value']:,.1f} ms ({j['n']:,} statements)"
    else:
        what = f"{_SHORT.get(name, name)} {_ms(j)}"
    return f"{what}: {j['verdict']}" + (f", {j['why']}" if j["why"] else "")


def _effect(name: str, j: Mapping[str, Any]) -> dict[str, Any]:
    if j["verdict"] == UNKNOWN:
        return {}
    scale, unit = (100, "%") if name == "errors" else (1, "ms")
    low = None if math.isnan(j["low"]) else j["low"] * scale
    high = None if math.isnan(j["high"]) else j["high"] * scale
    return {"effect": j["value"] * scale, "low": low, "high": high, "unit": unit}


def _row(frame: pl.DataFrame | None, *purposes: str) -> dict | None:
    """The confirmation run for the first of ``purposes`` that ran."""
    if frame is None or frame.is_empty() or "purpose" not in frame.columns:
        return None
    for purpose in purposes:
        rows = frame.filter(pl.col("purpose") == purpose)
        if rows.height:
            return rows.row(0, named=True)
    return None


TODAY, SHIPPED_AT_TODAY, SHIPPED = "today", "shipped, at today's knee", "shipped, at its knee"


def confirmation_plan(choice: Mapping[str, Any], maxima: pl.DataFrame) -> list[tuple[str, float, str]]:
    """The long steady runs that judge the SLOs and the success criteria: (configuration, rate,
    purpose). The shipped set at today's knee, then at its own knee (one service), then today
    at its knee (a fresh service): the first and last are a pair at one rate. When nothing
    ships (the shipped set is today's), one run serves all three purposes."""
    knees = _by_label(maxima)
    today, shipped = choice["today"], choice["shipped"]
    rate = knees[today]["max_rate"]
    if today == shipped:
        return [(today, rate, TODAY)] if rate > 0 else []
    plan = [
        (shipped, rate, SHIPPED_AT_TODAY),
        (shipped, knees[shipped]["max_rate"], SHIPPED),
        (today, rate, TODAY),
    ]
    return [p for p in plan if p[1] > 0]


def report_verdicts(
    summary: pl.DataFrame,
    maxima: pl.DataFrame,
    cap: pl.DataFrame,
    choice: Mapping[str, Any],
    confirmed: pl.DataFrame | None = None,
    prof: Any = None,
    runs: str = "",
    side: pl.DataFrame | None = None,
    counts: Mapping[str, float | None] | None = None,
) -> list:
    """The notebook's verdicts, what the run shows first: the plan items this lab decides (the
    cache, the pool size; its view of the N+1 fix), each SLO met / missed / not shown, the
    success criteria today against the shipped set, then the knees, limits and monitoring.

    ``confirmed`` is the summary of the long confirmation runs (:func:`confirmation_plan`,
    a ``purpose`` column); ``prof`` the profile (targets, hardware, conditions); ``runs``
    says which settings ran (indicative or thorough)."""
    from workbench.verdicts import Verdict

    goal = prof.slo if prof is not None else None
    cores = prof.hardware.cores if prof is not None else 4
    t = limits(goal)
    knees, caps = _by_label(maxima), _by_label(cap)
    today, shipped = choice["today"], choice["shipped"]
    base = _row(confirmed, TODAY)
    if today == shipped:  # nothing ships: today's one run is the shipped set's too
        at_knee = at_today = base
    else:
        at_knee, at_today = _row(confirmed, SHIPPED), _row(confirmed, SHIPPED_AT_TODAY)

    def cond(**extra: Any) -> dict[str, Any]:
        extra = {"rtt_ms": "loopback", "box": f"{os.cpu_count()} cores shared", **extra}
        if runs:
            extra["runs"] = runs
        return prof.conditions(**extra) if prof is not None else extra

    def v(topic: str, verdict: str, detail: str, **kw: Any) -> Verdict:
        return Verdict(topic, verdict, detail, engine="postgres", evidence=EVIDENCE, **kw)

    out = []
    # What the run shows, and what it could not: the first screen.
    k = knees[shipped]
    judged = {n: judge(at_knee, n, t[n]) for n in JUDGED} if at_knee else {}
    shown = "; ".join(_shown(n, j) for n, j in judged.items()) or "no confirmation run"
    unshown = [text(n, t) for n, j in judged.items() if j["verdict"] in (NOT_SHOWN, UNKNOWN)]
    if k["max_rate_lo"] < t["throughput"]:
        unshown.append(f"{text('throughput', t)} (this box holds {k['max_rate']:,.0f})")
    out.append(
        v(
            "what the service holds here, and what this run could not show",
            f"{shipped}: P50, P99 and errors hold to "
            f"{_rate(k['max_rate'], k['first_miss'] == NO_MISS)} req/s",
            f"{runs + '. ' if runs else ''}The shipped set as this lab measures it ({shipped}), at its knee"
            f" ({k['max_rate']:,.0f} req/s): {shown}. Not shown by this run: "
            f"{', '.join(unshown) or 'nothing'}. CPU and memory are answered as cost and capacity on the "
            f"profile's {cores} cores (below).",
            conditions=cond(configuration=shipped),
        )
    )
    out += _item_verdicts(choice, knees, caps, t, cores, cond, v)
    out += _slo_verdicts(shipped, k, at_knee, caps.get(shipped, {}), t, cores, cond, v)
    out += _success_verdicts(today, shipped, knees, base, at_today, t, cond, v)
    for r in maxima.iter_rows(named=True):
        out.append(
            v(
                f"highest arrival rate holding P50, P99 and errors: {r['label']}",
                f"{_rate(r['max_rate'], r['first_miss'] == NO_MISS)} req/s",
                f"{_holds(r)}. {_knee_sample(r)}. " + limit_sentence(caps[r["label"]]),
            )
        )
    held = at_holding_rate(summary, maxima)
    db = db_detail(held)
    if db:
        out.append(v("DB query time inside PostgreSQL (pg_stat_statements)", db[0], db[1]))
    if side is not None and counts:
        out.append(monitoring_verdict(side, counts))
    return out


def _change_fields(r: Mapping[str, Any], knees: Mapping[str, dict], cond: Any) -> dict[str, Any]:
    """A change's effect for the decision page: the median ratio of the knees, its bracket over
    the rounds (:func:`bracket_ratio`), and the two configurations compared."""
    lo, hi = bracket_ratio(knees[r["before"]], knees[r["after"]])
    high = hi if math.isfinite(hi) else None
    effect = r["ratio"] if math.isfinite(r["ratio"]) else None  # from no rate held: no ratio
    return {"effect": effect, "low": lo, "high": high, "unit": "x"} | {
        "conditions": cond(before=r["before"], after=r["after"])
    }


def _knee_sample(r: Mapping[str, Any]) -> str:
    """The sample behind a knee: the median round's run there, with its P50, P99 and error bound."""
    n = r["responses"] + r["errors"]
    if not n:
        return "No steady run held"
    high = error_bounds(r["errors"], n)[1]
    return (
        f"At the knee, the median round's steady run: P50 {r['p50_ms']:,.1f} ms, P99 {r['p99_ms']:,.0f} ms "
        f"from {r['responses']:,} responses, {r['errors']:,} errors (the rate up to {high:.2%} at 95%); "
        "indicative: the SLO verdicts rest on the confirmation runs"
    )


def _item_verdicts(choice, knees, caps, t, cores, cond, v) -> list:
    """The plan items this lab speaks to: its view of the N+1 fix, the pool size, the cache."""
    out = []
    strategies = choice["strategies"]
    if strategies:
        parts = [f"{r['change']}: {change_verdict(r)[0]}" for r in strategies]
        join = next((r for r in strategies if "JOIN" in r["change"]), None)
        best = choice["strategy"]
        if join is not None and set(join["round_moves"]) == {"up"}:
            decision, shown = "ship", join
        elif best is not None:
            decision, shown = "ship changed", best
        else:
            decision, shown = "don't ship", join or strategies[0]
        out.append(
            v(
                "the N+1 fix under load (capacity on this box)",
                "; ".join(parts),
                "; ".join(f"{r['change']}: {change_verdict(r)[1]}" for r in strategies)
                + ". What this lab adds to 02 (which measures query time at the profile's round trip and "
                "page size, and decides this item): the arrival rate each strategy holds P50, P99 and errors "
                "to under open-loop load, on this box's 2 cores shared by the generator, the service and "
                "PostgreSQL over loopback.",
                item="n_plus_one",
                decision=decision,
                **_change_fields(shown, knees, cond),
                flips="the ratio is of holding rates on this box; 02's round-trip sweep says where the JOIN "
                "overtakes N+1",
            )
        )
    pool = choice["pool"]
    if pool is not None:
        moves = set(pool["round_moves"])
        size_after = pool["change"].rsplit(" ", 1)[-1]
        size_before = pool["change"].split(" ")[2]
        if moves == {"up"}:
            decision, word = "ship changed", f"a pool of {size_after}: {change_verdict(pool)[0]}"
        else:
            decision, word = "don't ship", f"keep {size_before}: {size_after} gives {change_verdict(pool)[0]}"
        out.append(
            v(
                "the connection pool size",
                word,
                change_verdict(pool)[1],
                item="pool_size",
                decision=decision,
                **_change_fields(pool, knees, cond),
                cost=f"{size_after} connections per worker process instead of {size_before} on PostgreSQL",
                flips="with more cores per worker, or a slower database, a larger pool can help",
                artifact=f"pool_size = {size_after if decision == 'ship changed' else size_before}",
            )
        )
    cache = choice["cache"]
    if cache is not None:
        without, with_ = caps.get(cache["before"], {}), caps.get(cache["after"], {})
        ttl = cache["change"].split("(")[-1].rstrip(")")
        grow = (with_.get("service_peak_mb") or math.nan) - (without.get("service_peak_mb") or math.nan)
        need = without.get("cores_for_cpu_target", math.nan)
        verdict = change_verdict(cache)[0]
        if choice["cache_why"] != "no clear gain":
            verdict += f" ({choice['cache_why']})"
        out.append(
            v(
                "the query cache",
                verdict,
                f"{change_verdict(cache)[1]}. Without it, {capacity_sentence(without, cores, t['cpu'])}"
                if without
                else change_verdict(cache)[1],
                item="cache",
                decision="ship" if choice["cache_ships"] else "don't ship",
                **_change_fields(cache, knees, cond),
                cost=f"answers up to {ttl} stale"
                + (f"; {grow:+,.0f} MB peak memory per worker" if not math.isnan(grow) else ""),
                flips=_cache_flips(choice["cache_ships"], need, t["cpu"], ttl),
                artifact=f"cache_seconds = {ttl.split()[0]}" if choice["cache_ships"] else "",
            )
        )
    return out


def _cache_flips(ships: bool, need: float, cpu_target: float, ttl: str) -> str:
    """When the cache decision turns: the cores production needs without it, and staleness."""
    stale = f"answers may not be {ttl} stale"
    if math.isnan(need):
        return f"if {stale}"
    cores = math.ceil(need)
    if ships:
        return f"not needed once production has {cores} cores or more (the target rate then fits at " + (
            f"{cpu_target:.0%} CPU without it), or if {stale}"
        )
    return f"needed if production has fewer than {cores} cores (the target rate then needs more than " + (
        f"{cpu_target:.0%} CPU without it), unless {stale}"
    )


def _slo_verdicts(shipped, k, at_knee, c, t, cores, cond, v) -> list:
    """Each of the plan's SLOs for the shipped set: met / missed / not shown, with its sample."""
    out = []
    rate_cond = {"configuration": shipped}
    for name, item in (
        ("p50", "slo:p50"),
        ("p99", "slo:p99"),
        ("errors", "slo:errors"),
        ("db_p99", "slo:db_p99"),
    ):
        if at_knee is None:
            out.append(
                v(text(name, t), NOT_SHOWN, "no confirmation run", item=item, decision=_decision(NOT_SHOWN))
            )
            continue
        j = judge(at_knee, name, t[name])
        seconds = at_knee.get("seconds") or 0
        out.append(
            v(
                text(name, t),
                j["verdict"],
                f"{shipped} at {at_knee['offered_rps']:,.0f} req/s (its knee on this box), one steady run of "
                f"{seconds:.0f} s from a fresh service: {_shown(name, j)}",
                item=item,
                decision=_decision(j["verdict"]),
                conditions=cond(**rate_cond, rate_rps=at_knee["offered_rps"], n=j["n"]),
                **_effect(name, j),
            )
        )
    rate = t["throughput"]
    met = k["max_rate_lo"] >= rate
    out.append(
        v(
            text("throughput", t),
            MET if met else NOT_SHOWN,
            f"{shipped} holds P50, P99 and errors to {k['max_rate']:,.0f} req/s on this box{_spread(k)}"
            + (
                ""
                if met
                else f", below {rate:,.0f}: what {rate:,.0f} req/s needs on the profile's hardware is "
                "answered by the CPU and memory rows"
            ),
            item="slo:rate",
            decision=_decision(MET if met else NOT_SHOWN),
            effect=k["max_rate"],
            low=k["max_rate_lo"],
            high=k["max_rate_hi"],
            unit="req/s",
            conditions=cond(**rate_cond),
        )
    )
    if c and c["cost_runs"]:
        need_hi = c["service_cpu_ms_hi"] * rate / 1000
        at_most = cores * t["cpu"] * 1000 / c["service_cpu_ms_hi"]
        out.append(
            v(
                text("cpu", t),
                c["cpu"],
                f"as capacity, not per run on this shared box: {capacity_sentence(c, cores, t['cpu'])}",
                item="slo:cpu",
                decision=_decision(c["cpu"]),
                effect=c["cpu_share_at_target"] * 100,
                low=c["cpu_share_lo"] * 100,
                high=c["cpu_share_hi"] * 100,
                unit="%",
                conditions=cond(**rate_cond, target_rps=rate, cores=cores),
                flips=f"met with {math.ceil(need_hi / t['cpu'])} cores or more"
                if c["cpu"] != MET
                else f"missed above about {at_most:,.0f} req/s on {cores} cores",
            )
        )
        out.append(
            v(
                text("memory", t),
                c["memory"],
                f"peak resident memory of the service at steady rates below its knee: "
                f"{c['service_peak_mb']:,.0f} MB per worker process (its high-water mark); "
                f"{rate:,.0f} req/s takes {c['workers_at_target']} worker process"
                f"{'es' if c['workers_at_target'] != 1 else ''} (a worker uses at most one core): "
                f"about {c['memory_at_target_mb']:,.0f} MB",
                item="slo:memory",
                decision=_decision(c["memory"]),
                effect=c["memory_at_target_mb"],
                unit="MB",
                conditions=cond(**rate_cond, target_rps=rate),
            )
        )
    return out


def _success_verdicts(today, shipped, knees, base, at_today, t, cond, v) -> list:
    """The plan's success criteria, today against the shipped set, where this lab measures them."""
    out = []
    same = today == shipped
    nothing = f"nothing ships from this lab: the shipped set is today's ({today})" if same else ""
    lo, hi = bracket_ratio(knees[today], knees[shipped])
    ratio = knees[shipped]["max_rate"] / knees[today]["max_rate"] if knees[today]["max_rate"] else math.inf
    verdict = MET if lo >= 2 else MISSED if hi < 2 else NOT_SHOWN
    out.append(
        v(
            "success criterion: twice the concurrent capacity",
            verdict,
            nothing
            or f"the arrival rate holding P50, P99 and errors: today ({today}) "
            f"{knees[today]['max_rate']:,.0f} req/s{_spread(knees[today])}, with the shipped set ({shipped}) "
            f"{knees[shipped]['max_rate']:,.0f} req/s{_spread(knees[shipped])}; round by round the ratio "
            f"lies {f'in {lo:.2f}-{hi:.2f}x' if math.isfinite(hi) else f'at {lo:.2f}x or more'} "
            "(met only when every round's bracket clears 2x)",
            item="success:capacity",
            decision=_decision(verdict),
            effect=ratio if math.isfinite(ratio) else None,
            low=None if same else lo,
            high=hi if math.isfinite(hi) and not same else None,
            unit="x",
            conditions=cond(today=today, shipped=shipped),
        )
    )
    if base is None or at_today is None:
        return out
    rate = base["offered_rps"]
    for name, item in (("p99", "success:p99"), ("errors", "success:errors")):
        before, after = judge(base, name, t[name]), judge(at_today, name, t[name])
        out.append(
            v(
                f"success criterion: {text(name, t)}, today against the shipped set",
                after["verdict"],
                f"{nothing}; its run at {rate:,.0f} req/s: {_shown(name, after)}"
                if same
                else f"both at {rate:,.0f} req/s (today's knee), one steady run each from a fresh service: "
                f"today ({today}) {_shown(name, before)}; "
                f"with the shipped set ({shipped}) {_shown(name, after)}",
                item=item,
                decision=_decision(after["verdict"]),
                conditions=cond(today=today, shipped=shipped, rate_rps=rate, n=after["n"]),
                **_effect(name, after),
            )
        )
    a, b = at_today.get("service_peak_mb"), base.get("service_peak_mb")
    if a and b:
        lower = 1 - a / b
        verdict = MET if lower >= 0.30 else MISSED
        out.append(
            v(
                "success criterion: memory 30% lower",
                verdict,
                f"the service's peak resident memory at {rate:,.0f} req/s, each from a fresh start (one run "
                f"each): today {b:,.0f} MB, with the shipped set {a:,.0f} MB "
                f"({abs(lower):.0%} {'lower' if lower >= 0 else 'higher'})",
                item="success:memory",
                decision=_decision(verdict),
                effect=lower * 100,
                unit="%",
                conditions=cond(today=today, shipped=shipped, rate_rps=rate),
            )
        )
    return out


def db_detail(held: pl.DataFrame) -> tuple[str, str] | None:
    """(verdict, detail) on what pg_stat_statements says at each configuration's knee: the
    server's mean and max beside the service's own statement P99 (which includes the round
    trip and the fetch); its P99 column is only an upper bound."""
    if "pgss_mean_ms" not in held.columns or held.is_empty():
        return None
    worst = held.sort("db_p99_ms", descending=True, nulls_last=True).row(0, named=True)
    if worst.get("pgss_mean_ms") is None or math.isnan(worst["pgss_mean_ms"]):
        return None
    return (
        f"mean {worst['pgss_mean_ms']:.2f} ms inside the server ({worst['label']})",
        f"at {worst['offered_rps']:,.0f} req/s the service timed its statements at P99 "
        f"{worst['db_p99_ms']:.1f} ms (round trip and row fetch included); pg_stat_statements, inside the "
        f"server, mean {worst['pgss_mean_ms']:.2f} ms, max {worst['pgss_max_ms']:.1f} ms, P99 at most "
        f"{worst['pgss_p99_bound_ms']:.1f} ms (it keeps no percentiles: Cantelli's bound from its mean and "
        "stddev, not an estimate)",
    )


def monitoring_verdict(
    side: pl.DataFrame, counts: Mapping[str, float | None], tolerance: float = 0.02
) -> Any:
    """Does Prometheus agree with the load tool? Counts are compared within ``tolerance`` (or one
    request); rates differ by their windows: Prometheus's is its count over the window it was
    asked for (the run plus the scrape after it), the load tool's is over the run."""
    from workbench.verdicts import Verdict

    tool, prom = counts.get("load_tool"), counts.get("prometheus")
    rows = {r["slo"]: r for r in side.iter_rows(named=True)}
    rate = next((r for s, r in rows.items() if s.endswith("req/s")), {})
    p99 = next((r for s, r in rows.items() if "P99" in s and "DB" not in s), {})
    if tool is None or prom is None:
        return Verdict(
            "monitoring (Prometheus) against the load tool", "not compared", "Prometheus had no data"
        )
    agree = abs(prom - tool) <= max(1.0, tolerance * tool)
    detail = f"answered requests: Prometheus {prom:,.0f}, the load tool {tool:,.0f}"
    detail += f" ({'within' if agree else 'outside'} ±{tolerance:.0%} or one request)"
    if rate.get("prometheus") and rate.get("load_tool"):
        window = prom / rate["prometheus"]
        run = tool / rate["load_tool"]
        detail += (
            f"; rates {rate['prometheus']:,.1f} against {rate['load_tool']:,.1f} req/s differ by their "
            "windows: "
            f"Prometheus divides its count by the {window:.1f} s it was asked about (the run, the set-up "
            f"before it and the scrape after it), the load tool by the run's {run:.1f} s"
        )
    if p99.get("prometheus_shown"):
        detail += (
            f"; P99 {p99['prometheus_shown']} inside the app (interpolated in histogram buckets) against "
            f"{p99['load_tool_shown']} from the intended send time (queueing outside the app included)"
        )
    word = "agrees on the count" if agree else f"differs ({prom:,.0f} vs {tool:,.0f} requests)"
    return Verdict("monitoring (Prometheus) against the load tool", word, detail, evidence=EVIDENCE)

"""The plan's SLOs, judged: verdicts per run, the highest rate that holds, error budget, capacity.

The plan's targets: API P50 < 50 ms and P99 < 200 ms, 1,000 req/s, memory < 500 MB,
CPU < 30%, DB query P99 < 100 ms, error rate < 0.1%. Each is a column of a sweep's
summary (:func:`workbench.service.experiment.summary`); :func:`verdicts` says for each
run whether it was met and by how much; :func:`max_rate` is the highest offered rate at
which every SLO but the throughput target held (the throughput target is the rate
itself); :func:`capacity` turns the measured CPU per request into what 1,000 req/s needs.

>>> table = verdicts(experiment.summary(runs))                     # doctest: +SKIP
>>> max_rate(experiment.summary(runs))                            # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

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
#: The SLOs that must hold at a rate for it to count (the throughput target is the rate itself).
HOLDING = tuple(s.name for s in SLOS if s.name != "throughput")


def slo(name: str) -> SLO:
    for s in SLOS:
        if s.name == name:
            return s
    raise KeyError(f"Unknown SLO {name!r}: expected one of {', '.join(s.name for s in SLOS)}")


def _fmt(value: float, unit: str) -> str:
    if unit == "":
        return f"{value:.2%}" if value < 1 else f"{value:.0%}"
    return f"{value:,.1f} {unit}" if value < 1000 else f"{value:,.0f} {unit}"


def verdicts(summary: pl.DataFrame, keys: tuple[str, ...] = ("label", "offered_rps")) -> pl.DataFrame:
    """Long table: per run and SLO, the measured value, met or missed, and by how much.

    ``margin`` is measured / target; ``verdict`` a short computed word with the number.
    A value the run could not measure (no local PostgreSQL, k6 without p99) is ``unknown``.
    """
    rows = []
    for r in summary.iter_rows(named=True):
        for s in SLOS:
            value = r.get(s.column)
            ok = s.met(value)
            if ok is None:
                verdict, margin = "unknown", math.nan
            else:
                margin = value / s.target if s.target else math.nan
                if ok:
                    verdict = "met"
                elif s.op == "<":
                    verdict = f"missed by {margin:.1f}x" if margin >= 1.1 else "missed"
                else:
                    verdict = f"missed ({margin:.0%} of target)"
            rows.append(
                {
                    **{k: r.get(k) for k in keys},
                    "slo": s.text,
                    "target": s.target,
                    "measured": value if value is not None else math.nan,
                    "shown": "" if ok is None else _fmt(value, s.unit),
                    "met": ok,
                    "margin": margin,
                    "verdict": verdict,
                }
            )
    return pl.DataFrame(rows)


def max_rate(summary: pl.DataFrame, holding: tuple[str, ...] = HOLDING) -> pl.DataFrame:
    """Per configuration (``label``): the highest offered rate at which every SLO in
    ``holding`` held (unknowns ignored), and the first SLO to fail above it (and where)."""
    out = []
    for (label,), part in summary.sort("offered_rps").group_by("label", maintain_order=True):
        best, failed, failed_at = None, None, None
        for r in part.iter_rows(named=True):
            misses = [s.text for s in SLOS if s.name in holding and s.met(r.get(s.column)) is False]
            if misses:
                failed, failed_at = ", ".join(misses), r["offered_rps"]
                break
            best = r
        out.append(
            {
                "label": label,
                "max_rate": best["offered_rps"] if best else 0.0,
                "achieved_rps": best["achieved_rps"] if best else 0.0,
                "p99_ms": best["p99_ms"] if best else math.nan,
                "first_miss": failed or "none within the rates tried",
                "missed_at": failed_at,
            }
        )
    return pl.DataFrame(out)


def past_knee(row: pl.DataFrame, p99_factor: float = 5.0, error_rate: float = 0.05) -> bool:
    """True once a run is far past the knee (P99 over ``p99_factor`` × its SLO, or errors over
    ``error_rate``): a sweep stops there, since more load only adds queueing."""
    r = row.row(0, named=True)
    return (r["p99_ms"] or 0) > p99_factor * slo("p99").target or r["error_rate"] > error_rate


def error_budget(summary: pl.DataFrame, objective: float = 0.001) -> pl.DataFrame:
    """Per run: requests, errors, the budget (``objective`` × requests) and its share used."""
    return summary.select(
        "label",
        "offered_rps",
        pl.col("sent").alias("requests"),
        "errors",
        (pl.col("sent") * objective).alias("budget"),
        (pl.col("errors") / (pl.col("sent") * objective)).alias("budget_used"),
    )


def capacity(summary: pl.DataFrame, target_rps: float = 1000, cpu_target: float = 0.30) -> pl.DataFrame:
    """From the highest-rate run of each configuration: CPU ms per request of the service
    and of PostgreSQL, what ``target_rps`` would need in cores (at ``cpu_target``
    utilisation, the plan's CPU SLO), and what limited this machine."""
    out = []
    cpus = os.cpu_count() or 1
    for (label,), part in summary.sort("offered_rps").group_by("label", maintain_order=True):
        top = part.row(part.height - 1, named=True)
        svc_ms = top.get("service_cpu_ms_per_req") or math.nan
        db_ms = top.get("db_cpu_ms_per_req") or math.nan
        gen = top.get("generator_cores") or 0.0
        svc_cores_now, db_cores_now = top.get("service_cores") or 0.0, top.get("postgres_cores") or 0.0
        machine = top.get("machine_cores")
        workers = top.get("workers") or 1
        busiest = max(
            [
                ("the service's CPU", svc_cores_now / workers),
                ("PostgreSQL's CPU", db_cores_now / cpus),
                ("the load generator's CPU", gen),
            ],
            key=lambda kv: kv[1],
        )
        waits = (top.get("pool_wait_p99_ms") or 0.0) > 0.5 * (top.get("p99_ms") or math.inf)
        if machine is not None and machine / cpus >= 0.9:
            others = max(0.0, machine - svc_cores_now - db_cores_now - gen)
            limit = (
                f"the machine's CPU ({machine / cpus:.0%} busy: service {svc_cores_now:.2f}, PostgreSQL "
                f"{db_cores_now:.2f}, generator {gen:.2f}, other processes {others:.2f} cores)"
            )
        elif busiest[1] >= 0.85:
            limit = f"{busiest[0]} ({busiest[1]:.0%} of a core per process)"
        elif waits:
            limit = "the connection pool (waits dominate P99)"
        else:
            limit = f"nothing saturated yet (busiest: {busiest[0]}, {busiest[1]:.0%})"
        lag = top.get("send_lag_p99_ms")
        svc_need = target_rps * svc_ms / 1000
        db_need = target_rps * db_ms / 1000
        out.append(
            {
                "label": label,
                "rate_tried": top["offered_rps"],
                "achieved_rps": top["achieved_rps"],
                "limited_by": limit,
                "service_cpu_ms_per_req": svc_ms,
                "db_cpu_ms_per_req": db_ms,
                "service_cores_at_target": svc_need,
                "db_cores_at_target": db_need,
                "cores_needed": (svc_need + (0 if math.isnan(db_need) else db_need)) / cpu_target,
                "service_workers_at_target": math.ceil(svc_need / 0.7) if not math.isnan(svc_need) else None,
                "send_lag_p99_ms": lag,
            }
        )
    return pl.DataFrame(out)


def capacity_sentence(cap: pl.DataFrame, target_rps: float = 1000, cpu_target: float = 0.30) -> str:
    """The capacity table in words: what was reached, what limited it, what production needs."""
    lines = []
    for r in cap.iter_rows(named=True):
        lines.append(
            f"{r['label']}: reached {r['achieved_rps']:,.0f} req/s (offered {r['rate_tried']:,.0f}), "
            f"limited by {r['limited_by']}; at {r['service_cpu_ms_per_req']:.1f} ms of service CPU and "
            f"{r['db_cpu_ms_per_req']:.1f} ms of PostgreSQL CPU per request, {target_rps:,.0f} req/s needs "
            f"~{r['service_cores_at_target']:.1f} + {r['db_cores_at_target']:.1f} cores busy, so "
            f"~{r['cores_needed']:.0f} cores to stay under {cpu_target:.0%} CPU "
            f"({r['service_workers_at_target']} service worker processes)."
            + (
                f" The generator's send lag P99 was {r['send_lag_p99_ms']:.1f} ms there: the latencies "
                "include the machine's contention, not only the service's."
                if (r.get("send_lag_p99_ms") or 0) > 1
                else ""
            )
        )
    return "\n".join(lines)


def _baseline(summary: pl.DataFrame) -> str | None:
    if "strategy" not in summary.columns:
        return None
    base = summary.filter(pl.col("strategy") == "n_plus_one")
    return base["label"][0] if base.height else None


def _p99_at(summary: pl.DataFrame, label: str, rate: float) -> float | None:
    row = summary.filter((pl.col("label") == label) & (pl.col("offered_rps") == rate))
    return row["p99_ms"][0] if row.height else None


def _holds(r: dict) -> str:
    if r["max_rate"] > 0:
        text = f"every SLO but throughput holds up to {r['max_rate']:g} req/s"
    else:
        text = "the SLOs hold at none of the rates tried"
    if r["missed_at"]:
        where = "above it" if r["max_rate"] > 0 else "already"
        text += f"; {where} at {r['missed_at']:g} req/s: {r['first_miss']}"
    return text


def at_holding_rate(summary: pl.DataFrame, maxima: pl.DataFrame) -> pl.DataFrame:
    """Each configuration's run at its highest holding rate (its lowest rate when none held)."""
    lowest = summary.group_by("label").agg(pl.col("offered_rps").min().alias("lowest"))
    chosen = maxima.join(lowest, on="label").select(
        "label", pl.when(pl.col("max_rate") > 0).then("max_rate").otherwise("lowest").alias("offered_rps")
    )
    return summary.join(chosen, on=["label", "offered_rps"])


def conclusions(summary: pl.DataFrame, maxima: pl.DataFrame) -> str:
    """Which configuration moves the SLOs and by how much, in sentences built from the numbers."""
    base = _baseline(summary)
    best = maxima.sort("max_rate", descending=True).row(0, named=True)
    lines = [f"{r['label']}: {_holds(r)}." for r in maxima.iter_rows(named=True)]
    if base is not None:
        b = maxima.filter(pl.col("label") == base).row(0, named=True)
        for r in maxima.iter_rows(named=True):
            if r["label"] == base:
                continue
            common = summary.filter(pl.col("label").is_in([base, r["label"]])).group_by("offered_rps").len()
            shared = common.filter(pl.col("len") == 2)["offered_rps"]
            text = f"{r['label']} against N+1 ({base}): "
            if b["max_rate"] and r["max_rate"]:
                text += f"{r['max_rate'] / b['max_rate']:.1f}x the holding rate"
            elif b["max_rate"]:
                text += f"holds at none of the rates where N+1 holds to {b['max_rate']:g} req/s"
            elif r["max_rate"]:
                text += f"holds to {r['max_rate']:g} req/s where N+1 holds at none"
            else:
                text += "neither holds at any rate tried"
            if shared.len():
                rate = shared.max()
                mine, theirs = _p99_at(summary, r["label"], rate), _p99_at(summary, base, rate)
                if mine and theirs:
                    text += f"; at {rate:g} req/s its P99 is {mine:.1f} ms against {theirs:.1f} ms"
                    text += f" ({theirs / mine:.1f}x)"
            lines.append(text + ".")
    top = summary["achieved_rps"].max()
    lines.append(
        f"Best: {best['label']} ({best['max_rate']:g} req/s). Highest throughput achieved on this machine: "
        f"{top:,.0f} req/s, {'above' if top >= 1000 else 'below'} the plan's 1,000 req/s."
    )
    return "\n".join(lines)


def report_verdicts(
    summary: pl.DataFrame,
    maxima: pl.DataFrame,
    cap: pl.DataFrame,
    side: pl.DataFrame | None = None,
    counts: dict[str, float] | None = None,
) -> list:
    """The notebook's verdicts: holding rate per configuration, 1,000 req/s, the change that
    moves the SLOs, the error budget, and whether Prometheus agrees with the load tool."""
    from workbench.report import Verdict

    out = []
    for r in maxima.iter_rows(named=True):
        detail = (
            f"every SLO but throughput holds up to {r['max_rate']:g} req/s (P99 {r['p99_ms']:.1f} ms there)"
        )
        if r["missed_at"]:
            detail += f"; at {r['missed_at']:g} req/s it misses {r['first_miss']}"
        out.append(Verdict(f"the SLOs under load: {r['label']}", f"holds to {r['max_rate']:g} req/s", detail))
    c = cap.sort("achieved_rps", descending=True).row(0, named=True)
    reached = summary["achieved_rps"].max()
    out.append(
        Verdict(
            "1,000 req/s",
            "met" if reached >= 1000 else f"not reachable here ({reached:,.0f} req/s)",
            capacity_sentence(cap.filter(pl.col("label") == c["label"])),
        )
    )
    base = _baseline(summary)
    if base is not None:
        b = maxima.filter(pl.col("label") == base)["max_rate"][0]
        best = maxima.filter(pl.col("label") != base).sort("max_rate", descending=True)
        if best.height:
            r = best.row(0, named=True)
            name = r["label"].split()[0]
            detail = f"{r['label']} holds every SLO but throughput to {r['max_rate']:g} req/s"
            detail += f", N+1 ({base}) to {b:g}"
            if r["max_rate"] != b:
                verdict = (
                    f"{name}: {r['max_rate'] / b:.1f}x N+1's rate"
                    if b
                    else f"{name}: holds where N+1 never does"
                )
                if r["max_rate"] == 0:
                    verdict = f"none: N+1 holds to {b:g} req/s, the others at no rate tried"
            else:  # the same holding rate: the latency at the highest rate both ran decides
                both = summary.filter(pl.col("label").is_in([base, r["label"]])).group_by("offered_rps").len()
                rate = both.filter(pl.col("len") == 2)["offered_rps"].max()
                mine, theirs = _p99_at(summary, r["label"], rate), _p99_at(summary, base, rate)
                ratio = theirs / mine if mine and theirs else math.nan
                verdict = f"{name}: same rate, P99 {ratio:.1f}x {'lower' if ratio >= 1 else 'higher'}"
                detail += f"; at {rate:g} req/s P99 {mine:.1f} ms against N+1's {theirs:.1f} ms"
                if rate == summary["offered_rps"].max():
                    detail += " (both held at every rate tried: raise `rates` to find the knee)"
            out.append(Verdict("which of the plan's changes moves the SLOs", verdict, detail))
    budget = error_budget(at_holding_rate(summary, maxima))
    worst = budget.sort("budget_used", descending=True, nulls_last=True)
    if worst.height:
        w = worst.row(0, named=True)
        out.append(
            Verdict(
                "error rate < 0.1% (error budget)",
                f"{w['budget_used']:.0%} used at most",
                f"at each configuration's holding rate; the most: {w['label']} with {w['errors']} errors "
                f"in {w['requests']:,} requests (budget {w['budget']:.1f})",
            )
        )
    if side is not None:
        rows = {r["slo"]: r for r in side.iter_rows(named=True)}
        p99 = rows.get(slo("p99").text, {})
        detail = (
            f"P99 {p99.get('prometheus_shown')} inside the app (interpolated in histogram buckets) against "
            f"{p99.get('load_tool_shown')} "
            "from the intended send time (queueing outside the app included)"
        )
        verdict = "compared"
        if counts and counts.get("prometheus") is not None:
            same = counts["prometheus"] == counts["load_tool"]
            verdict = (
                "agrees" if same else f"differs ({counts['prometheus']:.0f} vs {counts['load_tool']:.0f})"
            )
            detail = (
                f"Prometheus counted {counts['prometheus']:.0f} answered requests, the load tool "
                f"{counts['load_tool']:.0f}; " + detail
            )
        out.append(Verdict("monitoring (Prometheus) agrees with the load test", verdict, detail))
    return out

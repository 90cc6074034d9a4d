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
import statistics
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

    def met(self, value: float) -> bool | None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return value < self.target if self.op == "<" else value >= self.target


SLOS: tuple[SLO, ...] = (
    SLO(
        "p50",
        "API P50 < 50 ms",
        "p50_ms",
        50,
        "<",
        "ms",
    ),
    SLO(
        "p99",
        "API P99 < 200 ms",
        "p99_ms",
        200,
        "<",
        "ms",
    ),
    SLO(
        "throughput",
        "1,000 req/s",
        "achieved_rps",
        1000,
        ">=",
        "req/s",
    ),
    SLO(
        "errors",
        "error rate < 0.1%",
        "error_rate",
        0.001,
        "<",
        "",
    ),
    SLO(
        "db_p99",
        "DB query P99 < 100 ms",
        "db_p99_ms",
        100,
        "<",
        "ms",
    ),
    SLO(
        "memory",
        "memory < 500 MB",
        "service_peak_mb",
        500,
        "<",
        "MB",
    ),
    SLO(
        "cpu",
        "CPU < 30%",
        "service_cpu_share",
        0.30,
        "<",
        "",
    ),
)
#: The SLOs that must hold at a rate for it to count (the throughput target is the rate itself).
HOLDING = tuple(s.name for s in SLOS if s.name != "throughput")


def slo(name: str) -> SLO:
    for s in SLOS:
        if s.name == name:
            return s
    raise KeyError(f"Unknown SLO {name!r}: expected one of {', '.join(s.name for s in SLOS)}")


def misses(row: dict, names: tuple[str, ...] = HOLDING) -> list[str]:
    """The SLOs among ``names`` that ``row`` (a summary row) misses; values it lacks are skipped."""
    return [s.text for s in SLOS if s.name in names and s.met(row.get(s.column)) is False]


_SHORT = {"p50": "P50", "p99": "P99", "db_p99": "DB P99", "cpu": "CPU"}  # the rest: their own name


def missed_names(row: dict, names: tuple[str, ...] = HOLDING) -> str:
    """The SLOs ``row`` misses in a word each (``P99, CPU``), or ``none``: a table's column."""
    missed = [s for s in SLOS if s.name in names and s.met(row.get(s.column)) is False]
    return ", ".join(_SHORT.get(s.name, s.name) for s in missed) or "none"


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


def representatives(part: pl.DataFrame, holding: tuple[str, ...] = HOLDING) -> list[dict]:
    """One run per offered rate, ascending: one that held where any did (a rate re-run after a
    failure holds if the re-run held), else the last that failed."""
    out = []
    for (_,), runs in part.sort("offered_rps").group_by("offered_rps", maintain_order=True):
        rows = runs.to_dicts()
        held = [r for r in rows if not misses(r, holding)]
        out.append(held[-1] if held else rows[-1])
    return out


def max_rate(summary: pl.DataFrame, holding: tuple[str, ...] = HOLDING) -> pl.DataFrame:
    """Per configuration (``label``): the highest offered rate at which every SLO in ``holding``
    held (unknowns ignored), and the first SLO to fail above it (and where).

    With a ``round`` column (:func:`workbench.service.experiment.find_knees`), each round is
    judged on its own runs: ``round_rates`` lists each round's rate in round order,
    ``round_failed`` the lowest rate above it that failed (∞: none did; the knee lies
    between the two), and ``max_rate`` is the rates' lower median (a rate that was run, and
    robust to one round hit by a burst of other work), ``max_rate_lo``–``max_rate_hi``
    their range; the P99 and the first miss are those of the median round
    (``median_round``). Without it, everything is one round."""
    rounds = summary if "round" in summary.columns else summary.with_columns(pl.lit(0).alias("round"))
    per_round = []
    for (label, round_), part in rounds.sort("offered_rps").group_by("label", "round", maintain_order=True):
        best, failed, failed_at = None, None, None
        for r in representatives(part, holding):
            missed = misses(r, holding)
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
                "p99_ms": best["p99_ms"] if best else math.nan,
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


def capacity(summary: pl.DataFrame, target_rps: float = 1000, cpu_target: float = 0.30) -> pl.DataFrame:
    """Per configuration: what limited it, from its lowest-rate run that missed an SLO (the
    run past the knee; its highest run when none missed), and what ``target_rps`` would need.

    The CPU cost per request of the service and of PostgreSQL is taken at the highest rate
    that held (not past the knee, where queueing and contention inflate it); at
    ``cpu_target`` utilisation (the plan's CPU SLO) it gives the cores ``target_rps`` needs.
    """
    out = []
    cpus = os.cpu_count() or 1
    for (label,), part in summary.sort("offered_rps").group_by("label", maintain_order=True):
        rows = representatives(part)
        missed = [r for r in rows if misses(r)]
        held = [r for r in rows if not misses(r)]
        past = missed[0] if missed else rows[-1]
        cost = held[-1] if held else past
        svc_ms = cost.get("service_cpu_ms_per_req") or math.nan
        db_ms = cost.get("db_cpu_ms_per_req") or math.nan
        svc_need = target_rps * svc_ms / 1000
        db_need = target_rps * db_ms / 1000
        out.append(
            {
                "label": label,
                "rate_tried": past["offered_rps"],
                "achieved_rps": past["achieved_rps"],
                "missed": ", ".join(misses(past)) or "none",
                "limited_by": _limit(past, cpus),
                "cost_at_rps": cost["offered_rps"],
                "service_cpu_ms_per_req": svc_ms,
                "db_cpu_ms_per_req": db_ms,
                "service_cores_at_target": svc_need,
                "db_cores_at_target": db_need,
                "cores_needed": (svc_need + (0 if math.isnan(db_need) else db_need)) / cpu_target,
                "service_workers_at_target": math.ceil(svc_need / 0.7) if not math.isnan(svc_need) else None,
                "send_lag_p99_ms": past.get("send_lag_p99_ms"),
            }
        )
    return pl.DataFrame(out)


def capacity_sentence(cap: pl.DataFrame, target_rps: float = 1000, cpu_target: float = 0.30) -> str:
    """The capacity table in words: what missed first, what limited it, what production needs."""
    lines = []
    for r in cap.iter_rows(named=True):
        if r["missed"] != "none":
            where = f"at {r['rate_tried']:,.0f} req/s offered it missed {r['missed']}"
            where += f", limited by {r['limited_by']}"
        else:
            where = (
                f"it held at every steady rate tried (up to {r['rate_tried']:,.0f} req/s), where it was "
                f"bounded by {r['limited_by']}"
            )
        lines.append(
            f"{r['label']}: {where}; at {r['service_cpu_ms_per_req']:.1f} ms "
            f"of service CPU and {r['db_cpu_ms_per_req']:.1f} ms of PostgreSQL CPU per request (measured "
            f"at {r['cost_at_rps']:,.0f} req/s), {target_rps:,.0f} req/s needs "
            f"~{r['service_cores_at_target']:.1f} + {r['db_cores_at_target']:.1f} cores busy, so "
            f"~{r['cores_needed']:.0f} core{'s' if round(r['cores_needed']) != 1 else ''} to stay under "
            f"{cpu_target:.0%} CPU "
            f"({r['service_workers_at_target']} service worker process"
            f"{'es' if r['service_workers_at_target'] != 1 else ''})."
            + (
                f" The generator's send lag P99 was {r['send_lag_p99_ms']:.1f} ms there: the latencies "
                "include the machine's contention, not only the service's."
                if (r.get("send_lag_p99_ms") or 0) > 1
                else ""
            )
        )
    return "\n".join(lines)


#: The plan's changes, as the settings that differ between two configurations.
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
    detail = (
        f"{r['after']} holds every SLO up to {after} req/s (P99 {r['after_p99_ms']:.0f} ms there), "
        f"{r['before']} up to {before} req/s (P99 {r['before_p99_ms']:.0f} ms)"
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
        text = f"every SLO holds up to {r['max_rate']:,.0f} req/s{_spread(r)}"
    else:
        text = "the SLOs hold at none of the rates tried"
    if r["missed_at"]:
        where = "above it" if r["max_rate"] > 0 else "already"
        text += f"; {where} at {r['missed_at']:,.0f} req/s: {r['first_miss']}"
    return text


def at_holding_rate(summary: pl.DataFrame, maxima: pl.DataFrame) -> pl.DataFrame:
    """Each configuration's run at its highest holding rate (its lowest rate when none held);
    one run per configuration (the one that held where a rate was run twice)."""
    rows = []
    for r in maxima.iter_rows(named=True):
        reps = representatives(summary.filter(pl.col("label") == r["label"]))
        chosen = [x for x in reps if x["offered_rps"] == r["max_rate"]] or reps[:1]
        rows += chosen
    return pl.DataFrame(rows, schema=summary.schema)


def conclusions(summary: pl.DataFrame, maxima: pl.DataFrame) -> str:
    """Each configuration's holding rate and each change's effect, in sentences from the numbers."""
    lines = [f"{r['label']}: {_holds(r)}." for r in maxima.iter_rows(named=True)]
    for r in changes(summary, maxima).iter_rows(named=True):
        verdict, detail = change_verdict(r)
        lines.append(f"{r['change']}: {verdict}; {detail}.")
    top = held_throughput(summary)
    best = maxima.sort("max_rate", descending=True).row(0, named=True)
    lines.append(
        f"Best: {best['label']} ({best['max_rate']:,.0f} req/s). Highest throughput achieved on this machine "
        f"with every other SLO held: {top:,.0f} req/s, {'above' if top >= 1000 else 'below'} the plan's "
        f"1,000 req/s (the most answered at any rate: {summary['achieved_rps'].max():,.0f} req/s)."
    )
    return "\n".join(lines)


def held_throughput(summary: pl.DataFrame) -> float:
    """The highest achieved rate among runs that held every other SLO (0 when none held): the
    throughput SLO counts only where the latency, error, CPU and memory SLOs hold too."""
    held = [r["achieved_rps"] for r in summary.iter_rows(named=True) if not misses(r)]
    return max(held, default=0.0)


def db_verdict(summary: pl.DataFrame) -> tuple[str, str] | None:
    """(verdict, detail) on the DB P99 SLO at each configuration's holding rates: the service's
    statement P99 beside what pg_stat_statements can say (a mean, a max and an upper bound)."""
    if "db_p99_ms" not in summary.columns or summary.is_empty():
        return None
    worst = summary.sort("db_p99_ms", descending=True, nulls_last=True).row(0, named=True)
    target = slo("db_p99").target
    met = (worst["db_p99_ms"] or 0) < target
    detail = (
        f"the service's own statement timing: P99 at most {worst['db_p99_ms']:.1f} ms "
        f"({worst['label']} at {worst['offered_rps']:g} req/s; round trip and row fetch included)"
    )
    if worst.get("pgss_mean_ms") is not None and not math.isnan(worst["pgss_mean_ms"]):
        detail += (
            "; pg_stat_statements, inside the server, for the same run: "
            f"mean {worst['pgss_mean_ms']:.2f} ms, "
            f"max {worst['pgss_max_ms']:.1f} ms, P99 at most {worst['pgss_p99_bound_ms']:.1f} ms "
            "(it keeps no percentiles: that is Cantelli's bound from its mean and stddev, not an estimate)"
        )
    return ("met" if met else f"missed by {worst['db_p99_ms'] / target:.1f}x"), detail


def report_verdicts(
    summary: pl.DataFrame,
    maxima: pl.DataFrame,
    cap: pl.DataFrame,
    side: pl.DataFrame | None = None,
    counts: dict[str, float] | None = None,
) -> list:
    """The notebook's verdicts, the plan's question first: what each change (JOIN, batch, pool
    size, cache) does to the highest rate holding every SLO; then each configuration's rate,
    1,000 req/s, the DB P99, the error budget, and whether Prometheus agrees."""
    from workbench.verdicts import Verdict

    out = []
    for r in changes(summary, maxima).iter_rows(named=True):
        verdict, detail = change_verdict(r)
        out.append(Verdict(r["change"], verdict, detail))
    configs = {c["label"]: c for c in _configs(summary, maxima)}
    best = maxima.sort("max_rate", descending=True).row(0, named=True)
    out.append(
        Verdict(
            "highest arrival rate holding every SLO",
            f"{_rate(best['max_rate'], configs[best['label']]['above'])} req/s ({best['label']})",
            "; ".join(
                f"{r['label']}: {_rate(r['max_rate'], configs[r['label']]['above'])}{_spread(r)}"
                + (f" (above it: {r['first_miss']})" if r["missed_at"] else "")
                for r in maxima.iter_rows(named=True)
            )
            + " — aimed by a ramp, then found by steady runs in interleaved rounds",
        )
    )
    reached = held_throughput(summary)
    if reached >= 1000:
        answer = "met"
    elif configs[best["label"]]["above"]:
        answer = f"not shown: {best['label']} held at every rate tried, up to {reached:,.0f} req/s"
    else:
        answer = f"not reachable here ({reached:,.0f} req/s holding the SLOs)"
    out.append(
        Verdict(
            "1,000 req/s",
            answer,
            capacity_sentence(cap.filter(pl.col("label") == best["label"])),
        )
    )
    held = at_holding_rate(summary, maxima)
    db = db_verdict(held)
    if db is not None:
        out.append(Verdict("DB query P99 < 100 ms", db[0], db[1]))
    budget = error_budget(held)
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

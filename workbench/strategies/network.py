"""Network distance, measured: each loading strategy's cost as the round trip grows.

PostgreSQL runs on this machine, so every statement's round trip is a loopback one
(~0.1 ms). The backend's database is further away: 0.2 ms in the same zone, 0.5-2 ms
across zones. :func:`sweep` puts a :class:`~workbench.engines.proxy.LatencyProxy`
between the driver and the server, and for each round-trip time (RTT) opens a
PostgreSQL engine through it, checks that every strategy returns the same rows, and
times them all, interleaved. Beside the measurements stands the model

    cost(RTT) = statements × RTT + work

where ``work`` is the strategy's median at zero delay through the proxy and ``RTT`` is
the round trip the proxy actually added (``SELECT 1`` pinged through it, minus the same
ping at zero delay), so the model has no free parameter. N+1 runs ``1 + 2N`` statements,
the others one to three: N+1 pays the RTT two hundred times at 100 sessions.

Repeats adapt to a time budget: ``budget_s`` (12 s) is split evenly over the cells
(RTT × strategy) and each cell runs as many times as its share allows, between
``min_repeat`` (10) and ``max_repeat`` (20). N+1 therefore runs fewer times at high RTT
(0.4-0.5 s a run at 2 ms and 100 sessions), the set-based strategies more. ``n`` is in
every summary row; :func:`conclusions` names every cell with fewer than :data:`FEW_RUNS`
runs as indicative only (with 3 runs the interval of a median is the range of the runs).

>>> result = sweep(engines["postgres"].target, limit=100)                 # doctest: +SKIP
>>> summary = result.summary()                                           # doctest: +SKIP
>>> print(conclusions(summary, result.pings, result.context))            # doctest: +SKIP
>>> figures.network_figure(summary)                                      # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from workbench.engines.postgres import PostgresEngine
from workbench.engines.proxy import LatencyProxy, ping_ms
from workbench.errors import WorkbenchError
from workbench.measure import gc_paused, summarize
from workbench.strategies.loading import (
    STRATEGIES,
    Strategy,
    StrategyLike,
    StrategyMismatchError,
    check_equal,
    first_difference,
    page_sessions,
    resolve,
    words,
)
from workbench.strategies.loading import largest_project as _largest_project

#: Round-trip times swept (ms): same host, same zone, across zones.
RTTS_MS = (0.0, 0.2, 0.5, 1.0, 2.0)
BASELINE = "n_plus_one"
#: A cell with fewer timed runs than this is indicative only (its interval is the runs' range).
FEW_RUNS = 10


def _label(name: str) -> str:
    return STRATEGIES[name].label if name in STRATEGIES else name


@dataclass
class NetworkSweep:
    """The sweep's timed runs and pings, and what they were measured in.

    ``runs``: one row per timed run (``rtt_ms, strategy, sessions, statements, run,
    wall_ns``). ``pings``: one row per path (``path`` = ``direct`` or ``proxy``,
    ``rtt_ms`` set, null for direct) with the median ``SELECT 1`` round trip and its
    interval. ``context``: project, limit, load average before and after.
    """

    runs: pl.DataFrame
    pings: pl.DataFrame
    context: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> pl.DataFrame:
        """One row per RTT and strategy: measured median with interval, n, cv, and the model."""
        rows = []
        for (rtt, name), part in self.runs.group_by("rtt_ms", "strategy", maintain_order=True):
            s = summarize(part["wall_ns"].to_list())
            rows.append(
                {
                    "rtt_ms": rtt,
                    "strategy": name,
                    "label": _label(name),
                    "sessions": part["sessions"][0],
                    "statements": part["statements"][0],
                    "n": s["n"],
                    "median_ms": s["median_ms"],
                    "lo_ms": s["median_lo"],
                    "hi_ms": s["median_hi"],
                    "cv": s["cv"],
                    "unstable": s["unstable"],
                }
            )
        return model(pl.DataFrame(rows), self.pings)

    def overhead(self) -> dict[str, float]:
        """The proxy's own cost per round trip at zero delay: direct and proxied medians (ms)."""
        return proxy_overhead(self.pings)


def proxy_overhead(pings: pl.DataFrame) -> dict[str, float]:
    direct = pings.filter(pl.col("path") == "direct")["median_ms"][0]
    proxied = pings.filter((pl.col("path") == "proxy") & (pl.col("rtt_ms") == 0))["median_ms"][0]
    return {
        "direct_ms": direct,
        "proxy_ms": proxied,
        "overhead_ms": proxied - direct,
        "ratio": proxied / direct,
    }


def model(summary: pl.DataFrame, pings: pl.DataFrame) -> pl.DataFrame:
    """Add ``added_rtt_ms`` (the round trip the proxy added, measured), ``work_ms`` (the
    strategy's median at zero delay) and ``model_ms = statements × added_rtt_ms + work_ms``."""
    proxied = pings.filter(pl.col("path") == "proxy").select("rtt_ms", "median_ms")
    zero = proxied.filter(pl.col("rtt_ms") == 0)["median_ms"][0]
    added = proxied.select("rtt_ms", added_rtt_ms=(pl.col("median_ms") - zero).clip(lower_bound=0))
    work = summary.filter(pl.col("rtt_ms") == 0).select("strategy", work_ms="median_ms")
    return (
        summary.join(added, on="rtt_ms", how="left")
        .join(work, on="strategy", how="left")
        .with_columns(model_ms=pl.col("statements") * pl.col("added_rtt_ms") + pl.col("work_ms"))
        .sort("rtt_ms", "strategy", maintain_order=True)
    )


# ---- measuring ---------------------------------------------------------------------------
def _ping_row(url: str, path: str, rtt: float | None, pings: int, clock: Callable[[], int]) -> dict[str, Any]:
    s = summarize([round(ms * 1e6) for ms in ping_ms(url, pings, clock=clock)])
    return {
        "path": path,
        "rtt_ms": rtt,
        "median_ms": s["median_ms"],
        "lo_ms": s["median_lo"],
        "hi_ms": s["median_hi"],
        "n": s["n"],
    }


def _schedule(counts: dict[Any, int]) -> list[list[Any]]:
    """Rounds of an interleaved run in which strategy ``s`` runs ``counts[s]`` times, its
    runs spread evenly over the rounds, each round starting one strategy further on."""
    total = max(counts.values())
    names = list(counts)
    rounds = []
    for r in range(total):
        order = names[r % len(names) :] + names[: r % len(names)]
        rounds.append([n for n in order if (r + 1) * counts[n] // total > r * counts[n] // total])
    return rounds


def sweep(
    url: str,
    project_id: int | None = None,
    limit: int = 100,
    rtts: Sequence[float] = RTTS_MS,
    *,
    strategies: Sequence[StrategyLike] | None = None,
    schema_name: str = "public",
    budget_s: float = 12.0,
    min_repeat: int = FEW_RUNS,
    max_repeat: int = 20,
    pings: int = 200,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> NetworkSweep:
    """Time every strategy through the latency proxy at each RTT (ms) on the database at ``url``.

    One proxy and one engine per RTT, all open at once, and the timed runs of every
    (RTT, strategy) cell interleaved round-robin, so a change in the machine's load
    shifts all RTTs alike instead of bending the curves. ``project_id``: by default the
    project with the most sessions. Before anything is timed, the strategies are checked
    equal at each RTT and each RTT's result equal to zero delay's.

    Warm-up: the checked run of each cell, whose duration also sets the cell's repeats.
    Statements are prepared on first use (``prepare_threshold = 0``, as pgx, the Go
    backend's driver, does), so they are prepared from the first timed run on; N+1's 2N
    per-session statements also reach their generic plans within the checked run. The
    set-based strategies may still be planned per execution for their first timed runs
    (PostgreSQL tries 5 custom plans before a generic one), which EXPLAIN ANALYZE puts at
    0.3-0.5 ms of their 40-100 ms: under 1%, and the same at every RTT.
    """
    if 0 not in rtts:
        raise WorkbenchError(f"rtts={list(rtts)!r}: the sweep needs 0 (the model's work is measured there)")
    LatencyProxy.to(url)  # refuses a server off this machine before anything runs
    chosen = {s.name: s for s in resolve(strategies)}
    names = list(chosen)
    rtts = sorted(float(r) for r in rtts)
    load_before = os.getloadavg()[0]
    ping_rows = [_ping_row(url, "direct", None, pings, clock)]
    runs: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        engines: dict[float, PostgresEngine] = {}
        for rtt in rtts:
            proxy = stack.enter_context(LatencyProxy.to(url, delay_ms=rtt / 2))
            ping_rows.append(_ping_row(proxy.rewrite(url), "proxy", rtt, pings, clock))
            engines[rtt] = stack.enter_context(
                contextlib.closing(PostgresEngine(proxy.rewrite(url), schema_name))
            )
            engines[rtt].con.prepare_threshold = 0
        if project_id is None:
            project_id = _largest_project(engines[0.0])[0]
        fns = {(rtt, n): _bound(engines[rtt], chosen[n], project_id, limit) for rtt in rtts for n in names}
        cell_ns = budget_s * 1e9 / len(fns)
        statements, counts, reference = {}, {}, None
        for rtt, n in fns:
            started = clock()
            load = check_equal(engines[rtt], project_id, limit, [chosen[n]])[n]  # checks its statements
            elapsed = max(clock() - started, 1)
            if reference is not None and load.result != reference:
                raise StrategyMismatchError(
                    f"Through the proxy at {rtt} ms {n!r} differs from {names[0]!r} at zero delay: "
                    f"{first_difference(reference, load.result)}"
                )
            if reference is None:
                reference = load.result
                sessions = page_sessions(engines[rtt], project_id, limit)
            statements[rtt, n] = load.statements
            counts[rtt, n] = min(max_repeat, max(min_repeat, math.floor(cell_ns / elapsed)))
        seen = dict.fromkeys(fns, 0)
        with gc_paused():
            for round_ in _schedule(counts):
                for cell in round_:
                    started = clock()
                    fns[cell]()
                    elapsed = clock() - started
                    rtt, n = cell
                    runs.append(
                        {
                            "rtt_ms": rtt,
                            "strategy": n,
                            "sessions": sessions,
                            "statements": statements[cell],
                            "run": seen[cell],
                            "wall_ns": elapsed,
                        }
                    )
                    seen[cell] += 1
    ctx = {
        "experiment": "network",
        "project_id": project_id,
        "limit": limit,
        "rtts_ms": rtts,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }
    return NetworkSweep(pl.DataFrame(runs), pl.DataFrame(ping_rows), ctx)


def _bound(engine: PostgresEngine, strategy: Strategy, project_id: int, limit: int) -> Callable[[], Any]:
    load = strategy.load
    return lambda: load(engine, project_id, limit)


# ---- conclusions -------------------------------------------------------------------------
def beats(summary: pl.DataFrame, baseline: str = BASELINE) -> pl.DataFrame:
    """For each strategy, from which RTT it is faster than ``baseline``.

    ``measured_from_ms``: the smallest RTT measured from which its interval lies below the
    baseline's at every larger RTT too (null: not within the RTTs measured).
    ``model_from_ms``: where the model's lines cross (0 when it is ahead at zero delay;
    null when it never is: it runs as many statements and more work).
    """
    base = summary.filter(pl.col("strategy") == baseline).select(
        "rtt_ms", b_lo="lo_ms", b_statements="statements", b_work="work_ms"
    )
    rows = []
    others = summary.filter(pl.col("strategy") != baseline)
    for (name,), part in others.group_by("strategy", maintain_order=True):
        both = part.join(base, on="rtt_ms").sort("rtt_ms")
        if both.is_empty():  # the baseline was not measured
            continue
        ahead = (both["hi_ms"] < both["b_lo"]).to_list()
        measured = None
        for rtt, ok in zip(reversed(both["rtt_ms"].to_list()), reversed(ahead), strict=True):
            if not ok:
                break
            measured = rtt
        r = both.row(0, named=True)
        extra_statements = r["b_statements"] - r["statements"]
        extra_work = r["work_ms"] - r["b_work"]
        if extra_work <= 0:
            model_from = 0.0
        elif extra_statements > 0:
            model_from = extra_work / extra_statements
        else:
            model_from = None
        rows.append((name, _label(name), measured, model_from))
    schema = {
        "strategy": pl.String,
        "label": pl.String,
        "measured_from_ms": pl.Float64,
        "model_from_ms": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def fastest(summary: pl.DataFrame) -> pl.DataFrame:
    """Per RTT: the fastest strategy, the runner-up, and whether their intervals separate."""
    rows = []
    for (rtt,), part in summary.sort("median_ms", "strategy").group_by("rtt_ms", maintain_order=True):
        best, second = part.row(0, named=True), part.row(1, named=True) if part.height > 1 else None
        rows.append(
            {
                "rtt_ms": rtt,
                "fastest": best["strategy"],
                "median_ms": best["median_ms"],
                "runner_up": second and second["strategy"],
                "separated": second is None or best["hi_ms"] < second["lo_ms"],
            }
        )
    return pl.DataFrame(rows).sort("rtt_ms")


def _ms(x: float) -> str:
    return f"{x:g} ms"


def _since(rtt: float | None, digits: int | None = None) -> str:
    if rtt is None:
        return "not within the RTTs measured" if digits is None else "never"
    if rtt == 0:
        return "at every RTT"
    return f"from {rtt:.{digits}f} ms" if digits else f"from {_ms(rtt)}"


def conclusions(
    summary: pl.DataFrame,
    pings: pl.DataFrame,
    context: dict[str, Any] | None = None,
    baseline: str = BASELINE,
    max_load: float | None = None,
) -> str:
    """In words: what each ms of RTT costs the baseline, from which RTT each strategy beats
    it, the fastest at each RTT, how many cells were unstable, the load, and the proxy's
    own overhead.

    With ``context`` (:attr:`NetworkSweep.context`), a load average above ``max_load``
    (default: 0.9 per CPU, the query lab's rule) before the sweep withholds the rankings:
    the sentence says so and by how much, and keeps only the model's crossings. The load
    after is stated, not judged: it includes the sweep's own client and server (about 2
    runnable processes), so on 2 cores it is near the limit whatever else runs.
    """
    sessions = summary["sessions"][0]
    load = context["load_before"] if context else None
    max_load = max_load or 0.9 * (os.cpu_count() or 1)
    busy = load is not None and load > max_load
    base = summary.filter(pl.col("strategy") == baseline).sort("rtt_ms")
    lines = []
    if busy:
        lines.append(
            f"Not ranked: the load average reached {load:.1f}, {load / max_load:.1f}x the limit of "
            f"{max_load:g} on this machine: its times say more about the machine than the strategies."
        )
    if not base.is_empty():
        n, last = base["statements"][0], base.row(-1, named=True)
        lines.append(
            f"At {sessions} sessions {words(baseline)} runs {n} statements, so each added ms of round "
            f"trip costs it about {n} ms; measured: {base['median_ms'][0]:.1f} ms at 0 ms, "
            f"{last['median_ms']:.1f} ms at {_ms(last['rtt_ms'])} (model {last['model_ms']:.1f} ms)."
        )
        parts = []
        for r in beats(summary, baseline).iter_rows(named=True):
            measured = "" if busy else f" {_since(r['measured_from_ms'])}"
            parts.append(f"{words(r['strategy'])}{measured} (model: {_since(r['model_from_ms'], 2)})")
        lines.append(
            f"Faster than {words(baseline)}{' by the model' if busy else ''}: " + "; ".join(parts) + "."
        )
    if not busy:
        said = []
        for r in fastest(summary).iter_rows(named=True):
            tie = "" if r["separated"] else f", tied with {words(r['runner_up'])}"
            said.append(f"{_ms(r['rtt_ms'])}: {words(r['fastest'])} ({r['median_ms']:.1f} ms{tie})")
        lines.append("Fastest at each RTT: " + "; ".join(said) + ".")
    unstable = int(summary["unstable"].sum())
    runs = f"{summary['n'].min()}-{summary['n'].max()}"
    text = f"{unstable} of {summary.height} cells unstable (CV > 10%), n = {runs} runs each"
    if context:
        text += f"; load average {context['load_before']:.2f} before, {context['load_after']:.2f} after"
    few = summary.filter(pl.col("n") < FEW_RUNS)
    if few.height == summary.height:
        text += f"; every cell rests on fewer than {FEW_RUNS} runs: indicative only"
    elif not few.is_empty():
        cells = ", ".join(f"{words(r['strategy'])} at {_ms(r['rtt_ms'])}" for r in few.iter_rows(named=True))
        text += f"; indicative only, on fewer than {FEW_RUNS} runs: {cells}"
    lines.append(text + ".")
    o = proxy_overhead(pings)
    lines.append(
        f"The proxy itself adds {o['overhead_ms'] * 1000:.0f} µs per round trip at zero delay "
        f"(SELECT 1: {o['direct_ms']:.3f} ms direct, {o['proxy_ms']:.3f} ms through it, {o['ratio']:.2f}x); "
        "the model's work includes it."
    )
    return "\n".join(lines)


def verdicts(summary: pl.DataFrame, baseline: str = BASELINE, plan: str = "joined") -> list[Any]:
    """Two :class:`workbench.verdicts.Verdict` rows for notebook 02: from which RTT the
    baseline (N+1) is beaten at all, and from which RTT the plan's JOIN beats it (measured,
    with the model's crossing in the detail). None without the baseline."""
    from workbench.verdicts import Verdict

    if baseline not in summary["strategy"]:
        return []
    sessions = summary["sessions"][0]
    found = {r["strategy"]: r for r in beats(summary, baseline).iter_rows(named=True)}
    measured = {k: r["measured_from_ms"] for k, r in found.items() if r["measured_from_ms"] is not None}
    out = []
    if measured:
        first = min(measured, key=measured.get)
        verdict = f"beaten {_since(measured[first])}"
        detail = (
            f"{words(first)} is faster than {words(baseline)} {_since(measured[first])} of added round trip"
        )
    else:
        verdict, detail = "holds", f"no strategy is faster than {words(baseline)} within the RTTs measured"
    rtts = f"{summary['rtt_ms'].min():g}-{summary['rtt_ms'].max():g} ms"
    topic = f"{words(baseline)} across a network"
    out.append(Verdict(topic, verdict, f"{detail} ({sessions} sessions, RTT {rtts}).", "postgres"))
    if plan in found:
        r = found[plan]
        verdict = (
            "never faster" if r["measured_from_ms"] is None else f"faster {_since(r['measured_from_ms'])}"
        )
        detail = (
            f"{words(r['strategy'])} against {words(baseline)} at {sessions} sessions: measured "
            f"{_since(r['measured_from_ms'])} of RTT {rtts}; the model (statements × RTT + work): "
            f"{_since(r['model_from_ms'], 2)}."
        )
        out.append(Verdict(f"{words(r['strategy'])} across a network", verdict, detail, "postgres"))
    return out

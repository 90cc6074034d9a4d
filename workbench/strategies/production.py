"""The N+1 fix judged under the production profile: notebook 02's headline and decision.

The backend's "recent" view loads a project's ``pages.recent_sessions`` newest sessions
with their messages and windows, on the profile's engine, ``network.rtt_ms`` away.
:func:`measure` times every strategy on exactly that page and round trip: PostgreSQL
through a :class:`~workbench.engines.proxy.LatencyProxy` that adds the profile's round
trip to loopback's (the RTT sweep's model, :mod:`workbench.strategies.network`), the
strategies checked equal first and then timed in paired, interleaved rounds. An embedded
engine (DuckDB, SQLite) has no round trip to add and is timed directly, as is PostgreSQL
when the profile's round trip is 0 (loopback's own, without the proxy's hops).

:func:`verdict` turns that into the decision on the plan item ``n_plus_one``: ship the
plan's JOIN, ship a better alternative instead ("ship changed", named), or don't ship,
with the effect against N+1 and its interval, what the change costs, and where the answer
flips, read from the lab's own sweeps: the round trip at which the JOIN overtakes N+1 at
the profile's page size (:func:`rtt_flip`, the RTT sweep), and the page size at which
they swap at the profile's round trip (:func:`page_flip`, the scaling sweep plus the
RTT sweep's model).

>>> head = measure(engines["postgres"], prof, project_id)          # doctest: +SKIP
>>> v = verdict(head, prof, sweep=net_summary, scaling=scaled_summary)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from workbench.engines.base import Engine
from workbench.measure import EQUIVALENCE_MARGIN, MIN_RUNS, Results, equivalence, load_note, paired_ratio
from workbench.strategies.experiments import compare, crossings
from workbench.strategies.loading import StrategyLike, page_sessions, words
from workbench.verdicts import Verdict

if TYPE_CHECKING:
    from workbench.profile import Profile

BASELINE, PLAN = "n_plus_one", "joined"
ITEM = "n_plus_one"
NOTEBOOK = "02_n_plus_one"
EVIDENCE = f"{NOTEBOOK}.html"

#: The named queries (queries/*.sql) each way of loading the page runs, in order.
QUERIES = {
    "joined": ("project_sessions_joined",),
    "batch": ("project_sessions", "messages_for_sessions", "windows_for_sessions"),
    "per_relation": ("project_sessions_messages", "project_sessions_windows"),
    "aggregate": ("project_sessions_aggregated",),
}
HOW = {
    "joined": "one statement; de-duplicate its m×w rows per session in the app",
    "batch": "the page's sessions, then their messages and their windows for all the page's ids at once",
    "per_relation": "two statements, one per relation",
    "aggregate": "one statement; parse each session's JSON arrays in the app",
}


def write_artifact(name: str, prof: Profile, out_dir: str | os.PathLike[str]) -> str:
    """The SQL to ship for strategy ``name``, for the profile's engine, written beside the
    notebook's other files; returns its path relative to ``out_dir`` (the report folder)."""
    from workbench import queries

    arrays = prof.engine == "postgres" and name == "batch"
    parts = [
        f"-- The N+1 fix to ship under the profile {prof.name!r}: {words(name)} ({HOW[name]}).",
        f"-- {prof.engine} SQL with :named parameters, from queries/ (notebook 02 measured it).",
    ]
    for q in QUERIES[name]:
        sql = queries.load(q, prof.engine, arrays=arrays and "for_sessions" in q)
        parts.append(f"\n-- {q}.sql\n{sql};")
    rel = Path(NOTEBOOK) / f"ship_{name}.{prof.engine}.sql"
    path = Path(out_dir) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return rel.as_posix()


#: What each way costs beyond its time: rows, code.
COSTS = {
    "batch": "3 statements per page instead of 1 + 2N; rows as N+1's (no multiplication); one list parameter",
    "per_relation": "2 statements; messages repeat their session's columns; windows joined separately",
    "aggregate": "1 statement; JSON built in the database and parsed in the app",
}

GOVERNS = (
    "02 governs the query-time effect: it loads the profile's page at the profile's round trip, "
    "every strategy checked to return the same rows, timed in paired rounds with 95% intervals; "
    "05's load test measures the whole service's capacity on a shared 2-core box, where the "
    "service, PostgreSQL and the load generator compete for the same cores."
)


@dataclass
class Headline:
    """The timed runs at the profile's page and round trip, and how they were taken.

    ``results``/``book``: :func:`~workbench.strategies.compare`'s. ``rtt_ms``: the round
    trip the proxy was asked to add (None: an embedded engine, no network);
    ``added_rtt_ms``: what it added, measured (``SELECT 1`` through it minus direct).
    """

    results: Results
    book: pl.DataFrame
    engine: str
    sessions: int
    project_id: int
    rtt_ms: float | None
    added_rtt_ms: float | None

    def where(self) -> str:
        """The condition in words: the engine, its round trip and what the proxy added, measured."""
        if self.rtt_ms is None:
            return f"{self.engine}, embedded (no network round trip)"
        if self.rtt_ms == 0:
            return f"{self.engine} on loopback (the profile's round trip is 0)"
        return f"{self.engine} {self.rtt_ms:g} ms away (the proxy added {self.added_rtt_ms:.2f} ms, measured)"


@contextlib.contextmanager
def at_round_trip(engine: Engine, rtt_ms: float, pings: int = 100) -> Iterator[tuple[Engine, float]]:
    """A second engine on ``engine``'s PostgreSQL database, ``rtt_ms`` further away.

    Yields the engine (statements prepared on first use, as pgx does) and the round trip
    the proxy added, measured with ``pings`` ``SELECT 1``.
    """
    from workbench.engines.postgres import PostgresEngine
    from workbench.engines.proxy import LatencyProxy, ping_ms

    url = engine.target
    with LatencyProxy.to(url, delay_ms=rtt_ms / 2) as proxy:
        through = proxy.rewrite(url)
        added = float(np.median(ping_ms(through, pings)) - np.median(ping_ms(url, pings)))
        with contextlib.closing(PostgresEngine(through, engine.schema_name)) as far:
            far.con.prepare_threshold = 0
            yield far, added


def measure(
    engine: Engine,
    prof: Profile,
    project_id: int,
    limit: int | None = None,
    *,
    strategies: Sequence[StrategyLike] | None = None,
    repeat: int = MIN_RUNS,
    warmup: int | None = None,
    budget_s: float | None = None,
    dataset: Any = None,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> Headline:
    """Every strategy on the profile's page (``limit``, default ``pages.recent_sessions``) at
    the profile's round trip: checked equal, then timed as :func:`compare` times them.

    ``engine`` is the profile's engine as the notebook opened it (loopback PostgreSQL, or
    an embedded database): PostgreSQL is reached through the latency proxy.
    """
    limit = prof.pages.recent_sessions if limit is None else int(limit)
    kw = dict(strategies=strategies, repeat=repeat, warmup=warmup, budget_s=budget_s, dataset=dataset)
    rtt = prof.network.rtt_ms
    if engine.name != "postgres" or rtt == 0:  # nothing to add: loopback or embedded, direct
        results, book = compare({engine.name: engine}, project_id, limit, clock=clock, **kw)
        sessions = page_sessions(engine, project_id, limit)
        network = (0.0, 0.0) if engine.name == "postgres" else (None, None)
        return Headline(results, book, engine.name, sessions, project_id, *network)
    with at_round_trip(engine, rtt) as (far, added):
        results, book = compare({engine.name: far}, project_id, limit, clock=clock, **kw)
        sessions = page_sessions(far, project_id, limit)
    results.context.update(rtt_ms=rtt, added_rtt_ms=added, profile=prof.name)
    return Headline(results, book, engine.name, sessions, project_id, rtt, added)


# ---- where the answer flips ----------------------------------------------------------------
def rtt_flip(sweep: pl.DataFrame, name: str, baseline: str = BASELINE) -> dict[str, Any] | None:
    """From the RTT sweep's summary: from which round trip ``name`` beats ``baseline``.

    ``measured_from_ms`` (null when not within the RTTs measured), ``model_from_ms``, the
    sweep's page size and RTTs, and the fewest runs behind a cell.
    """
    from workbench.strategies.network import beats

    if sweep is None or name not in sweep["strategy"] or baseline not in sweep["strategy"]:
        return None
    row = beats(sweep, baseline).filter(pl.col("strategy") == name)
    if row.is_empty():
        return None
    r = row.row(0, named=True)
    return {
        "measured_from_ms": r["measured_from_ms"],
        "model_from_ms": r["model_from_ms"],
        "sessions": int(sweep["sessions"][0]),
        "rtts": sorted(sweep["rtt_ms"].unique().to_list()),
        "min_runs": int(sweep["n"].min()),
    }


def at_rtt(summary: pl.DataFrame, rtt_ms: float) -> pl.DataFrame:
    """A scaling summary moved to ``rtt_ms`` by the RTT sweep's model: each median and its
    interval plus ``statements × rtt_ms`` (N+1 pays the round trip 1 + 2N times)."""
    shift = pl.col("statements") * rtt_ms
    return summary.with_columns(
        median_ms=pl.col("median_ms") + shift,
        median_lo=pl.col("median_lo") + shift,
        median_hi=pl.col("median_hi") + shift,
    )


def page_flip(
    scaling: pl.DataFrame, engine: str, name: str, rtt_ms: float, baseline: str = BASELINE
) -> list[dict[str, Any]]:
    """Where ``name`` and ``baseline`` swap places as the page grows, at ``rtt_ms``.

    ``scaling`` is the scaling sweep's summary (loopback); it is moved to the round trip
    by :func:`at_rtt` (0: as measured) and its crossings found as
    :func:`~workbench.strategies.crossings` finds them (intervals apart on both sides).
    """
    if scaling is None:
        return []
    part = scaling.filter((pl.col("engine") == engine) & pl.col("strategy").is_in([name, baseline]))
    if part["strategy"].n_unique() < 2:
        return []
    return crossings(at_rtt(part, rtt_ms) if rtt_ms else part).to_dicts()


def _ms(x: float) -> str:
    return f"{x:.2g} ms" if x < 1 else f"{x:.3g} ms"


def _flips(
    name: str, sweep: pl.DataFrame | None, scaling: pl.DataFrame | None, engine: str, rtt: float
) -> str:
    parts = []
    r = rtt_flip(sweep, name) if sweep is not None else None
    if r is not None:
        rtts = f"{min(r['rtts']):g}-{max(r['rtts']):g} ms"
        if r["measured_from_ms"] is None:
            measured = f"not faster within the round trips measured ({rtts})"
        elif r["measured_from_ms"] == 0:
            measured = f"faster at every round trip measured ({rtts})"
        else:
            measured = f"faster from {r['measured_from_ms']:g} ms of round trip (measured, {rtts})"
        model = r["model_from_ms"]
        model_text = "never" if model is None else ("at every RTT" if model == 0 else f"from {_ms(model)}")
        parts.append(
            f"Round trip: at {r['sessions']} sessions {words(name)} is {measured}; the model "
            f"(statements × RTT + work) puts the crossing {model_text}"
            + (f" (cells of {r['min_runs']}+ runs)" if r["min_runs"] else "")
        )
    if scaling is not None and not (mine := scaling.filter(pl.col("engine") == engine)).is_empty():
        sizes = f"{mine['sessions'].min()}-{mine['sessions'].max()} sessions"
        said = []
        for at in dict.fromkeys([rtt, 0.0]):
            where = f"at {at:g} ms (the scaling sweep plus statements × RTT)" if at else "at loopback"
            swaps = page_flip(scaling, engine, name, at)
            said.append(
                f"{where}, "
                + (
                    "; ".join(
                        f"{words(s['faster_below'])} faster below ~{s['sessions']:.0f} sessions, "
                        f"{words(s['faster_above'])} above"
                        for s in swaps
                    )
                    or f"no swap with {words(BASELINE)} within {sizes}"
                )
            )
        parts.append(
            "Page size " + "; ".join(said).replace("; at loopback", "; for comparison at loopback", 1)
        )
    return ". ".join(parts) + ("." if parts else "")


# ---- the decision --------------------------------------------------------------------------
def _times(frame: pl.DataFrame) -> dict[str, list[int]]:
    return {
        s: frame.filter(pl.col("strategy") == s).sort("run")["wall_ns"].to_list()
        for s in frame["strategy"].unique(maintain_order=True)
    }


def _speedup(times: Mapping[str, list[int]], name: str, over: str, margin: float) -> dict[str, Any]:
    """``over``'s time / ``name``'s (above 1: ``name`` is faster), paired, with its class."""
    r, lo, hi = paired_ratio(times[name], times[over])
    return {"speedup": 1 / r, "low": 1 / hi, "high": 1 / lo, "class": equivalence(lo, hi, margin)}


def _shipped_rows(book: pl.DataFrame, name: str) -> str:
    acct = {r["strategy"]: r for r in book.iter_rows(named=True)}
    j, b = acct.get(name), acct.get(BASELINE)
    if not (j and b):
        return ""
    real = (j["messages"] or 0) + (j["windows"] or 0)
    return (
        f"{j['rows']:,} rows for {real:,} real ones ({j['rows'] / max(real, 1):.1f}x), "
        f"{j['bytes'] / 1e3:,.0f} kB against {b['bytes'] / 1e3:,.0f} kB for {words(BASELINE)}, "
        f"{j['statements']} statement{'s' if j['statements'] != 1 else ''} against {b['statements']:,}"
    )


def verdict(
    head: Headline,
    prof: Profile,
    *,
    sweep: pl.DataFrame | None = None,
    scaling: pl.DataFrame | None = None,
    margin: float = EQUIVALENCE_MARGIN,
    max_load: float | None = None,
    out_dir: str | os.PathLike[str] | None = None,
) -> Verdict:
    """The decision on the plan item ``n_plus_one`` under the profile, from :func:`measure`.

    Ship the plan's JOIN when it is faster than N+1 (interval beyond ``margin``) and no
    alternative is clearly faster than it; "ship changed" (the fastest alternative, named)
    when one is; "don't ship" when nothing beats N+1. ``sweep`` (the RTT sweep's summary)
    and ``scaling`` (the scaling sweep's summary) give where the answer flips. Timed under
    a load average above ``max_load``: "not measured here", with the numbers kept in the detail.
    With ``out_dir`` (the report folder), the SQL to ship is written there
    (:func:`write_artifact`) and ``artifact`` links to it; else it names the queries.
    """
    times = _times(head.results.frame)
    if BASELINE not in times or PLAN not in times:
        raise ValueError(f"The headline needs {BASELINE!r} and {PLAN!r} among its strategies")
    plan = _speedup(times, PLAN, BASELINE, margin)
    alts = [s for s in times if s not in (PLAN, BASELINE)]
    best = min(alts, key=lambda s: (float(np.median(times[s])), s)) if alts else None
    alt = _speedup(times, best, BASELINE, margin) if best else None
    alt_vs_plan = _speedup(times, best, PLAN, margin) if best else None
    if plan["class"] == "faster" and not (alt_vs_plan and alt_vs_plan["class"] == "faster"):
        decision, ship = "ship", PLAN
    elif alt and alt["class"] == "faster" and (plan["class"] != "faster" or alt_vs_plan["class"] == "faster"):
        decision, ship = "ship changed", best
    else:
        decision, ship = "don't ship", PLAN
    effect = plan if ship == PLAN else alt
    n = len(times[BASELINE])
    where = head.where()
    x = f"{effect['speedup']:.2g}x ({effect['low']:.2g}-{effect['high']:.2g})"
    if decision == "ship":
        short = f"ship the plan's JOIN, {x} faster than {words(BASELINE)}"
    elif decision == "ship changed":
        short = f"ship {words(ship)} instead, {x} faster than {words(BASELINE)}"
    else:
        short = f"don't ship: the plan's JOIN is {_class_words(plan)} {words(BASELINE)}"
    detail = (
        f"Loading {head.sessions} sessions with their messages and windows on {where}, "
        f"n = {n} paired rounds: "
        f"the plan's JOIN is {_class_words(plan)} {words(BASELINE)}"
    )
    if best:
        detail += f"; the fastest alternative, {words(best)}, is {_class_words(alt)} it"
        detail += f" and {_class_words(alt_vs_plan)} the JOIN"
    detail += "."
    frame = head.results.frame
    before = frame["load_before"].max() if "load_before" in frame.columns else None
    after = frame["load_after"].max() if "load_after" in frame.columns else None
    note = load_note(before, after, max_load)
    if note:
        decision, short = "not measured here", f"not ranked (load too high); as measured: {short}"
        detail = f"{note[0].upper()}{note[1:]}. {detail}"
    rows = _shipped_rows(head.book, ship)
    if ship == PLAN:
        cost = f"The JOIN ships {rows}." if rows else ""
        if decision in ("ship", "not measured here"):
            cost += " One query whose m×w rows the app must de-duplicate per session."
    else:
        cost = f"{words(ship)}: {COSTS.get(ship, '')}; ships {rows}." if rows else COSTS.get(ship, "")
    rtt = head.rtt_ms or 0.0
    flips = _flips(ship, sweep, scaling, head.engine, rtt)
    conditions = prof.conditions(
        page=head.sessions,
        project_id=head.project_id,
        n=n,
        added_rtt_ms=head.added_rtt_ms,
        measured_on=head.engine,
    )
    return Verdict(
        topic="the N+1 fix under the production profile",
        verdict=short.strip(),
        detail=detail,
        engine=head.engine,
        item=ITEM,
        decision=decision,
        effect=effect["speedup"],
        low=effect["low"],
        high=effect["high"],
        unit="x",
        conditions=conditions,
        cost=cost.strip(),
        flips=flips,
        evidence=EVIDENCE,
        artifact=_artifact(decision, ship, prof, out_dir),
        governs=GOVERNS,
    )


def _artifact(decision: str, ship: str, prof: Profile, out_dir: str | os.PathLike[str] | None) -> str:
    if decision == "don't ship" or ship not in QUERIES:
        return ""
    if out_dir is None:
        return ", ".join(f"queries/{q}.sql" for q in QUERIES[ship])
    return write_artifact(ship, prof, out_dir)


def _class_words(s: Mapping[str, Any]) -> str:
    """``s`` (a speedup with its interval and class) as words before "than/with X"."""
    ci = f"95% CI {s['low']:.2f}-{s['high']:.2f}"
    if s["class"] == "faster":
        return f"{s['speedup']:.2f}x faster ({ci}) than"
    if s["class"] == "slower":
        return f"{1 / s['speedup']:.2f}x slower (speedup {s['speedup']:.2f}, {ci}) than"
    if s["class"] == "tie":
        return f"a tie (speedup {s['speedup']:.2f}, {ci}) with"
    return f"not clearly different (speedup {s['speedup']:.2f}, {ci}) from"


def not_measured(prof: Profile, why: str) -> Verdict:
    """The ``n_plus_one`` row when the profile's condition could not be measured, and why."""
    return Verdict(
        topic="the N+1 fix under the production profile",
        verdict="not measured here",
        detail=f"Not measured under the profile: {why}.",
        engine=prof.engine,
        item=ITEM,
        decision="not measured here",
        conditions=prof.conditions(),
        evidence=EVIDENCE,
        governs=GOVERNS,
    )

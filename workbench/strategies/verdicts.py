"""The strategies' results in words: the fastest per engine, the plan's JOIN judged, scaling.

Every sentence is built from paired ratios (:func:`workbench.measure.paired_ratio` over
the interleaved rounds) and their :func:`~workbench.measure.equivalence` class, so a
verdict depends on the interval, not on the third decimal of a point estimate. Where
the load average was high while an engine was timed, its timings are not ranked and
the sentence says so, and by how much.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from workbench.measure import EQUIVALENCE_MARGIN, Results, compare_text, equivalence, load_note, paired_ratio
from workbench.strategies.loading import words
from workbench.verdicts import Verdict

BASELINE, PLAN = "n_plus_one", "joined"
#: This machine's verdicts are detail beside the profile's decision (strategies.production).
JOIN_TOPIC = "the plan's three-table JOIN on this machine (for comparison)"
#: The plan's words for its proposal, used in every verdict on it.
PLAN_WORDS = "the plan's single three-table LEFT JOIN of sessions, their messages and their windows"


def _largest(frame: pl.DataFrame) -> pl.DataFrame:
    largest = frame.group_by("engine").agg(pl.col("sessions").max())
    return frame.join(largest, on=["engine", "sessions"], how="semi")


def _times(part: pl.DataFrame) -> dict[str, list[int]]:
    """Each strategy's runs in round order (so run i pairs across strategies)."""
    return {
        s: part.filter(pl.col("strategy") == s).sort("run")["wall_ns"].to_list()
        for s in part["strategy"].unique(maintain_order=True)
    }


def _load(part: pl.DataFrame) -> tuple[float | None, float | None]:
    if "load_before" not in part.columns:
        return None, None
    return part["load_before"].max(), part["load_after"].max()


def _unstable(times: Mapping[str, Sequence[int]], names: Sequence[str]) -> str:
    noisy = []
    for s in names:
        t = np.asarray(times[s], dtype=float)
        cv = float(t.std(ddof=1) / t.mean()) if t.size > 1 and t.mean() > 0 else 0.0
        if cv > 0.10:
            noisy.append(f"{words(s)} CV {cv:.0%}")
    return f" Unstable (CV > 10%): {', '.join(noisy)}." if noisy else ""


def recommend(
    results: Results,
    baseline: str = BASELINE,
    margin: float = EQUIVALENCE_MARGIN,
    seed: int = 0,
    limit: float | None = None,
) -> pl.DataFrame:
    """Per engine (at the largest size measured): the fastest strategy and how sure that is.

    Columns: ``best`` (lowest median), ``best_ms``, ``n`` (timed runs per strategy),
    ``speedup`` over ``baseline`` with ``lo``/``hi`` (paired), ``class`` (the best's
    time against the baseline's: tie, faster, unclear), ``ties`` (strategies whose time
    against the best is a tie or unclear, comma-separated), the runner-up with its
    time ratio to the best and class, the load before/after and ``load_note`` (set when
    the load was too high to rank).
    """
    out = []
    for (engine,), part in _largest(results.frame).group_by("engine", maintain_order=True):
        times = _times(part)
        medians = sorted(times, key=lambda s: (float(np.median(times[s])), s))
        best = medians[0]
        before, after = _load(part)
        row: dict[str, Any] = {"engine": engine, "sessions": part["sessions"][0], "best": best}
        row.update(best_ms=float(np.median(times[best])) / 1e6, n=len(times[best]))
        if baseline in times:
            r, lo, hi = paired_ratio(times[best], times[baseline], seed=seed)
            row.update(speedup=1 / r, lo=1 / hi, hi=1 / lo, **{"class": equivalence(lo, hi, margin)})
        close = []
        for other in medians[1:]:
            r, lo, hi = paired_ratio(times[other], times[best], seed=seed)
            kind = equivalence(lo, hi, margin)
            if other == medians[1]:
                row.update(runner_up=other, runner_up_ratio=r, runner_up_lo=lo, runner_up_hi=hi)
                row["runner_up_class"] = kind
            if kind in ("tie", "unclear"):
                close.append(other)
        row.update(ties=", ".join(close), load_before=before, load_after=after)
        row["load_note"] = load_note(before, after, limit)
        out.append(row)
    return pl.DataFrame(out)


def conclusions(
    results: Results, baseline: str = BASELINE, margin: float = EQUIVALENCE_MARGIN, limit: float | None = None
) -> str:
    """The recommendation per engine as sentences built from the measured numbers.

    Each names n, the unstable strategies and the load; an engine timed under high load
    gets no ranking, only the note saying why.
    """
    lines = []
    for r in recommend(results, baseline, margin, limit=limit).iter_rows(named=True):
        part = _largest(results.frame).filter(pl.col("engine") == r["engine"])
        noisy = _unstable(_times(part), list(_times(part)))
        if r["load_note"]:
            lines.append(f"{r['engine']}: {r['load_note']} (n = {r['n']} runs each).{noisy}")
            continue
        text = (
            f"{r['engine']}: load {r['sessions']} sessions with {words(r['best'])} "
            f"({r['best_ms']:.2f} ms median, n = {r['n']})"
        )
        if r.get("speedup") is not None and r["best"] != baseline:
            text += f"; against {words(baseline)} it is " + _against(r["speedup"], r["lo"], r["hi"], margin)
        if r.get("runner_up"):
            text += f"; the runner-up, {words(r['runner_up'])}, is " + compare_text(
                r["runner_up_ratio"], r["runner_up_lo"], r["runner_up_hi"], margin
            )
        load = (
            f" Load average {r['load_before']:.2f} before, {r['load_after']:.2f} after."
            if r["load_before"] is not None
            else ""
        )
        lines.append(text + "." + noisy + load)
    return "\n".join(lines)


def _against(speedup: float, lo: float, hi: float, margin: float) -> str:
    """A speedup (baseline time / other time) in words, via the time ratio's class."""
    return compare_text(1 / speedup, 1 / hi, 1 / lo, margin)


def best_verdicts(
    results: Results, margin: float = EQUIVALENCE_MARGIN, limit: float | None = None
) -> list[Verdict]:
    """One :class:`~workbench.verdicts.Verdict` per engine: the fastest way to load the page."""
    out = []
    for r in recommend(results, margin=margin, limit=limit).iter_rows(named=True):
        topic = f"fastest way to load {r['sessions']} sessions on this machine (for comparison)"
        if r["load_note"]:
            out.append(Verdict(topic, "not ranked (load too high)", r["load_note"] + ".", r["engine"]))
            continue
        names = [words(r["best"]), *(words(s) for s in r["ties"].split(", ") if s)]
        verdict = names[0] if len(names) == 1 else "tie: " + ", ".join(names)
        detail = f"{words(r['best'])}: {r['best_ms']:.2f} ms median (n = {r['n']})"
        if r.get("speedup") is not None and r["best"] != BASELINE:
            detail += f", against {words(BASELINE)} " + _against(r["speedup"], r["lo"], r["hi"], margin)
        if len(names) > 1:
            detail += f"; within noise or ±{margin:.0%} of it: {', '.join(names[1:])}"
        out.append(Verdict(topic, verdict, detail + ".", r["engine"]))
    return out


def join_verdicts(
    results: Results,
    book: pl.DataFrame,
    margin: float = EQUIVALENCE_MARGIN,
    limit: float | None = None,
    seed: int = 0,
) -> list[Verdict]:
    """Per engine: is the plan's three-table JOIN a good fix, against N+1 (today) and the best alternative?

    ``results`` and ``book`` are :func:`~workbench.strategies.compare`'s. The verdict
    comes from the paired time ratios' classes; the detail says why, from the
    accounting: rows shipped against the real rows (messages + windows), bytes against
    N+1's, statements, and the engine's own execution time where it has one.
    """
    out = []
    frame = _largest(results.frame)
    for (engine,), part in frame.group_by("engine", maintain_order=True):
        times = _times(part)
        if PLAN not in times or BASELINE not in times:
            continue
        acct = {r["strategy"]: r for r in book.filter(pl.col("engine") == engine).iter_rows(named=True)}
        alts = [s for s in times if s not in (PLAN, BASELINE)]
        alt = min(alts, key=lambda s: (float(np.median(times[s])), s)) if alts else None
        vs_n1 = paired_ratio(times[PLAN], times[BASELINE], seed=seed)
        vs_alt = paired_ratio(times[PLAN], times[alt], seed=seed) if alt else None
        note = load_note(*_load(part), limit)
        detail = _join_detail(vs_n1, vs_alt, alt, acct, margin, len(times[PLAN]))
        detail += _unstable(times, [PLAN, BASELINE, *([alt] if alt else [])])
        if note:
            short = "not ranked (load too high)" + _shipped(acct)
            out.append(Verdict(JOIN_TOPIC, short, f"{note}. {detail}", engine))
        else:
            out.append(Verdict(JOIN_TOPIC, _join_short(vs_n1, vs_alt, alt, margin), detail, engine))
    return out


def _shipped(acct: Mapping[str, Mapping[str, Any]]) -> str:
    """The JOIN's deterministic cost against N+1's, for a verdict that cannot rank timings."""
    j, b = acct.get(PLAN), acct.get(BASELINE)
    if not (j and b):
        return ""
    rows = j["rows"] / max(j["messages"] + j["windows"], 1)
    return f"; ships {rows:.1f}x the real rows, {j['bytes'] / max(b['bytes'], 1):.1f}x the bytes"


def _join_short(
    vs_n1: tuple[float, float, float],
    vs_alt: tuple[float, float, float] | None,
    alt: str | None,
    margin: float,
) -> str:
    r, lo, hi = vs_n1
    kind = equivalence(lo, hi, margin)
    if kind == "slower":
        return f"not a good fix: {r:.1f}x slower than {words(BASELINE)}"
    if kind == "tie":
        return f"no gain: a tie with {words(BASELINE)}"
    if kind == "unclear":
        return f"no clear gain over {words(BASELINE)}"
    gain = f"{1 / r:.1f}x faster than {words(BASELINE)}"
    if vs_alt is None:
        return f"a good fix: {gain}"
    ra, lo_a, hi_a = vs_alt
    versus = equivalence(lo_a, hi_a, margin)
    if versus == "slower":
        return f"helps: {gain}, but {words(alt)} is {ra:.1f}x faster still"
    if versus == "faster":
        return f"the best fix: {gain}, {1 / ra:.1f}x faster than {words(alt)}"
    return f"a good fix: {gain}, {'a tie with' if versus == 'tie' else 'close to'} {words(alt)}"


def _join_detail(
    vs_n1: tuple[float, float, float],
    vs_alt: tuple[float, float, float] | None,
    alt: str | None,
    acct: Mapping[str, Mapping[str, Any]],
    margin: float,
    n: int,
) -> str:
    text = f"Against {words(BASELINE)}, {PLAN_WORDS} is {compare_text(*vs_n1, margin)}"
    if vs_alt is not None:
        text += f"; against {words(alt)}, the best alternative, {compare_text(*vs_alt, margin)}"
    text += f" (n = {n} paired runs)."
    j, b = acct.get(PLAN), acct.get(BASELINE)
    if j and b:
        real = j["messages"] + j["windows"]
        text += (
            f" Why: it ships {j['rows']:,} rows for {real:,} real ones ({j['rows'] / max(real, 1):.1f}x, "
            f"every message repeated once per window of its session) and {j['bytes'] / 1e6:.1f} MB "
            f"against {b['bytes'] / 1e6:.1f} MB for {words(BASELINE)}, in {j['statements']} statement "
            f"against {b['statements']:,}"
        )
        if j.get("server_ms") is not None and b.get("server_ms") is not None:
            text += f"; the engine's own time {j['server_ms']:.1f} ms against {b['server_ms']:.1f} ms"
        text += "."
    return text


def scaling_conclusions(summary: pl.DataFrame, costs: pl.DataFrame, crossed: pl.DataFrame) -> str:
    """Per engine, in words: the fastest strategy at the largest size, how much of N+1's time
    there its statements explain at the measured cost of one N+1 statement, and where N+1
    and each alternative swap places (in the direction they swap).

    ``costs``: one row per engine with ``statement_ms`` (:func:`statement_cost`) and,
    optionally, ``select1_ms``.
    """
    cost = {r["engine"]: r for r in costs.iter_rows(named=True)}
    lines = []
    for (engine,), part in summary.group_by("engine", maintain_order=True):
        top = part.filter(pl.col("sessions") == part["sessions"].max()).sort("median_ms", "strategy")
        best = top.row(0, named=True)
        text = f"{engine}: at {best['sessions']:,} sessions {words(best['strategy'])} is fastest"
        text += f" ({best['median_ms']:.1f} ms median)"
        n1 = top.filter(pl.col("strategy") == BASELINE)
        if not n1.is_empty() and engine in cost:
            r, c = n1.row(0, named=True), cost[engine]
            bound = r["statements"] * c["statement_ms"]
            text += (
                f"; {words(BASELINE)} takes {r['median_ms']:.1f} ms for {r['statements']:,.0f} statements, "
                f"{bound / r['median_ms']:.0%} of it their own cost ({c['statement_ms'] * 1000:.0f} µs "
                "per child query, measured"
            )
            if c.get("select1_ms") is not None:
                text += f"; SELECT 1 alone: {c['select1_ms'] * 1000:.0f} µs"
            text += ")"
        for row in crossed.filter(pl.col("engine") == engine).iter_rows(named=True):
            at = f"{row['sessions']:,.1f}" if row["sessions"] < 10 else f"{row['sessions']:,.0f}"
            text += (
                f"; {words(row['faster_below'])} is faster below ~{at} sessions, "
                f"{words(row['faster_above'])} above"
            )
        lines.append(text + ".")
    return "\n".join(lines)

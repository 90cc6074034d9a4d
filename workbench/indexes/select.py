"""Choose the indexes for the whole workload, within budgets on write cost, size and saving.

The rule (greedy, stated once):

1. A (query, index) pair saves time only when the plan changed and the speedup's interval
   lies above 1 (its lower bound > 1); otherwise it is noise and saves nothing.
2. Each query is assumed to use the best chosen index for it. Adding an index saves
   ``frequency x (current per-call time - time with the index)`` for each query where its
   interval clears the current best's (its speedup's lower bound above the chosen index's
   upper bound): a gain within the noise of one already chosen is no gain.
3. Repeatedly take the candidate that saves the most workload time. Candidates whose saving
   is within the interval of the best one's are a tie, and a tie goes to the simpler key
   (fewer columns, no DESC, no INCLUDE, then by name), so the same measurements always
   give the same set, and near-equal runs give the same set more often.
4. Skip a candidate whose table's write cost (the product of the write-cost ratios of the
   indexes chosen on that table) would exceed ``max_write_cost`` even at its interval's
   lower bound, or whose size would take the total past ``max_size_bytes``; stop when the
   best saving, at the slow end of its speedups' intervals, is below ``min_saving`` of the
   workload's time (a saving near the threshold is not decided by noise from run to run).
5. A candidate an existing index already serves (its key a prefix of the existing one's) is
   reported as such and not recommended again; its gains count as today's. A DESC key whose
   DESC no workload sort needs is not recommended: an ascending key read backwards is the
   same index. A chosen key that is a prefix of another chosen one is dropped.

It maximizes total frequency-weighted time saved, one index at a time (not the optimal set,
which is a knapsack problem; at this workload's size the greedy choice is the usual one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from workbench.indexes import candidates as cand
from workbench.indexes.evaluate import Advice


@dataclass(frozen=True)
class Budgets:
    #: The slowest a table's bulk insert may become with the chosen indexes (1.5 = 50% slower).
    max_write_cost: float = 1.5
    #: Total bytes the chosen indexes may occupy (None: no limit).
    max_size_bytes: int | None = None
    #: The least share of the workload's DB time a recommended index must save.
    min_saving: float = 0.01


DEFAULT_BUDGETS = Budgets()
NO_GAIN = "no measurable gain (plan unchanged or interval includes 1)"


def _specs(advice: Advice) -> dict[str, cand.IndexSpec]:
    return {spec.label: spec for spec in advice.candidates}


def simplicity(spec: cand.IndexSpec) -> tuple:
    """Sort key of the simpler index: fewer key columns, no DESC, no INCLUDE, then by name.

    >>> sorted([cand.IndexSpec("t", ("a", "b")), cand.IndexSpec("t", ("a",))], key=simplicity)[0].label
    't(a)'
    """
    return (len(spec.columns), any(spec.descending), len(spec.include), spec.label)


@dataclass
class _Gain:
    """Per query an index helps: its time with the index, and that time's interval."""

    after: float
    fast: float  # before / hi: the fastest it plausibly is
    slow: float  # before / lo: the slowest it plausibly is


def choose(
    advice: Advice,
    per_query: pl.DataFrame,
    per_index: pl.DataFrame,
    baseline: pl.DataFrame,
    budgets: Budgets = DEFAULT_BUDGETS,
    existing: Mapping[str, cand.IndexSpec] | None = None,
) -> pl.DataFrame:
    """One row per (engine, candidate): decision, rank, saving and the evidence behind it.

    ``existing``: the target's indexes (name -> key); a candidate one of them serves is
    reported "already served by" it. ``saved_share`` is the marginal saving when chosen
    (beside the indexes chosen before it), ``standalone_share`` what it saves alone.
    """
    existing = dict(existing or {})
    rows: list[dict] = []
    for (engine,), idx in per_index.group_by("engine", maintain_order=True):
        pq = per_query.filter(pl.col("engine") == engine)
        base = baseline.filter(pl.col("engine") == engine)
        rows += _engine_rows(engine, advice, pq, idx, base, budgets, existing)
    overrides = {
        "rank": pl.Int64,
        "size_bytes": pl.Int64,
        "saved_ms": pl.Float64,
        "saved_share": pl.Float64,
        "standalone_share": pl.Float64,
        "write_lo": pl.Float64,
        "write_hi": pl.Float64,
    }
    return (
        pl.DataFrame(rows, schema_overrides=overrides).sort("engine", pl.col("rank").fill_null(999), "index")
        if rows
        else pl.DataFrame()
    )


def _engine_rows(
    engine: str,
    advice: Advice,
    pq: pl.DataFrame,
    idx: pl.DataFrame,
    baseline: pl.DataFrame,
    budgets: Budgets,
    existing: Mapping[str, cand.IndexSpec],
) -> list[dict]:
    """:func:`choose` on one engine's measurements."""
    freq = {q.name: q.frequency for q in advice.workload.queries}
    specs = _specs(advice)
    rows = []
    before = {r["query"]: r["before_ms"] for r in baseline.iter_rows(named=True)}
    total = sum(freq.get(q, 0) * t for q, t in before.items())
    useful = pq.filter((pl.col("lo") > 1.0) & (pl.col("plan_change") != "plan unchanged"))
    gains: dict[str, dict[str, _Gain]] = {}
    for r in useful.iter_rows(named=True):
        b = before.get(r["query"], r["before_ms"])
        gains.setdefault(r["index"], {})[r["query"]] = _Gain(r["after_ms"], b / r["hi"], b / r["lo"])
    standalone = {
        label: sum(freq.get(q, 0) * max(0.0, before[q] - g.after) for q, g in gs.items())
        for label, gs in gains.items()
    }
    info = {r["index"]: r for r in idx.iter_rows(named=True)}
    # Per query: the current best time, the fastest it plausibly is, and who serves it.
    current = dict(before)
    floor = dict(before)
    serving: dict[str, str] = {}

    def take(label: str) -> None:
        for q, g in gains.get(label, {}).items():
            if g.after < current[q]:
                current[q], floor[q], serving[q] = g.after, g.fast, label

    def saving(label: str, edge: str = "after") -> float:
        return sum(
            freq.get(q, 0) * max(0.0, current[q] - getattr(g, edge))
            for q, g in gains.get(label, {}).items()
            if g.slow < floor[q]
        )

    decision: dict[str, str] = {}
    saved_at: dict[str, float] = {}
    remaining = set(info)
    for label in sorted(remaining):
        holder = next((n for n, e in sorted(existing.items()) if _covers(e, specs[label], advice)), None)
        if holder is not None:
            decision[label] = f"already served by {holder} ({existing[holder].label}), an existing index"
            take(label)
            remaining.discard(label)
    for label in sorted(remaining):
        needs_desc = desc_note(specs[label], advice).startswith("DESC matters")
        if any(specs[label].descending) and not needs_desc and standalone.get(label, 0) > 0:
            decision[label] = "not recommended as written: DESC does not matter here"
            remaining.discard(label)
    chosen: list[str] = []
    write: dict[str, tuple[float, float]] = {}
    size = 0
    while remaining:
        scored = {label: saving(label) for label in remaining}
        best = max(sorted(scored), key=lambda k: scored[k])
        if scored[best] <= 0:
            break
        floor_best = saving(best, "slow")
        tied = [k for k in scored if scored[k] > 0 and saving(k, "fast") >= floor_best]
        best = min(tied, key=lambda k: simplicity(specs[k]))
        if saving(best, "slow") < budgets.min_saving * total:  # it must clearly save that much
            break
        remaining.discard(best)
        r = info[best]
        est, lo = write.get(r["table"], (1.0, 1.0))
        cost = max(1.0, r["write_cost"] or 1.0)
        cost_lo = max(1.0, r.get("write_lo") or cost)
        if lo * cost_lo > budgets.max_write_cost:
            decision[best] = (
                f"over the write budget ({r['table']} inserts {est * cost:.2f}x, at least "
                f"{lo * cost_lo:.2f}x, > {budgets.max_write_cost:.2f}x)"
            )
            continue
        if budgets.max_size_bytes is not None and size + (r["size_bytes"] or 0) > budgets.max_size_bytes:
            decision[best] = "over the size budget"
            continue
        chosen.append(best)
        write[r["table"]] = (est * cost, lo * cost_lo)
        size += r["size_bytes"] or 0
        saved_at[best] = scored[best]
        decision[best] = "recommend"
        take(best)
        for other in sorted(remaining):
            if _covers(specs[best], specs[other], advice):
                remaining.discard(other)
                decision[other] = f"covered by {best} (a prefix of its key)"
    # A chosen index whose key is a prefix of another chosen one is served by it.
    for a in list(chosen):
        for b in chosen:
            if a != b and _covers(specs[b], specs[a], advice) and a in chosen:
                chosen.remove(a)
                decision[a] = f"covered by {b} (a prefix of its key)"
                break
    for label in sorted(remaining):
        alone = standalone.get(label, 0.0)
        if label in decision or alone <= 0:
            continue
        marginal = saving(label)
        others = sorted({serving[q] for q in gains.get(label, {}) if q in serving} - {label})
        if marginal <= 0 and others:
            decision[label] = f"redundant given {', '.join(others)}"
        else:
            low, high = (saving(label, edge) / total if total else 0.0 for edge in ("slow", "fast"))
            decision[label] = (
                f"saves under {budgets.min_saving:.0%} of the workload at the low end of its interval "
                f"({low:.2%}-{high:.2%} beside the chosen set)"
            )
        saved_at[label] = marginal
    for label in info:
        decision.setdefault(label, NO_GAIN)
    rank = {label: i + 1 for i, label in enumerate(chosen)}
    for label, r in info.items():
        helped = pq.filter(pl.col("index") == label).filter(
            (pl.col("lo") > 1.0) & (pl.col("plan_change") != "plan unchanged")
        )
        rows.append(
            {
                "engine": engine,
                "rank": rank.get(label),
                "index": label,
                "name": r["name"],
                "table": r["table"],
                "decision": decision[label],
                "saved_ms": saved_at.get(label, 0.0),
                "saved_share": saved_at.get(label, 0.0) / total if total else 0.0,
                "standalone_share": standalone.get(label, 0.0) / total if total else 0.0,
                "queries_helped": ", ".join(
                    f"{h['query']} {h['speedup']:.1f}x [{h['lo']:.1f}, {h['hi']:.1f}]"
                    for h in helped.iter_rows(named=True)
                ),
                "write_cost": r["write_cost"],
                "write_lo": r.get("write_lo"),
                "write_hi": r.get("write_hi"),
                "size_bytes": r["size_bytes"],
                "build_ms": r["build_ms"],
                "desc": desc_note(specs[label], advice),
                "plan_index": any(c.source == "plan" for c in advice.candidates[specs[label]]),
            }
        )
    return rows


def _covers(big: cand.IndexSpec, small: cand.IndexSpec, advice: Advice) -> bool:
    """A prefix covers; directions count only where the workload sorts in mixed directions."""
    if big.covers(small):
        return True
    n = len(small.columns)
    same_prefix = big.table == small.table and big.columns[:n] == small.columns and n <= len(big.columns)
    holds_include = set(small.include) <= set(big.columns) | set(big.include)
    return same_prefix and holds_include and not desc_note(small, advice).startswith("DESC matters")


def desc_note(spec: cand.IndexSpec, advice: Advice) -> str:
    """Whether ``DESC`` in the key matters for the workload's sorts on this table."""
    mixed = []
    for an in advice.analyses.values():
        for a in an.accesses:
            if a.table == spec.table and a.sort and len({d for c, d in a.sort if c in spec.columns}) > 1:
                mixed.append(an.query)
    if mixed:
        return "DESC matters: " + ", ".join(sorted(set(mixed))) + " sorts in mixed directions"
    if any(spec.descending):
        return "DESC does not matter: every sort on these columns runs one way, which an ascending index serves backwards"  # noqa: E501
    return "no DESC needed"


def existing_report(
    existing: Mapping[str, cand.IndexSpec], recommended: Sequence[cand.IndexSpec], advice: Advice
) -> pl.DataFrame:
    """Existing indexes: redundant (a prefix of another) or unused (no workload query filters,
    joins or sorts on its first column); each with the reason."""
    redundant = cand.redundant(existing, recommended)
    used = {
        (a.table, c)
        for an in advice.analyses.values()
        for a in an.accesses
        for c in [*a.equality, *a.joins, *(r[0] for r in a.ranges), *(s[0] for s in a.sort[:1])]
    }
    rows = []
    for name, spec in existing.items():
        if name in redundant:
            status, why = "redundant", f"its key is a prefix of {redundant[name]}"
        elif (spec.table, spec.columns[0]) not in used:
            status, why = (
                "unused",
                f"no workload query filters, joins or sorts on {spec.table}.{spec.columns[0]}",
            )
        else:
            status, why = "used", ""
        rows.append({"name": name, "index": spec.label, "status": status, "reason": why})
    return pl.DataFrame(
        rows, schema={"name": pl.String, "index": pl.String, "status": pl.String, "reason": pl.String}
    )

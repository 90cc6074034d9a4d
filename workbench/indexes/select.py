"""Choose the indexes for the whole workload, within budgets on write cost and size.

The rule (greedy, stated once):

1. A (query, index) pair saves time only when the plan changed and the speedup's interval
   lies above 1 (its lower bound > 1); otherwise it is noise and saves nothing.
2. Each query is assumed to use the best chosen index for it: adding an index saves
   ``frequency x (current per-call time - time with the index)`` for every query it makes
   faster than the indexes already chosen.
3. Repeatedly take the candidate that saves the most workload time, skipping one whose
   table's write cost (the product of the write-cost ratios of the indexes chosen on that
   table) would exceed ``max_write_cost``, or whose size would take the total past
   ``max_size_bytes``; stop when nothing saves time. A candidate whose key is a prefix of a
   chosen one is dropped (the longer index serves it).

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


DEFAULT_BUDGETS = Budgets()


def _specs(advice: Advice) -> dict[str, cand.IndexSpec]:
    return {spec.label: spec for spec in advice.candidates}


def choose(
    advice: Advice,
    per_query: pl.DataFrame,
    per_index: pl.DataFrame,
    baseline: pl.DataFrame,
    budgets: Budgets = DEFAULT_BUDGETS,
) -> pl.DataFrame:
    """One row per (engine, candidate): decision, rank, saving and the evidence behind it."""
    freq = {q.name: q.frequency for q in advice.workload.queries}
    specs = _specs(advice)
    rows = []
    for (engine,), idx in per_index.group_by("engine", maintain_order=True):
        pq = per_query.filter(pl.col("engine") == engine)
        current = {
            r["query"]: r["before_ms"]
            for r in baseline.filter(pl.col("engine") == engine).iter_rows(named=True)
        }
        total = sum(freq.get(q, 0) * t for q, t in current.items())
        useful = pq.filter((pl.col("lo") > 1.0) & (pl.col("plan_change") != "plan unchanged"))
        gains: dict[str, dict[str, float]] = {}
        for r in useful.iter_rows(named=True):
            gains.setdefault(r["index"], {})[r["query"]] = r["after_ms"]
        info = {r["index"]: r for r in idx.iter_rows(named=True)}
        chosen: list[str] = []
        write: dict[str, float] = {}
        size = 0
        decision: dict[str, str] = {}
        saved_at: dict[str, float] = {}
        remaining = set(info)
        while remaining:
            best, best_saving = None, 0.0
            for label in sorted(remaining):
                saving = sum(
                    freq.get(q, 0) * max(0.0, current[q] - t) for q, t in gains.get(label, {}).items()
                )
                if saving > best_saving:
                    best, best_saving = label, saving
            if best is None:
                break
            remaining.discard(best)
            r = info[best]
            table_cost = write.get(r["table"], 1.0) * max(1.0, r["write_cost"] or 1.0)
            if table_cost > budgets.max_write_cost:
                decision[best] = (
                    f"over the write budget ({table_cost:.2f}x > {budgets.max_write_cost:.2f}x on {r['table']})"  # noqa: E501
                )
                continue
            if budgets.max_size_bytes is not None and size + (r["size_bytes"] or 0) > budgets.max_size_bytes:
                decision[best] = "over the size budget"
                continue
            chosen.append(best)
            write[r["table"]] = table_cost
            size += r["size_bytes"] or 0
            saved_at[best] = best_saving
            decision[best] = "recommend"
            for q, t in gains.get(best, {}).items():
                current[q] = min(current[q], t)
            for other in list(remaining):
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
        for label in info:
            decision.setdefault(label, "no measurable gain (plan unchanged or interval includes 1)")
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
                    "queries_helped": ", ".join(
                        f"{h['query']} {h['speedup']:.1f}x [{h['lo']:.1f}, {h['hi']:.1f}]"
                        for h in helped.iter_rows(named=True)
                    ),
                    "write_cost": r["write_cost"],
                    "size_bytes": r["size_bytes"],
                    "build_ms": r["build_ms"],
                    "desc": desc_note(specs[label], advice),
                    "plan_index": any(c.source == "plan" for c in advice.candidates[specs[label]]),
                }
            )
    overrides = {"rank": pl.Int64, "size_bytes": pl.Int64, "saved_ms": pl.Float64, "saved_share": pl.Float64}
    return (
        pl.DataFrame(rows, schema_overrides=overrides).sort("engine", pl.col("rank").fill_null(999), "index")
        if rows
        else pl.DataFrame()
    )


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

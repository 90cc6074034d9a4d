"""The whole advice on one engine: analyse, estimate (HypoPG), build and measure, choose, export.

>>> report = advise(engine, workload.from_folder(), out_dir="reports/03_indexes")   # doctest: +SKIP
>>> report.ranked()                                                                 # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from workbench import measure
from workbench.engines.base import Engine
from workbench.errors import WorkbenchError
from workbench.indexes import candidates as cand
from workbench.indexes import evaluate as ev
from workbench.indexes import migrations as mig
from workbench.indexes import select as sel
from workbench.indexes import workload as wl

#: The plan's target: the recommended set makes the workload's total DB time this much lower.
TARGET_REDUCTION = 0.5


@dataclass
class Report:
    engine: str
    advice: ev.Advice
    builds: ev.Builds
    selection: pl.DataFrame
    existing: pl.DataFrame
    total: pl.DataFrame
    hypothetical: pl.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    migrations: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    #: Seconds per stage (analyse, hypothetical, builds, total), for the benchmark.
    stages: dict[str, float] = field(default_factory=dict)

    def recommended(self) -> list[cand.IndexSpec]:
        specs = {s.label: s for s in self.advice.candidates}
        rec = self.selection.filter(pl.col("decision") == "recommend").sort("rank")
        return [specs[label] for label in rec["index"].to_list()]

    def ranked(self) -> pl.DataFrame:
        """The candidates, recommended first by saving: what ``workbench advise`` prints."""
        cols = [
            "rank",
            "index",
            "decision",
            "saved_share",
            "queries_helped",
            "write_cost",
            "size_bytes",
            "build_ms",
        ]
        return self.selection.select(cols)

    def reduction(self) -> dict[str, float]:
        """Frequency-weighted workload DB time per call, before and with the recommended set."""
        t = self.total
        before = float((t["before_ms"] * t["frequency"]).sum())
        after = float((t["after_ms"] * t["frequency"]).sum())
        return {"before_ms": before, "after_ms": after, "reduction": 1 - after / before if before else 0.0}

    def verdict_sentence(self) -> str:
        r = self.reduction()
        share, target = r["reduction"], TARGET_REDUCTION
        head = (
            f"On {self.engine} the recommended set takes the workload's DB time from {r['before_ms']:.2f} ms "
            f"to {r['after_ms']:.2f} ms per round of its queries ({share:.0%} lower)"
        )
        if share >= target:
            return head + f": the plan's target of {target:.0%} is met."
        slow = (
            self.total.with_columns(share=pl.col("after_ms") * pl.col("frequency") / r["after_ms"])
            .sort("share", descending=True)
            .head(2)
        )
        why = ", ".join(
            f"{q['query']} ({q['share']:.0%} of what remains, {q['speedup']:.1f}x)"
            for q in slow.iter_rows(named=True)
        )
        return (
            head
            + f": {target - share:.0%} short of the plan's {target:.0%}; most of the remaining time is in {why}."  # noqa: E501
        )


def _size(n: int | None) -> str:
    if n is None:
        return "size not reported by this engine"
    return f"{n / 1024:,.0f} kB"


def evidence(row: Mapping[str, Any], engine: str, hypo: pl.DataFrame | None = None) -> str:
    lines = [
        f"engine {engine}; measured on the workbench sample",
        "queries helped = " + (row["queries_helped"] or "none measurably"),
        f"workload time saved = {row['saved_share']:.0%}; size = {_size(row['size_bytes'])}; "
        f"build = {row['build_ms']:.1f} ms; write cost (bulk insert into {row['table']}) = {row['write_cost']:.2f}x",  # noqa: E501
        row["desc"],
    ]
    if hypo is not None and not hypo.is_empty():
        h = hypo.filter(pl.col("index") == row["index"])
        if not h.is_empty():
            lines.append(f"HypoPG planner cost, best query = {h['cost_ratio'].max():.1f}x lower")
    return "\n".join(lines)


def advise(
    engine: Engine,
    workload: wl.Workload,
    *,
    budgets: sel.Budgets = sel.DEFAULT_BUDGETS,
    out_dir: str | Path | None = None,
    hypothetical_on: Engine | None = None,
    repeat: int = 5,
    write_rows: int = ev.WRITE_ROWS,
    page_size: int = wl.PAGE_SIZE,
    covering: bool = False,
    clock: measure.Clock = time.perf_counter_ns,
) -> Report:
    """Everything for one engine (a database the workbench created): see the package's modules.

    ``hypothetical_on`` is a PostgreSQL engine to run the HypoPG pass on (read-only; by default
    ``engine`` itself when it is PostgreSQL). Without HypoPG there, a note says so and the
    local sample's builds stand alone. Migrations go to ``out_dir/migrations/<engine>/``.
    With ``covering`` (PostgreSQL only) each key also comes as a covering variant with
    ``INCLUDE`` columns, measured beside it (see :func:`.candidates.derive`).
    """
    started = time.perf_counter()
    stages: dict[str, float] = {}
    notes: list[str] = []
    if covering and engine.dialect != "postgres":
        notes.append(f"INCLUDE is PostgreSQL's: no covering variants on {engine.name}.")
        covering = False
    params = wl.draw(engine, page_size)
    advice = ev.analyze(workload, engine, params, covering=covering)
    if not advice.workload.queries:
        raise WorkbenchError("No query of the workload could be analysed: " + "; ".join(advice.errors))
    existing_frame = engine.list_indexes()
    existing = {
        r["name"]: spec
        for r in existing_frame.iter_rows(named=True)
        if (spec := cand.parse_existing(r["table"], r["columns"], r["sql"], engine.dialect)) is not None
    }
    stages["analyse"] = time.perf_counter() - started
    hypo = None
    target = (
        hypothetical_on if hypothetical_on is not None else (engine if engine.name == "postgres" else None)
    )
    if target is not None:
        try:
            hypo_advice = advice
            if target is not engine:
                hypo_advice = ev.analyze(workload, target, wl.draw(target, page_size), covering=covering)
            hypo = ev.hypothetical(target, hypo_advice)
        except ev.HypoPGMissing as e:
            notes.append(f"{e}; the hypothetical pass is skipped and the local sample's real builds decide.")
    stages["hypothetical"] = time.perf_counter() - started - sum(stages.values())
    builds = ev.measure_builds(engine, advice, repeat=repeat, write_rows=write_rows, clock=clock)
    selection = sel.choose(advice, builds.per_query, builds.per_index, builds.baseline, budgets)
    stages["builds"] = time.perf_counter() - started - sum(stages.values())
    report = Report(
        engine.name, advice, builds, selection, pl.DataFrame(), pl.DataFrame(), hypo, notes, stages=stages
    )
    recommended = report.recommended()
    report.existing = sel.existing_report(existing, recommended, advice)
    report.total = ev.workload_time(engine, advice, recommended, repeat=repeat, clock=clock)
    stages["total"] = time.perf_counter() - started - sum(stages.values())
    if out_dir is not None:
        changes = [
            mig.Change(spec, evidence(row, engine.name, hypo))
            for spec in recommended
            for row in selection.filter(pl.col("index") == spec.label).iter_rows(named=True)
        ]
        for row in report.existing.filter(pl.col("status") == "redundant").iter_rows(named=True):
            changes.append(
                mig.Change(existing[row["name"]], f"redundant: {row['reason']}", drop=True, name=row["name"])
            )
        report.migrations = mig.write(out_dir, changes, [engine.dialect])
    report.seconds = time.perf_counter() - started
    return report


def plan_verdicts(reports: Sequence[Report]) -> pl.DataFrame:
    """One row per (engine, plan index): its decision, what it buys, its write cost, DESC."""
    rows = []
    for rep in reports:
        for r in rep.selection.filter(pl.col("plan_index")).iter_rows(named=True):
            rows.append(
                {
                    "engine": rep.engine,
                    **{
                        k: r[k]
                        for k in ("index", "decision", "queries_helped", "saved_share", "write_cost", "desc")
                    },
                }
            )
    return pl.DataFrame(rows)

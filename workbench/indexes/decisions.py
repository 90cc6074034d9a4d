"""The index lab's answers to the plan's items, for the decision page, under the profile.

On the profile's engine (the production one) each of the plan's four indexes gets a
decision: ``ship`` (recommended as written), ``ship changed`` (a recommended index with the
same leading column serves its queries instead: a longer or shorter key, or the key without
a DESC that no sort needs) or ``don't ship``. Its effect is the workload-weighted speedup
of the index that would ship, measured alone against no secondary index, with bounds taken
from every query's 95% interval at once; its cost is that index's write cost (paired
inserts, with interval) and size; ``flips`` says, where the data can, what would change the
answer. So do ``index_desc`` (does DESC matter), every other recommended index, the
pagination (the plan's id cursor against keyset and OFFSET) and ``success:db`` (the
workload's DB time today against with the chosen set). Other engines' answers stay plain
verdicts, for comparison.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from workbench.indexes import advisor
from workbench.indexes import candidates as cand
from workbench.indexes import evaluate as ev
from workbench.indexes import select as sel
from workbench.verdicts import Verdict

EVIDENCE = "03_indexes.html"
NOTEBOOK = "03_indexes"


def effect(report: advisor.Report, label: str) -> tuple[float, float, float] | None:
    """Workload-weighted speedup of index ``label`` alone: (estimate, low, high), or None
    when it was not measured. Only gains whose interval clears 1 with a changed plan count;
    the other queries keep their time. The bounds put every query at its interval's end."""
    freq = {q.name: q.frequency for q in report.advice.workload.queries}
    before = {r["query"]: r["before_ms"] for r in report.builds.baseline.iter_rows(named=True)}
    rows = report.builds.per_query.filter(pl.col("index") == label)
    if label not in set(report.builds.per_index["index"]):
        return None
    gains = {
        r["query"]: r
        for r in rows.iter_rows(named=True)
        if r["lo"] > 1 and r["plan_change"] != "plan unchanged"
    }
    total = sum(freq.get(q, 0) * b for q, b in before.items())

    def with_index(pick: str) -> float:
        out = 0.0
        for q, b in before.items():
            g = gains.get(q)
            t = b if g is None else {"est": g["after_ms"], "slow": b / g["lo"], "fast": b / g["hi"]}[pick]
            out += freq.get(q, 0) * t
        return out

    if not total:
        return None
    return total / with_index("est"), total / with_index("slow"), total / with_index("fast")


def _artifact(report: advisor.Report, spec: cand.IndexSpec, out_dir: Path) -> str:
    for p in report.migrations:
        if p.name.endswith(".up.sql") and f"_create_{spec.name}." in p.name:
            resolved = p.resolve()
            base = Path(out_dir).resolve()
            return resolved.relative_to(base).as_posix() if resolved.is_relative_to(base) else str(p)
    return ""


def _cost(row: Mapping[str, Any]) -> str:
    size = "size not reported" if row["size_bytes"] is None else f"{row['size_bytes'] / 1024:,.0f} kB"
    write = ev.write_text(row["write_cost"], row.get("write_lo"), row.get("write_hi"))
    return f"inserts into {row['table']}: {write}; {size}"


def _flips(row: Mapping[str, Any], budgets: sel.Budgets, shipped: bool) -> str:
    d = row["decision"]
    if shipped:
        parts = []
        if (row.get("write_lo") or 0) > 1:
            parts.append(f"the write budget on {row['table']} were below {row['write_lo']:.2f}x")
        if row["saved_share"] > 0 and budgets.min_saving > 0:
            fewer = row["saved_share"] / budgets.min_saving
            parts.append(f"its queries ran {fewer:,.0f}x less often (saving under {budgets.min_saving:.0%})")
        return ("don't ship if " + " or ".join(parts)) if parts else ""
    if d.startswith("redundant given "):
        return f"ship if {d.removeprefix('redundant given ')} is not shipped"
    if d.startswith("over the write budget"):
        at_least = row.get("write_lo") or row["write_cost"]
        return f"ship at a write budget on {row['table']} of {at_least:.2f}x or more"
    if d.startswith("saves under") and row["saved_share"] > 0:
        return f"ship if its queries ran {budgets.min_saving / row['saved_share']:,.0f}x more often"
    if d.startswith("not recommended as written: DESC"):
        return "ship as written only if a query sorts these columns in mixed directions"
    return ""


def _serving(report: advisor.Report, spec: cand.IndexSpec) -> cand.IndexSpec | None:
    """The recommended index that serves a plan index's queries: the same table and leading column."""
    for rec in report.recommended():
        if rec.table == spec.table and rec.columns[0] == spec.columns[0]:
            return rec
    return None


def _x(e: tuple[float, float, float] | None) -> dict[str, Any]:
    return {} if e is None else {"effect": e[0], "low": e[1], "high": e[2], "unit": "x"}


def plan_index_verdicts(
    report: advisor.Report, prof: Any, out_dir: Path, budgets: sel.Budgets
) -> tuple[list[Verdict], set[str]]:
    """One verdict per plan index (its decision), and the labels of the recommended
    indexes that ship in their place (so they get no second row)."""
    rows = {r["index"]: r for r in report.selection.iter_rows(named=True)}
    out, used = [], set()
    conditions = prof.conditions(engine=report.engine, workload=report.advice.workload.source)
    for spec in cand.PLAN_INDEXES:
        row = rows.get(spec.label)
        if row is None:
            continue
        ships = spec if row["decision"] == "recommend" else _serving(report, spec)
        flips = ""
        if ships is None:
            decision, shown = "don't ship", row
            # Without DESC the key is another candidate: its reason decides (e.g. too small a saving).
            alike = [
                r
                for r in rows.values()
                if r["index"] != spec.label
                and r["index"].startswith(f"{spec.table}({spec.columns[0]}")
                and r["standalone_share"] > 0
            ]
            if row["decision"].startswith("not recommended as written") and alike:
                best = max(alike, key=lambda r: r["standalone_share"])
                flips = f"{best['index']}: {best['decision']}; " + _flips(best, budgets, False)
        else:
            decision = "ship" if ships == spec else "ship changed"
            shown = rows[ships.label]
            used.add(ships.label)
        e = effect(report, shown["index"])
        what = "" if ships is None or ships == spec else f" Ship {ships.label} instead."
        alone = (
            f"alone {e[0]:.2f}x ({e[1]:.2f}-{e[2]:.2f}) of the workload's DB time" if e else "not measured"
        )
        out.append(
            Verdict(
                f"the plan's index {spec.label}",
                advisor.plan_index_verdict(row["decision"]),
                f"{row['decision'].capitalize()}: it speeds up "
                f"{row['queries_helped'] or 'no query measurably'}; "
                f"{alone} for {shown['index']}; write cost {_cost(shown)}; {row['desc']}.{what}",
                report.engine,
                item=f"index:{spec.label}",
                decision=decision,
                **_x(e),
                conditions=conditions,
                cost=_cost(shown),
                flips=flips or _flips(shown, budgets, ships is not None),
                evidence=EVIDENCE,
                artifact=_artifact(report, ships, out_dir) if ships is not None else "",
            )
        )
    return out, used


def desc_verdict(report: advisor.Report, prof: Any) -> Verdict:
    """Does DESC in the plan's keys matter for the workload's sorts?"""
    notes = {s.label: sel.desc_note(s, report.advice) for s in cand.PLAN_INDEXES if any(s.descending)}
    matters = [label for label, n in notes.items() if n.startswith("DESC matters")]
    detail = "; ".join(f"{label}: {n}" for label, n in notes.items())
    return Verdict(
        "does DESC matter in the plan's indexes",
        "DESC matters" if matters else "DESC does not matter",
        detail + ".",
        report.engine,
        item="index_desc",
        decision="ship" if matters else "don't ship",
        conditions=prof.conditions(engine=report.engine, workload=report.advice.workload.source),
        cost="none either way: the same index, read in the other direction",
        flips=""
        if matters
        else "ship DESC if a query sorts these columns in mixed directions (a DESC, b ASC)",
        evidence=EVIDENCE,
    )


def other_index_verdicts(
    report: advisor.Report, prof: Any, out_dir: Path, budgets: sel.Budgets, used: set[str]
) -> list[Verdict]:
    """Every recommended index that is not one of the plan's (nor ships in place of one)."""
    plan = {s.label for s in cand.PLAN_INDEXES}
    out = []
    for row in report.selection.filter(pl.col("decision") == "recommend").iter_rows(named=True):
        if row["index"] in plan or row["index"] in used:
            continue
        spec = next(s for s in report.recommended() if s.label == row["index"])
        e = effect(report, row["index"])
        out.append(
            Verdict(
                f"index {row['index']} (not in the plan)",
                "needed",
                f"Recommended (rank {row['rank']}): it speeds up {row['queries_helped']}; saves "
                f"{row['saved_share']:.1%} of the workload's DB time beside the indexes before it.",
                report.engine,
                item=f"index:{row['index']}",
                decision="ship",
                **_x(e),
                conditions=prof.conditions(engine=report.engine, workload=report.advice.workload.source),
                cost=_cost(row),
                flips=_flips(row, budgets, True),
                evidence=EVIDENCE,
                artifact=_artifact(report, spec, out_dir),
            )
        )
    return out


def success_db_verdict(report: advisor.Report, prof: Any) -> Verdict:
    """The plan's "DB queries 50% faster": the workload's DB time today against with the set."""
    r = report.reduction()
    said = report.target_verdict()
    # met / missed as the decision page words a target; an interval that straddles it shows nothing
    decision = {"met": "ship", "missed": "don't ship"}.get(said.split(":")[0], "not measured here")
    return Verdict(
        "does the chosen set cut total DB time by 50%",
        said,
        report.verdict_sentence()
        + " Per request of the profile's mix; today is the database as loaded, with no secondary index.",
        report.engine,
        item="success:db",
        decision=decision,
        effect=100 * r["reduction"],
        low=100 * r["low"],
        high=100 * r["high"],
        unit="%",
        conditions=prof.conditions(engine=report.engine, workload=report.advice.workload.source),
        evidence=EVIDENCE,
    )


def pagination_verdict(
    engine: str, pages: pl.DataFrame, depth: pl.DataFrame, prof: Any, size: int
) -> Verdict:
    """The plan's id cursor against keyset and OFFSET: correct, and flat with depth?"""
    p = pages.filter(pl.col("engine") == engine)
    sums = {
        r["pager"]: r
        for r in p.group_by("pager").agg(pl.col("missed", "repeated").sum()).iter_rows(named=True)
    }
    wrong = {k: v["missed"] + v["repeated"] for k, v in sums.items()}
    d = depth.filter(pl.col("engine") == engine)
    deepest = {}
    for (pager,), part in d.group_by("pager"):
        part = part.sort("page")
        deepest[pager] = (part.row(0, named=True), part.row(-1, named=True))
    key, off = deepest.get("keyset"), deepest.get("offset")
    flat = key is not None and key[1]["median_ms"] <= advisor.DEPTH_TARGET * key[0]["median_ms"]
    keyset_ok = wrong.get("keyset", 1) == 0 and flat
    cursor_ok = wrong.get("cursor", 1) == 0
    e: dict[str, Any] = {}
    said = []
    if key is not None and off is not None and key[1]["page"] == off[1]["page"]:
        k, o = key[1], off[1]
        e = {
            "effect": o["median_ms"] / k["median_ms"],
            "low": o["lo_ms"] / k["hi_ms"],
            "high": o["hi_ms"] / k["lo_ms"],
            "unit": "x",
        }
    for pager, (first, last) in deepest.items():
        said.append(
            f"{advisor.PAGER_WORDS.get(pager, pager)} {last['median_ms'] / first['median_ms']:.1f}x at page "
            f"{last['page']:,} (rows {(last['page'] - 1) * size + 1:,}-{last['page'] * size:,})"
        )
    missed = "; ".join(
        f"{advisor.PAGER_WORDS.get(k, k)} missed {v['missed']:,} and repeated {v['repeated']:,} rows"
        for k, v in sums.items()
    )
    decision = "ship" if cursor_ok else "ship changed" if keyset_ok else "don't ship"
    verdict = (
        "the plan's cursor is correct"
        if cursor_ok
        else "use keyset: the plan's cursor misses or repeats rows"
        if keyset_ok
        else "neither the plan's cursor nor keyset is correct and flat here"
    )
    return Verdict(
        "which pagination, correct and flat with depth",
        verdict,
        f"Walking every page of {size} sessions of the hottest project, on a still table and with rows "
        f"inserted between pages: {missed}. Median latency of the deepest page over page 1: "
        f"{'; '.join(said)}." + (" Effect: OFFSET's deepest page over keyset's." if e else ""),
        engine,
        item="pagination",
        decision=decision,
        **e,
        conditions=prof.conditions(engine=engine, page_size=size),
        cost="a cursor of two values (created_at, id) in the API; "
        "the index sessions(project_id, created_at, id)",
        flips="the plan's id cursor is correct only while ids follow created_at (no session synced late)",
        evidence=EVIDENCE,
    )


def verdicts(
    reports: Mapping[str, advisor.Report],
    pages: pl.DataFrame,
    depth: pl.DataFrame,
    prof: Any,
    out_dir: str | Path,
    budgets: sel.Budgets = sel.DEFAULT_BUDGETS,
    page_size: int = 20,
) -> list[Verdict]:
    """Notebook 03's verdicts: the decisions on the profile's engine, then the other engines'
    answers as plain verdicts, for comparison (:func:`advisor.verdicts`)."""
    out_dir = Path(out_dir)
    out: list[Verdict] = []
    head = reports.get(prof.engine)
    if head is not None:
        out.append(success_db_verdict(head, prof))
        plan, used = plan_index_verdicts(head, prof, out_dir, budgets)
        out += plan
        out.append(desc_verdict(head, prof))
        out += other_index_verdicts(head, prof, out_dir, budgets, used)
        out.append(pagination_verdict(prof.engine, pages, depth, prof, page_size))
    others = {k: v for k, v in reports.items() if k != prof.engine}
    if others:
        rest = advisor.verdicts(
            others,
            pages.filter(pl.col("engine") != prof.engine),
            depth.filter(pl.col("engine") != prof.engine),
        )
        out += [Verdict(f"{v.topic} (for comparison)", v.verdict, v.detail, v.engine) for v in rest]
    return out

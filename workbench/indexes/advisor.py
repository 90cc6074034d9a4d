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

    def any_recommended(self) -> bool:
        sel = self.selection
        return "decision" in sel.columns and sel.filter(pl.col("decision") == "recommend").height > 0

    def recommended(self) -> list[cand.IndexSpec]:
        specs = {s.label: s for s in self.advice.candidates}
        rec = self.selection.filter(pl.col("decision") == "recommend").sort("rank")
        return [specs[label] for label in rec["index"].to_list()]

    def ranked(self) -> pl.DataFrame:
        """The candidates, recommended first by saving: what ``workbench advise`` prints."""
        return self.selection.select(
            "rank",
            "index",
            "decision",
            "saved_share",
            "standalone_share",
            "queries_helped",
            _write_column(),
            "size_bytes",
            "build_ms",
        )

    def reduction(self) -> dict[str, float]:
        """Frequency-weighted workload DB time per call, before and with the recommended set."""
        t = self.total
        before = float((t["before_ms"] * t["frequency"]).sum())
        after = float((t["after_ms"] * t["frequency"]).sum())
        # Bounds: every query at the slow (fast) end of its speedup's 95% interval at once.
        slow = float((t["before_ms"] / t["lo"] * t["frequency"]).sum()) if "lo" in t.columns else after
        fast = float((t["before_ms"] / t["hi"] * t["frequency"]).sum()) if "hi" in t.columns else after
        if not before:
            return {"before_ms": 0.0, "after_ms": after, "reduction": 0.0, "low": 0.0, "high": 0.0}
        return {
            "before_ms": before,
            "after_ms": after,
            "reduction": 1 - after / before,
            "low": 1 - slow / before,
            "high": 1 - fast / before,
        }

    def change_text(self) -> str:
        """The total's change in words, "no measurable change" when its bounds straddle zero."""
        r = self.reduction()
        bounds = f"{_signed(r['high'])} to {_signed(r['low'])}"
        if r["low"] <= 0 <= r["high"]:
            return f"no measurable change ({bounds})"
        return f"{_change(r['reduction'])} ({bounds})"

    def verdict_sentence(self) -> str:
        """The plan's 50% target in one sentence: before and after, the change, what remains."""
        r = self.reduction()
        target = TARGET_REDUCTION
        if not self.any_recommended():
            return (
                f"On {self.engine} no index earned its keep, so nothing changes: the workload's DB time "
                f"stays at {r['before_ms']:.2f} ms per round of its queries, against the plan's target "
                f"of {target:.0%} lower."
            )
        head = (
            f"On {self.engine} the recommended set takes the workload's DB time from {r['before_ms']:.2f} ms "
            f"to {r['after_ms']:.2f} ms per round of its queries, {self.change_text()}"
        )
        if r["low"] >= target:
            return head + f": the plan's target of {target:.0%} lower is met."
        slow = (
            self.total.with_columns(share=pl.col("after_ms") * pl.col("frequency") / r["after_ms"])
            .sort("share", descending=True)
            .head(2)
        )
        why = " and ".join(
            f"{q['query']} ({q['share']:.0%} of it, {_sped(q)})" for q in slow.iter_rows(named=True)
        )
        return head + f", against the plan's target of {target:.0%} lower; most of what remains is in {why}."

    def target_verdict(self) -> str:
        """ "met: 95% lower" or "missed: 6% higher" (the plan's 50% target)."""
        if not self.any_recommended():
            return "missed: nothing recommended"
        r = self.reduction()
        word = (
            "met" if r["low"] >= TARGET_REDUCTION else "missed" if r["high"] < TARGET_REDUCTION else "unclear"
        )
        return f"{word}: {_change(r['reduction'])}"


def _signed(share: float) -> str:
    """A reduction as a signed change: 0.9 -> "-90%", -0.06 -> "+6%"."""
    return f"{-share:+.0%}"


def _sped(q: Mapping[str, Any]) -> str:
    """A query's change in words, from its interval: sped up only when the interval clears 1.

    >>> _sped({"speedup": 3.0, "lo": 2.5, "hi": 3.5}), _sped({"speedup": 0.7, "lo": 0.5, "hi": 1.2})
    ('sped up 3.0x', 'unchanged within noise (0.50-1.20x)')
    """
    if q["lo"] > 1:
        return f"sped up {q['speedup']:.1f}x"
    if q["hi"] < 1:
        return f"slower: {1 / q['speedup']:.1f}x the time"
    return f"unchanged within noise ({q['lo']:.2f}-{q['hi']:.2f}x)"


def ranked_lines(report: Report) -> list[str]:
    """What ``workbench advise`` prints: the recommended indexes in rank order, then the rest,
    one line each with its saving (beside the others, and alone), speedups and write cost."""
    rows = list(report.ranked().iter_rows(named=True))
    out = []
    rec = [r for r in rows if r["decision"] == "recommend"]
    out.append("Recommended, by workload DB time saved:" if rec else "Recommended: none.")
    for r in rec:
        out.append(
            f"  {r['rank']}. {r['index']}: saves {r['saved_share']:.1%} of the workload's DB time "
            f"(alone {r['standalone_share']:.1%}); {r['queries_helped'] or 'no query measurably'}; "
            f"write cost {r['write_cost']}; {_size(r['size_bytes'])}"
        )
    rest = [r for r in rows if r["decision"] != "recommend"]
    if rest:
        out.append("Not recommended:")
    for r in rest:
        helped = (
            f"; alone it saves {r['standalone_share']:.1%}: {r['queries_helped']}"
            if r["queries_helped"]
            else ""
        )
        out.append(f"  {r['index']}: {r['decision']}{helped}; write cost {r['write_cost']}")
    return out


def _write_column() -> pl.Expr:
    """The write cost as text with its interval ("no measurable write cost" within noise)."""
    return (
        pl.struct("write_cost", "write_lo", "write_hi")
        .map_elements(
            lambda r: ev.write_text(r["write_cost"], r["write_lo"], r["write_hi"]), return_dtype=pl.String
        )
        .alias("write_cost")
    )


def _change(share: float) -> str:
    """A relative change in words: "95% lower", "6% higher", "no change".

    >>> _change(0.95), _change(-0.06), _change(0.001)
    ('95% lower', '6% higher', 'no change')
    """
    if round(abs(share), 2) == 0:
        return "no change"
    return f"{abs(share):.0%} {'lower' if share > 0 else 'higher'}"


def _size(n: int | None) -> str:
    if n is None:
        return "size not reported by this engine"
    return f"{n / 1024:,.0f} kB"


def evidence(row: Mapping[str, Any], engine: str, hypo: pl.DataFrame | None = None) -> str:
    lines = [
        f"engine {engine}; measured on the workbench sample",
        "queries helped = " + (row["queries_helped"] or "none measurably"),
        f"workload time saved = {row['saved_share']:.1%} (alone: {row['standalone_share']:.1%}); "
        f"size = {_size(row['size_bytes'])}; build = {row['build_ms']:.1f} ms",
        f"write cost (bulk insert into {row['table']}) = "
        + ev.write_text(row["write_cost"], row.get("write_lo"), row.get("write_hi")),
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
    values: Mapping[str, Any] | None = None,
    migrations_dir: str | Path | None = None,
    versions: str = "seq",
    start_version: int | None = None,
    clock: measure.Clock = time.perf_counter_ns,
) -> Report:
    """Everything for one engine (a database the workbench created): see the package's modules.

    ``hypothetical_on`` is a PostgreSQL engine to run the HypoPG pass on (read-only; by default
    ``engine`` itself when it is PostgreSQL). Without HypoPG there, a note says so and the
    local sample's builds stand alone. Migrations go to ``out_dir/migrations/<engine>/``, or
    straight into ``migrations_dir`` (a repository's folder: see
    :func:`.migrations.write_folder` for ``versions`` and ``start_version``). With
    ``covering`` (PostgreSQL only) each key also comes as a covering variant with
    ``INCLUDE`` columns, measured beside it (see :func:`.candidates.derive`). ``values``
    (:func:`.workload.read_values`) gives parameters the workbench cannot draw; a query
    with a parameter that has no value raises :class:`.workload.UnboundParameter`.
    """
    started = time.perf_counter()
    stages: dict[str, float] = {}
    notes: list[str] = []
    if covering and engine.dialect != "postgres":
        notes.append(f"INCLUDE is PostgreSQL's: no covering variants on {engine.name}.")
        covering = False
    values = dict(values or {})
    params = wl.draw(engine, page_size, values)
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
                hypo_params = wl.draw(target, page_size, values)
                hypo_advice = ev.analyze(workload, target, hypo_params, covering=covering)
            hypo = ev.hypothetical(target, hypo_advice)
        except ev.HypoPGMissing as e:
            notes.append(f"{e}; the hypothetical pass is skipped and the local sample's real builds decide.")
    stages["hypothetical"] = time.perf_counter() - started - sum(stages.values())
    if existing:
        notes.append(
            "Each speedup's 'before' is measured with the existing secondary indexes ("
            + ", ".join(sorted(existing))
            + ") dropped, and they are restored afterwards; the workload total's 'today' keeps them."
        )
    builds = ev.measure_builds(engine, advice, repeat=repeat, write_rows=write_rows, clock=clock)
    selection = sel.choose(
        advice, builds.per_query, builds.per_index, builds.baseline, budgets, existing=existing
    )
    stages["builds"] = time.perf_counter() - started - sum(stages.values())
    report = Report(
        engine.name, advice, builds, selection, pl.DataFrame(), pl.DataFrame(), hypo, notes, stages=stages
    )
    recommended = report.recommended()
    report.existing = sel.existing_report(existing, recommended, advice)
    report.total = ev.workload_time(engine, advice, recommended, repeat=repeat, clock=clock)
    stages["total"] = time.perf_counter() - started - sum(stages.values())
    if out_dir is not None or migrations_dir is not None:
        changes = [
            mig.Change(spec, evidence(row, engine.name, hypo))
            for spec in recommended
            for row in selection.filter(pl.col("index") == spec.label).iter_rows(named=True)
        ]
        for row in report.existing.filter(pl.col("status") == "redundant").iter_rows(named=True):
            changes.append(
                mig.Change(existing[row["name"]], f"redundant: {row['reason']}", drop=True, name=row["name"])
            )
        options = {"versions": versions, "start_version": start_version}
        report.migrations = (
            mig.write_folder(migrations_dir, changes, engine.dialect, **options)
            if migrations_dir is not None
            else mig.write(out_dir, changes, [engine.dialect], **options)
        )
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


def statement(path: str | Path) -> str:
    """A migration file's statement, without its evidence comment."""
    lines = Path(path).read_text().splitlines()
    return "\n".join(line for line in lines if not line.startswith("--")).strip()


#: SQL in a report's table: monospace, wrapped between words only
SQL_STYLE = "font-family: monospace; white-space: pre-wrap; word-break: normal; overflow-wrap: normal"


def migrations_html(reports: Mapping[str, Report], report_dir: str | Path) -> str:
    """The recommended migrations per engine: each ``up`` statement inline (what a reviewer
    approves), with its ``up`` and ``down`` files linked relative to ``report_dir`` (the
    folder of the HTML pages, so the links open offline from ``reports/``).
    """
    import html

    base = Path(report_dir).resolve()

    def link(p: Path) -> str:
        rel = p.resolve().relative_to(base).as_posix() if p.resolve().is_relative_to(base) else p.as_posix()
        return f"<a href='{html.escape(rel)}'>{html.escape(p.name)}</a>"

    parts = []
    for engine, rep in reports.items():
        ups = sorted(p for p in rep.migrations if p.name.endswith(".up.sql"))
        if not ups:
            parts.append(f"<h4>{html.escape(engine)}</h4><p>No index earned its keep here: no migration.</p>")
            continue
        rows = "".join(
            f"<tr><td class='text'><code style='{SQL_STYLE}'>{html.escape(statement(up))}</code></td>"
            f"<td class='text'>{link(up)}<br>{link(up.with_name(up.name.replace('.up.', '.down.')))}"
            "</td></tr>"
            for up in ups
        )
        parts.append(
            f"<h4>{html.escape(engine)}: {len(ups)} migration{'s' if len(ups) != 1 else ''}, "
            f"in <code>{html.escape(ups[0].parent.name)}/</code></h4>"
            "<table class='wb-table'><thead><tr><th class='text'>up (applied in this order)</th>"
            f"<th class='text'>files (up, down)</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    return "<div class='wb-migrations'>" + "".join(parts) + "</div>"


#: What the plan calls each pager.
PAGER_WORDS = {"cursor": "the plan's cursor", "offset": "OFFSET", "keyset": "keyset"}
#: The plan's keyset target: the deepest page within this factor of page 1.
DEPTH_TARGET = 2.0


def plan_index_verdict(decision: str) -> str:
    """A plan index's decision in the plan's words (needed, or not, and why not).

    >>> plan_index_verdict("recommend"), plan_index_verdict("covered by t(a, b) (a prefix of its key)")
    ('needed', 'served by t(a, b), recommended instead')
    """
    if decision == "recommend":
        return "needed"
    if decision.startswith("covered by "):
        return f"served by {decision.removeprefix('covered by ').split(' (a prefix')[0]}, recommended instead"
    if decision.startswith("over the write budget"):
        return "not needed: write cost over budget, " + decision.removeprefix("over the write budget (")[:-1]
    if decision.startswith("no measurable gain"):
        return "not needed: no measurable gain"
    if decision.startswith("redundant given "):
        return f"not needed: {decision}"
    if decision.startswith("already served by "):
        return decision.split(", an existing")[0]
    if decision.startswith("not recommended as written: DESC"):
        return "not needed as written: DESC does not matter"
    if decision.startswith("saves under"):
        return f"not needed: {decision}"
    return decision


def verdicts(reports: Mapping[str, Report], pages: pl.DataFrame, depth: pl.DataFrame) -> list[Any]:
    """Notebook 03's answers, one topic per question of the plan, one verdict per engine.

    ``reports``: :func:`advise` per engine; ``pages``: :func:`~workbench.indexes.pagination.correctness`
    frames; ``depth``: :func:`~workbench.indexes.pagination.depth_latency` frames.
    """
    from workbench.indexes import pagination
    from workbench.verdicts import Verdict

    out = []
    for name, r in reports.items():
        out.append(
            Verdict(
                "does the chosen set cut total DB time by 50%", r.target_verdict(), r.verdict_sentence(), name
            )
        )
    for name, r in reports.items():
        for row in r.selection.filter(pl.col("plan_index")).iter_rows(named=True):
            helped = row["queries_helped"] or "no query measurably"
            out.append(
                Verdict(
                    f"the plan's index {row['index']}",
                    plan_index_verdict(row["decision"]),
                    f"speeds up {helped}; write cost "
                    + ev.write_text(row["write_cost"], row.get("write_lo"), row.get("write_hi"))
                    + f"; {row['desc']}.",
                    name,
                )
            )
    for (name,), part in pages.group_by("engine", maintain_order=True):
        sums = part.group_by("pager", maintain_order=True).agg(pl.col("missed", "repeated").sum())
        correct = [p for p, m, rep in sums.iter_rows() if m + rep == 0]
        wrong = [
            f"{PAGER_WORDS.get(p, p)} missed {m:,} and repeated {rep:,} rows"
            for p, m, rep in sums.iter_rows()
            if m + rep
        ]
        verdict = (
            "all correct"
            if not wrong
            else "none correct"
            if not correct
            else "only " + " and ".join(PAGER_WORDS.get(p, p) for p in correct) + " is correct"
        )
        out.append(
            Verdict(
                "which pagination is correct",
                verdict,
                "Walking every page of the hottest project, on a still table and with rows inserted between "
                "pages: " + ("; ".join(wrong) if wrong else "no row missed or repeated") + ".",
                name,
            )
        )
    grown = pagination.growth(depth)
    for (name,), part in grown.group_by("engine", maintain_order=True):
        by = {row["pager"]: row for row in part.iter_rows(named=True)}
        said = []
        for pager, row in by.items():
            of = f" of {row['page_size']}" if row.get("page_size") else ""
            text = f"{PAGER_WORDS.get(pager, pager)} {row['ratio']:.1f}x at page {row['deepest_page']:,}{of}"
            if row["deepest_page"] == 1:
                text += ", where its walk ends"
            said.append(text)
        key = by.get("keyset")
        verdict = (
            "keyset not measured"
            if key is None
            else f"keyset {'flat' if key['ratio'] <= DEPTH_TARGET else 'grows'}: "
            f"{key['ratio']:.1f}x at page {key['deepest_page']:,}"
            + (f" of {key['page_size']} rows" if key.get("page_size") else "")
        )
        out.append(
            Verdict(
                f"is pagination flat with depth (keyset within {DEPTH_TARGET:g}x)",
                verdict,
                "Median latency of the deepest page over page 1: " + "; ".join(said) + ".",
                name,
            )
        )
    return out


def evaluation_table(reports: Mapping[str, Report]) -> Any:
    """Every candidate on every engine, for people: rank, decision, share of the workload's
    time it saves (%), the queries it speeds up, write cost (x), size (kB), build (ms).
    The plan's own indexes are marked; the DESC notes are in the verdicts."""
    from workbench import tables

    frame = pl.concat(
        [
            r.selection.select(
                "engine",
                "rank",
                pl.when(pl.col("plan_index"))
                .then("plan: " + pl.col("index"))
                .otherwise(pl.col("index"))
                .alias("index"),
                pl.col("decision").str.replace(r" \((plan unchanged|a prefix).*\)$", ""),
                (pl.col("saved_share") * 100).alias("saved"),
                (pl.col("standalone_share") * 100).alias("saved alone"),
                pl.col("queries_helped").replace("", "none measurably").alias("queries sped up"),
                _write_column(),
                (pl.col("size_bytes") / 1024).alias("size"),
                "build_ms",
            )
            for r in reports.values()
            if not r.selection.is_empty()
        ],
        how="diagonal_relaxed",
    )
    return tables.table(
        frame,
        units={"saved": "%", "saved alone": "%", "size": "kB"},
        decimals={"saved": 1, "saved alone": 1, "size": 0, "build_ms": 1},
        caption="saved: share of the workload's DB time it adds beside the indexes chosen before it; "
        "saved alone: with no other index; queries sped up: speedup [95% interval]; write cost: "
        "bulk insert with the index / without, paired rounds, with its 95% interval; no measurable "
        "gain: plan unchanged or interval includes 1",
    )


def per_query_table(reports: Mapping[str, Report]) -> Any:
    """Each (engine, index, query): speedup with its 95% interval (x), the plan change, rows read."""
    from workbench import tables

    frame = pl.concat([r.builds.per_query for r in reports.values()]).select(
        "engine",
        "index",
        "query",
        "speedup",
        pl.col("lo").alias("95% CI low"),
        pl.col("hi").alias("95% CI high"),
        "plan_change",
        pl.col("rows_read_before").alias("rows read without"),
        pl.col("rows_read_after").alias("rows read with"),
    )
    return tables.table(
        frame,
        units={"speedup": "x", "95% CI low": "x", "95% CI high": "x"},
        decimals={"speedup": 2, "95% CI low": 2, "95% CI high": 2},
        caption="Speedup = time without the index / time with it; rows read from EXPLAIN ANALYZE "
        "(– where the engine does not report them)",
    )

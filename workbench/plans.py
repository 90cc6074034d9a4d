"""One plan model for every engine, the findings plan analyzers compute, and plan diffs.

Parsers turn each engine's raw ``Engine.explain`` output into a tree of :class:`Node`:

- DuckDB ``EXPLAIN (ANALYZE, FORMAT JSON)`` (JSON text): per-operator ``timing`` is the
  operator's own time, so inclusive time is summed up the tree; cardinality comes from
  ``operator_cardinality`` (``intermediate_rows`` in 2.0), the estimate from
  ``extra_info["Estimated Cardinality"]``.
- PostgreSQL ``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)`` (parsed list): rows and times
  are per loop there; the model stores totals (per-loop value × loops), so a nested
  loop's inner side shows the time it really took.
- SQLite ``EXPLAIN QUERY PLAN`` rows ``(id, parent, detail)``: the same tree without
  actuals (SQLite has no per-operator counters in this build).

Findings follow what explain.dalibo.com and pgMustard report: exclusive time share,
row misestimates, rows removed by a filter, sequential scans of large tables under a
selective filter, nested loops with many loops, and sorts or hashes spilling to disk.

>>> plan = explain(engine, "SELECT * FROM messages WHERE session_id = :s", {"s": 1})  # doctest: +SKIP
>>> findings_frame(plan)                                                                # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from workbench.errors import WorkbenchError

#: A table is "large" for the seq-scan finding from this many rows scanned.
LARGE_TABLE_ROWS = 10_000
#: A filter is "selective" when it keeps at most this share of the rows it reads.
SELECTIVE_SHARE = 0.1
MISESTIMATE_FACTOR = 10.0
MISESTIMATE_MIN_ROWS = 100
FILTER_REMOVED_SHARE = 0.9
FILTER_REMOVED_MIN_ROWS = 1_000
MANY_LOOPS = 1_000
HOTSPOT_SHARE = 0.3


@dataclass
class Node:
    """One plan operator. Rows and times are totals over all loops; ``time_ms`` is inclusive."""

    operator: str
    actual_rows: int | None = None
    estimated_rows: float | None = None
    time_ms: float | None = None
    loops: int | None = None
    children: list[Node] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def relation(self) -> str | None:
        return self.details.get("relation")

    @property
    def exclusive_ms(self) -> float | None:
        """Time spent in this node alone (inclusive time minus its children's), never < 0."""
        if self.time_ms is None:
            return None
        return max(0.0, self.time_ms - sum(c.time_ms or 0.0 for c in self.children))

    @property
    def label(self) -> str:
        return f"{self.operator} on {self.relation}" if self.relation else self.operator

    def walk(self, depth: int = 0) -> Iterator[tuple[int, Node]]:
        """Pre-order (depth, node) pairs."""
        yield depth, self
        for child in self.children:
            yield from child.walk(depth + 1)


@dataclass
class Plan:
    """A parsed plan: the operator tree plus whole-query numbers."""

    engine: str
    root: Node
    execution_ms: float | None = None
    planning_ms: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def nodes(self) -> list[Node]:
        return [n for _, n in self.root.walk()]

    @property
    def total_ms(self) -> float | None:
        """The root's inclusive time (what exclusive shares are relative to)."""
        return self.root.time_ms

    def frame(self) -> pl.DataFrame:
        """One row per node (pre-order): id, depth, operator, relation, rows, times, share."""
        total = self.total_ms or 0.0
        rows = []
        for i, (depth, n) in enumerate(self.root.walk()):
            ex = n.exclusive_ms
            rows.append(
                {
                    "node": i,
                    "depth": depth,
                    "operator": n.operator,
                    "relation": n.relation,
                    "actual_rows": n.actual_rows,
                    "estimated_rows": n.estimated_rows,
                    "loops": n.loops,
                    "time_ms": n.time_ms,
                    "exclusive_ms": ex,
                    "exclusive_share": (ex / total) if ex is not None and total > 0 else None,
                }
            )
        schema = {
            "node": pl.Int64,
            "depth": pl.Int64,
            "operator": pl.String,
            "relation": pl.String,
            "actual_rows": pl.Int64,
            "estimated_rows": pl.Float64,
            "loops": pl.Int64,
            "time_ms": pl.Float64,
            "exclusive_ms": pl.Float64,
            "exclusive_share": pl.Float64,
        }
        return pl.DataFrame(rows, schema=schema)

    def text(self, actuals: bool = True) -> str:
        """An indented tree; ``actuals=False`` keeps only operators (stable across runs)."""
        lines = []
        for depth, n in self.root.walk():
            line = "  " * depth + n.label
            if actuals and n.actual_rows is not None:
                est = "" if n.estimated_rows is None else f" (est {n.estimated_rows:,.0f})"
                line += f"  rows {n.actual_rows:,}{est}"
                if n.loops and n.loops > 1:
                    line += f"  loops {n.loops:,}"
                if n.time_ms is not None:
                    line += f"  {n.time_ms:.3f} ms"
            lines.append(line)
        return "\n".join(lines)

    def operators(self) -> list[str]:
        return [n.label for n in self.nodes()]


# ---- parsers --------------------------------------------------------------------------------
def parse(engine: str, raw: Any) -> Plan:
    """Parse ``raw`` (what ``Engine.explain`` returned) for ``engine``."""
    parsers = {"duckdb": parse_duckdb, "postgres": parse_postgres, "sqlite": parse_sqlite}
    try:
        return parsers[engine](raw)
    except KeyError:
        raise WorkbenchError(
            f"No plan parser for engine {engine!r}: expected one of {', '.join(parsers)}"
        ) from None


def explain(engine: Any, sql: str, params: Mapping[str, Any] | None = None, analyze: bool = True) -> Plan:
    """Run the engine's EXPLAIN (ANALYZE where it has it) and parse it into a :class:`Plan`."""
    raw = engine.explain(sql, params, analyze=analyze)
    if engine.name == "sqlite":
        return parse_sqlite(raw, sql)
    return parse(engine.name, raw)


_DUCKDB_WRAPPERS = {"RESULT_COLLECTOR", "EXPLAIN_ANALYZE", "QUERY"}


def parse_duckdb(raw: str | Mapping[str, Any]) -> Plan:
    """DuckDB ``EXPLAIN (ANALYZE, FORMAT JSON)`` output (the JSON text) into a :class:`Plan`."""
    doc = json.loads(raw) if isinstance(raw, str) else raw
    if isinstance(doc, list):  # plain EXPLAIN (FORMAT JSON) returns the operator list
        doc = {"children": doc}
    top = doc.get("operator") or doc.get("children") or []
    while len(top) == 1 and top[0].get("name", "").upper() in _DUCKDB_WRAPPERS:
        top = top[0].get("children", [])
    if not top:
        raise WorkbenchError("DuckDB plan has no operators: was it produced by EXPLAIN (FORMAT JSON)?")
    root = _duck_node(top[0]) if len(top) == 1 else Node("QUERY", children=[_duck_node(n) for n in top])
    if len(top) > 1:
        root.time_ms = sum(c.time_ms or 0.0 for c in root.children)
    query = doc.get("query", {})
    total = query.get("total_time", doc.get("latency"))
    system = doc.get("system", {})
    spilled = int(system.get("total_bytes_spilled", 0) or 0) + int(system.get("peak_temp_dir_size", 0) or 0)
    return Plan(
        "duckdb",
        root,
        execution_ms=None if total is None else float(total) * 1000,
        details={"bytes_spilled": spilled, "rows_scanned": query.get("total_rows_scanned")},
    )


def _duck_node(op: Mapping[str, Any]) -> Node:
    extra = dict(op.get("extra_info") or {})
    children = [_duck_node(c) for c in op.get("children", [])]
    rows = op.get("operator_cardinality", op.get("intermediate_rows"))
    estimate = extra.get("Estimated Cardinality")
    timing = op.get("operator_timing", op.get("timing"))
    own_ms = None if timing is None else float(timing) * 1000
    details: dict[str, Any] = {"extra_info": extra, "exclusive_ms_reported": own_ms}
    if "Table" in extra:
        details["relation"] = str(extra["Table"]).split(".")[-1]
        details["scan_type"] = extra.get("Type")
    if "Filters" in extra:
        details["filter"] = (
            extra["Filters"] if isinstance(extra["Filters"], str) else " AND ".join(extra["Filters"])
        )
    # A filter built at run time from a join's (or TOP_N's) other side: the scan's rows
    # are counted after it, while its estimate is the rows before it.
    runtime = extra.get("Dynamic Filters") or ("Dynamic Filter" in details.get("filter", "") or None)
    if runtime:
        details["runtime_filter"] = runtime if isinstance(runtime, str) else "Dynamic Filter"
    if "rows_scanned" in op or "operator_rows_scanned" in op:
        details["rows_scanned"] = int(op.get("operator_rows_scanned", op.get("rows_scanned")) or 0)
    inclusive = None
    if own_ms is not None:
        inclusive = own_ms + sum(c.time_ms or 0.0 for c in children)
    return Node(
        # An ART index shows only as extra_info Type "Index Scan" on a SEQ_SCAN node.
        operator="INDEX_SCAN" if extra.get("Type") == "Index Scan" else str(op.get("name") or "?").strip(),
        actual_rows=None if rows is None else int(rows),
        estimated_rows=_number(estimate),
        time_ms=inclusive,
        loops=1 if rows is not None else None,
        children=children,
        details=details,
    )


def _number(value: Any) -> float | None:
    try:
        return float(str(value).replace(",", "").lstrip("~"))
    except (TypeError, ValueError):
        return None


_PG_CORE = {"Node Type", "Plans", "Actual Rows", "Plan Rows", "Actual Total Time", "Actual Loops"}


def parse_postgres(raw: Any) -> Plan:
    """PostgreSQL ``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)`` (parsed or text) into a :class:`Plan`."""
    doc = json.loads(raw) if isinstance(raw, str) else raw
    if isinstance(doc, list):
        doc = doc[0]
    if "Plan" not in doc:
        raise WorkbenchError("PostgreSQL plan has no 'Plan': was it produced by EXPLAIN (FORMAT JSON)?")
    return Plan(
        "postgres",
        _pg_node(doc["Plan"]),
        execution_ms=doc.get("Execution Time"),
        planning_ms=doc.get("Planning Time"),
        details={k: v for k, v in doc.items() if k != "Plan"},
    )


_PG_GATHER = {"Gather", "Gather Merge"}


def _pg_node(p: Mapping[str, Any], processes: int = 1) -> Node:
    """``processes``: how many processes ran this node at once (under a Gather: workers + leader).

    There, "Actual Loops" counts one loop per process and "Actual Total Time" is their
    average, so per-loop time × loops would add up parallel time as if it were serial
    (a node would take 300% of the query). Wall time is per-loop time × loops / processes.
    """
    loops = p.get("Actual Loops")
    analyzed = loops is not None
    per_loop_rows = p.get("Actual Rows")
    # A node that never ran (loops 0) took no time and produced no rows.
    total_loops = loops if analyzed else 1
    children = p.get("Plans", [])
    inner = processes
    if p["Node Type"] in _PG_GATHER and children and analyzed and loops:
        # Each participating process runs the Gather's child once per Gather loop.
        inner = max(1, round((children[0].get("Actual Loops") or 0) / loops))
    details = {k: v for k, v in p.items() if k not in _PG_CORE}
    if "Relation Name" in p:
        details["relation"] = p["Relation Name"]
    if "Filter" in p:
        details["filter"] = p["Filter"]
    removed = p.get("Rows Removed by Filter")
    if removed is not None:
        details["rows_removed"] = int(round(removed * total_loops))
        if per_loop_rows is not None:
            details["rows_scanned"] = details["rows_removed"] + int(round(per_loop_rows * total_loops))
    operator = p["Node Type"]
    if p.get("Strategy") in ("Hashed", "Sorted", "Mixed") and operator == "Aggregate":
        operator = {"Hashed": "HashAggregate", "Sorted": "GroupAggregate", "Mixed": "MixedAggregate"}[
            p["Strategy"]
        ]
    if per_loop_rows is not None and (loops or 0) > 1 and float(per_loop_rows).is_integer():
        # PostgreSQL reports rows per loop rounded to an integer: the total is known
        # only to within half a row per loop.
        details["rows_uncertainty"] = 0.5 * loops
    return Node(
        operator=operator,
        actual_rows=None if per_loop_rows is None else int(round(per_loop_rows * total_loops)),
        estimated_rows=float(p["Plan Rows"]) * max(total_loops, 1) if "Plan Rows" in p else None,
        time_ms=None if not analyzed else float(p.get("Actual Total Time", 0.0)) * total_loops / processes,
        loops=loops,
        children=[_pg_node(c, inner) for c in children],
        details=details,
    )


_SQLITE_TABLE = re.compile(r"^(SCAN|SEARCH)\s+(?:TABLE\s+)?(\w+)(?:\s+AS\s+(\w+))?(.*)$")


def sqlite_aliases(sql: str) -> dict[str, str]:
    """Alias → table (or CTE) name for every table reference in ``sql`` (sqlglot), {} if unparsable."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.SqlglotError:
        return {}
    return {t.alias_or_name: t.name for t in tree.find_all(exp.Table) if t.name}


def parse_sqlite(raw: Any, sql: str | None = None) -> Plan:
    """SQLite ``EXPLAIN QUERY PLAN`` rows ``(id, parent, detail)`` into a :class:`Plan` (no actuals).

    SQLite names a relation by its alias in the query (``SCAN m``); with ``sql`` the
    alias is resolved to the table (``messages``), kept in ``details["alias"]``.
    """
    aliases = sqlite_aliases(sql) if sql else {}
    root = Node("QUERY PLAN")
    by_id: dict[int, Node] = {0: root}
    for row in raw:
        node_id, parent, detail = int(row[0]), int(row[1]), str(row[-1])
        details: dict[str, Any] = {"detail": detail}
        operator = detail
        if m := _SQLITE_TABLE.match(detail):
            operator = m.group(1)
            details["relation"] = aliases.get(m.group(2), m.group(2))
            if details["relation"] != m.group(2):
                details["alias"] = m.group(2)
            rest = m.group(4).strip()
            if rest:
                details["access"] = rest
            if "INDEX" in rest:
                operator += " USING INDEX"
        node = Node(operator, details=details)
        by_id[node_id] = node
        by_id.get(parent, root).children.append(node)
    if len(root.children) == 1:
        root = root.children[0]
    return Plan("sqlite", root)


# ---- findings -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    """One thing an analyzer would point at, with the number behind it."""

    kind: str
    node: int
    operator: str
    value: float
    message: str
    severity: str = "warning"


def _is_seq_scan(n: Node) -> bool:
    op = n.operator.upper()
    return op == "SEQ SCAN" or (
        op in ("SEQ_SCAN", "TABLE_SCAN") and n.details.get("scan_type") != "Index Scan"
    )


def _is_nested_loop(n: Node) -> bool:
    return n.operator.upper().replace("_", " ") in ("NESTED LOOP", "NESTED LOOP JOIN")


def _spills(n: Node) -> str | None:
    d = n.details
    if d.get("Sort Space Type") == "Disk" or "external" in str(d.get("Sort Method", "")):
        return f"sort spilled to disk ({d.get('Sort Method')}, {d.get('Sort Space Used')} kB)"
    if (
        (d.get("Hash Batches") or 1) > 1
        or (d.get("HashAgg Batches") or 1) > 1
        or (d.get("Disk Usage") or 0) > 0
    ):
        batches = d.get("Hash Batches") or d.get("HashAgg Batches")
        return f"hash spilled to disk ({batches} batches)"
    return None


#: Operators that stop pulling rows from their input once they have enough.
_LIMITS = {"LIMIT", "STREAMING_LIMIT", "LIMIT_PERCENT", "TOP_N"}


def _under_limit(plan: Plan) -> set[int]:
    """Pre-order indices of the nodes below a Limit (PostgreSQL) or LIMIT/TOP_N (DuckDB)."""
    below: set[int] = set()

    def visit(node: Node, under: bool, counter: list[int]) -> None:
        index = counter[0]
        counter[0] += 1
        if under:
            below.add(index)
        for child in node.children:
            visit(child, under or node.operator.upper() in _LIMITS, counter)

    visit(plan.root, False, [0])
    return below


def _at(f: Finding, node: int) -> Finding:
    return Finding(f.kind, node, f.operator, f.value, f.message, f.severity)


def _misestimate(n: Node, under_limit: bool) -> Finding | None:
    """A row misestimate worth a look, or None.

    Not flagged: a node that never ran (loops 0: no rows whatever its estimate); fewer
    rows than estimated under a Limit/TOP_N (it stopped early, as asked) or on a scan
    cut by a run-time join filter (the estimate counts the rows before that filter);
    a PostgreSQL total whose per-loop rounding alone could close the gap.
    """
    if n.actual_rows is None or n.estimated_rows is None or n.loops == 0:
        return None
    a, e = float(n.actual_rows), float(n.estimated_rows)
    if a < e and (under_limit or n.details.get("runtime_filter")):
        return None
    slack = float(n.details.get("rows_uncertainty") or 0.0)
    nearest = min(e, a + slack) if a < e else max(e, a - slack)  # actual rows closest to the estimate
    factor = max(nearest, e) / max(min(nearest, e), 1.0)
    if factor < MISESTIMATE_FACTOR or max(a, e) < MISESTIMATE_MIN_ROWS:
        return None
    way = "under" if a > e else "over"
    message = f"{n.label}: {way}estimated {factor:.0f}x ({e:,.0f} estimated, {a:,.0f} actual)"
    return Finding("misestimate", 0, n.label, factor, message)


def _rounding(n: Node) -> Finding | None:
    """A note where PostgreSQL's per-loop rounding moves a node's total rows by 10% or more."""
    slack = n.details.get("rows_uncertainty")
    if not slack or n.actual_rows is None or slack < 0.1 * max(n.actual_rows, 1):
        return None
    message = (
        f"{n.label}: {n.actual_rows:,} rows over {n.loops:,} loops is a total of per-loop counts "
        f"PostgreSQL rounds, good to ±{slack:,.0f} rows"
    )
    return Finding("rounded_rows", 0, n.label, float(slack), message, "info")


def findings(plan: Plan) -> list[Finding]:
    """What an analyzer would flag on ``plan``, in node order."""
    out: list[Finding] = []
    total = plan.total_ms or 0.0
    stops_early = _under_limit(plan)
    for i, n in enumerate(plan.nodes()):
        ex = n.exclusive_ms
        if ex is not None and total > 0 and ex / total >= HOTSPOT_SHARE:
            message = f"{n.label} takes {ex / total:.0%} of the time on its own"
            out.append(Finding("time_share", i, n.label, ex / total, message, "info"))
        if found := _misestimate(n, i in stops_early):
            out.append(_at(found, i))
        if found := _rounding(n):
            out.append(_at(found, i))
        removed, scanned = n.details.get("rows_removed"), n.details.get("rows_scanned")
        if removed is None and scanned is not None and n.actual_rows is not None and n.details.get("filter"):
            removed = max(0, scanned - n.actual_rows)
        if removed is not None and scanned:
            share = removed / scanned
            if share >= FILTER_REMOVED_SHARE and removed >= FILTER_REMOVED_MIN_ROWS:
                out.append(
                    Finding(
                        "filter_removes_rows",
                        i,
                        n.label,
                        share,
                        f"{n.label}: the filter removes {share:.1%} of {scanned:,} rows read",
                    )
                )
            if (
                _is_seq_scan(n)
                and scanned >= LARGE_TABLE_ROWS
                and n.details.get("filter")
                and (scanned - removed) / scanned <= SELECTIVE_SHARE
            ):
                out.append(
                    Finding(
                        "seq_scan_selective",
                        i,
                        n.label,
                        float(scanned),
                        f"{n.label} reads {scanned:,} rows to keep {scanned - removed:,} "
                        f"({(scanned - removed) / scanned:.1%}) under {n.details['filter']}: "
                        "an index on the filtered columns would avoid the scan",
                    )
                )
        if _is_nested_loop(n) and len(n.children) > 1:
            inner = n.children[-1]
            if (inner.loops or 0) >= MANY_LOOPS:
                out.append(
                    Finding(
                        "nested_loop_many",
                        i,
                        n.label,
                        float(inner.loops),
                        f"{n.label} runs its inner side ({inner.label}) {inner.loops:,} times",
                    )
                )
        if reason := _spills(n):
            out.append(Finding("spill", i, n.label, 1.0, f"{n.label}: {reason}"))
    spilled = plan.details.get("bytes_spilled") or 0
    if spilled:
        out.append(
            Finding("spill", 0, plan.root.label, float(spilled), f"the query spilled {spilled:,} bytes")
        )
    return out


def findings_frame(plan: Plan) -> pl.DataFrame:
    """:func:`findings` as a frame (kind, node, operator, value, severity, message)."""
    rows = [
        {
            "kind": f.kind,
            "node": f.node,
            "operator": f.operator,
            "value": f.value,
            "severity": f.severity,
            "message": f.message,
        }
        for f in findings(plan)
    ]
    schema = {
        "kind": pl.String,
        "node": pl.Int64,
        "operator": pl.String,
        "value": pl.Float64,
        "severity": pl.String,
        "message": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


# ---- diff ---------------------------------------------------------------------------------
def diff(before: Plan, after: Plan) -> pl.DataFrame:
    """Operators before and after a change (an index, a rewrite): count and exclusive time.

    One row per operator label (e.g. ``Seq Scan on messages``) with its count and
    exclusive milliseconds in each plan and a ``change`` of added, removed or kept.
    """

    def per_label(plan: Plan) -> pl.DataFrame:
        return (
            plan.frame()
            .with_columns(
                label=pl.struct("operator", "relation").map_elements(_label, return_dtype=pl.String)
            )
            .group_by("label")
            .agg(count=pl.len(), ms=pl.col("exclusive_ms").sum())
        )

    b, a = per_label(before), per_label(after)
    joined = b.join(a, on="label", how="full", suffix="_after", coalesce=True).rename(
        {"count": "count_before", "ms": "ms_before"}
    )
    return (
        joined.with_columns(pl.col("count_before", "count_after").fill_null(0))
        .with_columns(
            change=pl.when(pl.col("count_before") == 0)
            .then(pl.lit("added"))
            .when(pl.col("count_after") == 0)
            .then(pl.lit("removed"))
            .otherwise(pl.lit("kept"))
        )
        .select("label", "change", "count_before", "count_after", "ms_before", "ms_after")
        .sort("change", "label")
    )


def _label(row: Mapping[str, Any]) -> str:
    return f"{row['operator']} on {row['relation']}" if row["relation"] else row["operator"]


_INDEX_OPERATORS = ("INDEX", "Index Scan", "Index Only Scan", "Bitmap Index Scan")


def index_nodes(plan: Plan) -> list[str]:
    """Labels of the nodes that read through an index (DuckDB: a SEQ_SCAN of Type "Index Scan")."""
    return [n.label for n in plan.nodes() if any(k.upper() in n.operator.upper() for k in _INDEX_OPERATORS)]


def plan_change(before: Plan, after: Plan) -> dict[str, Any]:
    """Whether the operators changed between two plans, and what to say about it.

    Returns ``changed`` (the operator trees differ), ``index_before``/``index_after``
    (:func:`index_nodes`) and ``summary``: "plan unchanged (...)" or the operators
    removed and added. On DuckDB it states whether the ART index was used, read from
    the plan (an ART index shows only as extra_info Type "Index Scan" on a SEQ_SCAN).
    No timing is in it: a single EXPLAIN ANALYZE run is no evidence of a speedup.
    """
    changed = before.operators() != after.operators()
    used = index_nodes(after)
    if changed:
        d = diff(before, after)
        removed = d.filter(pl.col("change") == "removed")["label"].to_list()
        added = d.filter(pl.col("change") == "added")["label"].to_list()
        parts = ["plan changed"]
        if removed:
            parts.append("removed: " + ", ".join(removed))
        if added:
            parts.append("added: " + ", ".join(added))
        summary = "; ".join(parts)
    else:
        summary = f"plan unchanged ({' > '.join(after.operators())})"
    if after.engine == "duckdb":
        scans = [n.label for n in after.nodes() if n.operator.upper() in ("SEQ_SCAN", "TABLE_SCAN")]
        if used:
            summary += f"; DuckDB used its ART index ({', '.join(used)}: Type 'Index Scan')"
        elif scans:
            summary += f"; DuckDB did not use its ART index ({', '.join(scans)}: Type 'Sequential Scan')"
    elif used and changed:
        summary += f"; reads through an index: {', '.join(used)}"
    return {"changed": changed, "index_before": index_nodes(before), "index_after": used, "summary": summary}


def diff_summary(before: Plan, after: Plan) -> str:
    """A sentence on what changed in the operators (:func:`plan_change`'s summary)."""
    return plan_change(before, after)["summary"]


def side_by_side(plans: Mapping[str, Plan], actuals: bool = False, gap: int = 4) -> str:
    """Several plans' trees as text columns under their labels (operators only by default)."""
    columns = [
        [label, "-" * len(label), *plan.text(actuals=actuals).splitlines()] for label, plan in plans.items()
    ]
    widths = [max(len(line) for line in col) for col in columns]
    height = max(len(col) for col in columns)
    lines = []
    for i in range(height):
        cells = [(col[i] if i < len(col) else "").ljust(w) for col, w in zip(columns, widths, strict=True)]
        lines.append((" " * gap).join(cells).rstrip())
    return "\n".join(lines)

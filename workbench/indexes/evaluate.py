"""Evaluate candidate indexes: HypoPG planner costs, then real builds measured on each engine.

- :func:`hypothetical` (PostgreSQL): each candidate created with HypoPG, each query it may
  serve explained (plain EXPLAIN, which sees hypothetical indexes) before and after; nothing
  is built, nothing changes on disk. :func:`hypopg_ready` says whether the target has it.
- :func:`measure_builds` (every engine, on a database the workbench created): the secondary
  indexes present are dropped (and restored at the end), the workload is timed without
  them, then each candidate is built, timed (build time, size), the queries on its table
  are timed and explained again, the write cost measured, and the index dropped.

A query's timed run calls it once per parameter case (hot, typical, cold); times are per
call (the run divided by the cases). Speedups are ``measure.ratio`` of the runs without and
with the index, with a bootstrap interval.

The write cost (:class:`WriteBench`) is the slowdown of bulk-inserting :data:`WRITE_ROWS`
of the table's rows (for ``messages``, the log sync) with the index present, against the
same insert without it. Both sides are scratch copies of the table (its first
:data:`PREFILL_ROWS` rows and its primary key, no foreign keys), outside the workbench's
tables, so the two inserts can alternate round by round: a slow moment of the machine hits
both, and the ratio is the median of the per-round ratios with a bootstrap interval
(``measure.paired_ratio``). On 100-2,000 rows, timed apart, the same index measured
anywhere from 0.2x to 1.8x between runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from workbench import measure, plans, queries, schema
from workbench.engines.base import Engine, identifier
from workbench.errors import WorkbenchError
from workbench.indexes import candidates as cand
from workbench.indexes.workload import UnboundParameter, Workload, WorkloadError, bind

#: Rows each timed insert adds (fewer when the table holds fewer).
WRITE_ROWS = 5_000
#: Rows the scratch copies start with, so the new rows go into a populated index.
PREFILL_ROWS = 20_000
#: Paired rounds (one insert with the index, one without) behind a write cost.
WRITE_ROUNDS = 5
#: PostgreSQL schema of the scratch copies (a real, logged table, as the insert it stands for).
SCRATCH_SCHEMA = "workbench_scratch"


class HypoPGMissing(WorkbenchError):
    """The target PostgreSQL has no HypoPG, and the workbench may not install it there."""


@dataclass
class Advice:
    """What the analysis found before any timing: candidates, flags, errors, per-query tables."""

    workload: Workload
    params: dict[str, dict[str, Any]]
    analyses: dict[str, cand.Analysis]
    candidates: dict[cand.IndexSpec, list[cand.Candidate]]
    flags: list[cand.Flag]
    errors: list[str] = field(default_factory=list)

    def queries_for(self, spec: cand.IndexSpec) -> list[str]:
        """Queries an index could serve: they filter, join, range over or sort by its first column."""
        lead = spec.columns[0]
        out = []
        for name, an in self.analyses.items():
            for a in an.accesses:
                used = [*a.equality, *a.joins, *(r[0] for r in a.ranges), *(c for c, _ in a.sort[:1])]
                if a.table == spec.table and lead in used:
                    out.append(name)
                    break
        return out

    def candidates_frame(self) -> pl.DataFrame:
        rows = [
            {
                "index": spec.label,
                "table": spec.table,
                "source": "plan" if any(c.source == "plan" for c in found) else "derived",
                "queries": ", ".join(sorted({c.query for c in found if c.query})),
                "reason": "; ".join(sorted({c.reason for c in found})),
            }
            for spec, found in self.candidates.items()
        ]
        return pl.DataFrame(
            rows, schema={k: pl.String for k in ("index", "table", "source", "queries", "reason")}
        )

    def flags_frame(self) -> pl.DataFrame:
        cols = ("query", "table", "column", "predicate", "reason", "rewrite")
        return pl.DataFrame(
            [{k: getattr(f, k) for k in cols} for f in self.flags], schema={k: pl.String for k in cols}
        )


def distinct_counts(engine: Engine, columns: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Number of distinct values of each (table, column) (read-only)."""
    out = {}
    for table, column in dict.fromkeys(columns):
        out[(table, column)] = (
            engine.execute(f"SELECT count(DISTINCT {identifier(column)}) FROM {identifier(table)}")[0][0] or 1
        )
    return out


def analyze(
    workload: Workload,
    engine: Engine,
    params: Mapping[str, Mapping[str, Any]],
    *,
    plan_indexes: bool = True,
    covering: bool = False,
) -> Advice:
    """Parse every query, derive candidates, flag non-sargable predicates; bad queries become errors."""
    errors = list(workload.errors)
    analyses: dict[str, cand.Analysis] = {}
    for q in workload.queries:
        try:
            analyses[q.name] = cand.analyze(q.sql, q.name)
            for case in params.values():
                bind(q, dict(case))
        except UnboundParameter:
            raise  # not a note: the answer would leave the query out without saying so loudly
        except (cand.CandidateError, WorkloadError) as e:
            errors.append(str(e))
            analyses.pop(q.name, None)
    eq_columns = [(a.table, c) for an in analyses.values() for a in an.accesses for c in a.equality + a.joins]
    distinct = distinct_counts(engine, eq_columns)
    found: list[cand.Candidate] = []
    flags: list[cand.Flag] = []
    for an in analyses.values():
        found += cand.derive(an, distinct, covering=covering)
        flags += an.flags
    if plan_indexes:
        found += [cand.Candidate(spec, "", "proposed by the plan", "plan") for spec in cand.PLAN_INDEXES]
    kept = Workload([q for q in workload.queries if q.name in analyses], errors, workload.source)
    return Advice(kept, {k: dict(v) for k, v in params.items()}, analyses, cand.dedupe(found), flags, errors)


# ---- plans ------------------------------------------------------------------------------------
def _scans(plan: plans.Plan) -> list[str]:
    return [
        n.label + (f" ({n.details['access']})" if n.details.get("access") else "")
        for n in plan.nodes()
        if n.relation
    ]


def plan_change(before: plans.Plan, after: plans.Plan) -> str:
    """``Seq Scan on t -> Index Scan on t`` for the scans that changed, or "plan unchanged"."""
    b, a = _scans(before), _scans(after)
    if b == a and before.text(actuals=False) == after.text(actuals=False):
        return "plan unchanged"
    gone = [s for s in b if s not in a]
    new = [s for s in a if s not in b]
    if not gone and not new:
        return "plan reshaped (same scans): " + " | ".join(after.operators()[:4])
    return "; ".join(gone) + " -> " + "; ".join(new)


def rows_read(plan: plans.Plan) -> int | None:
    """Rows the plan's scans produced (PostgreSQL, DuckDB); None where the engine has no actuals."""
    leaves = [n.actual_rows for n in plan.nodes() if n.relation and n.actual_rows is not None]
    return int(sum(leaves)) if leaves else None


# ---- HypoPG -----------------------------------------------------------------------------------
#: Where the workbench installs HypoPG in a database it created: its own schema, so its
#: view does not sit among the workbench's tables.
HYPOPG_SCHEMA = "hypopg"


def _hypopg_schema(engine: Engine) -> str | None:
    row = engine.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'hypopg'"  # noqa: E501
    )
    return row[0][0] if row else None


def hypopg_ready(engine: Engine) -> str | None:
    """None when HypoPG can be used on ``engine``; otherwise why not (the fallback is the local sample)."""
    if engine.name != "postgres":
        return f"{engine.name} has no hypothetical indexes"
    if _hypopg_schema(engine) is not None:
        return None
    available = engine.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'")
    try:
        engine.check_writable()
    except WorkbenchError:
        return (
            f"HypoPG is not installed in {engine.display_target} (and the workbench does not install "
            "extensions in a database it did not create): ask its owner for CREATE EXTENSION hypopg"
        )
    if not available:
        return f"HypoPG is not available on {engine.display_target}: apt-get install postgresql-15-hypopg"
    engine.execute(f"CREATE SCHEMA IF NOT EXISTS {identifier(HYPOPG_SCHEMA)}")
    engine.execute(f"CREATE EXTENSION IF NOT EXISTS hypopg SCHEMA {identifier(HYPOPG_SCHEMA)}")
    return None


def _cost(engine: Engine, sql: str, params: Mapping[str, Any]) -> tuple[float, plans.Plan]:
    raw = engine.explain(sql, params, analyze=False)
    return float(raw[0]["Plan"]["Total Cost"]), plans.parse("postgres", raw)


def hypothetical(
    engine: Engine, advice: Advice, specs: Sequence[cand.IndexSpec] | None = None
) -> pl.DataFrame:
    """Planner cost of each (query, case) without and with each hypothetical index (PostgreSQL).

    Run in a read-only transaction: HypoPG keeps its indexes in the session's memory.
    """
    if (why := hypopg_ready(engine)) is not None:
        raise HypoPGMissing(why)
    specs = list(advice.candidates) if specs is None else list(specs)
    ns = identifier(_hypopg_schema(engine))
    rows = []
    base: dict[tuple[str, str], tuple[float, plans.Plan]] = {}
    with engine.con.transaction():
        engine.execute("SET TRANSACTION READ ONLY")
        engine.execute(f"SELECT {ns}.hypopg_reset()")
        for q in advice.workload.queries:
            sql = queries.translate(q.sql, "postgres")
            for case, values in advice.params.items():
                base[(q.name, case)] = _cost(engine, sql, bind(q, values))
        for spec in specs:
            engine.execute(
                f"SELECT * FROM {ns}.hypopg_create_index(:ddl)",
                {"ddl": spec.sql("postgres", if_not_exists=False)},
            )
            for name in advice.queries_for(spec):
                q = advice.workload.get(name)
                sql = queries.translate(q.sql, "postgres")
                for case, values in advice.params.items():
                    after, plan = _cost(engine, sql, bind(q, values))
                    before, plan0 = base[(name, case)]
                    rows.append(
                        {
                            "index": spec.label,
                            "query": name,
                            "case": case,
                            "cost_before": before,
                            "cost_after": after,
                            "cost_ratio": before / after if after else None,
                            "plan_change": plan_change(plan0, plan),
                        }
                    )
            engine.execute(f"SELECT {ns}.hypopg_reset()")
    return pl.DataFrame(
        rows,
        schema={
            "index": pl.String,
            "query": pl.String,
            "case": pl.String,
            "cost_before": pl.Float64,
            "cost_after": pl.Float64,
            "cost_ratio": pl.Float64,
            "plan_change": pl.String,
        },
    )


def hypothetical_summary(frame: pl.DataFrame, advice: Advice) -> pl.DataFrame:
    """Per index: the frequency-weighted planner cost saved over the workload (cost units)."""
    freq = {q.name: q.frequency for q in advice.workload.queries}
    return (
        frame.with_columns(
            saved=(pl.col("cost_before") - pl.col("cost_after"))
            * pl.col("query").replace_strict(freq, default=0.0)
        )
        .group_by("index")
        .agg(
            pl.col("saved").sum().alias("est_cost_saved"), pl.col("cost_ratio").max().alias("best_cost_ratio")
        )
        .sort("est_cost_saved", descending=True)
    )


# ---- real builds ------------------------------------------------------------------------------
def index_size(engine: Engine, name: str) -> int | None:
    """Bytes the index occupies, where the engine reports it (PostgreSQL, SQLite with dbstat)."""
    try:
        if engine.name == "postgres":
            return int(engine.execute("SELECT pg_relation_size(to_regclass(:n))", {"n": name})[0][0])
        if engine.name == "sqlite":
            row = engine.execute("SELECT sum(pgsize) FROM dbstat WHERE name = :n", {"n": name})
            return int(row[0][0]) if row and row[0][0] is not None else None
    except Exception:  # noqa: BLE001 - an engine without the statistic reports no size
        return None
    return None


def _max_id(engine: Engine, table: str) -> int:
    return int(engine.execute(f"SELECT coalesce(max(id), 0) FROM {identifier(table)}")[0][0])


class WriteBench:
    """Two scratch copies of ``table`` (the same rows and primary key; one gets the index
    under test) and the paired inserts that time the index's write cost.

    The copies live outside the workbench's tables (PostgreSQL: schema
    :data:`SCRATCH_SCHEMA`; SQLite and DuckDB: TEMP tables), so nothing else sees them;
    :meth:`close` drops them. Use as a context manager.
    """

    def __init__(self, engine: Engine, table: str, rows: int = WRITE_ROWS, prefill: int = PREFILL_ROWS):
        self.engine, self.table = engine, table
        self.top = _max_id(engine, table)
        self.rows = min(rows, self.top)
        cols = [identifier(c.name) for c in schema.columns(table)]
        self.names = {"without": f"wbw_{table}", "with": f"wbw_{table}_ix"}
        self.tables = {k: self._qualified(v) for k, v in self.names.items()}
        shifted = ", ".join(f"{c} + :top" if c == '"id"' else c for c in cols)
        source = f"FROM {identifier(table)} WHERE id <= :n"
        into = ", ".join(cols)
        self._insert = {
            k: f"INSERT INTO {t} ({into}) SELECT {shifted} {source}" for k, t in self.tables.items()
        }
        self._delete = {k: f"DELETE FROM {t} WHERE id > :top" for k, t in self.tables.items()}
        x = engine.execute
        if engine.dialect == "postgres":
            x(f"CREATE SCHEMA IF NOT EXISTS {identifier(SCRATCH_SCHEMA)}")
        temp = "" if engine.dialect == "postgres" else "TEMP "
        for key, t in self.tables.items():
            x(f"DROP TABLE IF EXISTS {t}")
            x(f"CREATE {temp}TABLE {t} AS SELECT * FROM {identifier(table)} WHERE 1 = 0")
            x(f"CREATE UNIQUE INDEX {identifier(self.names[key] + '_pk')} ON {t} (id)")
            x(f"INSERT INTO {t} SELECT * FROM {identifier(table)} ORDER BY id LIMIT :p", {"p": prefill})

    def _qualified(self, name: str) -> str:
        if self.engine.dialect == "postgres":
            return f"{identifier(SCRATCH_SCHEMA)}.{identifier(name)}"
        return identifier(name)

    def insert(self, side: str) -> None:
        self.engine.execute(self._insert[side], {"top": self.top, "n": self.rows})

    def undo(self, side: str) -> None:
        self.engine.execute(self._delete[side], {"top": self.top})

    def cost(
        self,
        spec: cand.IndexSpec,
        rounds: int = WRITE_ROUNDS,
        clock: measure.Clock = time.perf_counter_ns,
    ) -> tuple[float, float, float]:
        """Insert time with ``spec`` over without it: (median of the per-round ratios, 95% interval)."""
        name = identifier("wbw_" + spec.name[4:] if spec.name.startswith("ix_") else "wbw_" + spec.name)
        ddl = spec.sql(self.engine.dialect, if_not_exists=False, on=(name, self.tables["with"]))
        self.engine.execute(ddl)
        try:
            times = measure.measure_interleaved(
                {side: lambda side=side: self.insert(side) for side in self.tables},
                repeat=rounds,
                warmup=0,
                clock=clock,
                after=self.undo,
                pause_gc=False,
            )
        finally:
            index = f"{identifier(SCRATCH_SCHEMA)}.{name}" if self.engine.dialect == "postgres" else name
            self.engine.execute(f"DROP INDEX IF EXISTS {index}")
        return measure.paired_ratio(times["with"], times["without"])

    def close(self) -> None:
        for t in self.tables.values():
            self.engine.execute(f"DROP TABLE IF EXISTS {t}")
        if self.engine.dialect == "postgres":
            self.engine.execute(f"DROP SCHEMA IF EXISTS {identifier(SCRATCH_SCHEMA)} CASCADE")

    def __enter__(self) -> WriteBench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_text(cost: float | None, lo: float | None, hi: float | None) -> str:
    """A write cost as people should read it: a slowdown only when its interval clears 1.

    >>> write_text(1.31, 1.2, 1.45), write_text(0.93, 0.8, 1.1), write_text(None, None, None)
    ('1.31x (1.20-1.45)', 'no measurable write cost (0.80-1.10x)', 'not measured')
    """
    if cost is None:
        return "not measured"
    if lo is None or hi is None:
        return f"{cost:.2f}x"
    if lo <= 1.0:
        return f"no measurable write cost ({lo:.2f}-{hi:.2f}x)"
    return f"{cost:.2f}x ({lo:.2f}-{hi:.2f})"


def _timed_queries(engine: Engine, advice: Advice, names: Sequence[str]) -> dict[str, Callable[[], Any]]:
    fns = {}
    for name in names:
        q = advice.workload.get(name)
        sql = queries.translate(q.sql, engine.dialect)
        cases = [bind(q, v) for v in advice.params.values()]
        fns[name] = lambda sql=sql, cases=cases: [engine.execute(sql, p) for p in cases]
    return fns


def _explain_all(engine: Engine, advice: Advice, names: Sequence[str]) -> dict[str, plans.Plan]:
    out = {}
    for name in names:
        q = advice.workload.get(name)
        case = next(iter(advice.params.values()))
        out[name] = plans.explain(engine, queries.translate(q.sql, engine.dialect), bind(q, case))
    return out


def _time(fns: Mapping[str, Callable[[], Any]], repeat: int, warmup: int, clock) -> dict[str, list[int]]:
    return (
        measure.measure_interleaved(fns, repeat=repeat, warmup=warmup, clock=clock, pause_gc=False)
        if fns
        else {}
    )


def measure_builds(
    engine: Engine, advice: Advice, specs: Sequence[cand.IndexSpec] | None = None, **kw: Any
) -> Builds:
    """Build each index for real on ``engine`` and time the queries on its table and the writes.

    Returns :class:`Builds`: per (index, query) the times without/with, the speedup with its
    interval, the plan change and rows read; per index its build time, size and write cost;
    the baseline per query. Needs a database the workbench created (it builds and drops indexes).
    Options: ``repeat``, ``write_repeat`` (paired insert rounds), ``write_rows``, ``clock``.
    """
    # One GC pause for the whole pass: a collection after every timed block (0.3 s with
    # sqlglot's trees in memory) costs more than the queries it times.
    with measure.gc_paused():
        return _measure_builds(engine, advice, specs, **kw)


def _measure_builds(
    engine: Engine,
    advice: Advice,
    specs: Sequence[cand.IndexSpec] | None = None,
    *,
    repeat: int = 5,
    write_repeat: int = WRITE_ROUNDS,
    write_rows: int = WRITE_ROWS,
    clock: measure.Clock = time.perf_counter_ns,
) -> Builds:
    engine.check_writable()
    specs = list(advice.candidates) if specs is None else list(specs)
    existing = engine.list_indexes()
    for name in existing["name"].to_list():
        engine.drop_index(name)
    cases = max(1, len(advice.params))
    warmup = engine.warmup_runs
    benches: dict[str, WriteBench] = {}
    try:
        names = advice.workload.names()
        base_times = _time(_timed_queries(engine, advice, names), repeat, warmup, clock)
        base_plans = _explain_all(engine, advice, names)
        per_query, per_index = [], []
        for spec in specs:
            table = spec.table
            if table not in benches:
                benches[table] = WriteBench(engine, table, write_rows)
            w, wlo, whi = benches[table].cost(spec, write_repeat, clock)
            sql = spec.sql(engine.dialect)
            started = clock()
            engine._write(sql)
            build_ms = (clock() - started) / 1e6
            try:
                size = index_size(engine, spec.name)
                on_table = advice.queries_for(spec)
                after_times = _time(_timed_queries(engine, advice, on_table), repeat, warmup, clock)
                after_plans = _explain_all(engine, advice, on_table)
            finally:
                engine.drop_index(spec.name)
            per_index.append(
                {
                    "engine": engine.name,
                    "index": spec.label,
                    "name": spec.name,
                    "table": table,
                    "build_ms": build_ms,
                    "size_bytes": size,
                    "write_cost": w,
                    "write_lo": wlo,
                    "write_hi": whi,
                    "write_rows": benches[table].rows,
                }
            )
            for name in on_table:
                r, lo, hi = measure.ratio(base_times[name], after_times[name])
                per_query.append(
                    {
                        "engine": engine.name,
                        "index": spec.label,
                        "query": name,
                        "before_ms": float(pl.Series(base_times[name]).median()) / 1e6 / cases,
                        "after_ms": float(pl.Series(after_times[name]).median()) / 1e6 / cases,
                        "speedup": r,
                        "lo": lo,
                        "hi": hi,
                        "plan_change": plan_change(base_plans[name], after_plans[name]),
                        "rows_read_before": rows_read(base_plans[name]),
                        "rows_read_after": rows_read(after_plans[name]),
                    }
                )
        baseline = pl.DataFrame(
            [
                {"engine": engine.name, "query": n, "before_ms": float(pl.Series(t).median()) / 1e6 / cases}
                for n, t in base_times.items()
            ]
        )
    finally:
        for bench in benches.values():
            bench.close()
        restore(engine, existing)
    return Builds(
        pl.DataFrame(per_query, schema=PER_QUERY_SCHEMA),
        pl.DataFrame(per_index, schema=PER_INDEX_SCHEMA),
        baseline,
    )


@dataclass
class Builds:
    per_query: pl.DataFrame
    per_index: pl.DataFrame
    baseline: pl.DataFrame


PER_QUERY_SCHEMA = {
    "engine": pl.String,
    "index": pl.String,
    "query": pl.String,
    "before_ms": pl.Float64,
    "after_ms": pl.Float64,
    "speedup": pl.Float64,
    "lo": pl.Float64,
    "hi": pl.Float64,
    "plan_change": pl.String,
    "rows_read_before": pl.Int64,
    "rows_read_after": pl.Int64,
}
PER_INDEX_SCHEMA = {
    "engine": pl.String,
    "index": pl.String,
    "name": pl.String,
    "table": pl.String,
    "build_ms": pl.Float64,
    "size_bytes": pl.Int64,
    "write_cost": pl.Float64,
    "write_lo": pl.Float64,
    "write_hi": pl.Float64,
    "write_rows": pl.Int64,
}


def restore(engine: Engine, indexes: pl.DataFrame) -> None:
    """Re-create indexes from ``list_indexes`` rows (their stored SQL) that are missing."""
    present = set(engine.list_indexes()["name"].to_list())
    for row in indexes.iter_rows(named=True):
        if row["name"] not in present and row.get("sql"):
            engine._write(row["sql"])


def workload_time(
    engine: Engine,
    advice: Advice,
    specs: Sequence[cand.IndexSpec],
    *,
    repeat: int = 5,
    clock: measure.Clock = time.perf_counter_ns,
) -> pl.DataFrame:
    """The whole workload's DB time today (the indexes present) and with ``specs`` built too.

    Per query: per-call medians and the speedup with its interval; the recommended set is
    measured together, as deployed. With no ``specs`` nothing changes, so nothing is timed twice.
    """
    with measure.gc_paused():
        return _workload_time(engine, advice, specs, repeat, clock)


def _workload_time(engine, advice, specs, repeat, clock) -> pl.DataFrame:
    engine.check_writable()
    present = set(engine.list_indexes()["name"].to_list())
    cases = max(1, len(advice.params))
    names = advice.workload.names()
    before = _time(_timed_queries(engine, advice, names), repeat, engine.warmup_runs, clock)
    after = before
    built = [s for s in specs if s.name not in present]
    if specs:
        try:
            for spec in built:
                engine._write(spec.sql(engine.dialect))
            after = _time(_timed_queries(engine, advice, names), repeat, engine.warmup_runs, clock)
        finally:
            for spec in built:
                engine.drop_index(spec.name)
    rows = []
    for q in advice.workload.queries:
        r, lo, hi = measure.ratio(before[q.name], after[q.name]) if specs else (1.0, 1.0, 1.0)
        rows.append(
            {
                "engine": engine.name,
                "query": q.name,
                "frequency": q.frequency,
                "before_ms": float(pl.Series(before[q.name]).median()) / 1e6 / cases,
                "after_ms": float(pl.Series(after[q.name]).median()) / 1e6 / cases,
                "speedup": r,
                "lo": lo,
                "hi": hi,
            }
        )
    return pl.DataFrame(rows)

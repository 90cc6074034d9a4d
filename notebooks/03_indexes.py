# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec: {display_name: Python 3, language: python, name: python3}
# ---

# %% [markdown]
# # 03 · Indexes: which ones the workload needs, and pagination done right
#
# The plan proposes four indexes — `sessions(project_id, created_at DESC)`,
# `messages(session_id, timestamp)`, `session_windows(session_id)`,
# `jobs(status, created_at DESC)` — and asks to **analyse the query patterns, create and
# test the indexes that are needed and remove those that are not**, and to finish its cursor
# pagination (`WHERE id > :cursor` under `ORDER BY created_at DESC`). This notebook derives
# candidates from the queries (sqlglot), estimates them with HypoPG on PostgreSQL, builds
# each for real on every engine, chooses a set for the whole workload within a write-cost
# budget, exports it as golang-migrate migrations, and checks three ways to paginate.
#
# Skeleton: Parameters → Data → Measure → Look → Conclude → Export.

# %% tags=["parameters"]
scale = "tiny"  # CI-fast; "small" or larger for real numbers
seed = 7
engines = ["duckdb", "sqlite", "postgres"]
data_dir = None
out_dir = None
postgres_url = None
repeat = 3
max_write_cost = 1.5
page_size = 1  # page N reads N rows deep at page size 1: the deepest pages exist even at small scale
depths = [1, 10, 30, 100, 300, 1000]

# %%
import polars as pl

from workbench import lab, report
from workbench.indexes import advisor, pagination, select
from workbench.indexes import figures as ifig
from workbench.indexes import workload as wl

lab.setup()
data, out = lab.data_dir(data_dir), lab.out_dir(out_dir)

# %% [markdown]
# ## Data
# The synthetic dataset, loaded into each engine in its own folder (indexes are built and
# dropped here). The workload is the plan's endpoints, equally often (`wl.ENDPOINTS`).

# %% tags=["nbval-ignore-output"]
ds = lab.open_dataset("synthetic", data, scale=scale, seed=seed)
opened, loads = lab.open_engines(ds, engines, data / "indexlab", pg_url=postgres_url)
workload = wl.from_folder(names=wl.ENDPOINTS)
loads

# %% [markdown]
# ## Measure
# For each engine: candidates, the HypoPG pass (PostgreSQL), real builds timed with
# intervals, write cost, the greedy choice (`workbench.indexes.select`: frequency-weighted
# time saved; a saving counts only when the plan changed and the interval is above 1), and
# the whole workload timed without and with the chosen set.

# %% tags=["nbval-ignore-output"]
budgets = select.Budgets(max_write_cost=max_write_cost)
reports = {
    name: advisor.advise(e, workload, budgets=budgets, out_dir=out / "03_indexes", repeat=repeat)
    for name, e in opened.items()
}
{name: round(r.seconds, 1) for name, r in reports.items()}

# %% tags=["nbval-ignore-output"]
first = next(iter(reports.values()))
first.advice.candidates_frame()

# %% tags=["nbval-ignore-output"]
hot = {name: wl.draw(e)["hot"]["project_id"] for name, e in opened.items()}
pages = pl.concat([pagination.correctness(e, hot[name], size=20) for name, e in opened.items()])
depth = pl.concat(
    [
        pagination.depth_latency(e, hot[name], size=page_size, depths=depths, repeat=repeat)
        for name, e in opened.items()
    ]
)

# %% [markdown]
# ## Look
# The evaluation table: per engine and index, the decision and its evidence.

# %% tags=["nbval-ignore-output"]
pl.concat([r.selection.drop("name", "plan_index") for r in reports.values()], how="diagonal_relaxed")

# %% tags=["nbval-ignore-output"]
per_query = pl.concat([r.builds.per_query for r in reports.values()])
per_query.select(
    "engine", "index", "query", "speedup", "lo", "hi", "plan_change", "rows_read_before", "rows_read_after"
)

# %% tags=["nbval-ignore-output"]
ifig.speedups(per_query)

# %% tags=["nbval-ignore-output"]
ifig.write_costs(pl.concat([r.builds.per_index for r in reports.values()]))

# %% tags=["nbval-ignore-output"]
hypo = reports["postgres"].hypothetical if "postgres" in reports else None
hypo if hypo is not None else "PostgreSQL not in this run: no hypothetical pass"

# %% tags=["nbval-ignore-output"]
ifig.correctness(pages)

# %% tags=["nbval-ignore-output"]
ifig.depth(depth)

# %% [markdown]
# ## Conclude

# %% tags=["verdicts", "nbval-ignore-output"]
verdicts = []
for name, r in reports.items():
    red = r.reduction()
    verdicts.append(
        report.Verdict(
            "the recommended set makes total DB time ≥50% lower",
            "met" if red["reduction"] >= advisor.TARGET_REDUCTION else "missed",
            r.verdict_sentence(),
            name,
        )
    )
    for row in r.selection.filter(pl.col("plan_index")).iter_rows(named=True):
        verdicts.append(
            report.Verdict(
                f"plan index {row['index']}",
                row["decision"].split(" (")[0],
                f"helps: {row['queries_helped'] or 'nothing measurably'}; write cost {row['write_cost']:.2f}x; {row['desc']}",  # noqa: E501
                name,
            )
        )
for (name, pager), part in pages.group_by("engine", "pager", maintain_order=True):
    missed, repeated = int(part["missed"].sum()), int(part["repeated"].sum())
    verdicts.append(
        report.Verdict(
            f"pagination: {pager}",
            "correct" if missed + repeated == 0 else f"{missed} missed, {repeated} repeated",
            "walking every page of the hottest project, still and with rows inserted between pages",
            name,
        )
    )
for row in pagination.growth(depth).iter_rows(named=True):
    verdicts.append(
        report.Verdict(
            f"pagination latency: {row['pager']}",
            f"{row['ratio']:.1f}x at page {row['deepest_page']}",
            "latency of the deepest page over page 1 (the plan's keyset target: within 2x)",
            row["engine"],
        )
    )
report.show_verdicts("03_indexes", verdicts, out)

# %% [markdown]
# ## Export
# The migrations, one folder per engine (PostgreSQL: `CONCURRENTLY`, one statement per file).

# %% tags=["nbval-ignore-output"]
for e in opened.values():
    e.close()
sorted(str(p.relative_to(out)) for r in reports.values() for p in r.migrations)

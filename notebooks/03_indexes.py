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
from IPython.display import HTML

from workbench import lab, report, tables, verdicts
from workbench.indexes import advisor, pagination, select
from workbench.indexes import figures as ifig
from workbench.indexes import workload as wl

lab.setup()
data, out = lab.data_dir(data_dir), lab.out_dir(out_dir)

# %% [markdown]
# ## Data
# The synthetic dataset, loaded into each engine in its own folder (indexes are built and
# dropped here). The workload is the plan's endpoints' queries, each equally often.

# %% tags=["nbval-ignore-output"]
ds = lab.open_dataset("synthetic", data, scale=scale, seed=seed)
opened, loads = lab.open_engines(ds, engines, data / "indexlab", pg_url=postgres_url)
workload = wl.from_folder(names=wl.ENDPOINTS)
tables.table(
    loads,
    units={"seconds": "s"},
    decimals={"seconds": 2},
    caption="Bulk load (reused: already loaded, nothing timed)",
)

# %% [markdown]
# ## Measure
# For each engine: candidates, the HypoPG pass (PostgreSQL), real builds timed with
# intervals, write cost, the greedy choice (by frequency-weighted time saved; a saving
# counts only when the plan changed and the interval is above 1), and the whole workload
# timed without and with the chosen set.

# %% tags=["nbval-ignore-output"]
budgets = select.Budgets(max_write_cost=max_write_cost)
reports = {
    name: advisor.advise(e, workload, budgets=budgets, out_dir=out / "03_indexes", repeat=repeat)
    for name, e in opened.items()
}
tables.table(
    pl.DataFrame({"engine": list(reports), "seconds": [r.seconds for r in reports.values()]}),
    units={"seconds": "s"},
    decimals={"seconds": 1},
    caption="Time to advise per engine",
)

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
# The evaluation table: per engine and index, the decision and its evidence (the plan's
# four indexes are marked "plan:"; "covered by" means a wider candidate serves its queries).

# %% tags=["nbval-ignore-output"]
advisor.evaluation_table(reports)

# %% tags=["nbval-ignore-output"]
per_query = pl.concat([r.builds.per_query for r in reports.values()])
advisor.per_query_table(reports)

# %% [markdown]
# Each index's speedup on each query it serves, per engine, with its 95% interval, on a log
# axis: right of the dotted 1 the query got faster with the index, left of it slower; a
# whisker that crosses 1 is no measured change.

# %% tags=["nbval-ignore-output"]
ifig.speedups(per_query)

# %% [markdown]
# What each index costs the writes: a bulk insert into its table with the index over the
# same insert without it (1, dotted: no cost), per engine, with its 95% interval. An index
# whose cost is over the write-cost budget is not recommended; a long whisker is a ratio
# the run could not pin down.

# %% tags=["nbval-ignore-output"]
ifig.write_costs(pl.concat([r.builds.per_index for r in reports.values()]))

# %% tags=["nbval-ignore-output"]
hypo = reports["postgres"].hypothetical if "postgres" in reports else None
(
    tables.table(
        hypo,
        caption="HypoPG on PostgreSQL: the planner's cost (its own units) without and with each hypothetical "
        "index, for the hottest, a typical and a cold parameter",
    )
    if hypo is not None
    else report.paragraphs("PostgreSQL not in this run: no hypothetical pass")
)

# %% [markdown]
# Walking every page of the hottest project with each pager, on a still table and with rows
# inserted between pages: the rows it missed and the rows it showed twice. A correct pager
# has no bar.

# %% tags=["nbval-ignore-output"]
ifig.correctness(pages)

# %% [markdown]
# The latency of one page against its depth (log-log; at the default page size of 1, page N
# starts N rows deep), with 95% intervals: a flat line is a pager whose cost does not grow
# with depth, a rising one reads every earlier row again.

# %% tags=["nbval-ignore-output"]
ifig.depth(depth)

# %% [markdown]
# ## Conclude
# Computed from the measurements above: per question of the plan, the answer on each
# engine. The same table opens the page.

# %% tags=["verdicts", "nbval-ignore-output"]
verdicts.show("03_indexes", advisor.verdicts(reports, pages, depth), out)

# %% [markdown]
# ## Export
# The recommended migrations, one folder per engine, in golang-migrate's order (PostgreSQL:
# `CONCURRENTLY`, one statement per file; each file opens with its evidence as comments):
# the statement to approve, and the `up` and `down` files.

# %% tags=["nbval-ignore-output"]
for e in opened.values():
    e.close()
HTML(advisor.migrations_html(reports, out))

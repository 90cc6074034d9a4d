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
# each for real, chooses a set for the whole workload within a write-cost budget, exports it
# as golang-migrate migrations (which notebook 05's database applies), and checks three ways
# to paginate.
#
# The headline is measured under the production profile: its engine, and its traffic mix
# (each service endpoint's share of requests, times the statements that endpoint runs).
# The other engines are detail, for comparison.
#
# Skeleton: Parameters → Data → Measure → Look → Conclude → Export.

# %% tags=["parameters"]
profile = None  # a profile TOML or a name in profiles/ (None: $WORKBENCH_PROFILE, else default)
source = None  # None: the profile's data; or "synthetic", a Dataset folder, "claude-code:PATH", a URL
scale = None  # None: the profile's scale (synthetic data)
seed = None  # None: the profile's seed
engines = ["duckdb", "sqlite", "postgres"]  # the profile's engine leads; the others are for comparison
data_dir = None  # None: $WORKBENCH_DATA_DIR, else ../data
out_dir = None  # None: $WORKBENCH_OUT_DIR, else ../reports
postgres_url = None  # None: $WORKBENCH_POSTGRES_URL, else a throwaway local server
repeat = 3
max_write_cost = 1.5
min_saving = 0.01  # a recommended index must save at least this share of the workload's DB time
page_size = None  # None: the profile's list page (sessions per page)
depths = [1, 2, 5, 10, 20, 50]  # pages timed; those past the hottest project's last page are skipped

# %%
import polars as pl
from IPython.display import HTML

from workbench import lab, report, tables, verdicts
from workbench.indexes import advisor, decisions, pagination, select
from workbench.indexes import figures as ifig
from workbench.indexes import workload as wl

lab.setup()
prof = lab.profile(profile)
data, out = lab.data_dir(data_dir), lab.out_dir(out_dir)
size = page_size or prof.pages.list_sessions
names = list(dict.fromkeys([prof.engine, *([engines] if isinstance(engines, str) else engines)]))

# %% [markdown]
# ## Data
# The profile's dataset, loaded into each engine in its own folder (indexes are built and
# dropped here). The workload is the profile's traffic mix: each endpoint's statements per
# request (what the service's routes run, with today's N+1 loading for "recent": one query
# for the sessions, then two per session), weighted by that endpoint's share of requests.

# %% tags=["nbval-ignore-output"]
ds = lab.dataset(prof, data, source=source, scale=scale, seed=seed)
opened, loads = lab.open_engines(ds, names, data / "indexlab", pg_url=postgres_url)
workload = wl.from_profile(prof)
tables.table(
    workload.frame(),
    decimals={"per request": 3},
    caption=f"The workload: {workload.source}",
)

# %% tags=["nbval-ignore-output"]
tables.table(
    loads,
    units={"seconds": "s"},
    decimals={"seconds": 2},
    caption="Bulk load (reused: already loaded, nothing timed)",
)

# %% [markdown]
# ## Measure
# For each engine: candidates, the HypoPG pass (PostgreSQL), real builds timed with
# intervals, the write cost (paired inserts with and without the index, with an interval),
# the greedy choice (frequency-weighted time saved; a saving
# counts only when the plan changed and the interval is above 1; ties within the interval
# go to the simpler key), and the whole workload timed without and with the chosen set.

# %% tags=["nbval-ignore-output"]
budgets = select.Budgets(max_write_cost=max_write_cost, min_saving=min_saving)
reports = {
    name: advisor.advise(e, workload, budgets=budgets, out_dir=out / "03_indexes", repeat=repeat)
    for name, e in opened.items()
}
for name, r in reports.items():
    for note in r.notes:
        print(f"Note ({name}): {note}")
tables.table(
    pl.DataFrame({"engine": list(reports), "seconds": [r.seconds for r in reports.values()]}),
    units={"seconds": "s"},
    decimals={"seconds": 1},
    caption="Time to advise per engine",
)

# %% tags=["nbval-ignore-output"]
first = reports.get(prof.engine) or next(iter(reports.values()))
first.advice.candidates_frame()

# %% tags=["nbval-ignore-output"]
hot = {name: wl.draw(e)["hot"]["project_id"] for name, e in opened.items()}
pages = pl.concat([pagination.correctness(e, hot[name], size=size) for name, e in opened.items()])
depth = pl.concat(
    [
        pagination.depth_latency(e, hot[name], size=size, depths=depths, repeat=repeat)
        for name, e in opened.items()
    ]
)

# %% [markdown]
# ## Look
# The evaluation table: per engine and index, the decision and its evidence (the plan's
# four indexes are marked "plan:"; "covered by" means a wider candidate serves its queries,
# "redundant given" that a chosen index already gives its gain; "saved" is the share of
# the workload's DB time it adds beside the indexes chosen before it, "saved alone" with no
# other index).

# %% tags=["nbval-ignore-output"]
advisor.evaluation_table(reports)

# %% tags=["nbval-ignore-output"]
per_query = pl.concat([r.builds.per_query for r in reports.values()])
advisor.per_query_table(reports)

# %% [markdown]
# Each dot is one query's speedup with one index (time without / with), per engine, on a
# log axis: right of the dotted 1 the query got faster, left of it slower. The whiskers
# are its 95% interval; a dot whose whisker reaches 1 is no measurable gain.

# %% tags=["nbval-ignore-output"]
ifig.speedups(per_query)

# %% [markdown]
# Each bar is the slowdown of a bulk insert into the index's table with the index present;
# whiskers are the 95% interval of the paired rounds. An interval that reaches 1 (or below)
# is no measurable write cost, never a speed-up.

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
# Rows missed and repeated by each pager, walking every page of the hottest project: a
# correct pager has none in both scenarios.

# %% tags=["nbval-ignore-output"]
ifig.correctness(pages)

# %% [markdown]
# Latency of page N against page 1, at the profile's page size: a flat line stays correct
# and fast at depth; OFFSET reads every row it skips.

# %% tags=["nbval-ignore-output"]
ifig.depth(depth)

# %% [markdown]
# ## Conclude
# Computed from the measurements above: on the profile's
# engine, a decision per plan item (ship, ship changed, don't ship) with its effect on the
# profile's workload, its cost and when it would flip; the other engines' answers follow,
# for comparison. The same table opens the page.

# %% tags=["verdicts", "nbval-ignore-output"]
if prof.engine not in reports:
    print(f"The profile's engine, {prof.engine}, could not be opened: only comparisons below.")
verdicts.show(
    "03_indexes",
    decisions.verdicts(reports, pages, depth, prof, out, budgets=budgets, page_size=size),
    out,
)

# %% [markdown]
# ## Export
# The recommended migrations, one folder per engine (`<out>/03_indexes/migrations/<dialect>/`),
# in golang-migrate's order (PostgreSQL: `CONCURRENTLY`, one statement per file; each file
# opens with its evidence as comments): the statement to approve, and the `up` and `down`
# files. Notebook 05 applies the PostgreSQL folder to its database.

# %% tags=["nbval-ignore-output"]
for e in opened.values():
    e.close()
HTML(advisor.migrations_html(reports, out))

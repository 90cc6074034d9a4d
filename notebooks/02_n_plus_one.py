# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec: {display_name: Python 3, language: python, name: python3}
# ---

# %% [markdown]
# # 02 · N+1 and the ways around it
#
# The backend's plan loads "a project's N most recent sessions with their messages and
# windows" with one query for the sessions and then two per session (N+1), and proposes a
# single three-table LEFT JOIN instead. This notebook asks: **which loading strategy is
# fastest on each engine, by how much, and why** — after checking that every strategy
# returns exactly the same sessions, messages and windows.
#
# Strategies (`workbench.strategies`): `n_plus_one` (the plan), `joined` (the plan's
# three-table LEFT JOIN, m×w rows per session, de-duplicated in Python), `per_relation`
# (sessions⟕messages, sessions⋈windows), `batch` (sessions, then `session_id IN (...)`, or
# `= ANY(:ids::bigint[])` on PostgreSQL) and `aggregate` (children aggregated in the
# database: `json_agg`, DuckDB lists of structs, `json_group_array`). The SQL is in
# `queries/*.sql`.
#
# Skeleton: Parameters → Data → Measure → Look → Conclude → Export.

# %% tags=["parameters"]
scale = "small"
seed = 7
engines = ["duckdb", "sqlite", "postgres"]
data_dir = "../data"
postgres_url = None  # None: $WORKBENCH_POSTGRES_URL, else a throwaway local server
out_dir = "../reports"
limit = 100  # sessions loaded in the main comparison
repeat = 5  # timed runs per strategy (after a checked warm-up run)
scaling_points = 6  # log-spaced sizes from 1 to min(1000, the project's sessions): 1, 4, 16, 63, 251, 1000
scaling_repeat = 3
max_statements = 2001  # bounds N+1 in the scaling sweep: 1 + 2N, so N+1 runs up to 1,000 sessions

# %%
import polars as pl

from workbench import figures, lab, measure, plans, queries, report, strategies
from workbench.sources.synthetic import generate

lab.setup()

# %% [markdown]
# ## Data
# The synthetic dataset (deterministic for the seed), loaded into each engine. The
# embedded databases live in `data_dir/querylab/`, apart from notebook 01's, because this
# notebook adds the access-path indexes the backend's queries need.

# %%
ds = generate(f"{data_dir}/{scale}", scale, seed)
ds.counts

# %% tags=["nbval-ignore-output"]
opened, loads = lab.open_engines(ds, engines, f"{data_dir}/querylab", pg_url=postgres_url)
loads

# %% [markdown]
# The named queries every strategy is built from:

# %%
queries.describe()

# %% [markdown]
# The project with the most sessions is the one whose page N+1 hurts most. Before the
# access-path indexes exist, a session's messages are a full scan of `messages`; the plan
# diff shows what the index changes (plans on the largest session of that project).

# %%
project_id, project_sessions = strategies.largest_project(next(iter(opened.values())))
n = min(limit, project_sessions)
biggest = ds.session_stats().filter(pl.col("project_id") == project_id).sort("messages", "session_id")[-1]
session_id = biggest["session_id"].item()
print(
    f"project {project_id}: {project_sessions} sessions; main comparison loads {n}; session {session_id} "
    f"has {biggest['messages'].item()} messages"
)

# %%
explain_before = {}
for name, engine in opened.items():
    strategies.drop_indexes(engine)
    explain_before[name] = plans.explain(
        engine, queries.load("session_messages", engine.dialect), {"session_id": session_id}
    )
indexes = pl.concat([strategies.ensure_indexes(engine) for engine in opened.values()])
indexes

# %%
explain_after = {
    name: plans.explain(engine, queries.load("session_messages", engine.dialect), {"session_id": session_id})
    for name, engine in opened.items()
}
print(plans.side_by_side({f"{e} without index": p for e, p in explain_before.items()}))
print()
print(plans.side_by_side({f"{e} with index": p for e, p in explain_after.items()}))

# %% tags=["nbval-ignore-output"]
for name in opened:
    print(f"{name}: {plans.diff_summary(explain_before[name], explain_after[name])}")

# %% [markdown]
# ## Measure
# Correctness first: every strategy on every engine must return identical sessions
# (same values, same order), and the counted statements must match the strategy's
# shape (N+1 runs exactly 1 + 2N). `check_equal` raises otherwise, and the timings below
# are only taken after it passed.

# %%
checked = {name: strategies.check_equal(engine, project_id, n) for name, engine in opened.items()}
first = next(iter(checked.values()))["n_plus_one"]
assert all(load.sessions == first.sessions for runs in checked.values() for load in runs.values()), (
    "engines differ"
)
count = sum(len(runs) for runs in checked.values())
print(
    f"{count} loads agree: {len(first.sessions)} sessions, {first.messages} messages, {first.windows} windows"
)

# %%
accounting = pl.concat([strategies.accounting(runs) for runs in checked.values()])
accounting

# %% [markdown]
# Timed runs: strategies interleaved round-robin on each engine (so drift hits all alike),
# warm caches, medians with 95% bootstrap intervals; `unstable` flags a coefficient of
# variation above 10%. `server_ms` is the engine's own execution time summed over the
# statements (EXPLAIN ANALYZE; SQLite has none), and `bytes` the payload the client received.

# %% tags=["nbval-ignore-output"]
results, book = strategies.compare(opened, project_id, n, repeat=repeat, dataset=ds)
summary = results.summary()
summary.select(
    "engine", "strategy", "median_ms", "median_lo", "median_hi", "p95_ms", "cv", "unstable", "server_ms"
).with_columns(pl.col(pl.Float64).round(2))

# %% tags=["nbval-ignore-output"]
results.ratios("n_plus_one").sort("engine", "speedup", descending=[False, True]).with_columns(
    pl.col(pl.Float64).round(2)
)

# %% [markdown]
# Scaling: cost against the number of sessions loaded (1 … 1,000 of the project's, log-spaced,
# every strategy including N+1), with each engine's per-statement floor (median latency of
# `SELECT 1` through the same driver call).

# %% tags=["nbval-ignore-output"]
sizes = strategies.log_sizes(min(1000, project_sessions), scaling_points)
scaled = strategies.scaling(
    opened, project_id, sizes, repeat=scaling_repeat, max_statements=max_statements, dataset=ds
)
floors = pl.DataFrame([measure.latency_floor(engine) for engine in opened.values()])
floors

# %% [markdown]
# ## Look

# %% tags=["nbval-ignore-output"]
figures.strategy_figure(summary, title=f"Loading {n} sessions with messages and windows")

# %% tags=["nbval-ignore-output"]
scaled_summary = scaled.summary()
crossed = strategies.crossings(scaled_summary, involving=["n_plus_one"])
figures.scaling_figure(scaled_summary, floors, crossings=crossed)

# %% [markdown]
# Dotted lines are statements × the engine's per-statement floor: where a strategy's line
# sits on its dotted line it is bound by round trips, not by the work. Crosses mark where
# an alternative overtakes N+1 (interpolated between measured sizes on log-log axes):

# %% tags=["nbval-ignore-output"]
print(strategies.scaling_conclusions(scaled_summary, floors, crossed))
crossed.with_columns(pl.col("sessions", "ms").round(1))

# %% [markdown]
# The plan's joined query, side by side on each engine: operators (stable across runs),
# then where the time goes and what an analyzer would flag.

# %%
joined_plans = {
    name: plans.explain(
        engine,
        queries.load("project_sessions_joined", engine.dialect),
        {"project_id": project_id, "limit": n},
    )
    for name, engine in opened.items()
}
print(plans.side_by_side(joined_plans))

# %% tags=["nbval-ignore-output"]
figures.plan_time_figure(joined_plans, title="The plan's three-table LEFT JOIN: exclusive ms per node")

# %% tags=["nbval-ignore-output"]
pl.concat([plans.findings_frame(p).with_columns(engine=pl.lit(e)) for e, p in joined_plans.items()]).select(
    "engine", "kind", "message"
)

# %% [markdown]
# ## Conclude
# Computed from the measurements above (fastest strategy per engine at N sessions, its
# speedup over the plan's N+1 with a 95% bootstrap interval, and how close the runner-up is).

# %% tags=["nbval-ignore-output"]
print(strategies.conclusions(results))

# %% [markdown]
# ## Export
# Timed runs as versioned Parquet (with engine versions, CPU, Python, dataset hash and git
# commit), so later runs and other commits compare against them; tables as CSV.

# %% tags=["nbval-ignore-output"]
results.save(f"{out_dir}/02_n_plus_one/strategies.parquet")
scaled.save(f"{out_dir}/02_n_plus_one/scaling.parquet")
report.export_frames(
    out_dir,
    "02_n_plus_one",
    summary=summary,
    accounting=book,
    floors=floors,
    recommendation=strategies.recommend(results),
)

# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec: {display_name: Python 3, language: python, name: python3}
# ---

# %% [markdown]
# # 02 · N+1 and the plan's JOIN
#
# The backend loads "a project's N most recent sessions with their messages and windows"
# with one query for the sessions and then two per session: **N+1 (today)**. The plan
# proposes to replace it with **a single three-table LEFT JOIN** (sessions LEFT JOIN messages LEFT JOIN
# windows): **JOIN (plan)**. This notebook asks: **under the production profile (its engine,
# its app-to-database round trip, its page of sessions), is the three-table JOIN a good fix,
# against N+1 and against the best alternative, and where would the answer flip?**
# Loopback, the other engines and the sweeps follow, for comparison and for the flips.
#
# Every strategy is first checked to return exactly the same sessions, messages and
# windows. The alternatives: one JOIN per relation
# (sessions LEFT JOIN messages, sessions JOIN windows), batch (sessions, then `session_id IN (...)`, or
# `= ANY(:ids::bigint[])` on PostgreSQL) and aggregate in DB (children aggregated by the
# database: `json_agg`, DuckDB lists of structs, `json_group_array`). The SQL is in
# `queries/*.sql`. Your own strategies (a function, or a SQL file of your own) compare the
# same way: see "Your own strategies" at the end.
#
# How to read the numbers: strategies are timed round-robin, for a minimum number of
# rounds and then as many as fit a time budget (more again while a strategy's runs vary by
# over 10%). Ratios are medians of the per-round ratios with 95% bootstrap intervals; two
# strategies whose interval lies within the equivalence margin (±10% unless the run set
# another) are a **tie**. When the machine's load average was above its limit (0.9 × the
# CPU cores unless set) while an engine was timed, its timings are not ranked.
#
# Skeleton: Parameters → Data → Under the profile → For comparison → Look → Conclude → Export.

# %% tags=["parameters"]
profile = None  # None: $WORKBENCH_PROFILE (workbench report --profile), else profiles/default.toml
source = (
    None  # None: the profile's data; or "synthetic", "claude-code:PATH", a database URL, a Dataset folder
)
scale = None  # None: the profile's synthetic scale
seed = None  # None: the profile's seed
limit = None  # sessions per page; None: the profile's page (pages.recent_sessions)
engines = ["duckdb", "sqlite", "postgres"]  # the profile's engine is judged; the others are for comparison
data_dir = None  # None: $WORKBENCH_DATA_DIR, else ../data
out_dir = None  # None: $WORKBENCH_OUT_DIR, else ../reports
postgres_url = None  # None: $WORKBENCH_POSTGRES_URL, else a throwaway local server
min_runs = 20  # timed rounds per strategy, at least
budget_s = 1.0  # seconds of timed calls per engine in a comparison (more rounds if they fit)
scaling_points = 4  # log-spaced sizes from 1 to scaling_max: 1, 5, 22, 100
scaling_max = 100  # largest page in the scaling sweep (up to the project's sessions; 1000 for the full sweep)
max_statements = 2001  # bounds N+1 in the sweep: 1 + 2N statements, so N+1 runs up to 1,000 sessions
margin = 0.10  # practical-equivalence margin: ratios within ±10% are a tie
max_load = None  # None: 0.9 × CPU cores; above it timings are not ranked
# round trips (ms) the latency proxy adds, besides the profile's; [0, 0.2, 0.5, 1, 2] for the full sweep
network_rtts = [0.0, 2.0]
network_budget_s = 6.0  # seconds of timed runs over the whole RTT sweep (PostgreSQL only)
network_min_runs = 10  # timed runs per RTT sweep cell, at least (fewer: indicative only)

# %%
import polars as pl
from IPython.display import display

from workbench import figures, lab, measure, plans, queries, report, strategies, tables, verdicts
from workbench.strategies import network, production

lab.setup()
data = lab.data_dir(data_dir)
out = lab.out_dir(out_dir)
load_limit = measure.load_limit() if max_load is None else max_load
prof = lab.profile(profile)
report.paragraphs(prof.describe())

# %% [markdown]
# ## Data
# The profile's dataset (synthetic data is deterministic for the seed; the parameters
# override it), loaded into each engine. The embedded databases live in their own folder
# (querylab/ in the data folder), apart from notebook 01's, because this notebook adds
# the access-path indexes the backend's queries need.

# %%
ds = lab.dataset(prof, data, source=source, scale=scale, seed=seed)
tables.table(pl.DataFrame([ds.counts]), caption=f"Rows per table ({ds.name})")

# %% tags=["nbval-ignore-output"]
opened, loads = lab.open_engines(ds, engines, data / "querylab", pg_url=postgres_url)
tables.table(
    loads.group_by("engine", maintain_order=True).agg(
        rows=pl.col("rows").sum(), seconds=pl.col("seconds").sum(), reused=pl.col("reused").all()
    ),
    units={"seconds": "s"},
    decimals={"seconds": 2},
    caption="Bulk load per engine (reused: already loaded, nothing timed)",
)

# %% [markdown]
# The project with the most sessions is the one whose page N+1 hurts most; its largest
# session is the worst case for a per-session query.

# %%
project_id, project_sessions = strategies.largest_project(next(iter(opened.values())))
page = prof.pages.recent_sessions if limit is None else limit
n = min(page, project_sessions)
biggest = ds.session_stats().filter(pl.col("project_id") == project_id).sort("messages", "session_id")[-1]
session_id = biggest["session_id"].item()
report.paragraphs(
    f"Project {project_id}: {project_sessions:,} sessions; a page loads {n:,}; "
    f"session {session_id} has {biggest['messages'].item():,} messages."
)

# %% [markdown]
# ### What the access-path indexes change
# N+1's child query (one session's messages) without and with the indexes on the foreign
# keys. A change is claimed only where the plan changed; where it did not, the timing
# difference is given with its interval and attributed to nothing. DuckDB's use of its
# ART index is read from the plan (it shows only as a `SEQ_SCAN` of Type "Index Scan").

# %%
child_sql = {name: queries.load("session_messages", e.dialect) for name, e in opened.items()}
effects = {
    name: strategies.index_effect(e, child_sql[name], {"session_id": session_id}, repeat=min_runs)
    for name, e in opened.items()
}
print(plans.side_by_side({f"{e} without index": x["plans"][0] for e, x in effects.items()}))
print()
print(plans.side_by_side({f"{e} with index": x["plans"][1] for e, x in effects.items()}))

# %% tags=["nbval-ignore-output"]
report.paragraphs("\n".join(x["sentence"] for x in effects.values()))

# %% [markdown]
# ## Measure
# First under the production profile (the decision), then on this machine and every
# engine, for comparison and for the conditions under which the decision would flip.
#
# ### Under the profile
# The decision's condition: the profile's page of sessions on its engine, at its round
# trip. PostgreSQL is reached through a latency proxy the workbench starts, which adds the
# profile's round trip to loopback's (what it added is measured with `SELECT 1` through it
# and direct); an embedded engine has no round trip to add. Every strategy is checked to
# return the same sessions through it, then timed in paired, interleaved rounds; the
# speedup is the median of the per-round ratios (N+1's time / the strategy's) with its
# 95% interval and its class (faster, tie within ±margin, slower, or unclear).

# %% tags=["nbval-ignore-output"]
if prof.engine in opened:
    head = production.measure(
        opened[prof.engine], prof, project_id, n, repeat=min_runs, budget_s=budget_s, dataset=ds
    )
    display(
        tables.table(
            strategies.labelled(
                head.results.ratios("n_plus_one", paired=True, margin=margin)
                .join(head.results.summary().select("strategy", "median_ms"), on="strategy")
                .sort("speedup", descending=True)
                .select("strategy", "median_ms", "speedup", "lo", "hi", "class", "n")
            ),
            units={"median_ms": "ms", "speedup": "x", "lo": "x", "hi": "x"},
            decimals={"median_ms": 2, "speedup": 2, "lo": 2, "hi": 2},
            caption=(
                f"Under the profile: {head.sessions} sessions on {head.where()}; speedup over N+1 (today)"
            ),
        )
    )
else:
    head = None
    print(
        f"The profile's engine ({prof.engine}) was not opened in this run: the decision is not measured here."
    )

# %% [markdown]
# ### For comparison: this machine, every engine
# Loopback PostgreSQL (no added round trip) and the embedded engines, at the same page.
# Correctness first: every strategy on every engine must return identical sessions
# (same values, same order), and the counted statements must match the strategy's shape
# (N+1 runs exactly 1 + 2N). The run stops otherwise; timings come after this check.

# %%
checked = {name: strategies.check_equal(engine, project_id, n) for name, engine in opened.items()}
first = next(iter(checked.values()))["n_plus_one"]
assert all(load.result == first.result for runs in checked.values() for load in runs.values()), (
    "engines differ"
)
count = sum(len(runs) for runs in checked.values())
report.paragraphs(
    f"{count} loads agree: {len(first.result):,} sessions, "
    f"{first.messages:,} messages, {first.windows:,} windows."
)

# %% [markdown]
# What each strategy ships for that page (the same on every engine): statements, rows and
# bytes of values received. The JOIN's rows are messages × windows per session.

# %%
accounting = strategies.labelled(strategies.accounting(checked[next(iter(checked))]).drop("engine"))
accounting

# %% [markdown]
# Timed runs: strategies interleaved round-robin on each engine (drift hits all alike),
# warm caches (the same warm-up as the scaling sweep below), the same number of timed
# rounds each. The server column is the engine's own execution time summed over the
# statements (EXPLAIN ANALYZE; SQLite has none).

# %% tags=["nbval-ignore-output"]
results, book = strategies.compare(opened, project_id, n, repeat=min_runs, budget_s=budget_s, dataset=ds)
summary = results.summary()
tables.table(
    strategies.labelled(
        summary.select(
            "engine",
            "strategy",
            "n",
            "median_ms",
            "median_lo",
            "median_hi",
            "p95_ms",
            "cv",
            "unstable",
            "server_ms",
            "load_before",
            "load_after",
        )
    ).with_columns(pl.col(pl.Float64).round(2)),
    units={"median_lo": "ms", "median_hi": "ms"},
    caption="Wall time per load: median with its 95% CI (lo, hi); cv = std / mean; server: EXPLAIN ANALYZE",
)

# %% [markdown]
# Each strategy against N+1 (today): the speedup is the median of the per-round ratios
# (N+1's time / the strategy's), with its 95% interval and its class (faster, tie within
# the equivalence margin, slower, or unclear when the interval straddles the margin).

# %% tags=["nbval-ignore-output"]
tables.table(
    strategies.labelled(
        results.ratios("n_plus_one", paired=True, margin=margin).filter(pl.col("strategy") != "n_plus_one")
    )
    .sort("engine", "speedup", descending=[False, True])
    .select("engine", "strategy", "speedup", "lo", "hi", "class", "n"),
    units={"speedup": "x", "lo": "x", "hi": "x"},
    decimals={"speedup": 2, "lo": 2, "hi": 2},
    caption=f"For comparison, on this machine: speedup over N+1 (today) at {n} sessions, with its 95% CI",
)

# %% [markdown]
# ### What one more statement of N+1 costs
# N+1's child queries themselves (one session's messages, one session's windows: the
# indexed lookups, through the same driver call, prepared on PostgreSQL), each of the
# page's sessions in turn: the median is what one more statement for a typical session
# costs (the mean carries the largest sessions' rows too); `SELECT 1` beside it is the
# floor no statement goes under.

# %% tags=["nbval-ignore-output"]
costs = pl.DataFrame([strategies.statement_cost(engine, project_id, n) for engine in opened.values()])
costs.select(
    "engine",
    "n",
    *[
        (pl.col(c) * 1000).round(1).alias(f"{name} (µs)")
        for c, name in [
            ("statement_ms", "child query, median"),
            ("lo", "95% CI low"),
            ("hi", "95% CI high"),
            ("mean_ms", "child query, mean"),
            ("select1_ms", "SELECT 1"),
        ]
    ],
)

# %% [markdown]
# ### The JOIN's row multiplication
# A session with m messages and w windows comes back from the plan's JOIN as m × w rows,
# each repeating the session's columns, a message's and a window's. Over the whole
# project, newest session first (the page's order), what the JOIN ships against the rows
# that exist (computed from the dataset, checked against the counted rows in the tests):

# %%
mult = strategies.multiplication(ds, project_id)
worst = strategies.worst_sessions(mult, 5)
worst

# %% [markdown]
# ### Scaling
# Cost against the number of sessions loaded (log-spaced up to the sweep's largest page),
# every strategy including N+1, timed as above.

# %% tags=["nbval-ignore-output"]
sizes = strategies.log_sizes(min(scaling_max, project_sessions), scaling_points)
scaled = strategies.scaling(
    opened, project_id, sizes, repeat=min_runs, max_statements=max_statements, dataset=ds
)
scaled_summary = scaled.summary()
crossed = strategies.crossings(scaled_summary, involving=["n_plus_one"])
report.paragraphs(f"Sessions loaded: {', '.join(map(str, sizes))}; {scaled.frame.height:,} timed runs.")

# %% [markdown]
# ## Look
# Each strategy's median wall time per engine, with its 95% interval, on a log axis: lower
# is faster. Compare each strategy with N+1 (today), the first column, on the same engine;
# where two intervals overlap, neither is shown to be faster.

# %% tags=["nbval-ignore-output"]
figures.strategy_figure(strategies.labelled(summary), title=f"Loading {n} sessions with messages and windows")

# %% [markdown]
# What the plan's JOIN ships (solid) against the rows and bytes that exist (dotted) as the
# page takes more of the project's sessions, newest first: the gap between the two lines is
# the JOIN's duplication, and it jumps at each large session (named with its messages ×
# windows).

# %%
figures.multiplication_figure(mult, worst)

# %% [markdown]
# Dotted lines: statements × the measured cost of one N+1 child statement. Where a
# strategy's line meets its dotted line it is bound by its statements, not by the rows.
# Crosses mark where N+1 and an alternative swap places with their intervals apart on
# both sides; hover for which is faster below and above.

# %% tags=["nbval-ignore-output"]
floors = costs.select("engine", floor_ms="statement_ms")
crossed_labelled = strategies.labelled(strategies.labelled(crossed, "faster_below"), "faster_above")
figures.scaling_figure(strategies.labelled(scaled_summary), floors, crossings=crossed_labelled)

# %% tags=["nbval-ignore-output"]
display(report.paragraphs(strategies.scaling_conclusions(scaled_summary, costs, crossed)))
crossed_labelled.with_columns(pl.col("sessions", "ms").round(1))

# %% [markdown]
# ### Network distance
# PostgreSQL runs on this machine, so each round trip of the comparison above is a
# loopback one. The backend's database is further away (same zone ~0.2 ms, across zones
# 0.5-2 ms). The latency proxy adds a set delay each way; every strategy is timed through
# it at each round-trip time (RTT), the profile's among them, at the profile's page, beside
# the model `statements × RTT + work` (work: the strategy at zero delay through the proxy).
# Where the JOIN overtakes N+1 here is the round trip at which the decision flips. A
# small sweep by default.

# %% tags=["nbval-ignore-output"]
if "postgres" in opened:
    swept = network.sweep(
        opened["postgres"].target,
        project_id,
        n,
        rtts=sorted({0.0, *network_rtts, prof.network.rtt_ms}),
        budget_s=network_budget_s,
        min_repeat=network_min_runs,
        max_repeat=max(20, network_min_runs),
        schema_name=opened["postgres"].schema_name,
    )
    net_summary = swept.summary()
    display(
        report.paragraphs(network.conclusions(net_summary, swept.pings, swept.context, max_load=load_limit))
    )
else:
    swept = net_summary = None
    display(
        report.paragraphs("PostgreSQL was not opened in this run: no network sweep (it needs its server).")
    )

# %% [markdown]
# Points: each strategy's measured median with its 95% interval at each added round trip;
# dashed lines: the model. Where a strategy's points sit on its line, its statements'
# round trips explain its cost; the more statements a strategy runs, the more its line
# rises with the round trip.

# %% tags=["nbval-ignore-output"]
figures.network_figure(net_summary) if net_summary is not None else None

# %% [markdown]
# The plan's JOIN, side by side on each engine: operators (stable across runs), then where
# the time goes and what an analyzer would flag (no misestimate is flagged under a Limit
# or TOP_N that stopped early, nor on a DuckDB scan cut by a run-time join filter).

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

# %% [markdown]
# Each bar is one plan node's own time (its children's excluded), one panel per engine that
# reports actual times: the longest bar is where the JOIN spends its time on that engine.

# %% tags=["nbval-ignore-output"]
figures.plan_time_figure(joined_plans, title="The plan's three-table LEFT JOIN: exclusive ms per node")

# %% tags=["nbval-ignore-output"]
pl.concat([plans.findings_frame(p).with_columns(engine=pl.lit(e)) for e, p in joined_plans.items()]).select(
    "engine", "kind", "message"
)

# %% [markdown]
# ## Conclude
# Computed from the measurements above. First the decision under the profile, with where
# it flips: the round trip from the RTT sweep at the profile's page, and the page size from
# the scaling sweep moved to the profile's round trip by the model (`statements × RTT`,
# which the RTT sweep checks). Then, for comparison, the fastest strategy per engine on this
# machine (with n, the unstable strategies and the load).

# %% tags=["nbval-ignore-output"]
if head is not None:
    decision = production.verdict(
        head, prof, sweep=net_summary, scaling=scaled_summary, margin=margin, max_load=load_limit, out_dir=out
    )
else:
    decision = production.not_measured(
        prof, f"the profile's engine ({prof.engine}) was not opened in this run"
    )
display(report.paragraphs(f"{decision.verdict}. {decision.detail}\n{decision.flips}\nCost: {decision.cost}"))
report.paragraphs("For comparison. " + strategies.conclusions(results, margin=margin, limit=load_limit))

# %% tags=["verdicts", "nbval-ignore-output"]
found = (
    [decision]
    + strategies.join_verdicts(results, book, margin=margin, limit=load_limit)
    + strategies.best_verdicts(results, margin=margin, limit=load_limit)
    + strategies.statement_cost_verdicts(costs, summary, n)
    + (network.verdicts(net_summary) if net_summary is not None else [])
)
verdicts.show("02_n_plus_one", found, out)

# %% [markdown]
# ## Export
# Timed runs as versioned Parquet (with engine versions, CPU, Python, dataset hash, git
# commit and load), so later runs and other commits compare against them; tables as CSV;
# the decision's SQL to ship, for the profile's engine.

# %% tags=["nbval-ignore-output"]
saved = [
    *([head.results.save(out / "02_n_plus_one" / "profile.parquet")] if head is not None else []),
    results.save(out / "02_n_plus_one" / "strategies.parquet"),
    scaled.save(out / "02_n_plus_one" / "scaling.parquet"),
]
csvs = report.export_frames(
    out,
    "02_n_plus_one",
    summary=strategies.labelled(summary),
    accounting=strategies.labelled(book),
    statement_cost=costs,
    multiplication=worst,
    recommendation=strategies.labelled(
        strategies.labelled(strategies.recommend(results, margin=margin, limit=load_limit), "best"),
        "runner_up",
    ),
    **({"network": net_summary} if net_summary is not None else {}),
)
shipped = [out / decision.artifact] if decision.artifact else []
report.show_files(out, [*saved, *csvs, *shipped], "Timed runs (Parquet), tables (CSV) and the SQL to ship:")

# %% [markdown]
# ## Your own strategies
# `compare`, `check_equal` and `scaling` take strategies directly: a built-in's name, a
# function `load(db, project_id, limit)` that returns what it loaded, a `Strategy` (to
# give it a statement count the check holds it to), or a SQL file of your own
# (`strategies.from_sql(path)`: one statement in PostgreSQL syntax binding `:project_id`
# and `:limit`, translated for each engine, returning its rows as dicts). Nothing is
# registered, and the equality check compares whatever the strategies return. Here, a
# question of your own: "a page of sessions with their last 10 messages", as an N+1
# function against a window function and a LATERAL join (SQLite has no LATERAL), from
# `queries/examples/`, on the profile's engine at loopback.

# %%
examples = queries.QUERIES_DIR / "examples"
PAGE = (
    "SELECT id, title FROM sessions WHERE project_id = :project_id"
    " ORDER BY created_at DESC, id DESC LIMIT :limit"
)
LAST10 = (
    "SELECT id AS message_id, role, timestamp, output_tokens FROM messages"
    " WHERE session_id = :session_id ORDER BY timestamp DESC, id DESC LIMIT 10"
)


def last10_n_plus_one(db, project_id, limit):
    """The page's sessions, then each one's last 10 messages: 1 + N statements."""
    page = db.execute(queries.translate(PAGE, db.dialect), {"project_id": project_id, "limit": limit})
    each = {i: db.query(queries.translate(LAST10, db.dialect), {"session_id": i}).to_dicts() for i, _ in page}
    return [{"session_id": i, "title": t} | m for i, t in page for m in each[i]]


# %%
own_engine = opened.get(prof.engine) or next(iter(opened.values()))
mine = [
    strategies.Strategy("last10_n_plus_one", last10_n_plus_one, statements=lambda k: 1 + k),
    strategies.from_sql(examples / "last10_window.sql"),
    *([strategies.from_sql(examples / "last10_lateral.sql")] if own_engine.dialect != "sqlite" else []),
]
own_checked = strategies.check_equal(own_engine, project_id, n, mine)
print(
    f"{len(own_checked)} strategies agree on {own_engine.name}: "
    f"{len(own_checked['last10_n_plus_one'].result):,} messages of {n} sessions; statements: "
    + ", ".join(f"{k} {v.statements}" for k, v in own_checked.items())
)


def one_message_short(db, project_id, limit):
    """A deliberately wrong strategy: the check must refuse it before anything is timed."""
    return last10_n_plus_one(db, project_id, limit)[:-1]


try:
    strategies.check_equal(own_engine, project_id, n, [mine[0], one_message_short])
except strategies.StrategyMismatchError as e:
    print(f"Refused before timing: {e}")

# %% tags=["nbval-ignore-output"]
own, _ = strategies.compare(
    {own_engine.name: own_engine},
    project_id,
    n,
    strategies=mine,
    repeat=min_runs,
    budget_s=0.5,
    server_time=False,
)
tables.table(
    own.ratios("last10_n_plus_one", paired=True, margin=margin)
    .filter(pl.col("strategy") != "last10_n_plus_one")
    .join(own.summary().select("strategy", "median_ms"), on="strategy")
    .select("engine", "strategy", "median_ms", "speedup", "lo", "hi", "class", "n"),
    units={"median_ms": "ms", "speedup": "x", "lo": "x", "hi": "x"},
    decimals={"median_ms": 2, "speedup": 2, "lo": 2, "hi": 2},
    caption=f"Your strategies against your N+1 at {n} sessions ({own_engine.name}, loopback), 95% CI",
)

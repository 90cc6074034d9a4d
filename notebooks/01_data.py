# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · The data under test
#
# Every later notebook measures queries on this data, so this one answers: **what does
# the data look like, did it load the same into every engine, and does a sample keep
# the shape that matters** (the heavy tail of very large sessions, which is where an
# N+1 query pattern hurts most)?
#
# Skeleton: Parameters → Data → Measure → Look → Conclude → Export.

# %% tags=["parameters"]
profile = None  # None: $WORKBENCH_PROFILE, else profiles/default.toml (its data: scale, path or url)
source = (
    None  # None: the profile's data; or "synthetic", "claude-code:PATH", a database URL, a Dataset folder
)
scale = None  # None: the profile's; tiny, small, medium, large (synthetic only)
seed = None  # None: the profile's
engines = ["duckdb", "sqlite", "postgres"]
sample_fraction = 0.1
data_dir = None  # None: $WORKBENCH_DATA_DIR, else ../data
out_dir = None  # None: $WORKBENCH_OUT_DIR, else ../reports
postgres_url = None  # None: $WORKBENCH_POSTGRES_URL, else a throwaway local server

# %%
import polars as pl
from IPython.display import Markdown, display

from workbench import figures, lab, report, shape, survey, tables, verdicts

lab.setup()
prof = lab.profile(profile)
scale, seed = scale or prof.data.scale, prof.data.seed if seed is None else seed
data_dir, out_dir = lab.data_dir(data_dir), lab.out_dir(out_dir)

# %% [markdown]
# ## Data
# The dataset the production profile names (or the `source` parameter): generated
# (deterministic for the seed), ingested, or sampled from a database. Its manifest records
# where it came from and a content hash.

# %%
ds = lab.dataset(prof, data_dir, source=source, scale=scale, seed=seed)
shape.describe(ds)

# %% [markdown]
# A cluster sample by session: a sampled session keeps all its messages and windows, and
# sessions are drawn per size class so the largest ones survive.

# %%
sample = ds.sample(f"{data_dir}/{ds.name}-sample", fraction=sample_fraction, seed=seed, overwrite=True)
pl.DataFrame([{"dataset": name, **d.counts} for name, d in (("source", ds), ("sample", sample))])

# %% [markdown]
# ## Measure
# Load into every engine through its bulk path. The row counts must be identical
# everywhere before any query is compared.

# %% tags=["nbval-ignore-output"]
opened, loads = lab.open_engines(ds, engines, data_dir, pg_url=postgres_url)
tables.table(loads, units={"seconds": "s"}, decimals={"seconds": 3})

# %% tags=["nbval-ignore-output"]
rows = pl.DataFrame([{"engine": name, **engine.table_counts()} for name, engine in opened.items()])
tables.table(rows, caption="Rows per table in each engine")

# %%
assert all(engine.table_counts() == ds.counts for engine in opened.values()), "engines disagree"
report.paragraphs(f"Every engine holds the dataset's {sum(ds.counts.values()):,} rows, table by table.")

# %%
stats = ds.session_stats()
quantiles = shape.quantiles(stats)
tables.table(quantiles, by_row=True)

# %% [markdown]
# For real data (`source="claude-code:PATH"` or a database URL): what was read, kept,
# collapsed (one streamed API response is several transcript lines) and quarantined
# (with file, line and reason in the dataset's `quarantine.jsonl`); and how its
# distributions compare with the synthetic generator's at the same scale, so the
# generator's shape can be checked against reality.

# %%
real = ds.manifest["source"]["kind"] != "synthetic"
if real:
    reference = lab.open_dataset("synthetic", data_dir, scale=scale, seed=seed)
    display(lab.provenance(ds))
    display(shape.compare(reference, ds, names=("synthetic", ds.name)))
else:
    display(
        report.paragraphs(
            "Synthetic source: run with source='claude-code:PATH' to check it against real data."
        )
    )

# %% [markdown]
# ### The generator fitted to this data
# `workbench generate DEST --like DATASET` fits a small shape (distributions only: no content,
# no identifiers) and generates from it at any size. Here the shape is fitted to this dataset and
# a dataset of the same number of sessions is generated from it: on real data this checks the fit,
# on synthetic data (CI) it checks the round trip. Each distribution "fits" when its p50, p90 and
# p99 are within the stated tolerance and the KS distance is small; the maximum is shown, not judged.

# %%
from workbench.sources.fit import ShapeError, fit
from workbench.sources.synthetic import generate_like

try:
    fitted_shape = fit(ds)
except ShapeError as too_small:  # a few transcripts: say so, and skip the fit
    print(too_small)
    fit_table = None
else:
    like = generate_like(f"{data_dir}/{ds.name}-like", fitted_shape, seed=seed, overwrite=True)
    real_dists, like_dists = shape.distributions(ds), shape.distributions(like)
    fit_table = shape.fit_report(real_dists, like_dists)
    display(tables.table(fit_table, caption=shape.fit_conclusion(fit_table)))

# %% [markdown]
# Real against generated, as complementary CDFs on log-log axes: where the two lines run
# together the generator has the shape; a gap at the right end is a tail that is too light or
# too heavy, which is where per-session query costs are decided.

# %%
for name in [] if fit_table is None else fit_table["distribution"]:
    display(shape.fit_figure(real_dists[name], like_dists[name], name))

# %% [markdown]
# ## Look
# The share of sessions with at least x messages (a complementary CDF), on log-log axes:
# a straight falling line is a heavy tail, and its last point is the largest session.

# %%
figures.messages_per_session(stats)

# %% [markdown]
# Messages per day across the dataset's span (left) and by hour of day, all days together
# (right, UTC): the daily rhythm. The busiest hours are when the read API's load peaks;
# the quietest are where batch work such as log sync fits.

# %%
figures.activity(ds.scan("messages").select("timestamp").collect())

# %% [markdown]
# How long each 5-hour window was used, from its start to its last message: a pile on the
# left is windows used briefly; a bar at 300 minutes is windows used to their end, where a
# session runs on into a new window.

# %%
figures.window_durations(ds.read("session_windows"))

# %% [markdown]
# Jobs per type, one bar per status, on a log axis so the rare statuses stay visible beside
# the completed ones: compare each type's failed bar with its completed one.

# %%
figures.job_mix(ds.read("jobs"))

# %% [markdown]
# Sample against source: the complementary CDF should run alongside the source's,
# tail included.

# %%
comparison = shape.compare(ds, sample)
tables.table(comparison, by_row=True)

# %%
figures.sample_vs_source(stats, sample.session_stats())

# %% [markdown]
# Seconds each engine took to bulk-load each table, stacked: which table dominates each
# engine's load, and how the engines compare. A bar marked "already held this dataset"
# reused an earlier load and timed nothing.

# %% tags=["nbval-ignore-output"]
figures.load_times(loads, engines=engines)

# %% [markdown]
# ## Conclude

# %%
Markdown(shape.conclusions(ds, stats, comparison).replace("\n", "\n\n"))

# %% tags=["verdicts", "nbval-ignore-output"]
rows_by_engine = {name: engine.table_counts() for name, engine in opened.items()}
verdicts.show("01_data", survey.verdicts(ds, stats, comparison, rows_by_engine), out_dir)

# %% [markdown]
# ## Export

# %% tags=["nbval-ignore-output"]
paths = report.export_frames(out_dir, "01_data", shape=quantiles, sample_comparison=comparison, loads=loads)
report.show_files(out_dir, paths, "The tables above as CSV files:")

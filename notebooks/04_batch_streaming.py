# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec: {display_name: Python 3, language: python, name: python3}
# ---

# %% [markdown]
# # 04 · Batch and streaming: the log-sync job, written the plan's ways
#
# The backend's log sync "reads whole JSONL files into memory (`os.ReadFile`, then one
# decode per line) and inserts row by row"; the plan proposes **line streaming with
# backpressure and error handling, batch processing (fixed batch size, a fixed sleep
# between batches, progress reporting, bulk insert), memory profiling and object pools**,
# with the sync job under **500 MB whatever the file size**. This notebook asks: **what
# does each change buy, in CPU and in memory** — which reader stays flat as files grow,
# which decoder and writer to use, at which batch size, whether the fixed sleep is worth
# its cost, and whether object pools help — after checking that every variant delivers
# exactly the same rows.
#
# The code under study is the workbench's log-sync job written each way: readers (whole
# file, line streaming, chunked with a bounded queue), decoders (json, orjson, msgspec), the
# Polars and DuckDB whole-tree readers; writers (row by row, `executemany`, multi-row
# `VALUES`, the engine's bulk path); the batch processor with retries backing off with
# jitter, and a dead-letter file. The workbench's own ingest is the reference. Profiles
# come from pyinstrument and memray and are saved under profiles/ beside this page.
#
# It measures under the production profile: the profile's engine decides the writer and
# batch size, every writer gets at least 100,000 rows, and the readers run towards the
# profile's log day. The CI run stops the readers at 64 MB, and the verdicts say so and
# claim nothing beyond it; the log-sync benchmark runs the full day (docs/BENCHMARKS.md).
#
# Skeleton: Parameters → Data → Measure → Look → Conclude → Export.

# %% tags=["parameters"]
profile = None  # the production profile: a TOML file or a name in profiles/ (None: the default)
source = None  # the data whose transcripts make the test files (None: the profile's)
scale = None
seed = None
engines = None  # where the writers run (None: the profile's engine); others are screened for comparison
data_dir = None
out_dir = None
postgres_url = None
reader_max_mb = 64  # CI: the readers stop here, short of the profile's log day (None: the log day)
reader_factor = 64  # file sizes from 1 MB up in steps of this factor (8 for a finer curve)
variants = [
    "whole/orjson",
    "stream/json",
    "stream/orjson",
    "stream/msgspec",
    "chunked/orjson",
    "polars",
    "duckdb",
    "ingest",
]
writer_rows = 100_000  # rows the chosen writer and each pacing run write (at least 100,000)
writers = ["executemany", "values", "bulk"]
batch_sizes = [100, 1_000, 10_000]
screen_seconds = 0.5  # the sweep: each writer x batch size writes for at most this long (profile's engine)
compare_seconds = 0.2  # ... and on the other engines, for comparison
sleeps_ms = [5]  # the plan's fixed sleep after every batch
paced_share = 0.34  # the paced runs stop after this share of the no-pause run's time (None: every row)
memray_mb = 8  # the file memray traces the whole-file read and streaming on
memory_target_mib = None  # None: the profile's slo.memory_mb

# %%
import polars as pl

from workbench import lab, profiling, report, tables, verdicts
from workbench.processing import Sink, experiments, read_rows, sync
from workbench.processing import conclude as concl
from workbench.processing import figures as pfig
from workbench.sources.claude_code import write_transcripts

lab.setup()
prof = lab.profile(profile)
data = lab.data_dir(data_dir)
out = lab.out_dir(out_dir)
target_mib = memory_target_mib or prof.slo.memory_mb
day_mb = prof.log_sync.day_mb
largest_mb = min(reader_max_mb or day_mb, day_mb)
sizes_mb = experiments.reader_sizes(largest_mb, factor=reader_factor)
conditions = prof.conditions()
ds = lab.dataset(prof, data, source=source, scale=scale, seed=seed)
work = data / "processing" / f"{ds.name}-{ds.content_hash[:12]}"  # per dataset: never another's files
work.mkdir(parents=True, exist_ok=True)
print(
    f"Readers up to {largest_mb:,.0f} MB ({', '.join(f'{s:g}' for s in sizes_mb)} MB); the profile's log day "
    f"is {day_mb:,.0f} MB. Memory target {target_mib:,.0f} MiB. Writers: {writer_rows:,} rows."
)

# %% [markdown]
# ## Data
# A sample of the dataset's conversations (200 sessions, the heavy tail kept) written as a
# Claude Code transcript tree, then replicated into one file per size (every copy's `uuid`
# gets a suffix, so each message stays distinct).
# Before anything is timed, every line reader with every decoder must find the same rows.

# %%
template = work / "template"
if not template.exists():  # 200 sessions (the heavy tail kept) are lines enough to replicate
    part = ds.sample(work / "template-ds", sessions=min(200, ds.counts["sessions"]), seed=7, overwrite=True)
    write_transcripts(part, template, seed=7)
smallest = work / f"tree-{min(sizes_mb):g}mb" / "projects" / "-bench" / "session.jsonl"
if not smallest.exists():
    experiments.make_transcript(template, smallest, int(min(sizes_mb) * 2**20))
n_rows = experiments.check_readers_agree(smallest)
size = smallest.stat().st_size / 2**20
report.paragraphs(f"{size:.1f} MB file: {n_rows:,} message rows, the same for 3 readers × 3 decoders.")

# %% [markdown]
# ## Measure
# ### Readers against file size
# Each variant reads each file in a fresh process (peak RSS is its own); the baseline is a
# process that imports the readers and reads nothing. Row counts must agree per size.

# %% tags=["nbval-ignore-output"]
scaling = experiments.reader_scaling(template, sizes_mb, work, variants)
flat = experiments.flatness(scaling)
flat

# %% [markdown]
# ### Writers against batch size
# The first file's rows replicated (fresh `uuid`s) to `writer_rows` rows. Every writer at
# every batch size writes them into an empty `sync_messages` table for at most a few
# seconds (the screen; `rows` says how many it wrote, each run counted after), beside
# today's insert: one `INSERT` per row, committed per row. The profile's engine decides.

# %% tags=["nbval-ignore-output"]
rows = experiments.replicate(list(read_rows(smallest)), writer_rows)
row_bytes = smallest.stat().st_size / n_rows  # a row's share of the file, for the batch's memory
wanted = engines or [prof.engine]
targets, left_out = experiments.sync_targets(
    [prof.engine, *wanted] if prof.engine in wanted else wanted,
    work,
    "sync",
    lambda: lab.postgres_url(postgres_url),
)
for name, why in left_out.items():
    print(f"Note: {name} left out of this run: {why}")
headline = prof.engine if prof.engine in targets else next(iter(targets))
sweep = pl.concat(
    [
        experiments.writer_sweep(
            rows,
            {e: t},
            writers,
            batch_sizes,
            max_seconds=screen_seconds if e == headline else compare_seconds,
        )
        for e, t in targets.items()
    ]
)
knees = experiments.knees(sweep)
best = experiments.chosen(knees, headline)
tables.table(
    sweep.drop("per_row_s"),
    units={"seconds": "s", "low": "rows/s", "high": "rows/s"},
    caption="The screen: each run from an empty table, counted after; cut = stopped by its time box; "
    "low-high: 95% interval over the run's batches",
)

# %% [markdown]
# ### The chosen writer on every row, and the fixed sleep
# The chosen writer at its knee writes all `writer_rows` rows with no pause: its effect over
# today's insert, with an interval over its batches. Then with the plan's fixed sleep after
# every batch, and with an adaptive pause (sleep only when a batch took longer than 4x the
# median: the target lags), each for a third of the no-pause run's time.

# %% tags=["nbval-ignore-output"]
pace = experiments.pacing(
    rows,
    headline,
    experiments.target(headline, work, "pacing", targets.get("postgres")),
    [best["knee_batch"]],
    sleeps_ms,
    writer=best["writer"],
    paced_share=paced_share,
)
confirm = experiments.confirmation(sweep, pace, headline, row_bytes)
tables.table(
    pace.select(
        "batch_size",
        "pacing",
        "sleep_ms",
        "rows",
        "batches",
        "rows_per_s",
        "slept_s",
        *(pl.col(c) * 100 for c in ("kept_mean", "kept_low", "kept_high")),
    ),
    units={"sleep_ms": "ms; adaptive: its threshold", "kept_mean": "% of no pause"},
    decimals={"kept_mean": 0, "kept_low": 0, "kept_high": 0},
    caption=f"{headline}, {best['writer']}, every row; kept: mean per-batch time with no pause over "
    "this pacing's (write + pause), 95% interval over the batches",
)

# %% [markdown]
# ### CPU: the slowest and the fastest sync, side by side
# Today's sync (whole file, `json`, one `INSERT` per row committed per row) against the
# fastest combination measured above (line streaming, `msgspec`, the chosen writer at its
# knee), both syncing the first file into the profile's engine, beside the workbench's own
# path for the same rows (`ingest` into a Dataset, then the engine's bulk `load`).

# %% tags=["nbval-ignore-output"]
with Sink(
    headline, experiments.target(headline, work, "profile", targets.get("postgres")), replace=True
) as sink:
    with profiling.cpu("04-slowest", out) as slow:
        before = sync(smallest, sink, reader="whole", decode="json", writer="row", batch_size=1, retries=0)
    sink.truncate()
    with profiling.cpu("04-fastest", out) as fast:
        after = sync(
            smallest,
            sink,
            reader="stream",
            decode="msgspec",
            writer=best["writer"],
            batch_size=best["knee_batch"],
        )
    assert before.rows_written == after.rows_written == sink.totals()["rows"] == n_rows
names = {
    slow.name: "today's sync (whole file, json, row by row)",
    fast.name: f"the fastest sync (line streaming, msgspec, {best['writer']}, batch {best['knee_batch']:,})",
}
breakdown = pl.concat([experiments.time_breakdown(slow), experiments.time_breakdown(fast)]).with_columns(
    pl.col("profile").replace(names)
)
reference = experiments.reference_sync(smallest.parent.parent, headline, work, targets.get("postgres"))
assert reference["rows"] == n_rows
tables.table(
    pl.DataFrame(
        [
            {"variant": names[slow.name], "rows": n_rows, "seconds": slow.seconds},
            {"variant": names[fast.name], "rows": n_rows, "seconds": fast.seconds},
            {k: reference[k] for k in ("variant", "rows", "seconds")},
        ]
    ).with_columns(rows_per_s=pl.col("rows") / pl.col("seconds")),
    units={"seconds": "s"},
)

# %% [markdown]
# ### Memory: the whole-file read against line streaming (memray)
# memray's heap peak beside the process's peak RSS, reading an 8 MB file. The heap peak
# is the most memory memray saw allocated and not yet freed at one moment; peak RSS is the
# resident pages of the whole process: interpreter, libraries, and memory freed but not
# yet returned to the system.

# %% tags=["nbval-ignore-output"]
traced = work / f"tree-{memray_mb:g}mb" / "projects" / "-bench" / "session.jsonl"
if not traced.exists():
    experiments.make_transcript(template, traced, int(memray_mb * 2**20))
with profiling.memory("04-whole", out) as mem_whole:
    sum(1 for _ in read_rows(traced, reader="whole"))
with profiling.memory("04-stream", out) as mem_stream:
    sum(1 for _ in read_rows(traced, reader="stream"))
tables.table(
    pl.DataFrame([mem_whole.summary(), mem_stream.summary()]),
    units={"seconds": "s"},
    caption=f"{traced.stat().st_size / 2**20:,.0f} MB file; memray: heap peak of the traced allocations; "
    "RSS: the whole process and interpreter",
)

# %% [markdown]
# ### Per-row objects against reused buffers (the plan's object pools)
# Every Python allocation traced by memray, batches of 1,000 rows.

# %% tags=["nbval-ignore-output"]
batch_memory = experiments.objects_vs_buffers(smallest, out, batch_size=1000)
batch_memory

# %% [markdown]
# ## Look
# Peak RSS, its growth and throughput against file size, one colour per variant in every
# panel. Left: the process's peak RSS beside the plan's target (dashed red). Middle: each
# variant's peak RSS over its own at the smallest file; 1 is flat, memory bounded whatever
# the file size, and a rising line grows with the file even where the interpreter's fixed
# memory makes it look flat on the left. The verdicts at the top say, from these numbers,
# which variants stay flat.

# %% tags=["nbval-ignore-output"]
pfig.scaling_figure(scaling, target_mib)

# %% [markdown]
# Rows written per second against batch size, per engine and writer (log-log): a line that
# keeps rising still gains from bigger batches; the circle marks each writer's knee, the
# smallest batch within 90% of its best.

# %% tags=["nbval-ignore-output"]
pfig.writers_figure(sweep, knees)

# %% [markdown]
# The throughput each pause keeps against no pause (100%) at each batch size: the gap below
# 100 is what the fixed sleep costs; the adaptive pause sleeps only when a batch was slow.

# %% tags=["nbval-ignore-output"]
pfig.pacing_figure(pace)

# %% [markdown]
# Where each sync's CPU samples go, by stage: the plan's sync against the fastest one. The
# longer a stage's bar, the more of the job it is, and the more a change to it can save.

# %% tags=["nbval-ignore-output"]
pfig.breakdown_figure(breakdown)

# %% [markdown]
# The slowest variant's CPU profile (pyinstrument's own page, inline; it opens offline),
# then the fastest's call tree as an icicle (click a bar to zoom).

# %% tags=["nbval-ignore-output"]
slow.iframe()

# %% tags=["nbval-ignore-output"]
fast.figure()

# %% [markdown]
# Memory at the peak of the whole-file read, by call stack (built from memray's reader API;
# memray's own flamegraph page needs a CDN and is blank offline).

# %% tags=["nbval-ignore-output"]
mem_whole.figure()

# %% [markdown]
# Allocations per row and memray's heap peak, per-row objects against reused buffers (the
# plan's object pools): bars of about the same height mean pooling saves little.

# %% tags=["nbval-ignore-output"]
pfig.batch_memory_figure(batch_memory)

# %% [markdown]
# ## Conclude
# Computed from the measurements above.

# %% tags=["verdicts", "nbval-ignore-output"]
day_rows = int(day_mb * 2**20 / row_bytes)
found = [
    v
    for v in [
        *concl.reader_verdicts(scaling, target_mib, day_mb, conditions),
        concl.memory_success(scaling, day_mb, conditions),
        concl.batch_verdict(sweep, knees, confirm, headline, conditions),
        *concl.writer_verdicts(sweep, knees, skip=headline),
        concl.pacing_verdict(
            pace,
            conditions | {"engine": headline},
            day_rows=day_rows,
            screen=sweep.filter((pl.col("engine") == headline) & (pl.col("writer") == best["writer"])),
        ),
        concl.breakdown_verdict(breakdown),
        concl.pools_verdict(batch_memory),
    ]
    if v is not None
]
verdicts.show("04_batch_streaming", found, out)

# %% [markdown]
# ## Export
# The frames as CSV; the profiles are in profiles/ beside this page (`*.cpu.html` and
# `*.memory.html` open offline, `*.memray.bin` with `memray tree` or `memray summary`,
# `*.memory.json`).

# %% tags=["nbval-ignore-output"]
csvs = report.export_frames(
    out,
    "04_batch_streaming",
    scaling=scaling,
    flatness=flat,
    writers=sweep.drop("per_row_s"),
    knees=knees,
    pacing=pace.drop("per_row_s"),
    breakdown=breakdown,
    batch_memory=batch_memory,
)
report.show_files(out, csvs, "The tables as CSV files:")

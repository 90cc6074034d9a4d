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
# `VALUES`, the engine's bulk path); the batch processor with retries and a dead-letter
# file. The workbench's own ingest is the reference. Profiles come from pyinstrument and
# memray and are saved under profiles/ beside this page.
#
# Skeleton: Parameters → Data → Measure → Look → Conclude → Export.

# %% tags=["parameters"]
scale = "tiny"  # the dataset whose transcripts are replicated into the test files
seed = 7
engines = ["duckdb", "sqlite"]  # add "postgres" for a local throwaway server or postgres_url
data_dir = None
out_dir = None
postgres_url = None
sizes_mb = [1, 4]  # file sizes for the reader curves; [10, 100, 1000] for the plan's sizes
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
writer_rows = 2000  # rows per writer run (batch size 1 runs are cut to max_statements batches)
batch_sizes = [1, 10, 100, 1000]
max_statements = 100
sleeps_ms = [1, 5]  # the plan's fixed sleep, each length
pacing_engine = "sqlite"
pacing_batch_sizes = [10, 100, 1000]
memory_target_mib = 500  # the plan's target for the sync job

# %%
import polars as pl

from workbench import lab, profiling, report, tables, verdicts
from workbench.processing import Sink, experiments, read_rows, sync
from workbench.processing import conclude as concl
from workbench.processing import figures as pfig
from workbench.sources.claude_code import write_transcripts
from workbench.sources.synthetic import generate

lab.setup()
data = lab.data_dir(data_dir)
out = lab.out_dir(out_dir)
work = data / "processing" / f"{scale}-{seed}"  # test files differ per dataset: never reuse another's
work.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## Data
# The generator's conversations written as a Claude Code transcript tree, then replicated
# into one file per size (every copy's `uuid` gets a suffix, so each message stays distinct).
# Before anything is timed, every line reader with every decoder must find the same rows.

# %%
ds = generate(data / scale, scale, seed)
template = work / f"template-{scale}-{seed}"
if not template.exists():
    write_transcripts(ds, template, seed=seed)
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
# The first file's rows written by every writer at every batch size into an empty
# `sync_messages` table; each run must end with exactly its rows (counted, distinct).

# %% tags=["nbval-ignore-output"]
rows = list(read_rows(smallest))[:writer_rows]
pg = lab.postgres_url(postgres_url) if "postgres" in engines else None
targets = {e: experiments.target(e, work, "sync", pg) for e in engines}
sweep = experiments.writer_sweep(
    rows, targets, ["row", "executemany", "values", "bulk"], batch_sizes, max_statements=max_statements
)
knees = experiments.knees(sweep)
knees

# %% [markdown]
# ### The fixed sleep
# The plan sleeps a fixed time after every batch. Against no pause and an adaptive pause
# (sleep only when a batch took longer than 4x the median: the target lags).

# %% tags=["nbval-ignore-output"]
pace = experiments.pacing(
    rows,
    pacing_engine,
    experiments.target(pacing_engine, work, "pacing", pg),
    pacing_batch_sizes,
    sleeps_ms,
)
tables.table(
    pace.select(
        "batch_size", "pacing", "sleep_ms", "rows_per_s", "slept_s", (pl.col("kept") * 100).alias("kept")
    ),
    units={"sleep_ms": "ms; adaptive: the longest", "kept": "% of no pause"},
    decimals={"kept": 0},
    caption="Best of 3 runs each; kept = this pacing's rows/s over no pause's at the same batch size",
)

# %% [markdown]
# ### CPU: the slowest and the fastest sync, side by side
# The plan's "before" (whole file, `json`, one `INSERT` per row committed per row) against
# the fastest combination measured above (line streaming, `msgspec`, the best writer at
# its knee), both syncing the first file into the first engine, beside the workbench's
# own path for the same rows (`ingest` into a Dataset, then the engine's bulk `load`).

# %% tags=["nbval-ignore-output"]
best = knees.filter(pl.col("engine") == engines[0]).row(0, named=True)
with Sink(
    engines[0],
    experiments.target(engines[0], work, "profile", pg),
    replace=True,
) as sink:
    with profiling.cpu("04-slowest", out) as slow:
        before = sync(smallest, sink, reader="whole", decode="json", writer="row", batch_size=1)
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
    slow.name: "the plan's sync (whole file, json, row by row)",
    fast.name: f"the fastest sync (line streaming, msgspec, {best['writer']}, batch {best['knee_batch']:,})",
}
breakdown = pl.concat([experiments.time_breakdown(slow), experiments.time_breakdown(fast)]).with_columns(
    pl.col("profile").replace(names)
)
reference = experiments.reference_sync(smallest.parent.parent, engines[0], work, pg)
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
# memray's heap peak beside the process's peak RSS, reading the largest file.

# %% tags=["nbval-ignore-output"]
largest = work / f"tree-{max(sizes_mb):g}mb" / "projects" / "-bench" / "session.jsonl"
with profiling.memory("04-whole", out) as mem_whole:
    sum(1 for _ in read_rows(largest, reader="whole"))
with profiling.memory("04-stream", out) as mem_stream:
    sum(1 for _ in read_rows(largest, reader="stream"))
tables.table(
    pl.DataFrame([mem_whole.summary(), mem_stream.summary()]),
    units={"seconds": "s"},
    caption="memray: heap peak of the traced Python allocations; RSS: the whole process and interpreter",
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
pfig.scaling_figure(scaling, memory_target_mib)

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
found = [
    *concl.reader_verdicts(scaling, memory_target_mib),
    *concl.writer_verdicts(sweep, knees),
    concl.pacing_verdict(pace),
    concl.breakdown_verdict(breakdown),
    concl.pools_verdict(batch_memory),
]
verdicts.show("04_batch_streaming", found, out)

# %% [markdown]
# ## Export
# The frames as CSV; the profiles are in profiles/ beside this page (`*.cpu.html` open
# offline, `*.memray.bin` with `memray tree` or `memray summary`, `*.memory.json`).

# %% tags=["nbval-ignore-output"]
csvs = report.export_frames(
    out,
    "04_batch_streaming",
    scaling=scaling,
    flatness=flat,
    writers=sweep,
    knees=knees,
    pacing=pace,
    breakdown=breakdown,
    batch_memory=batch_memory,
)
report.show_files(out, csvs, "The tables as CSV files:")

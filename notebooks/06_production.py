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
# # 06 · Evidence from production: the N+1s and the real workload
#
# The plan's first step is "analyse query patterns, find the N+1". Notebook 02 studies
# the one N+1 the workbench already knows of; this one finds them in what a production
# PostgreSQL records: **where are our N+1s, what do they cost, what is the fix and how
# much does it save?** It reads statement logs (jsonlog, csvlog, stderr with its
# `log_line_prefix`) and pg_stat_statements exports in one streaming pass, fingerprints
# statements with PostgreSQL's own parser (pglast), groups them into requests with the
# best key the log carries, and applies a rule comparable to Sentry's N+1 detector.
#
# By default the log comes from real software: the workbench's own service
# (`workbench serve`) run once with `--strategy n_plus_one` and once with `batch`,
# against a throwaway PostgreSQL that logs every statement. Point `logs` at your own
# files to read production's instead.
#
# Skeleton: Parameters → Data → Measure → Look → Conclude → Export.

# %% tags=["parameters"]
profile = None  # None: $WORKBENCH_PROFILE, else profiles/default.toml (traffic mix, page size, RTT)
logs = None  # None: log the workbench's service now; or a list of log / pg_stat_statements files
log_format = None  # None: told from each file; jsonlog, csvlog, stderr, pg_stat_statements
prefix = "%m [%p] %q%u@%d/%a %c %v %x "  # the server's log_line_prefix (stderr logs)
scale = "tiny"  # the service's data (synthetic); None: the profile's
seed = None  # None: the profile's
requests = 12  # requests per strategy, drawn from the profile's traffic mix
min_count = 5  # N+1: more executions than this in one request (Sentry: 5)
min_total_ms = 10.0  # N+1: more time than this, durations + a round trip each (Sentry: 50; the tiny
# CI sample's loops take 10-30 ms: read a production log with 50)
rtt_ms = None  # None: the profile's app-to-database round trip
gap_ms = 100.0  # without trace ids: a pause this long on one session starts a new request
sample_url = None  # a sample database to check the rewrites on (None: the service's, when logged here)
data_dir = None  # None: $WORKBENCH_DATA_DIR, else ../data
out_dir = None  # None: $WORKBENCH_OUT_DIR, else ../reports

# %%
import polars as pl
from IPython.display import Markdown

from workbench import lab, report, tables, verdicts
from workbench.evidence import analysis, capture, check, conclude, export
from workbench.evidence import figures as evidence_figures
from workbench.evidence.detect import Rule
from workbench.service.load import Mix
from workbench.sources.synthetic import generate

lab.setup()
prof = lab.profile(profile)
seed = prof.data.seed if seed is None else seed
rtt_ms = prof.network.rtt_ms if rtt_ms is None else rtt_ms
data_dir, out_dir = lab.data_dir(data_dir), lab.out_dir(out_dir)

# %% [markdown]
# ## Data
# The records read. Logged here: the service's read API with the profile's traffic mix
# (`requests` per strategy, one at a time), each statement logged with its duration as
# `log_min_duration_statement = 0` writes it in jsonlog.

# %% tags=["nbval-ignore-output"]
recorded = None
if logs is None:
    ds = generate(data_dir / (scale or prof.data.scale), scale or prof.data.scale, seed)
    mix = Mix(
        weights=dict(prof.traffic.weights),
        hot_share=prof.traffic.hot_share,
        hot_fraction=prof.traffic.hot_fraction,
        page_limit=prof.pages.recent_sessions,
    )
    recorded = capture.service_log(ds, out_dir / "06_production", requests=requests, mix=mix, seed=seed)
    logs = [recorded.logs["jsonlog"]]
    sample_url = sample_url or recorded.server.url
sent = recorded.sent if recorded else pl.DataFrame()
tables.table(sent.group_by("strategy", "endpoint").len("requests").sort("strategy", "endpoint")) if len(
    sent
) else Markdown(f"Reading {len(logs)} file(s): {', '.join(map(str, logs))}")

# %% [markdown]
# ## Measure
# One pass: per fingerprint its calls and time (P50/P99 from a log-bucket histogram),
# per request its statements, per N+1 pattern (source, repeated statement) its totals.
# Then each proposed batch runs on the sample: the same rows as the loop, then both timed.

# %% tags=["nbval-ignore-output"]
rule = Rule(min_count=min_count, min_total_ms=min_total_ms, rtt_ms=rtt_ms)
ev = analysis.analyse(logs, format=log_format, prefix=prefix, rule=rule, gap_ms=gap_ms)
checked = check.check_findings(ev, sample_url, repeat=5) if sample_url and len(ev.findings) else None

# %% [markdown]
# Requests and their statements, per grouping key (the best key the log carried):

# %% tags=["nbval-ignore-output"]
tables.table(ev.requests)

# %% [markdown]
# ## Look
# The findings, most saving first: the statement that opens the loop, the one repeated,
# how often and for how long, and the batch that replaces it.

# %% tags=["nbval-ignore-output"]
shown = ev.findings.select(
    "rank",
    "source",
    "repeated",
    "rewrite",
    "requests",
    "executions",
    "max_per_request",
    "repeated_ms",
    "saving_ms",
)
tables.table(shown) if len(shown) else Markdown(f"No finding under the rule: {rule.describe()}.")

# %% tags=["nbval-ignore-output"]
tables.table(checked.drop("batch_sql")) if checked is not None else Markdown("No rewrite to check.")

# %% [markdown]
# Where the time goes, per statement fingerprint: the loop's statements are short each,
# and many. The bars to look at are the ones with many calls and a small mean.

# %% tags=["nbval-ignore-output"]
evidence_figures.templates(ev.templates)

# %% [markdown]
# ## Conclude

# %% tags=["nbval-ignore-output"]
Markdown(conclude.headline(ev, checked))

# %% tags=["verdicts", "nbval-ignore-output"]
verdicts.show("06_production", conclude.verdicts(ev, checked, prof.conditions(requests=requests)), out_dir)

# %% [markdown]
# ## Export
# The findings, the workload in the format `workbench advise --workload` reads (its
# frequencies decide notebook 03's indexes), the observed traffic mix (requests by
# the statement that opens them) and the quarantined lines.

# %% tags=["nbval-ignore-output"]
files = list(export.write(ev, out_dir / "06_production").values())
files += report.export_frames(out_dir, "06_production", templates=ev.templates, requests=ev.requests)
if recorded is not None:
    recorded.server.stop()
report.show_files(out_dir, files, "The findings, the workload and the mix as files:")

# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec: {display_name: Python 3, language: python, name: python3}
# ---

# %% [markdown]
# # 05 · The service under load, against the plan's SLOs
#
# The plan ends in targets: **API P50 < 50 ms and P99 < 200 ms, 1,000 req/s, memory
# < 500 MB, CPU < 30%, DB query P99 < 100 ms, error rate < 0.1%**, checked with load tests
# and monitoring. This notebook asks: **under concurrent, open-loop load, which of the
# plan's changes (N+1 → the plan's JOIN, or batch loading; the pool size) moves those
# SLOs, up to what arrival rate does each configuration hold them, and what would a
# production machine need?**
#
# The service (`workbench.service`) is the backend's read API as a real HTTP service
# (Starlette on uvicorn over PostgreSQL): a project's session list (paginated), its
# recent sessions with messages and windows (loaded by the configured strategy), a
# session, a day's usage, the jobs page. The load generator sends at fixed arrival
# rates whatever the responses do, and times each request from its *intended* send
# time (no coordinated omission), into HDR histograms.
#
# Skeleton: Parameters → Data → Measure → Look → Conclude → Export.

# %% tags=["parameters"]
scale = "small"
seed = 7
data_dir = None  # None: $WORKBENCH_DATA_DIR, else ../data
out_dir = None  # None: $WORKBENCH_OUT_DIR, else ../reports
postgres_url = None  # None: $WORKBENCH_POSTGRES_URL, else a throwaway local server
configs = [("n_plus_one", 4), ("joined", 4), ("batch", 4), ("batch", 1)]  # (strategy, pool size)
workers = 1  # uvicorn worker processes per configuration
rates = [20, 40, 80, 160]  # req/s, one constant-rate run each (stopped past the knee)
seconds = 1.5  # per rate
prometheus_rate = 40  # req/s of the run Prometheus scrapes
prometheus_seconds = 3.0

# %%
import polars as pl

from workbench import lab, report, strategies
from workbench.engines import open_engine
from workbench.service import experiment, monitoring, slo
from workbench.service import figures as service_figures
from workbench.service.app import Settings
from workbench.service.load import Mix, Profile, paths, targets
from workbench.sources.synthetic import generate

lab.setup()
data_dir, out_dir = lab.data_dir(data_dir), lab.out_dir(out_dir)

# %% [markdown]
# ## Data
# The synthetic dataset, loaded into PostgreSQL with the access-path indexes (notebook 02
# shows why they come first). The requests' parameters are drawn from it: 80% of requests
# go to the hottest 20% of projects (by sessions), the rest to the cold tail.

# %%
ds = generate(data_dir / scale, scale, seed)
url = lab.postgres_url(postgres_url)
with open_engine("postgres", url) as engine:
    loaded = engine.load(ds)
    strategies.ensure_indexes(engine)
ds.counts

# %%
mix = Mix()
drawn = targets(ds, mix.hot_fraction)
requests = paths(mix, drawn, int(max(rates) * seconds * 2 + prometheus_rate * prometheus_seconds), seed=seed)
pl.DataFrame(requests, schema=["endpoint", "path"], orient="row").group_by("endpoint").len().sort("endpoint")

# %% [markdown]
# ## Measure
# Each configuration gets its own service process. It is warmed up for a second, then
# loaded at each rate in turn for `seconds`; a configuration far past its knee (P99 over
# 5× its SLO, or over 5% errors) is not pushed further. Every run samples the CPU and
# memory of the service, PostgreSQL and the generator (psutil), and reads the service's
# own statement timings and pool waits.

# %% tags=["nbval-ignore-output"]
runs = []
for strategy, pool_size in configs:
    settings = Settings(database_url=url, strategy=strategy, pool_size=pool_size, workers=workers)
    runs += experiment.sweep(settings, rates, seconds, requests, stop_when=slo.past_knee)
summary = experiment.summary(runs)
summary.select(
    "label",
    "offered_rps",
    "achieved_rps",
    "p50_ms",
    "p99_ms",
    "p99_lo",
    "p99_hi",
    "error_rate",
    "errors_by_kind",
    "db_p99_ms",
    "pool_wait_p99_ms",
    "service_cores",
    "postgres_cores",
    "send_lag_p99_ms",
).with_columns(pl.col(pl.Float64).round(2))

# %% [markdown]
# Prometheus scrapes a service (`batch`, the first pool size) every half second during one
# more run; its SLIs, read back through its HTTP API, are set beside the load tool's.

# %% tags=["nbval-ignore-output"]
strategy, pool_size = next((c for c in configs if c[0] == "batch"), configs[0])
watched = monitoring.monitored_run(
    Settings(database_url=url, strategy=strategy, pool_size=pool_size, workers=workers),
    Profile.constant(prometheus_rate, prometheus_seconds),
    requests,
)
side, counts = (watched[1], watched[2]) if watched else (None, None)
print(f"answered requests: {counts}")
side

# %% [markdown]
# ## Look
# Latency against offered load. Where a line turns up steeply is the knee: the service
# is saturated and every extra request queues. Dotted vertical lines mark each
# configuration's highest rate at which every SLO held.

# %% tags=["nbval-ignore-output"]
maxima = slo.max_rate(summary)
service_figures.latency_vs_load(summary, maxima)

# %% [markdown]
# The distribution of every request at the highest rate each configuration ran below its
# knee (its tail is what P99 and P99.9 summarise):

# %% tags=["nbval-ignore-output"]
at_max = {(r["label"], r["max_rate"]) for r in maxima.iter_rows(named=True)}
chosen = [r for r in runs if (r.label, r.stage_rates[0]) in at_max] or runs
service_figures.distributions(experiment.latencies(chosen))

# %% [markdown]
# The SLO table at each configuration's highest holding rate (its lowest rate when none
# held; verdicts computed, a value this run could not measure is `unknown`), and the
# error budget each run used:

# %% tags=["nbval-ignore-output"]
table = slo.verdicts(slo.at_holding_rate(summary, maxima))
table.pivot(on="slo", index="label", values="verdict")

# %% tags=["nbval-ignore-output"]
slo.error_budget(summary).with_columns(pl.col(pl.Float64).round(3))

# %% tags=["nbval-ignore-output"]
service_figures.prometheus_vs_tool(side) if side is not None else "Prometheus view left out (see above)"

# %% [markdown]
# ## Conclude
# This machine has 2 cores shared by the generator, the service and PostgreSQL, so it
# cannot show 1,000 req/s; the capacity table says what it reached, what limited it (the
# busiest process per core, or the pool), and what 1,000 req/s would need from the CPU
# measured per request.

# %% tags=["nbval-ignore-output"]
cap = slo.capacity(summary)
print(slo.capacity_sentence(cap))
print()
print(slo.conclusions(summary, maxima))

# %% tags=["verdicts", "nbval-ignore-output"]
report.show_verdicts("05_service_slo", slo.report_verdicts(summary, maxima, cap, side, counts), out_dir)

# %% [markdown]
# ## Export
# The per-run summary, the SLO verdicts, maxima, capacity and the Prometheus comparison as
# CSV; the Grafana dashboard of the SLIs and the PromQL of each SLO beside them.

# %% tags=["nbval-ignore-output"]
frames = dict(summary=summary, verdicts=slo.verdicts(summary), max_rate=maxima, capacity=cap)
if side is not None:
    frames["prometheus_vs_load_tool"] = side
report.export_frames(out_dir, "05_service_slo", **frames)
monitoring.export_dashboard(out_dir / "05_service_slo")

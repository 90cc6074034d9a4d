"""Load runs against configurations of the service: one run, a rate sweep, a comparison.

Each configuration (strategy × pool size × workers) gets its own service process on a
loopback port. Every run samples the CPU and memory of the service (with its workers),
PostgreSQL (when it is local) and the generator's own process, and reads the service's
statement timings and pool waits from ``/stats`` (reset before each run, so each rate
has its own). A short untimed warm-up precedes the measured rates: PostgreSQL plans and
psycopg's prepared statements settle in the first executions.

>>> runs = sweep(Settings(database_url=url), [25, 50, 100], seconds=5, requests=reqs)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import polars as pl

from workbench.service.app import Settings
from workbench.service.load import LoadRun, Profile, run_load
from workbench.service.process import ProcessSampler, ServiceProcess, postgres_pids


def _get(url: str) -> dict[str, Any]:
    import json

    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def measured_run(
    url: str,
    profile: Profile,
    requests: Sequence[tuple[str, str]],
    *,
    label: str,
    groups: dict[str, Any],
    allow_remote: bool = False,
    stats: bool = True,
    **load_options: Any,
) -> LoadRun:
    """One load run with the processes in ``groups`` sampled and the service's ``/stats`` read."""
    if stats:
        _get(url + "/stats?reset=1")
    sampler = ProcessSampler(groups)
    try:
        run = run_load(
            url,
            profile,
            requests,
            label=label,
            allow_remote=allow_remote,
            on_start=sampler.__enter__,
            **load_options,
        )
    finally:
        if sampler.started:
            sampler.__exit__()
    run.usage = {
        u.name: {
            "cores": u.cores,
            "cpu_seconds": u.cpu_seconds,
            "peak_rss_mb": u.peak_rss_mb,
            "share": u.machine_share,
        }
        for u in sampler.usage()
    }
    if stats and not run.partial:
        run.service = _get(url + "/stats")
    return run


def sweep(
    settings: Settings,
    rates: Sequence[float],
    seconds: float,
    requests: Sequence[tuple[str, str]],
    *,
    warmup_seconds: float = 1.0,
    stop_when: Callable[[pl.DataFrame], bool] | None = None,
    label: str | None = None,
) -> list[LoadRun]:
    """Constant-rate runs at each of ``rates`` (ascending) against one service process.

    ``stop_when(summary_row)`` ends the sweep early (past the knee, more load only adds
    queueing). Each run is labelled with the configuration and carries its settings.
    """
    runs: list[LoadRun] = []
    with ServiceProcess.start(settings) as svc:
        groups = {
            "service": svc.pids,
            "postgres": postgres_pids(settings.database_url),
            "generator": [os.getpid()],
        }
        if warmup_seconds > 0:
            rate = min(rates)
            run_load(svc.url, Profile.constant(rate, warmup_seconds), requests, label="warm-up")
        for rate in rates:
            profile = Profile.constant(rate, seconds)
            run = measured_run(svc.url, profile, requests, label=label or settings.label, groups=groups)
            run.settings = {k: v for k, v in asdict(settings).items() if k != "database_url"}
            runs.append(run)
            if run.partial or (stop_when is not None and stop_when(run.summary())):
                break
    return runs


def summary(runs: Sequence[LoadRun]) -> pl.DataFrame:
    """One row per run: the settings, then :meth:`LoadRun.summary`'s columns."""
    rows = []
    for run in runs:
        row = run.summary()
        for key in ("strategy", "pool_size", "workers"):
            if key in run.settings:
                row = row.with_columns(pl.lit(run.settings[key]).alias(key))
        rows.append(row)
    if not rows:
        return pl.DataFrame()
    frame = pl.concat(rows, how="diagonal_relaxed")
    if "service_cores" in frame.columns:
        cpus = os.cpu_count() or 1
        frame = frame.with_columns(
            (pl.col("service_cores") / cpus).alias("service_cpu_share"),
            (pl.col("service_cores") * 1000 / pl.col("achieved_rps")).alias("service_cpu_ms_per_req"),
        )
    if "machine_cores" in frame.columns:
        frame = frame.drop([c for c in ("machine_peak_mb",) if c in frame.columns])
    if "postgres_cores" in frame.columns:
        frame = frame.with_columns(
            (pl.col("postgres_cores") * 1000 / pl.col("achieved_rps")).alias("db_cpu_ms_per_req")
        )
    return frame


def latencies(runs: Sequence[LoadRun]) -> pl.DataFrame:
    """Every answered request's latency with its run's label and offered rate (for distributions)."""
    frames = [
        r.latencies().with_columns(
            pl.lit(r.label).alias("label"), pl.lit(r.stage_rates[0]).alias("offered_rps")
        )
        for r in runs
    ]
    return pl.concat(frames) if frames else pl.DataFrame()

"""What a load run measured: per-request records, HDR histograms, and its summary row.

Latency is measured from each request's *intended* send time to its response, so time
spent queued behind earlier requests (in the generator, the network or the service)
counts, as it does for a user. Percentiles come from HDR histograms (``hdrhistogram``,
microseconds, 3 significant digits); their 95% intervals are distribution-free order-
statistic intervals over the recorded values (the ranks n·q ± 1.96·√(n·q·(1−q))).
Latency percentiles are over answered requests (status < 500); 5xx answers, transport
errors and sends the generator had to skip count as errors, by kind.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from hdrh.histogram import HdrHistogram

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}
#: What a run copies into its summary from the service's ``/stats`` and pg_stat_statements.
SERVICE_KEYS = (
    "db_p99_ms",
    "db_statements",
    "pool_waits",
    "pool_wait_p99_ms",
    "cache_hits",
    "cache_misses",
    "pgss_calls",
    "pgss_mean_ms",
    "pgss_max_ms",
    "pgss_p99_bound_ms",
)
MAX_US = 600_000_000  # 10 minutes: anything longer is clipped (and cannot happen within the bounds)


def new_histogram() -> HdrHistogram:
    """Microseconds from 1 µs to 10 min at 3 significant digits (0.1% resolution)."""
    return HdrHistogram(1, MAX_US, 3)


def record(h: HdrHistogram, seconds: float) -> None:
    h.record_value(min(MAX_US, max(1, int(round(seconds * 1e6)))))


def quantile_interval(values: np.ndarray, q: float, level_z: float = 1.96) -> tuple[float, float]:
    """95% distribution-free interval of the ``q`` quantile (0..1) of ``values`` (sorted or not)."""
    n = values.size
    if n == 0:
        return (math.nan, math.nan)
    v = np.sort(values)
    half = level_z * math.sqrt(n * q * (1 - q))
    lo = int(max(0, math.floor(n * q - half)))
    hi = int(min(n - 1, math.ceil(n * q + half)))
    return float(v[lo]), float(v[hi])


@dataclass
class LoadRun:
    """One load run: its requests, histograms, and what the processes cost.

    ``requests``: one row per scheduled request (``stage``, ``endpoint``, ``intended_s``,
    ``latency_ms``, ``status``, ``outcome``: ok / ``http_5xx`` / a transport error kind /
    ``client_overload`` (the generator's in-flight cap) / ``aborted`` (never reached)).
    ``partial`` with ``reason`` when the run stopped early (the target
    stopped answering, the time bound was hit); whatever was measured is kept.
    """

    label: str
    url: str
    profile: str
    requests: pl.DataFrame
    hdr: dict[int, HdrHistogram]
    lag: HdrHistogram
    stage_rates: list[float]
    stage_seconds: list[float]
    partial: bool = False
    reason: str = ""
    wall_seconds: float = 0.0
    usage: dict[str, dict[str, float]] = field(default_factory=dict)
    service: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    realtime: bool = False  # the generator's thread ran in the real-time scheduling class

    @property
    def lag_p99_ms(self) -> float:
        return self.lag.get_value_at_percentile(99) / 1000

    def histogram(self, stage: int | None = None) -> HdrHistogram:
        """The latency histogram of one stage, or of the whole run."""
        if stage is not None:
            return self.hdr.get(stage, new_histogram())
        total = new_histogram()
        for h in self.hdr.values():
            total.add(h)
        return total

    def summary(self, per_stage: bool = False) -> pl.DataFrame:
        """One row (or one per stage): offered and achieved rates, percentiles with intervals,
        errors by kind, send lag, and the processes' CPU and memory where sampled."""
        stages = range(len(self.stage_rates)) if per_stage else [None]
        return pl.DataFrame([self._row(s) for s in stages])

    def _row(self, stage: int | None) -> dict[str, Any]:
        req = self.requests if stage is None else self.requests.filter(pl.col("stage") == stage)
        seconds = sum(self.stage_seconds) if stage is None else self.stage_seconds[stage]
        if stage is None:
            # The profile's mean rate (a steady 295 req/s for 1.5 s is 295, not 442 sends / 1.5 s),
            # unless a bound on the count cut the schedule short: then the sends that were scheduled.
            planned = sum(r * t for r, t in zip(self.stage_rates, self.stage_seconds, strict=True))
            scheduled_rate = planned / seconds if seconds else 0.0
            if abs(req.height - planned) > len(self.stage_rates):
                scheduled_rate = req.height / seconds if seconds else 0.0
        else:
            scheduled_rate = self.stage_rates[stage]
        req = req.filter(pl.col("outcome") != "aborted")
        sent = req.filter(pl.col("outcome") != "client_overload")
        ok = req.filter(pl.col("outcome") == "ok")
        # Achieved: answered OK per second of the span from the first intended send to the last answer.
        span = seconds
        if ok.height:
            span = max(
                seconds, float((ok["intended_s"] + ok["latency_ms"] / 1000).max() - req["intended_s"].min())
            )
        h = self.histogram(stage)
        lat = ok["latency_ms"].to_numpy()
        row: dict[str, Any] = {
            "label": self.label,
            "stage": -1 if stage is None else stage,
            "offered_rps": scheduled_rate,
            "sent": sent.height,
            "ok": ok.height,
            "achieved_rps": ok.height / span if span else 0.0,
        }
        for name, q in PERCENTILES.items():
            row[f"{name}_ms"] = h.get_value_at_percentile(q) / 1000 if h.get_total_count() else math.nan
            row[f"{name}_lo"], row[f"{name}_hi"] = quantile_interval(lat, q / 100)
        row["max_ms"] = h.get_max_value() / 1000 if h.get_total_count() else math.nan
        errors = req.filter(pl.col("outcome") != "ok")
        kinds = dict(errors.group_by("outcome").len().sort("outcome").iter_rows())
        row["errors"] = errors.height
        row["error_rate"] = errors.height / req.height if req.height else 0.0
        row["errors_by_kind"] = json.dumps(kinds)
        row["send_lag_p99_ms"] = self.lag_p99_ms
        row["partial"] = self.partial
        for group, use in self.usage.items():
            row[f"{group}_cores"] = use["cores"]
            row[f"{group}_peak_mb"] = use["peak_rss_mb"]
        for key in SERVICE_KEYS:
            if key in self.service:
                row[key] = self.service[key]
        return row

    def latencies(self) -> pl.DataFrame:
        """Answered requests' latencies (ms) with endpoint and stage, for distributions."""
        return self.requests.filter(pl.col("outcome") == "ok").select("stage", "endpoint", "latency_ms")

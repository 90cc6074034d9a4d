"""The plan's other load tests: a spike (5x the holding rate for 10 s, and back) and a soak.

**Spike.** :func:`spike` holds a rate, jumps to ``factor`` times it for ``spike_seconds``,
and returns to it. :func:`per_second` cuts the run into seconds of *intended* send time
(a late answer counts against the second that sent it): requests sent, answered, 503s
(the pool's refusals), other errors, P99. :func:`recovery_seconds` reads from those
recorded seconds how long after the spike the service held again: the first second after
the spike that starts ``settle`` (3) seconds in a row free of errors with their P99 under
the target. Not "every later second": a second's P99 of a few dozen answers is nearly its
maximum, and on a shared machine one late answer minutes later is not the spike's doing.
None when it did not hold again within the run.

**Soak.** :func:`soak` holds one rate for a long time in windows (one load run each) and
records per window the latency, the errors and the service's resident memory (read from
its own ``/metrics``); :func:`drift` fits memory growth per hour and P99 drift per hour.

>>> spike_profile(40).describe()
'40 req/s x 5 s, 200 req/s x 10 s, 40 req/s x 20 s'
>>> import polars as pl
>>> seconds = pl.DataFrame({"second": [0, 1, 2, 3, 4], "phase": ["hold", "spike", "after", "after", "after"],
...     "errors": [0, 9, 3, 0, 0], "p99_ms": [20.0, 900.0, 400.0, 30.0, 25.0]})
>>> recovery_seconds(seconds, p99_ms=200, settle=2)
1.0
>>> recovery_seconds(seconds, p99_ms=200, settle=3) is None  # the run ended too soon to tell
True
"""

from __future__ import annotations

import math
import re
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from workbench.service.load import LoadError, LoadRun, Profile, run_load
from workbench.service.load.schedule import Stage


def spike_profile(
    hold: float, factor: float = 5.0, before: float = 5.0, spike_seconds: float = 10.0, after: float = 20.0
) -> Profile:
    """``before`` s at ``hold`` req/s, ``spike_seconds`` at ``factor`` x ``hold``, ``after`` s at ``hold``."""
    if factor <= 1:
        raise LoadError(f"A spike factor of {factor!r}: it must exceed 1 (the plan's is 5)")
    return Profile((Stage(hold, before), Stage(hold * factor, spike_seconds), Stage(hold, after)))


PHASES = ("hold", "spike", "after")


def per_second(run: LoadRun, seconds: float = 1.0) -> pl.DataFrame:
    """Per ``seconds`` of intended send time: its phase (``hold``, ``spike``, ``after``: the
    run's stages), requests sent, answered OK, answered 503, other errors, and P99 (ms) of
    the answered."""
    ok = pl.col("outcome") == "ok"
    return (
        run.requests.filter(pl.col("outcome") != "aborted")
        .with_columns((pl.col("intended_s") // seconds).cast(pl.Int32).alias("second"))
        .group_by("second")
        .agg(
            pl.col("stage").max().alias("stage"),
            pl.len().alias("sent"),
            ok.sum().alias("ok"),
            (pl.col("outcome") == "http_503").sum().alias("http_503"),
            (~ok).sum().alias("errors"),
            pl.col("latency_ms").filter(ok).quantile(0.99, "higher").alias("p99_ms"),
        )
        .sort("second")
        .with_columns(
            pl.col("stage").replace_strict(dict(enumerate(PHASES)), default="after").alias("phase"),
            (pl.col("second") * seconds).alias("at_s"),
        )
    )


def recovery_seconds(seconds: pl.DataFrame, p99_ms: float, settle: int = 3) -> float | None:
    """Seconds from the spike's end to the first second after it that starts ``settle``
    seconds in a row holding (no errors, P99 ≤ ``p99_ms``); None when the run ended before."""
    after = seconds.filter(pl.col("phase") == "after").sort("second")
    if not after.height:
        return None
    held = [r["errors"] == 0 and r["p99_ms"] is not None and r["p99_ms"] <= p99_ms for r in after.to_dicts()]
    first = after["second"][0]
    for i in range(len(held) - settle + 1):
        if all(held[i : i + settle]):
            return float(after["second"][i] - first)
    return None


@dataclass
class Spike:
    """A spike's run, its per-second results and what they show."""

    run: LoadRun
    seconds: pl.DataFrame
    hold: float
    factor: float
    p99_ms: float
    recovered_s: float | None

    @property
    def served_503(self) -> int:
        return int(self.seconds["http_503"].sum())

    @property
    def other_errors(self) -> int:
        return int(self.seconds["errors"].sum()) - self.served_503

    def describe(self) -> str:
        back = (
            f"held again {self.recovered_s:g} s after the spike (3 s in a row error-free, "
            f"P99 ≤ {self.p99_ms:g} ms)"
            if self.recovered_s is not None
            else "did not hold again before the run ended"
        )
        return (
            f"{self.hold:g} → {self.hold * self.factor:g} req/s → {self.hold:g}: {self.served_503:,} answers "
            f"503, {self.other_errors:,} other errors of {int(self.seconds['sent'].sum()):,}; {back}"
        )


def spike(
    url: str,
    hold: float,
    requests: Sequence[tuple[str, str]],
    *,
    p99_ms: float,
    factor: float = 5.0,
    before: float = 5.0,
    spike_seconds: float = 10.0,
    after: float = 20.0,
    **load_options: object,
) -> Spike:
    """Run the spike against ``url`` and read its recovery from the per-second results."""
    profile = spike_profile(hold, factor, before, spike_seconds, after)
    run = run_load(url, profile, requests, label=f"spike {hold:g}x{factor:g}", **load_options)  # type: ignore[arg-type]
    seconds = per_second(run)
    return Spike(run, seconds, hold, factor, p99_ms, recovery_seconds(seconds, p99_ms))


_RSS = re.compile(r"^process_resident_memory_bytes\s+(\S+)$", re.MULTILINE)


def service_rss_mb(url: str) -> float:
    """The service's resident memory (MB) from its ``/metrics`` (NaN with several workers,
    whose process metrics prometheus-client cannot sum)."""
    with urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=10) as r:
        match = _RSS.search(r.read().decode())
    return float(match[1]) / 2**20 if match else math.nan


def soak(
    url: str,
    rate: float,
    seconds: float,
    requests: Sequence[tuple[str, str]],
    *,
    window: float = 60.0,
    **load_options: object,
) -> pl.DataFrame:
    """Hold ``rate`` for ``seconds`` in windows of ``window`` s; per window: when it started
    (s), P50/P99 (ms), errors, requests sent, and the service's resident memory after it."""
    if seconds < window:
        raise LoadError(f"A soak of {seconds:g} s is shorter than its window of {window:g} s")
    rows, offset, started = [], 0, time.monotonic()
    for i in range(int(seconds // window)):
        profile = Profile.constant(rate, window)
        n = len(profile.intended()[0])
        drawn = [requests[(offset + k) % len(requests)] for k in range(n)]
        offset += n
        at = time.monotonic() - started
        s = (
            run_load(url, profile, drawn, label=f"soak window {i + 1}", **load_options)
            .summary()
            .row(0, named=True)
        )  # type: ignore[arg-type]
        rows.append(
            {
                "window": i + 1,
                "at_s": round(at, 1),
                "sent": s["sent"],
                "p50_ms": s["p50_ms"],
                "p99_ms": s["p99_ms"],
                "errors": s["errors"],
                "send_lag_p99_ms": s["send_lag_p99_ms"],
                "rss_mb": service_rss_mb(url),
            }
        )
    return pl.DataFrame(rows)


def drift(windows: pl.DataFrame) -> dict[str, float]:
    """Least-squares slopes over the windows: memory growth (MB per hour) and P99 drift (ms per
    hour), with the first and last windows' figures.

    >>> drift(pl.DataFrame({"at_s": [0.0, 1800.0, 3600.0], "rss_mb": [100.0, 105.0, 110.0],
    ...     "p99_ms": [20.0, 20.0, 20.0]}))["memory_mb_per_hour"]
    10.0
    """
    hours = windows["at_s"].to_numpy() / 3600
    out: dict[str, float] = {"hours": float(hours[-1] - hours[0]) if len(hours) else 0.0}
    for col, key in (("rss_mb", "memory_mb_per_hour"), ("p99_ms", "p99_ms_per_hour")):
        values = windows[col].to_numpy().astype(float)
        ok = ~np.isnan(values)
        out[key] = float(np.polyfit(hours[ok], values[ok], 1)[0]) if ok.sum() >= 2 else math.nan
        out[f"{col}_first"] = float(values[0]) if len(values) else math.nan
        out[f"{col}_last"] = float(values[-1]) if len(values) else math.nan
    return {k: round(v, 3) for k, v in out.items()}

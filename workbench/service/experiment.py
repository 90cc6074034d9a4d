"""Load runs against configurations of the service: one run, the knee search, a comparison.

Each configuration (strategy × pool size × cache × workers) gets its own service process
on a loopback port; :func:`find_knees` ramps each, then bisects with steady runs in
interleaved rounds. Every run
samples the CPU and memory of the service (with its workers), PostgreSQL (when it is
local) and the generator's own process, reads the service's statement timings, pool
waits and cache hits from ``/stats`` and PostgreSQL's from pg_stat_statements (both reset
before each run, so each rate has its own). A short untimed warm-up precedes the
measured runs: PostgreSQL plans and psycopg's prepared statements settle in the first
executions.

>>> knees = find_knees([Settings(database_url=url)], reqs)      # doctest: +SKIP
>>> summary(knees[0].steps)                                     # doctest: +SKIP
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from typing import Any

import polars as pl

from workbench.service.app import Settings
from workbench.service.load import LoadError, LoadRun, Profile, run_load
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
    database_url: str | None = None,
    **load_options: Any,
) -> LoadRun:
    """One load run with the processes in ``groups`` sampled and the service's ``/stats`` read;
    with ``database_url``, pg_stat_statements is reset before and read after (its summary
    joins the service's figures)."""
    from workbench.service import statements

    if stats:
        _get(url + "/stats?reset=1")
    if database_url:
        statements.reset(database_url)
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
    if database_url and not run.partial:
        run.service |= statements.summary(statements.read(database_url))
    return run


class Bisection:
    """Where the highest holding rate lies, narrowed by steady runs (the logic alone, testable).

    Starts from the ramp's bracket: ``lo`` (the last rate the ramp held at, or None) and
    ``hi`` (where it stopped holding, or None when it never did). :meth:`next` proposes a
    steady rate: ``lo`` first (the ramp's slices are short, so it is verified), then ``hi``
    (so is the ramp's failure), then the midpoint of the highest rate that held and the
    lowest that failed, stepping down by ``down`` while nothing has held (not halving: the
    ramp overshoots by tens of percent, not by half, and a finer step is a finer answer).
    When the ramp's failure does not hold up in a steady run, it steps up by 1/``down``
    until a rate fails. It stops when the highest held and lowest failed rates are within
    ``resolution`` (a share of the failing rate), or when the ramp held to its top and so
    did the steady run there: then the answer is "at least" the highest rate tried.
    """

    def __init__(
        self, lo: float | None, hi: float | None, resolution: float = 0.1, down: float = 0.7
    ) -> None:
        if lo is None and hi is None:
            raise ValueError("A bisection needs a rate that held or one that failed")
        self.lo, self.hi, self.resolution, self.down = lo, hi, resolution, down
        self.held: float | None = None
        self.failed: float | None = None
        self.tried: list[tuple[float, bool]] = []

    def next(self) -> float | None:
        upper = self.failed if self.failed is not None else self.hi
        if not self.tried:
            return _round(self.lo) if self.lo else _round(upper * self.down)  # type: ignore[operator]
        if self.held is None:
            return _round(upper * self.down) if upper and upper * self.down >= 1 else None
        if self.failed is None and self.hi is not None and self.held < _round(self.hi):
            return _round(self.hi)  # the ramp's failure is verified by a steady run before bisecting
        if self.failed is None and self.hi is not None:
            # The ramp's failure did not hold up in a steady run (a cold cache, a burst): step up.
            return _round(self.held / self.down)
        if upper is None or upper - self.held <= self.resolution * upper:
            return None
        rate = _round((self.held + upper) / 2)
        return rate if self.held < rate < upper else None

    def record(self, rate: float, held: bool) -> None:
        self.tried.append((rate, held))
        if held:
            self.held = rate if self.held is None else max(self.held, rate)
        else:
            self.failed = rate if self.failed is None else min(self.failed, rate)


def _round(rate: float) -> float:
    """Rates to two significant figures (steps of 1, 5 or 10 req/s as they grow)."""
    step = 1 if rate < 50 else 5 if rate < 500 else 10
    return float(max(1, round(rate / step) * step))


@dataclass
class Knee:
    """One configuration's search: the ramp, its slices, and every round's steady runs."""

    settings: Settings
    ramp: LoadRun | None
    slices: pl.DataFrame
    steps: list[LoadRun]
    stopped: str = ""  # why the search ended early (its service died), else empty


def ramp_slices(run: LoadRun, seconds: float = 0.5) -> pl.DataFrame:
    """A ramp run cut into slices of ``seconds`` by *intended* send time: per slice the rate
    offered, P50 and P99 of its answered requests, the error rate, and whether the latency
    and error SLOs held in it (``holds``). Late answers count against the slice that sent them."""
    from workbench.service import slo

    req = run.requests.filter(pl.col("outcome") != "aborted").with_columns(
        (pl.col("intended_s") // seconds).cast(pl.Int32).alias("slice")
    )
    ok = pl.col("outcome") == "ok"
    frame = (
        req.group_by("slice")
        .agg(
            pl.len().alias("sent"),
            (~ok).sum().alias("errors"),
            pl.col("latency_ms").filter(ok).quantile(0.5, "higher").alias("p50_ms"),
            pl.col("latency_ms").filter(ok).quantile(0.99, "higher").alias("p99_ms"),
        )
        .sort("slice")
        .with_columns(
            pl.lit(run.label).alias("label"),
            ((pl.col("slice") + 0.5) * seconds).alias("at_s"),
            (pl.col("sent") / seconds).alias("offered_rps"),
            (pl.col("errors") / pl.col("sent")).alias("error_rate"),
        )
    )
    judged = ("p50", "p99", "errors")
    holds = [not slo.misses(r, judged) for r in frame.iter_rows(named=True)]
    return frame.with_columns(pl.Series("holds", holds, dtype=pl.Boolean))


def bracket(slices: pl.DataFrame, run: int = 3) -> tuple[float | None, float | None]:
    """(last rate held, first rate failed) of a ramp: the knee is the first slice that fails
    with the next ``run`` − 1 failing too, or failing to the ramp's end (a burst of noise on a
    shared machine fails a slice or two; saturation fails every slice after it)."""
    rows = slices.sort("slice").to_dicts()
    for i, r in enumerate(rows):
        if all(not x["holds"] for x in rows[i : i + run]):
            return (rows[i - 1]["offered_rps"] if i else None), r["offered_rps"]
    return (rows[-1]["offered_rps"] if rows else None), None


def find_knees(
    configs: Sequence[Settings],
    requests: Sequence[tuple[str, str]],
    *,
    rounds: int = 3,
    ramp: tuple[float, float] = (20, 900),
    ramp_seconds: float = 6.0,
    slice_seconds: float = 0.5,
    steps: int = 3,
    step_seconds: float = 1.5,
    warmup_seconds: float = 1.0,
    statements_on: bool | None = None,
    extend: int = 1,
) -> list[Knee]:
    """The highest arrival rate at which every SLO holds, for each configuration, ``rounds`` times.

    Why a ramp and then steady steps: a ramp crosses the whole range in one run, and judged
    per slice of intended send time it shows where latency turns up, but each slice is
    short (its P99 is nearly its maximum), queues need time to build and the CPU SLO cannot
    be judged per slice, so a ramp alone places the knee late and noisily. Steady runs at
    fixed rates give a number that holds over seconds, with every SLO judged (CPU, memory,
    DB P99 included), but finding the knee with them alone costs many runs. So: one ramp
    per configuration to bracket the knee, then in each round ``steps`` steady runs of
    ``step_seconds`` bisecting that bracket (:class:`Bisection`, a fresh one per round).
    A round's answer is the highest *steady* rate that held in it; the ramp only aims.

    Why rounds, interleaved: on a machine shared by the generator, the service and
    PostgreSQL, one search is one sample (a burst of other work fails a run, the CPU SLO
    sits near the noise). Every configuration's service is started once and kept running;
    each round searches every configuration in turn, in an order rotated per round, so a
    slow minute hits them alike and round *i* of two configurations is a pair
    (:func:`workbench.service.slo.changes` compares them round by round). Each steady run
    records its round in ``run.settings["round"]``.

    When a ramp holds throughout, it is continued up to ``extend`` times (from its top to
    twice its top, for as long), so a cheap configuration's knee is found too; if it still
    holds, the answer is "at least" the top. Each run draws the next requests of
    ``requests`` (rotated, per configuration), so a query cache does not see the same
    sequence twice. ``statements_on``: read pg_stat_statements per run (None: when the
    server preloads it).
    """
    from workbench.service import statements

    if rounds < 1:
        raise ValueError(f"rounds={rounds!r}: a knee search needs at least one round")
    if not configs:
        return []
    if statements_on is None:
        statements_on = statements.enable(configs[0].database_url)
    with ExitStack() as stack:
        searches = [
            _Search(stack.enter_context(ServiceProcess.start(s)), s, requests, statements_on) for s in configs
        ]
        for search in searches:
            search.warm_up(ramp[0], warmup_seconds)
        for search in searches:
            search.ramp(ramp, ramp_seconds, slice_seconds, extend)
        for r in range(rounds):
            shift = r % len(searches)
            for search in searches[shift:] + searches[:shift]:
                search.bisect(r, steps, step_seconds)
    return [s.knee for s in searches]


class _Search:
    """One configuration's running service and what its knee search has measured so far."""

    def __init__(
        self,
        svc: ServiceProcess,
        settings: Settings,
        requests: Sequence[tuple[str, str]],
        statements_on: bool,
    ) -> None:
        self.svc, self.settings, self.requests = svc, settings, requests
        self.pg_url = settings.database_url if statements_on else None
        self.groups = {
            "service": svc.pids,
            "postgres": postgres_pids(settings.database_url),
            "generator": [os.getpid()],
        }
        self.offset = 0
        self.knee = Knee(settings, None, pl.DataFrame(), [])
        self.bracket: tuple[float | None, float | None] = (None, None)

    def drawn(self, n: int) -> list[tuple[str, str]]:
        start = self.offset % len(self.requests)
        self.offset += n
        rotated = list(self.requests[start:]) + list(self.requests[:start])
        return (rotated * (n // len(rotated) + 1))[:n]

    def measured(self, profile: Profile, round_: int | None = None) -> LoadRun | None:
        """One run, or None when the service is found dead before it (``knee.stopped`` says so;
        a service dying *during* a run gives a partial run instead)."""
        try:
            run = measured_run(
                self.svc.url,
                profile,
                self.drawn(len(profile.intended()[0])),
                label=self.settings.label,
                groups=self.groups,
                database_url=self.pg_url,
            )
        except (OSError, LoadError) as e:
            code = self.svc.proc.poll()
            if code is None:
                raise  # the service runs: the error is the caller's to see
            self.knee.stopped = (
                f"{self.settings.label}: the service exited (code {code}) after "
                f"{len(self.knee.steps)} steady runs; its search ended there ({e}). "
                f"Its last output: {self.svc.output(500) or 'none'}"
            )
            return None
        run.settings = {k: v for k, v in asdict(self.settings).items() if k != "database_url"}
        if round_ is not None:
            run.settings["round"] = round_
        return run

    def warm_up(self, rate: float, seconds: float) -> None:
        if seconds > 0:
            warm = Profile.constant(rate, seconds)
            run_load(self.svc.url, warm, self.drawn(len(warm.intended()[0])), label="warm-up")

    def ramp(self, ramp: tuple[float, float], seconds: float, slice_seconds: float, extend: int) -> None:
        run = self.measured(Profile.ramp(ramp[0], ramp[1], seconds))
        if run is None:
            return
        slices = ramp_slices(run, slice_seconds)
        lo, hi = bracket(slices)
        top = ramp[1]
        for _ in range(extend):
            if hi is not None or run.partial:
                break
            more_run = self.measured(Profile.ramp(top, 2 * top, seconds))
            if more_run is None:
                break
            run = more_run
            more = ramp_slices(run, slice_seconds).with_columns(pl.col("slice") + slices["slice"].max() + 1)
            slices = pl.concat([slices, more])
            lo, hi = bracket(slices)
            top *= 2
        self.knee.ramp, self.knee.slices, self.bracket = run, slices, (lo, hi)

    def bisect(self, round_: int, steps: int, seconds: float) -> None:
        from workbench.service import slo

        runs = [self.knee.ramp, *self.knee.steps] if self.knee.ramp else []
        if self.knee.stopped or not runs or any(r.partial for r in runs) or self.bracket == (None, None):
            return  # the service died (the partial run or ``stopped`` says why) or nothing answered
        search = Bisection(*self.bracket)
        for _ in range(steps):
            rate = search.next()
            if rate is None:
                break
            run = self.measured(Profile.constant(rate, seconds), round_)
            if run is None:
                return
            self.knee.steps.append(run)
            search.record(rate, not slo.misses(summary([run]).row(0, named=True)))
            if run.partial:
                break


def summary(runs: Sequence[LoadRun]) -> pl.DataFrame:
    """One row per run: the settings, then :meth:`LoadRun.summary`'s columns."""
    rows = []
    for run in runs:
        row = run.summary()
        for key in ("strategy", "pool_size", "workers", "cache_seconds", "round"):
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


def errors_text(by_kind: str) -> str:
    """A run's ``errors_by_kind`` (JSON) in words: ``none``, or ``http_503 12, timeout 1``."""
    import json

    kinds = json.loads(by_kind or "{}")
    return ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])) or "none"


P99_CI = ("p99_ms", "p99_lo", "p99_hi")


def people(summary: pl.DataFrame) -> Any:
    """The runs as a reviewer reads them (a :func:`workbench.tables.table`): configuration and
    round, load, latency with its interval, errors in words, where the time went (DB, pool,
    cache), the service's CPU and the SLOs the run missed; every other column stays in the
    CSV export."""
    from workbench.tables import table

    cols = summary.columns
    units: dict[str, str] = {}
    decimals: dict[str, int] = {}

    def col(name: str, expr: pl.Expr, alias: str, unit: str = "", places: int | None = None) -> list[pl.Expr]:
        if name not in cols:
            return []
        if unit:
            units[alias] = unit
        if places is not None:
            decimals[alias] = places
            expr = expr.round(places)
        return [expr.alias(alias)]

    from workbench.service import slo

    hits = pl.col("cache_hits") / (pl.col("cache_hits") + pl.col("cache_misses")) * 100
    missed = pl.Series([slo.missed_names(r) for r in summary.iter_rows(named=True)], dtype=pl.String)
    order = [c for c in ("label", "round", "offered_rps") if c in cols]
    frame = (
        summary.with_columns(missed.alias("_missed"))
        .sort(order)
        .select(
            pl.col("label").alias("configuration"),
            *col("round", pl.col("round") + 1, "round"),
            *col("offered_rps", pl.col("offered_rps"), "offered", "req/s", 0),
            *col("achieved_rps", pl.col("achieved_rps"), "achieved", "req/s", 0),
            *col("p50_ms", pl.col("p50_ms"), "P50", "ms", 1),
            *col("p99_ms", pl.col("p99_ms"), "P99", "ms", 0),
            *col(
                "p99_lo",
                pl.format("{}–{}", *(pl.col(c).round(0).cast(pl.Int64) for c in P99_CI[1:])),
                "P99 95% CI",
            ),
            *col(
                "errors_by_kind",
                pl.col("errors_by_kind").map_elements(errors_text, return_dtype=pl.String),
                "errors",
            ),
            *col("db_p99_ms", pl.col("db_p99_ms"), "DB P99", "ms", 1),
            *col("pool_wait_p99_ms", pl.col("pool_wait_p99_ms"), "pool wait P99", "ms", 1),
            *col("cache_hits", hits, "cache hits", "%", 0),
            *col("service_cores", pl.col("service_cores"), "service CPU", "cores", 2),
            pl.col("_missed").alias("SLOs missed"),
        )
    )
    return table(frame, units=units, decimals=decimals, caption="Steady runs (all columns in summary.csv)")

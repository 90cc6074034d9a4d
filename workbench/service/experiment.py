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
from typing import TYPE_CHECKING, Any

import polars as pl

from workbench.service.app import Settings
from workbench.service.load import LoadError, LoadRun, Mix, Profile, run_load
from workbench.service.placement import Placement, pinned, this_thread
from workbench.service.process import ProcessSampler, ServiceProcess, postgres_pids

if TYPE_CHECKING:
    from workbench.engines import Engine
    from workbench.profile import Profile as ProductionProfile

STRATEGY_WORDS = {"n_plus_one": "N+1 (today)", "joined": "JOIN", "batch": "batch"}


def name(settings: Settings) -> str:
    """A configuration as people read it: ``N+1 (today), pool of 4``, ``batch, pool of 4, 5 s cache``."""
    parts = [STRATEGY_WORDS.get(settings.strategy, settings.strategy), f"pool of {settings.pool_size}"]
    if settings.workers != 1:
        parts.append(f"{settings.workers} workers")
    if settings.cache_seconds:
        parts.append(f"{settings.cache_seconds:g} s cache")
    return ", ".join(parts)


def traffic(prof: ProductionProfile) -> Mix:
    """The profile's traffic mix as the load generator draws it: its endpoint weights, its hot
    share and fraction, and its page size (``pages.recent_sessions``; the generator has one
    page size for the session list and the recent view). Notebook 03 weights its workload by
    the same ``prof.traffic``."""
    t = prof.traffic
    return Mix(
        weights=dict(t.weights),
        hot_share=t.hot_share,
        hot_fraction=t.hot_fraction,
        page_limit=prof.pages.recent_sessions,
    )


def apply_indexes(engine: Engine, out_dir: str | os.PathLike[str]) -> pl.DataFrame:
    """Give the loaded database of ``engine`` exactly notebook 03's recommended indexes, and
    return its secondary indexes.

    Every secondary index is dropped, then the migrations 03 exported under ``out_dir`` are
    applied (:func:`workbench.indexes.migrations.exported`): one source of truth, no second
    index list. When 03 has not run, its error says so and how to fix it, and nothing is
    changed.
    """
    from workbench.indexes import migrations
    from workbench.strategies import ensure_indexes

    folder = migrations.exported(out_dir, engine.name)
    for index in engine.list_indexes()["name"].to_list():
        engine.drop_index(index)
    migrations.apply(engine, folder)
    ensure_indexes(engine, {})  # creates none: only its ANALYZE, so plans are the same every run
    return engine.list_indexes().select("name", "table", "columns")


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
    targets: dict[str, float] | None = None,
    placement: Placement | None = None,
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
    server preloads it). ``targets``: the SLO targets a steady run must hold (P50, P99 and the
    error rate; :func:`workbench.service.slo.limits` of a profile), else the plan's.
    ``placement``: which CPUs the generator and the servers run on (:func:`placed`); every
    run records it in ``run.settings["placement"]``.
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
            _Search(
                stack.enter_context(ServiceProcess.start(s)), s, requests, statements_on, targets, placement
            )
            for s in configs
        ]
        placed(stack, placement, [pid for s in searches for pid in s.svc.pids()], configs[0].database_url)
        for search in searches:
            search.warm_up(ramp[0], warmup_seconds)
        for search in searches:
            search.ramp(ramp, ramp_seconds, slice_seconds, extend)
        for r in range(rounds):
            shift = r % len(searches)
            for search in searches[shift:] + searches[:shift]:
                search.bisect(r, steps, step_seconds)
    return [s.knee for s in searches]


def placed(stack: ExitStack, placement: Placement | None, service_pids: list[int], database_url: str) -> None:
    """Apply ``placement`` until ``stack`` closes: the services' and the (local) PostgreSQL's
    processes on its server CPUs, the calling thread, and so the generator's threads it
    starts, on its generator CPU."""
    if placement is None or not placement.pins:
        return
    stack.enter_context(pinned(service_pids + postgres_pids(database_url), placement.servers))
    stack.enter_context(this_thread(placement.generator))


THOROUGH_SECONDS = 60.0


def describe_runs(step_seconds: float, rounds: int, confirm_responses: int, confirm_seconds: float) -> str:
    """Which settings ran, in words for the page: indicative (CI) or thorough steady runs.

    >>> describe_runs(1.5, 3, 3000, 15)  # doctest: +NORMALIZE_WHITESPACE
    'indicative runs: knee search with steady runs of 1.5 s in 3 rounds,
     SLOs judged on runs of 3,000 responses or 15 s'
    """
    kind = "thorough" if step_seconds >= THOROUGH_SECONDS else "indicative"
    return (
        f"{kind} runs: knee search with steady runs of {step_seconds:g} s in {rounds} round"
        f"{'s' if rounds != 1 else ''}, SLOs judged on runs of {confirm_responses:,} responses "
        f"or {confirm_seconds:g} s"
    )


def confirm(
    plans: Sequence[tuple[Settings, float, str]],
    requests: Sequence[tuple[str, str]],
    *,
    responses: int = 3000,
    min_seconds: float = 2.0,
    max_seconds: float = 16.0,
    warmup_seconds: float = 1.0,
    statements_on: bool | None = None,
    placement: Placement | None = None,
) -> list[LoadRun]:
    """Long steady runs that can show an SLO: each ``(settings, rate, purpose)`` runs for
    ``responses`` / rate seconds (at least ``min_seconds``, at most ``max_seconds``, the
    notebook's time budget), enough for P99 to have a real interval (2,000 responses) and
    for 0 errors to bound the rate below 0.1% (2,995); a capped run says what it could not show.
    Consecutive plans with the same settings share one service, each group starts a fresh
    one (so its peak memory covers only these runs); ``run.settings["purpose"]`` says what
    each run is for."""
    from workbench.service import statements

    runs: list[LoadRun] = []
    if not plans:
        return runs
    if statements_on is None:
        statements_on = statements.enable(plans[0][0].database_url)
    groups: list[list[tuple[Settings, float, str]]] = []
    for plan in plans:
        if groups and groups[-1][0][0] == plan[0]:
            groups[-1].append(plan)
        else:
            groups.append([plan])
    for group in groups:
        settings = group[0][0]
        with ServiceProcess.start(settings) as svc, ExitStack() as stack:
            placed(stack, placement, svc.pids(), settings.database_url)
            search = _Search(svc, settings, requests, statements_on, placement=placement)
            search.offset = len(runs) * responses  # each run draws requests the others did not
            search.warm_up(group[0][1], warmup_seconds)
            for _, rate, purpose in group:
                seconds = min(max_seconds, max(min_seconds, responses / rate))
                run = search.measured(Profile.constant(rate, seconds))
                if run is None:
                    break
                run.settings["purpose"] = purpose
                runs.append(run)
    return runs


class _Search:
    """One configuration's running service and what its knee search has measured so far."""

    def __init__(
        self,
        svc: ServiceProcess,
        settings: Settings,
        requests: Sequence[tuple[str, str]],
        statements_on: bool,
        targets: dict[str, float] | None = None,
        placement: Placement | None = None,
    ) -> None:
        self.svc, self.settings, self.requests, self.targets = svc, settings, requests, targets
        self.placement = placement or Placement.shared()
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
                label=name(self.settings),
                groups=self.groups,
                database_url=self.pg_url,
            )
        except (OSError, LoadError) as e:
            code = self.svc.proc.poll()
            if code is None:
                raise  # the service runs: the error is the caller's to see
            self.knee.stopped = (
                f"{name(self.settings)}: the service exited (code {code}) after "
                f"{len(self.knee.steps)} steady runs; its search ended there ({e}). "
                f"Its last output: {self.svc.output(500) or 'none'}"
            )
            return None
        run.settings = {k: v for k, v in asdict(self.settings).items() if k != "database_url"}
        run.settings |= self.placement.as_dict()
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
            search.record(rate, not slo.misses(summary([run]).row(0, named=True), targets=self.targets))
            if run.partial:
                break


def summary(runs: Sequence[LoadRun]) -> pl.DataFrame:
    """One row per run: the settings, then :meth:`LoadRun.summary`'s columns."""
    rows = []
    for run in runs:
        row = run.summary()
        row = row.with_columns(pl.lit(sum(run.stage_seconds)).alias("seconds"))
        for key in ("strategy", "pool_size", "workers", "cache_seconds", "round", "purpose", "placement"):
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


def people(summary: pl.DataFrame, targets: dict[str, float] | None = None, caption: str | None = None) -> Any:
    """The runs as a reviewer reads them, narrow enough for a laptop screen (a
    :func:`workbench.tables.table`): configuration and round, the offered rate, P50, P99 with
    its 95% interval, responses, errors in words, the service's CPU and the SLOs the run's
    point estimates missed (the knee search's test). The DB, pool and cache figures and
    every other column stay in the CSV export."""
    from workbench.service import slo
    from workbench.tables import table

    cols = summary.columns
    missed = [slo.missed_names(r, targets=targets) for r in summary.iter_rows(named=True)]
    order = [c for c in ("label", "round", "offered_rps") if c in cols]
    picks = [
        ("round", pl.col("round") + 1 if "round" in cols else None, "round"),
        ("offered_rps", pl.col("offered_rps").round(0), "offered (req/s)"),
        ("p50_ms", pl.col("p50_ms").round(1), "P50 (ms)"),
        ("p99_ms", pl.col("p99_ms").round(0), "P99 (ms)"),
        (
            "p99_lo",
            pl.format("{}–{}", *(pl.col(c).round(0).cast(pl.Int64) for c in ("p99_lo", "p99_hi"))),
            "P99 95%",
        ),
        ("ok", pl.col("ok"), "responses"),
        (
            "errors_by_kind",
            pl.col("errors_by_kind").map_elements(errors_text, return_dtype=pl.String),
            "errors",
        ),
        ("service_cores", pl.col("service_cores").round(2), "service CPU (cores)"),
    ]
    frame = (
        summary.with_columns(pl.Series("_missed", missed, dtype=pl.String))
        .sort(order)
        .select(
            pl.col("label").alias("configuration"),
            *(expr.alias(alias) for col, expr, alias in picks if col in cols and expr is not None),
            pl.col("_missed").alias("SLOs missed"),
        )
    )
    places = {"offered (req/s)": 0, "P50 (ms)": 1, "P99 (ms)": 0, "service CPU (cores)": 2}
    return table(frame, decimals=places, caption=caption)

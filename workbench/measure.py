"""Timing harness and statistics: warm-up, repeats, percentiles with bootstrap intervals.

Timings are taken with an injectable clock (``clock: Callable[[], int]`` returning
nanoseconds, ``time.perf_counter_ns`` by default), so tests drive the logic with a fake
clock and never assert on the machine's speed. Results are tidy Polars frames, one row
per timed run, carrying their context (engine versions, CPU, Python, dataset, git
commit, cache state) and a ``format_version``, saved as Parquet so runs compare across
time and commits.

>>> times = measure(lambda: engine.execute("SELECT 1"), repeat=20)      # doctest: +SKIP
>>> summarize(times)["median_ms"]                                         # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import platform
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from workbench.errors import WorkbenchError

#: Bump when the columns of a results frame change meaning.
FORMAT_VERSION = 1
#: A measurement is flagged unstable above this coefficient of variation (pyperf warns at 10%).
UNSTABLE_CV = 0.10
#: Fewest timed runs a calibrated cell gets: with 5 the 95% CI of a median is [min, max].
MIN_RUNS = 20
#: Two timings whose ratio's CI lies within 1/(1 + margin) .. 1 + margin are a practical tie.
EQUIVALENCE_MARGIN = 0.10
#: Above this 1-minute load average per core, timings are not ranked (two runs at load
#: 1.8-6 on 2 cores disagreed by up to 30%; below 1.8 they agreed within 4%).
HIGH_LOAD_PER_CORE = 0.9
CACHE_STATES = ("warm", "cold")
Clock = Callable[[], int]


class MeasureError(WorkbenchError):
    """A measurement was asked for in a way that cannot give a meaningful number."""


@contextlib.contextmanager
def gc_paused(enabled: bool = True) -> Iterator[None]:
    """Python's cyclic garbage collector off inside the block (as ``timeit`` does), then restored.

    A collection is triggered by allocations made anywhere in the process, so with it on
    a pause of milliseconds lands in whichever timed run crossed the threshold. Reference
    counting still frees acyclic results (all a strategy builds); the cycles left over are
    collected when the block ends, untimed.
    """
    was_enabled = gc.isenabled()
    if enabled:
        gc.disable()
    try:
        yield
    finally:
        if enabled and was_enabled:
            gc.enable()
            gc.collect()


def measure(
    fn: Callable[[], Any],
    *,
    repeat: int = 5,
    warmup: int = 1,
    clock: Clock = time.perf_counter_ns,
    cache: str = "warm",
    reset: Callable[[], Any] | None = None,
    pause_gc: bool = True,
) -> list[int]:
    """Call ``fn`` ``warmup`` times untimed, then ``repeat`` times timed; return nanoseconds.

    ``cache="warm"`` (the default) relies on the warm-up runs. ``cache="cold"`` needs
    ``reset``, called untimed before every timed run (e.g. reopen the connection), and
    skips the warm-up, since warming would defeat it. ``pause_gc``: see :func:`gc_paused`.
    """
    if repeat < 1:
        raise MeasureError(f"repeat={repeat!r}: measure at least one run")
    if cache not in CACHE_STATES:
        raise MeasureError(f"Unknown cache state {cache!r}: expected one of {', '.join(CACHE_STATES)}")
    if cache == "cold" and reset is None:
        raise MeasureError("cache='cold' needs reset=, a function that empties the caches before each run")
    if cache == "warm":
        for _ in range(warmup):
            fn()
    times: list[int] = []
    with gc_paused(pause_gc):
        for _ in range(repeat):
            if reset is not None:
                reset()
            started = clock()
            fn()
            times.append(clock() - started)
    return times


def measure_interleaved(
    fns: Mapping[str, Callable[[], Any]],
    *,
    repeat: int = 5,
    warmup: int = 1,
    clock: Clock = time.perf_counter_ns,
    after: Callable[[str], Any] | None = None,
    pause_gc: bool = True,
    budget_s: float | None = None,
    max_repeat: int = 1000,
) -> dict[str, list[int]]:
    """Time several functions round-robin, so drift hits all alike.

    Ratios between them are then measured side by side, and run ``i`` of each function
    comes from the same round, so :func:`paired_ratio` can pair them. Each round starts
    one function further on (A B C, B C A, C A B, ...), so no function always runs right
    after the same other one (after N+1's thousand round trips, say) or always first.
    ``after(name)`` is called untimed after each timed call (e.g. to read a statement
    counter). ``pause_gc``: see :func:`gc_paused`.

    ``budget_s`` calibrates the number of rounds instead (see :func:`enough_rounds`):
    at least ``repeat`` rounds, then more until the timed calls have used ``budget_s``
    seconds of the clock, and more again (up to twice the budget) while any function's
    coefficient of variation is above :data:`UNSTABLE_CV`; never more than ``max_repeat``.
    """
    if repeat < 1:
        raise MeasureError(f"repeat={repeat!r}: measure at least one run")
    names = list(fns)
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[int]] = {name: [] for name in fns}
    budget_ns = None if budget_s is None else int(budget_s * 1e9)
    spent, round_ = 0, 0
    with gc_paused(pause_gc):
        while not enough_rounds(times, round_, spent, repeat, budget_ns, max_repeat):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                started = clock()
                fns[name]()
                elapsed = clock() - started
                times[name].append(elapsed)
                spent += elapsed
                if after is not None:
                    after(name)
            round_ += 1
    return times


def enough_rounds(
    times: Mapping[str, Sequence[int]],
    rounds: int,
    spent_ns: int,
    repeat: int,
    budget_ns: int | None,
    max_repeat: int = 1000,
) -> bool:
    """Whether an interleaved measurement may stop after ``rounds`` rounds.

    Without a budget: after ``repeat`` rounds. With one: never before ``repeat`` rounds,
    then once ``spent_ns`` reaches the budget, unless a function's runs are still
    unstable (CV above :data:`UNSTABLE_CV`), which buys up to a second budget.
    ``max_repeat`` ends it regardless.
    """
    if rounds >= max_repeat:
        return True
    if rounds < repeat:
        return False
    if budget_ns is None:
        return True
    if spent_ns < budget_ns:
        return False
    noisy = any(_cv(t) > UNSTABLE_CV for t in times.values())
    return not noisy or spent_ns >= 2 * budget_ns


def _cv(values: Sequence[float]) -> float:
    data = np.asarray(values, dtype=float)
    if data.size < 2 or data.mean() <= 0:
        return 0.0
    return float(data.std(ddof=1) / data.mean())


# ---- statistics ---------------------------------------------------------------------------
def bootstrap(
    values: Sequence[float],
    statistic: Callable[[np.ndarray], float] = np.median,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over ``values`` (seeded, reproducible)."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise MeasureError("No values to bootstrap: measure at least one run")
    rng = np.random.default_rng(seed)
    samples = data[rng.integers(0, data.size, (n_boot, data.size))]
    stats = _apply(statistic, samples)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return float(lo), float(hi)


def _apply(statistic: Callable[[np.ndarray], float], samples: np.ndarray) -> np.ndarray:
    try:
        return np.asarray(statistic(samples, axis=1), dtype=float)  # numpy reductions, vectorised
    except TypeError:
        return np.array([statistic(row) for row in samples], dtype=float)


def _p(q: float) -> Callable[..., Any]:
    def percentile(a: np.ndarray, axis: int | None = None) -> Any:
        return np.percentile(a, q, axis=axis)

    return percentile


def summarize(
    times_ns: Sequence[int], *, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """Median and p50/p95/p99 in milliseconds with bootstrap intervals, spread and a stability flag.

    With few runs the high percentiles are close to the maximum: read them with ``n``.
    """
    ms = np.asarray(times_ns, dtype=float) / 1e6
    if ms.size == 0:
        raise MeasureError("No timings to summarize: measure at least one run")
    out: dict[str, Any] = {"n": int(ms.size), "mean_ms": float(ms.mean()), "min_ms": float(ms.min())}
    for name, fn in (("median", np.median), ("p50", _p(50)), ("p95", _p(95)), ("p99", _p(99))):
        out[f"{name}_ms"] = float(fn(ms))
        out[f"{name}_lo"], out[f"{name}_hi"] = bootstrap(ms, fn, n_boot=n_boot, level=level, seed=seed)
    std = float(ms.std(ddof=1)) if ms.size > 1 else 0.0
    out["std_ms"] = std
    out["cv"] = std / out["mean_ms"] if out["mean_ms"] > 0 else 0.0
    out["unstable"] = bool(out["cv"] > UNSTABLE_CV)
    return out


def ratio(
    numerator_ns: Sequence[float],
    denominator_ns: Sequence[float],
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """median(numerator) / median(denominator) with a bootstrap interval (each resampled alone).

    Use it as "how many times faster is B than A": ``ratio(times_a, times_b)``.
    """
    a, b = np.asarray(numerator_ns, dtype=float), np.asarray(denominator_ns, dtype=float)
    if a.size == 0 or b.size == 0:
        raise MeasureError("A ratio needs timings on both sides")
    rng = np.random.default_rng(seed)
    ra = np.median(a[rng.integers(0, a.size, (n_boot, a.size))], axis=1)
    rb = np.median(b[rng.integers(0, b.size, (n_boot, b.size))], axis=1)
    boots = ra / rb
    alpha = (1 - level) / 2
    lo, hi = np.quantile(boots, [alpha, 1 - alpha])
    return float(np.median(a) / np.median(b)), float(lo), float(hi)


def paired_ratio(
    numerator_ns: Sequence[float],
    denominator_ns: Sequence[float],
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Median of the per-round ratios ``numerator[i] / denominator[i]``, with a bootstrap CI.

    For runs from :func:`measure_interleaved`, where run ``i`` of every function comes
    from round ``i``: a slow moment of the machine slows both sides of a pair, so it
    cancels in their ratio instead of widening the interval (as resampling each side
    alone, :func:`ratio`, lets it). Rounds are resampled whole.
    """
    a, b = np.asarray(numerator_ns, dtype=float), np.asarray(denominator_ns, dtype=float)
    if a.size == 0 or b.size == 0:
        raise MeasureError("A ratio needs timings on both sides")
    if a.size != b.size:
        raise MeasureError(f"Paired runs must pair up: {a.size} against {b.size} runs")
    pairs = a / b
    lo, hi = bootstrap(pairs, np.median, n_boot=n_boot, level=level, seed=seed)
    return float(np.median(pairs)), lo, hi


def equivalence(lo: float, hi: float, margin: float = EQUIVALENCE_MARGIN) -> str:
    """Class of a ratio ``a / b`` from its interval alone (the point estimate plays no part).

    ``"tie"`` when the whole interval lies within ``1/(1 + margin) .. 1 + margin``;
    ``"slower"`` (a takes longer) when it lies wholly above ``1 + margin``; ``"faster"``
    when wholly below ``1/(1 + margin)``; ``"unclear"`` when it straddles a margin's
    edge (a difference too small or too noisy to call). Ratios of 1.104 and 1.108 with
    the intervals such noise gives fall in the same class.
    """
    top, bottom = 1 + margin, 1 / (1 + margin)
    if bottom <= lo and hi <= top:
        return "tie"
    if lo > top:
        return "slower"
    if hi < bottom:
        return "faster"
    return "unclear"


def compare_text(r: float, lo: float, hi: float, margin: float = EQUIVALENCE_MARGIN) -> str:
    """``a / b`` in words for a sentence about a (e.g. "3.10x slower (95% CI 2.9x-3.3x)")."""
    kind = equivalence(lo, hi, margin)
    ci = f"95% CI {lo:.2f}-{hi:.2f}"
    if kind == "slower":
        return f"{r:.2f}x slower (95% CI {lo:.2f}x-{hi:.2f}x)"
    if kind == "faster":
        return f"{1 / r:.2f}x faster (95% CI {1 / hi:.2f}x-{1 / lo:.2f}x)"
    if kind == "tie":
        return f"a tie (time ratio {r:.2f}, {ci}, within ±{margin:.0%})"
    return f"not clearly different (time ratio {r:.2f}, {ci}: neither within ±{margin:.0%} nor beyond it)"


def load_average() -> float | None:
    """The 1-minute load average now (None where the platform has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def load_limit(per_core: float = HIGH_LOAD_PER_CORE) -> float:
    """The load average above which timings on this machine are not ranked."""
    return per_core * (os.cpu_count() or 1)


def load_note(before: float | None, after: float | None, limit: float | None = None) -> str | None:
    """None when the load stayed under ``limit``; else why the timings are not ranked.

    >>> load_note(0.4, 3.6, limit=1.8)
    'load average 0.40 before, 3.60 after timing: 2.0x the limit of 1.80, not ranked'
    """
    limit = load_limit() if limit is None else limit
    worst = max((x for x in (before, after) if x is not None), default=None)
    if worst is None or worst <= limit:
        return None
    b = "?" if before is None else f"{before:.2f}"
    a = "?" if after is None else f"{after:.2f}"
    over = f"{worst / limit:.1f}x the limit of {limit:.2f}"
    return f"load average {b} before, {a} after timing: {over}, not ranked"


# ---- context ------------------------------------------------------------------------------
def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo, else platform), with the core count."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} cores)"


def git_commit(path: str | os.PathLike[str] | None = None) -> str | None:
    """The current commit of the repository holding ``path`` (this package by default), or None."""
    where = Path(path) if path else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def context(engines: Iterable[Any] = (), dataset: Any = None, **extra: Any) -> dict[str, Any]:
    """What a result needs to be read later: engines, CPU, Python, dataset, commit, time."""
    from workbench import __version__

    ctx: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "run_id": uuid.uuid4().hex[:12],
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "workbench_version": __version__,
        "git_commit": git_commit(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "engines": {e.name: e.describe() for e in engines},
        # Other work on the machine skews timings (clients and servers share its cores):
        # the 1-minute load average and the CPUs this process may run on say how busy it was.
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "cpu_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "gc_paused_while_timing": True,
    }
    if dataset is not None:
        ctx["dataset"] = {
            "name": dataset.name,
            "content_hash": dataset.content_hash,
            "source": dataset.manifest.get("source"),
            "seed": dataset.manifest.get("seed"),
            "counts": dataset.counts,
        }
    ctx.update(extra)
    return ctx


# ---- results ------------------------------------------------------------------------------
RUN_SCHEMA = {
    "engine": pl.String,
    "strategy": pl.String,
    "sessions": pl.Int64,
    "run": pl.Int64,
    "wall_ns": pl.Int64,
    "statements": pl.Int64,
    "rows": pl.Int64,
}


class Results:
    """Timed runs (one row each) plus the context they were measured in.

    The frame's columns: ``engine, strategy, sessions, run, wall_ns, statements, rows``
    and whatever else the experiment adds (``bytes``, ``server_ms``, ...), then the
    context columns ``format_version, run_id, cache, engine_version, cpu, python,
    dataset_hash, dataset_source, git_commit`` on every row, so frames from different
    runs concatenate and compare.
    """

    def __init__(self, frame: pl.DataFrame, ctx: Mapping[str, Any]) -> None:
        self.frame = frame
        self.context = dict(ctx)

    @classmethod
    def from_runs(
        cls, rows: Sequence[Mapping[str, Any]], ctx: Mapping[str, Any], cache: str = "warm"
    ) -> Results:
        frame = pl.DataFrame(list(rows), schema_overrides=RUN_SCHEMA, infer_schema_length=None)
        if frame.is_empty():
            frame = pl.DataFrame(schema=RUN_SCHEMA)
        versions = {name: d.get("version") for name, d in ctx.get("engines", {}).items()}
        dataset = ctx.get("dataset") or {}
        frame = frame.with_columns(
            format_version=pl.lit(FORMAT_VERSION, pl.Int64),
            run_id=pl.lit(ctx.get("run_id"), pl.String),
            cache=pl.lit(cache, pl.String),
            engine_version=pl.col("engine").replace_strict(versions, default=None, return_dtype=pl.String),
            cpu=pl.lit(ctx.get("cpu"), pl.String),
            python=pl.lit(ctx.get("python"), pl.String),
            dataset_hash=pl.lit(dataset.get("content_hash"), pl.String),
            dataset_source=pl.lit(json.dumps(dataset.get("source"), sort_keys=True), pl.String),
            git_commit=pl.lit(ctx.get("git_commit"), pl.String),
        )
        return cls(frame, ctx)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write Parquet with the context as JSON in the file's metadata (``workbench.context``)."""
        import pyarrow.parquet as pq

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        table = self.frame.to_arrow()
        meta = dict(table.schema.metadata or {})
        meta[b"workbench.format_version"] = str(FORMAT_VERSION).encode()
        meta[b"workbench.context"] = json.dumps(self.context, default=str, sort_keys=True).encode()
        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(table.replace_schema_metadata(meta), tmp)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Results:
        """Read a file written by :meth:`save`; refuse a format this workbench does not read."""
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        meta = table.schema.metadata or {}
        version = int(meta.get(b"workbench.format_version", b"0"))
        if version != FORMAT_VERSION:
            raise MeasureError(
                f"{str(path)!r} has results format {version}, this workbench reads {FORMAT_VERSION}: "
                "re-run the measurement"
            )
        ctx = json.loads(meta.get(b"workbench.context", b"{}"))
        return cls(pl.from_arrow(table), ctx)

    def summary(self, by: Sequence[str] = ("engine", "strategy", "sessions"), seed: int = 0) -> pl.DataFrame:
        """One row per group: n, median/p50/p95/p99 (ms) with intervals, cv, unstable, and counts."""
        out = []
        extra = [c for c in ("statements", "rows", "bytes", "server_ms") if c in self.frame.columns]
        loads = [c for c in ("load_before", "load_after") if c in self.frame.columns]
        for keys, part in self.frame.group_by(list(by), maintain_order=True):
            row = dict(zip(by, keys, strict=True))
            row.update(summarize(part["wall_ns"].to_list(), seed=seed))
            for c in extra:
                row[c] = part[c].drop_nulls().median() if part[c].drop_nulls().len() else None
            for c in loads:  # the worst the engine's timing saw
                row[c] = part[c].drop_nulls().max() if part[c].drop_nulls().len() else None
            out.append(row)
        return pl.DataFrame(out)

    def ratios(
        self,
        baseline: str,
        by: Sequence[str] = ("engine", "sessions"),
        column: str = "strategy",
        seed: int = 0,
        paired: bool = False,
        margin: float = EQUIVALENCE_MARGIN,
    ) -> pl.DataFrame:
        """Speedup of each ``column`` value over ``baseline`` within each group, with intervals.

        ``speedup`` = median(baseline) / median(other): above 1 the other is faster.
        ``paired=True`` (runs from one interleaved measurement, matched by ``run``):
        the median of the per-round ratios with :func:`paired_ratio`'s interval, and
        ``class``, the :func:`equivalence` class of the other's time against the baseline's.
        """
        out = []
        for keys, part in self.frame.group_by(list(by), maintain_order=True):
            base = part.filter(pl.col(column) == baseline).sort("run")["wall_ns"].to_list()
            if not base:
                continue
            for (value,), other in part.group_by(column, maintain_order=True):
                row: dict[str, Any] = {**dict(zip(by, keys, strict=True)), column: value}
                if paired:
                    r, lo, hi = paired_ratio(other.sort("run")["wall_ns"].to_list(), base, seed=seed)
                    row.update(speedup=1 / r, lo=1 / hi, hi=1 / lo, n=len(base))
                    row["class"] = equivalence(lo, hi, margin)
                else:
                    r, lo, hi = ratio(base, other["wall_ns"].to_list(), seed=seed)
                    row.update(speedup=r, lo=lo, hi=hi)
                out.append(row)
        return pl.DataFrame(out)


def latency_floor(
    engine: Any, *, repeat: int = 200, warmup: int = 20, clock: Clock = time.perf_counter_ns
) -> dict[str, Any]:
    """Median latency of a trivial statement (``SELECT 1``) through the engine's ``execute``.

    It is the per-statement floor: ``statements × floor`` is the least a strategy can cost.
    """
    times = measure(lambda: engine.execute("SELECT 1"), repeat=repeat, warmup=warmup, clock=clock)
    stats = summarize(times)
    return {
        "engine": engine.name,
        "floor_ms": stats["median_ms"],
        "lo": stats["median_lo"],
        "hi": stats["median_hi"],
    }

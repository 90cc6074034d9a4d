"""The comparisons notebook 04 shows, as tidy Polars frames (they never plot or print).

Every comparison checks equal results first (the same rows, counted) and raises
:class:`~.decode.ProcessingError` when two variants disagree.

- :func:`reader_scaling`: throughput and peak RSS against file size, each variant in a
  fresh process (peak RSS from the process's own ``VmHWM``), the workbench's ``ingest`` as the reference;
- :func:`writer_sweep` and :func:`knees`: insert throughput against batch size per
  engine and writer (each run time-boxed), and the batch size where each curve flattens;
  :func:`chosen` and :func:`speedup`: the writer and batch size to ship, and its effect
  over today's row-by-row insert with an interval over the batches;
- :func:`pacing`: the plan's fixed sleep against none and an adaptive pause, on every row;
- :func:`time_breakdown`: where a CPU profile's time goes (read, decode, rows, driver);
- :func:`objects_vs_buffers`: per-row objects against reused column buffers, with memray.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from workbench.processing.batch import AdaptivePause, FixedSleep, NoSleep, process
from workbench.processing.decode import COLUMNS, MessageRow, ProcessingError, Row
from workbench.processing.read import LINE_READERS, ReadStats, find_files, read_rows
from workbench.processing.write import Sink

#: Variants of the file-size experiment: "reader/decoder", a whole-tree reader, or the reference.
DEFAULT_VARIANTS = (
    "whole/orjson",
    "stream/json",
    "stream/orjson",
    "stream/msgspec",
    "chunked/orjson",
    "polars",
    "duckdb",
    "ingest",
)
MIB = 2**20
#: At most this much of a template tree is read to build a test file; the rest is copies.
TEMPLATE_BYTES = 16 * MIB


def reader_sizes(largest_mb: float, smallest_mb: float = 1.0, factor: float = 8.0) -> list[float]:
    """File sizes for the reader curves: ``smallest_mb`` times powers of ``factor`` up to
    ``largest_mb``, which is always the last.

    >>> reader_sizes(1024)
    [1.0, 8.0, 64.0, 512.0, 1024.0]
    >>> reader_sizes(64)
    [1.0, 8.0, 64.0]
    """
    if largest_mb <= 0 or smallest_mb <= 0:
        raise ProcessingError(f"File sizes must be above 0 MB, not {largest_mb!r}: use e.g. 64")
    sizes, size = [], float(smallest_mb)
    while size < largest_mb:
        sizes.append(size)
        size *= factor
    return [*sizes, float(largest_mb)]


def replicate(rows: Sequence[Row], n: int) -> list[Row]:
    """``n`` rows cycling through ``rows``; every pass after the first gives each ``uuid`` a
    suffix (``-000001``), so all ``n`` are distinct. Other values are shared, not copied, so
    100,000 rows cost little more memory than the template's.

    >>> [r[0] for r in replicate([("a", 1), ("b", 2)], 5)]
    ['a', 'b', 'a-000001', 'b-000001', 'a-000002']
    """
    if not rows:
        raise ProcessingError("No rows to replicate: the source file holds no message rows")
    return [
        rows[i % len(rows)]
        if i < len(rows)
        else (f"{rows[i % len(rows)][0]}-{i // len(rows):06d}", *rows[i % len(rows)][1:])
        for i in range(n)
    ]


# ---- test data: real lines replicated to a size --------------------------------------------
def make_transcript(
    template: str | os.PathLike[str], dest: str | os.PathLike[str], size_bytes: int
) -> dict[str, int]:
    """Write one transcript file of about ``size_bytes`` at ``dest`` by repeating the lines of
    the tree ``template``; each copy's ``uuid`` gets a suffix, so every message stays distinct."""
    lines: list[tuple[bytes, bytes]] = []
    enough = min(size_bytes, TEMPLATE_BYTES)  # one pass of the template is replicated
    held = 0
    for _, path in find_files(template):
        if held >= enough:
            break
        data = path.read_bytes()
        held += len(data)
        for raw in data.splitlines():
            head, sep, tail = raw.partition(b'"uuid":"')
            if not sep:
                lines.append((raw, b""))
                continue
            value, _, rest = tail.partition(b'"')
            lines.append((head + sep + value, b'"' + rest))
    if not lines:
        raise ProcessingError(f"Template {str(template)!r} holds no transcript lines: pass a transcript tree")
    out = Path(dest)
    out.parent.mkdir(parents=True, exist_ok=True)
    written = copies = n = 0
    with open(out, "wb") as f:
        while written < size_bytes:
            suffix = f"-{copies:06d}".encode()
            for head, tail in lines:
                data = head + suffix + tail + b"\n" if tail else head + b"\n"
                f.write(data)
                written += len(data)
                n += 1
                if written >= size_bytes:
                    break
            copies += 1
    return {"bytes": written, "lines": n, "copies": copies}


# ---- 1. readers against file size -----------------------------------------------------------
def measure_in_process(
    variant: str, path: str | os.PathLike[str], scratch: str | os.PathLike[str]
) -> dict[str, Any]:
    """One variant's read (:func:`.runner.run_variant`) in a fresh Python process, with that
    process's peak RSS."""
    cmd = [sys.executable, "-m", "workbench.processing.runner", variant, str(path), str(scratch)]
    env = os.environ | {
        "ARROW_DEFAULT_MEMORY_POOL": "system",
        "POLARS_MAX_THREADS": os.environ.get("POLARS_MAX_THREADS", "2"),
    }
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = proc.communicate()
    if proc.returncode:
        raise ProcessingError(
            f"Variant {variant!r} failed on {path}: {err.decode(errors='replace').strip()[-500:]}"
        )
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["peak_rss_mib"] = result.pop("self_peak_rss_kib") / 1024
    return result


def reader_scaling(
    template: str | os.PathLike[str],
    sizes_mb: Sequence[float],
    workdir: str | os.PathLike[str],
    variants: Sequence[str] = DEFAULT_VARIANTS,
) -> pl.DataFrame:
    """Throughput and peak RSS of each variant against file size (one file per size).

    Each run is a fresh process, so peak RSS is that variant's alone; ``baseline`` (a
    process that only imports) is subtracted into ``growth_mib``. Row counts must agree
    across variants for a size before any timing is kept.
    """
    work = Path(workdir)
    rows: list[dict[str, Any]] = []
    for size in sizes_mb:
        tree = work / f"tree-{size:g}mb" / "projects" / "-bench"
        file = tree / "session.jsonl"
        if not file.exists():
            made = make_transcript(template, file, int(size * MIB))
        else:
            made = {"bytes": file.stat().st_size}
        base = measure_in_process("baseline", file, work)["peak_rss_mib"]
        counts = {}
        for variant in variants:
            r = measure_in_process(variant, tree.parent if variant == "ingest" else file, work)
            counts[variant] = r["rows"]
            mb = made["bytes"] / MIB
            rows.append(
                {
                    "size_mb": mb,
                    "variant": variant,
                    "rows": r["rows"],
                    "seconds": r["seconds"],
                    "rows_per_s": r["rows"] / r["seconds"],
                    "mb_per_s": mb / r["seconds"],
                    "peak_rss_mib": r["peak_rss_mib"],
                    "growth_mib": max(0.0, r["peak_rss_mib"] - base),
                }
            )
        if len(set(counts.values())) != 1:
            raise ProcessingError(f"Variants disagree on the rows of a {size:g} MB file: {counts}")
    return pl.DataFrame(rows)


def flatness(scaling: pl.DataFrame) -> pl.DataFrame:
    """Per variant: peak RSS at the largest size over the smallest (1.0 = flat)."""
    return (
        scaling.sort("size_mb")
        .group_by("variant", maintain_order=True)
        .agg(
            smallest_mb=pl.col("size_mb").first(),
            largest_mb=pl.col("size_mb").last(),
            rss_small_mib=pl.col("peak_rss_mib").first(),
            rss_large_mib=pl.col("peak_rss_mib").last(),
            rows_per_s=pl.col("rows_per_s").last(),
        )
        .with_columns(rss_ratio=pl.col("rss_large_mib") / pl.col("rss_small_mib"))
        .with_columns(flat=pl.col("rss_ratio") <= 1.2)
    )


def target(engine: str, folder: str | os.PathLike[str], name: str, postgres_url: str | None = None) -> str:
    """Where a run writes: ``folder/name.engine`` for the embedded engines, else the PostgreSQL URL."""
    if engine == "postgres":
        if not postgres_url:
            raise ProcessingError(
                "PostgreSQL needs a URL: pass postgres_url (or leave postgres out of engines)"
            )
        return postgres_url
    return str(Path(folder) / f"{name}.{engine}")


def reference_sync(
    tree: str | os.PathLike[str],
    engine: str,
    folder: str | os.PathLike[str],
    postgres_url: str | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """The workbench's own path for the same job, the reference: ``ingest`` the tree into a
    Dataset, then the engine's bulk ``load`` (all five tables; ``rows`` counts messages)."""
    from workbench.engines import open_engine
    from workbench.sources.claude_code import ingest

    started = clock()
    report = ingest(
        [tree], Path(folder) / "reference-ds", progress=False, overwrite=True, update=False, workers=0
    )
    loaded = clock()
    options = {"schema_name": "workbench_reference"} if engine == "postgres" else {}
    with open_engine(engine, target(engine, folder, "reference", postgres_url), **options) as eng:
        eng.load(report.dataset, force=True)
    done = clock()
    return {
        "variant": "ingest + load (reference)",
        "rows": report.dataset.counts["messages"],
        "seconds": done - started,
        "ingest_s": loaded - started,
        "load_s": done - loaded,
    }


# ---- 2. writers against batch size ------------------------------------------------------------
def per_row_seconds(report: Any, batch_size: int) -> list[float]:
    """Each batch's write time per row (the last batch may hold fewer rows)."""
    times = report.batch_seconds
    if not times:
        return []
    sizes = [batch_size] * (len(times) - 1) + [report.rows_in - batch_size * (len(times) - 1)]
    return [t / max(n, 1) for t, n in zip(times, sizes, strict=True)]


def _interval(per_row: Sequence[float]) -> tuple[float, float]:
    """rows/s from the mean per-row time over the batches, with a bootstrap interval."""
    import numpy as np

    from workbench.measure import bootstrap

    if len(per_row) < 2:
        rate = 1 / per_row[0] if per_row and per_row[0] > 0 else float("nan")
        return rate, rate
    lo, hi = bootstrap(per_row, np.mean)
    return (1 / hi if hi > 0 else float("nan")), (1 / lo if lo > 0 else float("nan"))


def _run_row(engine: str, writer: str, size: int, report: Any) -> dict[str, Any]:
    per_row = per_row_seconds(report, size)
    low, high = _interval(per_row)
    return {
        "engine": engine,
        "writer": writer,
        "batch_size": size,
        "rows": report.rows_written,
        "batches": report.batches,
        "cut": report.cut,
        "seconds": report.seconds,
        "rows_per_s": report.rows_written / report.seconds if report.seconds > 0 else float("nan"),
        "low": low,
        "high": high,
        "per_row_s": per_row,
    }


_SWEEP_SCHEMA = {
    "engine": pl.String,
    "writer": pl.String,
    "batch_size": pl.Int64,
    "rows": pl.Int64,
    "batches": pl.Int64,
    "cut": pl.Boolean,
    "seconds": pl.Float64,
    "rows_per_s": pl.Float64,
    "low": pl.Float64,
    "high": pl.Float64,
    "per_row_s": pl.List(pl.Float64),
}


def _skipped(engine: str, writer: str, size: int) -> dict[str, Any]:
    """A run left out: at the writer's rate so far one batch would take over twice the box."""
    return {"engine": engine, "writer": writer, "batch_size": size, "rows": 0, "batches": 0, "cut": True}


def writer_sweep(
    rows: Sequence[Row],
    targets: dict[str, str],
    writers: Sequence[str],
    batch_sizes: Sequence[int],
    *,
    clock: Callable[[], float] = time.perf_counter,
    max_seconds: float | None = None,
    max_statements: int | None = None,
    baseline: bool = True,
) -> pl.DataFrame:
    """Insert throughput per engine, writer and batch size: every run starts from an empty
    table and must end with exactly the rows it wrote, distinct.

    A run writes ``rows`` in full unless ``max_seconds`` runs out first (``cut``; ``rows``
    says how many it wrote) or ``max_statements`` batches' worth of rows is less. With
    ``baseline``, each engine also runs today's insert: one ``INSERT`` per row, committed
    per row (writer ``row``, batch 1). With ``max_seconds``, a batch size at which one batch
    would take over twice the box (at the writer's rate at its previous size) is not run:
    its row shows 0 rows and no rate. ``low``-``high`` is an interval on rows/s from the
    mean per-row time over the run's batches (bootstrap); ``per_row_s`` holds each batch's
    per-row time, for ratios with intervals (:func:`speedup`); drop it before a CSV.
    """
    out = []
    grid = [(w, b) for w in writers for b in sorted(batch_sizes)]
    if baseline and ("row", 1) not in grid:
        grid.insert(0, ("row", 1))
    for engine, target in targets.items():
        rate: dict[str, float] = {}  # each writer's rows/s at its last batch size
        with Sink(engine, target, replace=True) as sink:
            for writer, size in grid:
                n = len(rows) if max_statements is None else min(len(rows), size * max_statements)
                if max_seconds is not None and writer in rate and size / rate[writer] > 2 * max_seconds:
                    out.append(_skipped(engine, writer, size))  # one batch would overrun the box
                    continue
                sink.truncate()
                report = process(
                    rows[: max(n, 1)],
                    sink,
                    batch_size=size,
                    writer=writer,
                    retries=0,
                    clock=clock,
                    max_seconds=max_seconds,
                )
                got = sink.totals()
                if got["rows"] != report.rows_written or got["uuids"] != report.rows_written:
                    raise ProcessingError(
                        f"{engine}/{writer} at batch {size} wrote {got}, expected {report.rows_written} rows"
                    )
                out.append(_run_row(engine, writer, size, report))
                rate[writer] = out[-1]["rows_per_s"]
    return pl.DataFrame(out, schema=_SWEEP_SCHEMA)


def knees(sweep: pl.DataFrame, share: float = 0.9) -> pl.DataFrame:
    """Per engine and writer: the smallest batch size reaching ``share`` of the curve's best
    throughput (the knee: larger batches buy less than ``1 - share`` more)."""
    best = sweep.group_by("engine", "writer").agg(best_rows_per_s=pl.col("rows_per_s").max())
    return (
        sweep.join(best, on=["engine", "writer"])
        .filter(pl.col("rows_per_s") >= share * pl.col("best_rows_per_s"))
        .sort("batch_size")
        .group_by("engine", "writer", maintain_order=True)
        .agg(
            knee_batch=pl.col("batch_size").first(),
            knee_rows_per_s=pl.col("rows_per_s").first(),
            best_rows_per_s=pl.col("best_rows_per_s").first(),
        )
        .sort("engine", "best_rows_per_s", descending=[False, True])
    )


def chosen(knees: pl.DataFrame, engine: str) -> dict[str, Any]:
    """The writer and batch size to ship on ``engine``: the writer with the best throughput
    (today's row-by-row insert excluded), at its knee."""
    part = knees.filter((pl.col("engine") == engine) & (pl.col("writer") != "row"))
    if part.is_empty():
        raise ProcessingError(f"No writer was measured on {engine!r}: include it in engines")
    return part.sort("best_rows_per_s", descending=True).row(0, named=True)


def mean_ratio(
    numerator: Sequence[float], denominator: Sequence[float], *, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """mean(numerator) / mean(denominator) with a 95% bootstrap interval, each side resampled
    over its own batches. Means, not medians: a job's time is the sum of its batches.

    >>> mean_ratio([2.0, 2.0, 2.0], [1.0, 1.0, 1.0])
    (2.0, 2.0, 2.0)
    """
    import numpy as np

    a, b = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    if a.size == 0 or b.size == 0:
        raise ProcessingError("A ratio needs batches on both sides: run both first")
    rng = np.random.default_rng(seed)
    boots = a[rng.integers(0, a.size, (n_boot, a.size))].mean(axis=1) / (
        b[rng.integers(0, b.size, (n_boot, b.size))].mean(axis=1)
    )
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return float(a.mean() / b.mean()), float(lo), float(hi)


def speedup(before: Sequence[float], after: Sequence[float]) -> tuple[float, float, float]:
    """How many times faster per row ``after`` writes than ``before`` (each a run's per-row
    batch times, :func:`per_row_seconds`), with a 95% interval over the batches."""
    return mean_ratio(before, after)


# ---- 3. the fixed sleep -----------------------------------------------------------------------
def pacing(
    rows: Sequence[Row],
    engine: str,
    target: str,
    batch_sizes: Sequence[int],
    sleeps_ms: Sequence[float],
    *,
    writer: str = "executemany",
    adaptive_target_ms: float | None = None,
    repeat: int = 1,
    paced_share: float | None = None,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], Any] = time.sleep,
) -> pl.DataFrame:
    """Every row written with no pause, the plan's fixed sleep (each length), and an adaptive
    pause (sleep only when a batch took longer than ``adaptive_target_ms``; default: 4x the
    median batch time of the no-pause run, i.e. only when the target clearly lags).

    With ``paced_share``, the paced runs stop after that share of the no-pause run's time
    (their ``rows`` say how many they wrote), and are compared with the no-pause run's same
    first batches (the same rows into a table as full). The fastest of ``repeat`` runs is kept.

    ``kept`` is the share of the no-pause throughput a pacing keeps: the no-pause run's time
    for the same batches over this run's (write + pause); ``kept_mean`` the same from the
    mean per-batch time, with a 95% interval ``kept_low``-``kept_high`` over the batches;
    ``per_row_s`` holds each batch's write time per row (drop it before a CSV).
    """
    out = []
    with Sink(engine, target, replace=True) as sink:
        for size in batch_sizes:
            policies: list[tuple[str, float, Any]] = [("none", 0.0, NoSleep())]
            policies += [("fixed", ms, FixedSleep(ms / 1000)) for ms in sleeps_ms if ms > 0]
            free: list[float] = []
            free_seconds = 0.0
            for kind, ms, pacer in [*policies, ("adaptive", 0.0, None)]:
                if pacer is None:
                    med = sorted(free)[len(free) // 2] if free else 0.0
                    target_s = adaptive_target_ms / 1000 if adaptive_target_ms is not None else 4 * med
                    pacer, ms = AdaptivePause(target_s), target_s * 1000
                runs = []
                box = paced_share * free_seconds if kind != "none" and paced_share else None
                for _ in range(repeat):  # the fastest of ``repeat``: the machine's noise only adds time
                    sink.truncate()
                    report = process(
                        rows,
                        sink,
                        batch_size=size,
                        writer=writer,
                        pacer=pacer,
                        clock=clock,
                        sleep=sleep,
                        max_seconds=box,
                    )
                    if sink.totals()["rows"] != report.rows_written or (box is None and report.cut):
                        raise ProcessingError(f"Pacing {kind} at batch {size} lost rows")
                    runs.append(report)
                report = min(runs, key=lambda x: x.seconds)
                elapsed = [b + p for b, p in zip(report.batch_seconds, report.pause_seconds, strict=True)]
                if kind == "none":
                    free, free_seconds = elapsed, report.seconds
                same = free[: len(elapsed)]  # the same batches: the same rows, the table as full
                mean, low, high = mean_ratio(same, elapsed) if same and elapsed else (1.0, 1.0, 1.0)
                out.append(
                    {
                        "batch_size": size,
                        "pacing": kind,
                        "sleep_ms": ms,
                        "rows": report.rows_written,
                        "batches": report.batches,
                        "seconds": report.seconds,
                        "slept_s": report.slept_seconds,
                        "rows_per_s": report.rows_written / report.seconds,
                        "kept": sum(same) / sum(elapsed) if elapsed else 1.0,
                        "kept_mean": mean,
                        "kept_low": low,
                        "kept_high": high,
                        "per_row_s": per_row_seconds(report, size),
                    }
                )
    return pl.DataFrame(out)


def confirmation(
    sweep: pl.DataFrame, pace: pl.DataFrame, engine: str, row_bytes: float = 0
) -> dict[str, Any]:
    """The chosen writer's run of every row (``pace``'s no-pause run) with its effect over
    today's insert on ``engine`` (the sweep's row-by-row run): ``effect``/``low``/``high``,
    as :func:`.conclude.batch_verdict` takes it."""
    confirm = pace.filter(pl.col("pacing") == "none").row(0, named=True)
    today = sweep.filter(
        (pl.col("engine") == engine) & (pl.col("writer") == "row") & (pl.col("batch_size") == 1)
    )
    if today.is_empty():
        raise ProcessingError(
            f"Today's insert was not measured on {engine!r}: run writer_sweep with baseline"
        )
    effect, low, high = speedup(today.row(0, named=True)["per_row_s"], confirm["per_row_s"])
    return confirm | {"effect": effect, "low": low, "high": high, "row_bytes": row_bytes}


def sync_targets(
    engines: Sequence[str],
    folder: str | os.PathLike[str],
    name: str,
    postgres_url: Callable[[], str],
) -> tuple[dict[str, str], dict[str, str]]:
    """Where each engine's runs write, and the engines left out with why (PostgreSQL when no
    server could be started; the others always open). When every engine asked for is left
    out, SQLite stands in (said in ``left_out``), so a laptop without PostgreSQL still runs."""
    from workbench.errors import EngineError

    targets, left_out = {}, {}
    for engine in dict.fromkeys(engines):
        try:
            targets[engine] = target(engine, folder, name, postgres_url() if engine == "postgres" else None)
        except EngineError as e:
            left_out[engine] = str(e)
    if not targets:
        targets["sqlite"] = target("sqlite", folder, name)
        left_out = {k: f"{why}; sqlite stands in" for k, why in left_out.items()}
    return targets, left_out


# ---- 4. where the time goes ------------------------------------------------------------------
_CATEGORIES = (
    ("decode", ("processing/decode.py", "json/", "orjson", "msgspec")),
    ("read", ("processing/read.py", "threading.py", "queue.py")),
    ("driver + engine", ("processing/write.py", "sqlite3", "duckdb", "psycopg")),
    ("batching", ("processing/batch.py",)),
)


def time_breakdown(profile: Any) -> pl.DataFrame:
    """A CPU profile's self time by stage: each frame's self time goes to the stage of the
    nearest frame (itself or an ancestor) in that stage's code; the rest is ``other``."""
    frame = profile.frame()
    by_id = {r["id"]: r for r in frame.iter_rows(named=True)}

    def stage(node_id: str) -> str:
        while node_id:
            loc = by_id[node_id]["location"]
            for name, marks in _CATEGORIES:
                if any(m in loc for m in marks):
                    return name
            node_id = by_id[node_id]["parent"]
        return "other"

    totals: dict[str, float] = {}
    for r in by_id.values():
        if r["self_s"] > 0:
            s = stage(r["id"])
            totals[s] = totals.get(s, 0.0) + r["self_s"]
    whole = sum(totals.values()) or 1.0
    return pl.DataFrame(
        {
            "profile": profile.name,
            "stage": list(totals),
            "seconds": list(totals.values()),
            "share": [v / whole for v in totals.values()],
        }
    ).sort("seconds", descending=True)


# ---- 5. per-row objects against reused buffers ------------------------------------------------
def build_batches(
    rows: Iterable[Row], mode: str, batch_size: int, sink: Callable[[Any], Any] = lambda b: None
) -> int:
    """Group ``rows`` into batches the three ways: ``tuples`` (a new list of the decoder's
    tuples), ``objects`` (a :class:`MessageRow` per row, the plan's per-row structs) or
    ``buffers`` (one preallocated list per column, overwritten batch after batch: the pool)."""
    n = 0
    if mode == "buffers":
        columns: list[list[Any]] = [[None] * batch_size for _ in COLUMNS]  # allocated once
        i = 0
        for row in rows:
            for col, value in zip(columns, row, strict=True):
                col[i] = value
            i += 1
            n += 1
            if i == batch_size:
                sink(columns)
                i = 0
        if i:
            sink([c[:i] for c in columns])
        return n
    if mode not in ("tuples", "objects"):
        raise ProcessingError(f"Unknown batch mode {mode!r}: expected one of tuples, objects, buffers")
    batch: list[Any] = []
    for row in rows:
        batch.append(MessageRow(*row) if mode == "objects" else row)
        n += 1
        if len(batch) >= batch_size:
            sink(batch)
            batch = []
    if batch:
        sink(batch)
    return n


def objects_vs_buffers(
    path: str | os.PathLike[str], out_dir: str | os.PathLike[str], batch_size: int = 1000
) -> pl.DataFrame:
    """memray's peak and allocation count (every Python allocation traced) for each batch mode."""
    from workbench import profiling

    out = []
    for mode in ("tuples", "objects", "buffers"):
        with profiling.memory(f"batches-{mode}", out_dir, python_allocators=True) as mem:
            n = build_batches(read_rows(path, reader="stream", decode="orjson"), mode, batch_size)
        out.append(
            {
                "mode": mode,
                "rows": n,
                "peak_mib": mem.peak_bytes / MIB,
                "allocations": mem.allocations,
                "allocations_per_row": mem.allocations / max(n, 1),
            }
        )
    frame = pl.DataFrame(out)
    if frame["rows"].n_unique() != 1:
        raise ProcessingError(f"Batch modes disagree on the row count: {frame['rows'].to_list()}")
    return frame


def check_readers_agree(path: str | os.PathLike[str], readers: Sequence[str] = LINE_READERS) -> int:
    """The number of rows every line reader and decoder finds in ``path`` (they must agree)."""
    seen = {}
    for reader in readers:
        for decode in ("json", "orjson", "msgspec"):
            stats = ReadStats()
            seen[f"{reader}/{decode}"] = (
                sum(1 for _ in read_rows(path, reader=reader, decode=decode, stats=stats)),
                len(stats.issues),
            )
    if len(set(seen.values())) != 1:
        raise ProcessingError(f"Readers disagree on {path}: {seen}")
    return next(iter(seen.values()))[0]

"""The comparisons notebook 04 shows, as tidy Polars frames (they never plot or print).

Every comparison checks equal results first (the same rows, counted) and raises
:class:`~.decode.ProcessingError` when two variants disagree.

- :func:`reader_scaling`: throughput and peak RSS against file size, each variant in a
  fresh process (peak RSS from the process's own ``VmHWM``), the workbench's ``ingest`` as the reference;
- :func:`writer_sweep` and :func:`knees`: insert throughput against batch size per
  engine and writer, and the batch size where each curve flattens;
- :func:`pacing`: the plan's fixed sleep against none and an adaptive pause;
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


# ---- test data: real lines replicated to a size --------------------------------------------
def make_transcript(
    template: str | os.PathLike[str], dest: str | os.PathLike[str], size_bytes: int
) -> dict[str, int]:
    """Write one transcript file of about ``size_bytes`` at ``dest`` by repeating the lines of
    the tree ``template``; each copy's ``uuid`` gets a suffix, so every message stays distinct."""
    lines: list[tuple[bytes, bytes]] = []
    for _, path in find_files(template):
        for raw in path.read_bytes().splitlines():
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
def writer_sweep(
    rows: Sequence[Row],
    targets: dict[str, str],
    writers: Sequence[str],
    batch_sizes: Sequence[int],
    *,
    clock: Callable[[], float] = time.perf_counter,
    max_statements: int = 200,
) -> pl.DataFrame:
    """Insert throughput per engine, writer and batch size: every run starts from an empty
    table and must end with exactly ``len(rows)`` distinct rows.

    A run is cut to ``max_statements`` batches' worth of rows (so batch size 1 stays
    affordable); ``rows`` says how many were written.
    """
    out = []
    for engine, target in targets.items():
        with Sink(engine, target, replace=True) as sink:
            for writer in writers:
                for size in batch_sizes:
                    subset = list(rows[: max(size, min(len(rows), size * max_statements))])
                    sink.truncate()
                    report = process(subset, sink, batch_size=size, writer=writer, retries=0, clock=clock)
                    got = sink.totals()
                    if got["rows"] != len(subset) or got["uuids"] != len(subset):
                        raise ProcessingError(
                            f"{engine}/{writer} at batch {size} wrote {got}, expected {len(subset)} rows"
                        )
                    out.append(
                        {
                            "engine": engine,
                            "writer": writer,
                            "batch_size": size,
                            "rows": len(subset),
                            "seconds": report.seconds,
                            "rows_per_s": len(subset) / report.seconds
                            if report.seconds > 0
                            else float("nan"),
                        }
                    )
    return pl.DataFrame(out)


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
    repeat: int = 3,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], Any] = time.sleep,
) -> pl.DataFrame:
    """Best of ``repeat`` runs: throughput with no pause, the plan's fixed sleep (each
    length), and an adaptive pause (sleep only when a batch took longer than
    ``adaptive_target_ms``; default: 4x the median batch time of the no-pause run, i.e.
    only when the target clearly lags)."""
    out = []
    with Sink(engine, target, replace=True) as sink:
        for size in batch_sizes:
            durations: list[float] = []
            last = [0.0]

            def record(p: Any, durations: list[float] = durations, last: list[float] = last) -> None:
                durations.append(p.seconds - last[0])
                last[0] = p.seconds

            policies: list[tuple[str, float, Any]] = [("none", 0.0, NoSleep())]
            policies += [("fixed", ms, FixedSleep(ms / 1000)) for ms in sleeps_ms if ms > 0]
            for i, (kind, ms, pacer) in enumerate([*policies, ("adaptive", 0.0, None)]):
                if pacer is None:
                    med = sorted(durations)[len(durations) // 2] if durations else 0.0
                    target_s = adaptive_target_ms / 1000 if adaptive_target_ms is not None else 4 * med
                    pacer, ms = AdaptivePause(target_s), target_s * 1000
                runs = []
                for r in range(repeat):  # best of ``repeat``: the machine's noise only ever adds time
                    sink.truncate()
                    first = i == 0 and r == 0
                    report = process(
                        rows,
                        sink,
                        batch_size=size,
                        writer=writer,
                        pacer=pacer,
                        clock=clock,
                        sleep=sleep,
                        progress=record if first else None,
                    )
                    if sink.totals()["rows"] != len(rows):
                        raise ProcessingError(f"Pacing {kind} at batch {size} lost rows")
                    runs.append(report)
                report = min(runs, key=lambda x: x.seconds)
                out.append(
                    {
                        "batch_size": size,
                        "pacing": kind,
                        "sleep_ms": ms,
                        "rows": len(rows),
                        "seconds": report.seconds,
                        "slept_s": report.slept_seconds,
                        "rows_per_s": len(rows) / report.seconds,
                    }
                )
    frame = pl.DataFrame(out)
    free = frame.filter(pl.col("pacing") == "none").select("batch_size", free_rows_per_s="rows_per_s")
    return frame.join(free, on="batch_size").with_columns(
        kept=pl.col("rows_per_s") / pl.col("free_rows_per_s")
    )


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

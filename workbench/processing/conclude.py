"""Notebook 04's conclusions, computed from its frames (sentences built from numbers)."""

from __future__ import annotations

import polars as pl

from workbench.verdicts import Verdict

#: The plan's memory target for the sync job, whatever the file size.
MEMORY_TARGET_MIB = 500.0
STREAMING = ("stream", "chunked")


def rss_at(scaling: pl.DataFrame, variant: str, size_mb: float) -> float:
    """Peak RSS of ``variant`` extrapolated linearly to ``size_mb`` from its smallest and largest runs."""
    part = scaling.filter(pl.col("variant") == variant).sort("size_mb")
    x0, x1 = part["size_mb"][0], part["size_mb"][-1]
    y0, y1 = part["peak_rss_mib"][0], part["peak_rss_mib"][-1]
    slope = max(0.0, (y1 - y0) / (x1 - x0)) if x1 > x0 else 0.0
    return y1 + slope * max(0.0, size_mb - x1)


def reader_verdicts(
    scaling: pl.DataFrame, target_mib: float = MEMORY_TARGET_MIB, at_mb: float = 1024
) -> list[Verdict]:
    largest = scaling["size_mb"].max()
    smallest = scaling["size_mb"].min()
    big = scaling.filter(pl.col("size_mb") == largest)
    ratio = {
        v: rss_at(scaling, v, largest)
        / scaling.filter((pl.col("variant") == v) & (pl.col("size_mb") == smallest))["peak_rss_mib"][0]
        for v in scaling["variant"].unique(maintain_order=True)
    }
    streaming = [v for v in ratio if v.split("/")[0] in STREAMING]
    flat = [v for v in streaming if ratio[v] <= 1.2]
    out = []
    if "whole/orjson" in ratio or any(v.startswith("whole/") for v in ratio):
        whole = next(v for v in ratio if v.startswith("whole/"))
        projected = rss_at(scaling, whole, at_mb)
        shape = "flat" if len(flat) == len(streaming) else "mostly flat"
        within = max(ratio[v] for v in streaming)
        peak_streaming = big.filter(pl.col("variant").is_in(streaming))["peak_rss_mib"].max()
        out.append(
            Verdict(
                "the plan's whole-file read vs line streaming",
                f"streaming {shape}; whole file grows {ratio[whole]:.1f}x",
                f"From {smallest:.0f} to {largest:.0f} MB the whole-file reader's peak RSS grew "
                f"{ratio[whole]:.2f}x; the streaming readers stayed within {within:.2f}x. Extrapolated to "
                f"{at_mb / 1024:g} GB the whole-file read needs about {projected:,.0f} MiB "
                f"({'over' if projected > target_mib else 'under'} the plan's {target_mib:.0f} MiB target); "
                f"the streaming readers' buffers are bounded (peak {peak_streaming:,.0f} MiB here).",
            )
        )
    decoders = big.filter(pl.col("variant").str.starts_with("stream/")).sort("rows_per_s", descending=True)
    if decoders.height >= 2:
        best, worst = decoders.row(0, named=True), decoders.row(-1, named=True)
        fast, slow = best["variant"].split("/")[1], worst["variant"].split("/")[1]
        out.append(
            Verdict(
                "decoder (json, orjson, msgspec)",
                f"{fast}, {best['rows_per_s'] / worst['rows_per_s']:.1f}x {slow}",
                f"Line streaming at {largest:.0f} MB: {best['variant']} {best['rows_per_s']:,.0f} rows/s, "
                f"{worst['variant']} {worst['rows_per_s']:,.0f} rows/s.",
            )
        )
    libs = big.filter(pl.col("variant").is_in(["polars", "duckdb", "ingest"]))
    if libs.height and decoders.height:
        best = decoders.row(0, named=True)
        parts = [
            f"{r['variant']} {r['rows_per_s']:,.0f} rows/s at {r['peak_rss_mib']:,.0f} MiB "
            f"({ratio[r['variant']]:.2f}x the RSS of the smallest file)"
            for r in libs.iter_rows(named=True)
        ]
        growing = [r["variant"] for r in libs.iter_rows(named=True) if ratio[r["variant"]] > 1.2]
        out.append(
            Verdict(
                "use a library (Polars, DuckDB) or the workbench's ingest",
                f"grows: {', '.join(growing)}" if growing else "all flat here",
                f"At {largest:.0f} MB: " + "; ".join(parts) + f"; best line streaming {best['variant']} "
                f"{best['rows_per_s']:,.0f} rows/s at {best['peak_rss_mib']:,.0f} MiB.",
            )
        )
    return out


def writer_verdicts(sweep: pl.DataFrame, knees: pl.DataFrame) -> list[Verdict]:
    out = []
    for engine in knees["engine"].unique(maintain_order=True):
        k = (
            knees.filter(pl.col("engine") == engine)
            .sort("best_rows_per_s", descending=True)
            .row(0, named=True)
        )
        before = sweep.filter((pl.col("engine") == engine) & (pl.col("writer") == "row")).sort("batch_size")
        base = before["rows_per_s"][0] if before.height else float("nan")
        out.append(
            Verdict(
                "writer and batch size",
                f"{k['writer']}, batch {k['knee_batch']:,}",
                f"{k['writer']} reaches 90% of its best ({k['best_rows_per_s']:,.0f} rows/s) at batch size "
                f"{k['knee_batch']:,}; that is {k['best_rows_per_s'] / base:,.0f}x the plan's row-by-row "
                f"insert committed per row ({base:,.0f} rows/s). Larger batches buy less than 10% more.",
                engine,
            )
        )
    return out


def pacing_verdict(pacing: pl.DataFrame) -> Verdict:
    fixed = pacing.filter(pl.col("pacing") == "fixed").sort("kept")
    adaptive = pacing.filter(pl.col("pacing") == "adaptive")
    worst = fixed.row(0, named=True)
    asleep = worst["slept_s"] / worst["seconds"]
    kept = adaptive["kept"].min()
    verdict = "drop it (pause adaptively)" if worst["kept"] < 0.9 else "harmless at these sizes"
    return Verdict(
        "the fixed sleep between batches",
        verdict,
        f"A fixed {worst['sleep_ms']:g} ms sleep at batch size {worst['batch_size']:,} keeps "
        f"{worst['kept']:.0%} of the no-pause throughput: {asleep:.0%} of the job is spent asleep. "
        f"An adaptive pause (sleep only when a batch runs slower than 4x the median) slept "
        f"{adaptive['slept_s'].max():.2f} s at most and kept {kept:.0%} or more (best of 3 runs each).",
    )


def pools_verdict(batches: pl.DataFrame) -> Verdict:
    """Reused column buffers (the plan's object pools) against a new object per row, from
    memray's allocation counts; with a ``tuples`` run, how much of it the row holder is."""
    by = {r["mode"]: r for r in batches.iter_rows(named=True)}
    obj, buf = by["objects"], by["buffers"]
    saved = 1 - buf["allocations"] / obj["allocations"]
    change = f"{abs(saved):.0%} {'fewer' if saved >= 0 else 'more'}"
    detail = (
        f"memray counted {obj['allocations_per_row']:.0f} allocations per row with a per-row object and "
        f"{buf['allocations_per_row']:.0f} with reused column buffers ({change}; peak {obj['peak_mib']:.1f} "
        f"against {buf['peak_mib']:.1f} MiB)"
    )
    if "tuples" in by:
        holder = 1 - by["tuples"]["allocations_per_row"] / obj["allocations_per_row"]
        detail += (
            f"; a plain tuple per row needs {by['tuples']['allocations_per_row']:.0f}, so the row object is "
            f"{max(holder, 0):.0%} of a row's allocations and the rest is reading and decoding the line"
        )
    return Verdict(
        "object pools (reused buffers) vs per-row objects",
        "not worth it" if saved < 0.1 else f"saves {saved:.0%} of allocations",
        detail + ".",
    )


def breakdown_verdict(breakdown: pl.DataFrame) -> Verdict:
    """Where the CPU time of each profiled sync goes: the slowest one's largest stage first."""
    totals = breakdown.group_by("profile").agg(pl.col("seconds").sum()).sort("seconds", descending=True)
    lines = []
    for profile in totals["profile"]:
        top = breakdown.filter(pl.col("profile") == profile).sort("share", descending=True).row(0, named=True)
        lines.append(f"{profile}: {top['stage']} {top['share']:.0%} of its CPU samples")
    slowest = totals["profile"][0]
    top = breakdown.filter(pl.col("profile") == slowest).sort("share", descending=True).row(0, named=True)
    return Verdict(
        "where the time goes (slowest vs fastest)",
        f"{top['stage']}: {top['share']:.0%} of the slowest sync",
        "; ".join(lines) + ".",
    )

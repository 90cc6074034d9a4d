"""Notebook 04's conclusions, computed from its frames (sentences built from numbers).

The plan items it decides: ``streaming``, ``batch_size`` and ``fixed_sleep``, and the
success criterion ``success:memory`` for the log-sync job. Nothing is claimed beyond the
largest size measured.
"""

from __future__ import annotations

import polars as pl

from workbench.verdicts import Verdict

#: The plan's memory target for the sync job, whatever the file size.
MEMORY_TARGET_MIB = 500.0
STREAMING = ("stream", "chunked")


def _rss(scaling: pl.DataFrame, variant: str, size_mb: float) -> float:
    return scaling.filter((pl.col("variant") == variant) & (pl.col("size_mb") == size_mb))["peak_rss_mib"][0]


def _mb(x: float) -> str:
    return f"{x:,.0f} MB" if x >= 10 else f"{x:.2g} MB"


def shipped_reader(scaling: pl.DataFrame) -> str:
    """The streaming variant to ship: the fastest at the largest size among the line-streaming
    readers whose peak RSS stayed flat (within 1.2x of the smallest file's), else the fastest."""
    largest, smallest = scaling["size_mb"].max(), scaling["size_mb"].min()
    part = scaling.filter(
        pl.col("variant").str.split("/").list.first().is_in(STREAMING) & (pl.col("size_mb") == largest)
    )
    if part.is_empty():
        raise ValueError("No streaming reader was measured: include stream/... in the variants")
    flat = [v for v in part["variant"] if _rss(scaling, v, largest) <= 1.2 * _rss(scaling, v, smallest)]
    pick = part.filter(pl.col("variant").is_in(flat)) if flat else part
    return pick.sort("rows_per_s", descending=True)["variant"][0]


def reach(scaling: pl.DataFrame, day_mb: float) -> str:
    """How far the readers went, against the log day, in words for a verdict."""
    largest = scaling["size_mb"].max()
    if largest >= day_mb * 0.999:
        return f"measured up to the profile's log day ({_mb(day_mb)})"
    return (
        f"measured up to {_mb(largest)}, the largest file in this run; the profile's log day "
        f"({_mb(day_mb)}) is beyond it (benchmarks/bench_processing.py --day measures it)"
    )


def reader_verdicts(
    scaling: pl.DataFrame,
    target_mib: float = MEMORY_TARGET_MIB,
    day_mb: float = 1024.0,
    conditions: dict | None = None,
) -> list[Verdict]:
    """Streaming against the whole-file read (the plan item ``streaming``), the decoders,
    the libraries: from the sizes measured, never extrapolated beyond the largest."""
    largest = scaling["size_mb"].max()
    smallest = scaling["size_mb"].min()
    big = scaling.filter(pl.col("size_mb") == largest)
    ratio = {
        v: _rss(scaling, v, largest) / _rss(scaling, v, smallest)
        for v in scaling["variant"].unique(maintain_order=True)
    }
    streaming = [v for v in ratio if v.split("/")[0] in STREAMING]
    out = []
    whole = next((v for v in ratio if v.startswith("whole/")), None)
    if whole and streaming:
        ship = shipped_reader(scaling)
        w, st = _rss(scaling, whole, largest), _rss(scaling, ship, largest)
        grows = (w - _rss(scaling, whole, smallest)) / (largest - smallest) if largest > smallest else 0.0
        flat = ratio[ship] <= 1.2
        under = st <= target_mib
        at_day = largest >= day_mb * 0.999
        decision = "ship" if flat and under else "ship changed" if under else "don't ship"
        speed = big.filter(pl.col("variant").is_in([whole, ship]))
        rate = {r["variant"]: r["rows_per_s"] for r in speed.iter_rows(named=True)}
        day_words = (
            f"at the log day the whole-file read peaked at {w:,.0f} MiB "
            f"({'over' if w > target_mib else 'under'} the {target_mib:,.0f} MiB target)"
            if at_day
            else f"the whole-file read grew {grows:,.1f} MiB per MB of file between {_mb(smallest)} "
            f"and {_mb(largest)}"
        )
        out.append(
            Verdict(
                "streaming the JSONL log sync (the plan's whole-file read vs line streaming)",
                f"{ship}: {st:,.0f} MiB flat; whole file {w:,.0f} MiB at {_mb(largest)}"
                if flat
                else f"{ship} grows {ratio[ship]:.2f}x",
                f"Peak RSS of a fresh process reading one file, {reach(scaling, day_mb)}. At {_mb(largest)} "
                f"line streaming ({ship}) peaked at {st:,.0f} MiB ({ratio[ship]:.2f}x its {_mb(smallest)} "
                f"peak), the plan's whole-file read ({whole}) at {w:,.0f} MiB ({ratio[whole]:.1f}x); "
                f"{day_words}. Throughput at {_mb(largest)}: {rate.get(ship, float('nan')):,.0f} against "
                f"{rate.get(whole, float('nan')):,.0f} rows/s (one run per size).",
                item="streaming",
                decision=decision,
                effect=w / st,
                unit="x",
                conditions={
                    **(conditions or {}),
                    "largest_mb": round(largest, 1),
                    "day_mb": day_mb,
                    "target_mib": target_mib,
                },
                cost="a line reader with a length limit (bufio.Reader, not os.ReadFile); no loss of "
                "throughput here",
                flips="only if files stay so small that the whole-file read fits the target with room: "
                f"at {_mb(largest)} it already held {w:,.0f} MiB",
                evidence="04_batch_streaming.html",
                artifact=f"reader=stream, decoder={ship.split('/')[1] if '/' in ship else ship}; "
                "lines over 64 MiB quarantined",
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
                f"Line streaming at {_mb(largest)}: {best['variant']} {best['rows_per_s']:,.0f} rows/s, "
                f"{worst['variant']} {worst['rows_per_s']:,.0f} rows/s (one run each).",
            )
        )
    libs = big.filter(pl.col("variant").is_in(["polars", "duckdb", "ingest"]))
    if libs.height and decoders.height:
        best = decoders.row(0, named=True)
        parts = [
            f"{r['variant']} {r['rows_per_s']:,.0f} rows/s at {r['peak_rss_mib']:,.0f} MiB "
            f"({ratio[r['variant']]:.2f}x the RSS at {_mb(smallest)})"
            for r in libs.iter_rows(named=True)
        ]
        growing = [r["variant"] for r in libs.iter_rows(named=True) if ratio[r["variant"]] > 1.2]
        out.append(
            Verdict(
                "use a library (Polars, DuckDB) or the workbench's ingest",
                f"grows: {', '.join(growing)}" if growing else "all flat here",
                f"At {_mb(largest)}: " + "; ".join(parts) + f"; best line streaming {best['variant']} "
                f"{best['rows_per_s']:,.0f} rows/s at {best['peak_rss_mib']:,.0f} MiB.",
            )
        )
    return out


def memory_success(
    scaling: pl.DataFrame, day_mb: float = 1024.0, conditions: dict | None = None, lower: float = 0.3
) -> Verdict | None:
    """The plan's "memory 30% lower", for the sync job: today's whole-file read against the
    shipped line streaming, peak RSS at the largest file measured."""
    whole = next((v for v in scaling["variant"].unique() if v.startswith("whole/")), None)
    if whole is None:
        return None
    largest = scaling["size_mb"].max()
    ship = shipped_reader(scaling)
    today, shipped = _rss(scaling, whole, largest), _rss(scaling, ship, largest)
    cut = 1 - shipped / today
    return Verdict(
        "memory 30% lower (the log-sync job)",
        f"{cut:.0%} lower: {today:,.0f} -> {shipped:,.0f} MiB",
        f"The sync job's reading process: peak RSS {today:,.0f} MiB today ({whole}) against "
        f"{shipped:,.0f} MiB with line streaming ({ship}) on a {_mb(largest)} file; "
        f"{reach(scaling, day_mb)}. This is the log-sync job only; the API's memory is notebook 05's.",
        item="success:memory",
        decision="ship" if cut >= lower else "don't ship",
        effect=cut * 100,
        unit="%",
        conditions={**(conditions or {}), "largest_mb": round(largest, 1), "job": "log sync"},
        evidence="04_batch_streaming.html",
        governs="the plan's memory problem is the log sync reading whole files (its target: the sync "
        "job under 500 MB whatever the file size); the service's memory (05) is shown beside it",
    )


def writer_verdicts(sweep: pl.DataFrame, knees: pl.DataFrame, skip: str | None = None) -> list[Verdict]:
    """Per engine (but ``skip``, whose word is :func:`batch_verdict`): the best writer at its
    knee, against today's row-by-row insert (detail, for comparison)."""
    out = []
    for engine in knees["engine"].unique(maintain_order=True):
        if engine == skip:
            continue
        k = (
            knees.filter((pl.col("engine") == engine) & (pl.col("writer") != "row"))
            .sort("best_rows_per_s", descending=True)
            .row(0, named=True)
        )
        before = sweep.filter((pl.col("engine") == engine) & (pl.col("writer") == "row")).sort("batch_size")
        base = before["rows_per_s"][0] if before.height else float("nan")
        n = int(before["rows"][0]) if before.height and "rows" in before.columns else 0
        out.append(
            Verdict(
                "writer and batch size (for comparison)",
                f"{k['writer']}, batch {k['knee_batch']:,}",
                f"{k['writer']} reaches 90% of its best ({k['best_rows_per_s']:,.0f} rows/s) at batch size "
                f"{k['knee_batch']:,}; that is {k['best_rows_per_s'] / base:,.0f}x today's row-by-row "
                f"insert committed per row ({base:,.0f} rows/s{f', over {n:,} rows' if n else ''}). "
                "Larger batches buy less than 10% more.",
                engine,
            )
        )
    return out


def batch_verdict(
    sweep: pl.DataFrame,
    knees: pl.DataFrame,
    confirm: dict,
    engine: str,
    conditions: dict | None = None,
) -> Verdict:
    """The plan item ``batch_size``: the writer and batch size to ship on the profile's
    engine, from the sweep, and its effect over today's insert from a run of every row.

    ``confirm``: the chosen writer's full run (``rows``, ``batches``, ``rows_per_s``) and
    ``effect``/``low``/``high``, its per-row speedup over today's insert with an interval.
    """
    k = knees.filter((pl.col("engine") == engine) & (pl.col("writer") != "row")).sort(
        "best_rows_per_s", descending=True
    )
    best = k.row(0, named=True)
    runner_up = k.row(1, named=True) if k.height > 1 else None
    part = sweep.filter(pl.col("engine") == engine)
    base = part.filter((pl.col("writer") == "row") & (pl.col("batch_size") == 1)).row(0, named=True)
    sizes = sorted(part.filter(pl.col("writer") == best["writer"])["batch_size"].to_list())
    bigger = [b for b in sizes if b > best["knee_batch"]]
    row_bytes = confirm.get("row_bytes", 0)
    held = best["knee_batch"] * row_bytes / 2**20
    other = (
        f"; next best {runner_up['writer']} at {runner_up['best_rows_per_s']:,.0f} rows/s"
        if runner_up
        else ""
    )
    return Verdict(
        "the writer and batch size of log sync",
        f"{best['writer']}, batch {best['knee_batch']:,}: {confirm['effect']:,.0f}x today's insert "
        f"({confirm['low']:,.0f}-{confirm['high']:,.0f}x)",
        f"On {engine}, {confirm['rows']:,} rows in {confirm['batches']:,} batches of {best['knee_batch']:,} "
        f"written with {best['writer']} at {confirm['rows_per_s']:,.0f} rows/s, against today's one "
        f"INSERT per row committed per row at {base['rows_per_s']:,.0f} rows/s ({base['rows']:,} rows). "
        f"The batch size is the knee of the sweep ({', '.join(f'{b:,}' for b in sizes)}): the smallest "
        f"reaching 90% of {best['writer']}'s best{other}.",
        engine=engine,
        item="batch_size",
        decision="ship" if best["writer"] == "bulk" else "ship changed",
        effect=confirm["effect"],
        low=confirm["low"],
        high=confirm["high"],
        unit="x",
        conditions={
            **(conditions or {}),
            "engine": engine,
            "rows": confirm["rows"],
            "batches": confirm["batches"],
        },
        cost=f"a batch held in memory: about {held:,.1f} MiB at {best['knee_batch']:,} rows"
        if row_bytes
        else "a batch held in memory",
        flips=f"batches above {best['knee_batch']:,} buy less than 10% more (measured up to {max(bigger):,})"
        if bigger
        else f"{best['knee_batch']:,} is the largest batch size measured: larger ones may still be faster",
        evidence="04_batch_streaming.html",
        artifact=f"batch_size = {best['knee_batch']}, writer = {best['writer']}"
        + (" (COPY)" if engine == "postgres" and best["writer"] == "bulk" else ""),
    )


def pacing_verdict(
    pacing: pl.DataFrame,
    conditions: dict | None = None,
    day_rows: int | None = None,
    screen: pl.DataFrame | None = None,
) -> Verdict:
    """The plan item ``fixed_sleep``: what the plan's fixed sleep costs against no pause, and
    whether an adaptive pause (sleep only when the target lags) keeps the throughput.

    ``screen``: the writer sweep's runs of the same engine and writer; the sleep's share of
    the job at their batch sizes (from their measured batch times) says where it flips."""
    fixed = pacing.filter(pl.col("pacing") == "fixed").sort("kept_mean")
    adaptive = pacing.filter(pl.col("pacing") == "adaptive").sort("kept_mean")
    worst = fixed.row(0, named=True)
    asleep = worst["slept_s"] / worst["seconds"]
    ad = adaptive.row(0, named=True)
    costly = worst["kept_high"] < 0.9  # the whole interval below 90%: it surely costs 10% or more
    day = ""
    if day_rows:
        batches = -(-day_rows // worst["batch_size"])
        day = (
            f" A log day of about {day_rows:,} rows is {batches:,} batches: "
            f"{batches * worst['sleep_ms'] / 1000:,.1f} s asleep."
        )
    return Verdict(
        "the fixed sleep between batches",
        f"costs {1 - worst['kept_mean']:.0%} of the throughput: pause adaptively"
        if costly
        else "costs under 10% here",
        f"{worst['rows']:,} rows in {worst['batches']:,} batches of {worst['batch_size']:,}: a fixed "
        f"{worst['sleep_ms']:g} ms sleep after every batch kept {worst['kept_mean']:.0%} "
        f"({worst['kept_low']:.0%}-{worst['kept_high']:.0%}) of the no-pause throughput per batch, "
        f"{asleep:.0%} of the job asleep. An adaptive pause (sleep only when a batch runs slower than "
        f"{ad['sleep_ms']:.3g} ms, 4x the median) slept {ad['slept_s']:.2f} s and kept "
        f"{ad['kept_mean']:.0%} "
        f"({ad['kept_low']:.0%}-{ad['kept_high']:.0%}).{day}",
        item="fixed_sleep",
        decision="don't ship" if costly else "ship",
        effect=worst["kept_mean"] * 100,
        low=worst["kept_low"] * 100,
        high=worst["kept_high"] * 100,
        unit="%",
        conditions={
            **(conditions or {}),
            "rows": worst["rows"],
            "batch_size": worst["batch_size"],
            "sleep_ms": worst["sleep_ms"],
        },
        cost=f"{worst['sleep_ms']:g} ms per batch, whether or not the database needs the rest",
        flips=_sleep_flips(screen, worst["sleep_ms"], worst["batch_size"]),
        evidence="04_batch_streaming.html",
        artifact="AdaptivePause(target = 4x the median batch time) instead of a fixed sleep",
    )


def _sleep_flips(screen: pl.DataFrame | None, sleep_ms: float, size: int) -> str:
    """The sleep's share of the job at the other batch sizes screened (their batch times)."""
    text = "with smaller batches (the sleep's share grows with their number), or when the database "
    text += "needs protecting: then pause on its latency, not by the clock"
    if screen is None:
        return text
    shares = [
        f"batch {r['batch_size']:,}: {sleep_ms / (sleep_ms + 1000 * r['batch_size'] / r['rows_per_s']):.0%}"
        for r in screen.filter(pl.col("rows") > 0).sort("batch_size").iter_rows(named=True)
        if r["batch_size"] != size
    ]
    return text + (f"; the sleep's share of the job at {', '.join(shares)}" if shares else "")


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

"""Five-hour usage windows computed from message timestamps, as ccusage does.

A window opens at its first message's timestamp rounded down to the hour (UTC) and
nominally ends five hours later. A message joins the current window unless more
than five hours have passed since the window's start or since the previous message;
then it opens a new window. (ccusage ``blocks``; see the fixtures' FORMAT.md §11.)

The computation is vectorised: runs of activity are split at gaps over five hours
in one pass; inside a run, windows are peeled off one per iteration, and a run
rarely holds more than a few windows.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

WINDOW = timedelta(hours=5)

TOKEN_COLUMNS = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens")


def assign_windows(
    frame: pl.DataFrame, by: str | list[str] = "session_id", window: timedelta = WINDOW
) -> pl.DataFrame:
    """Add ``window_start`` to every row of ``frame`` (needs ``timestamp`` and ``by``)."""
    keys = [by] if isinstance(by, str) else list(by)
    if getattr(frame.schema["timestamp"], "time_zone", None):  # aware: compare in naive UTC
        frame = frame.with_columns(pl.col("timestamp").dt.convert_time_zone("UTC").dt.replace_time_zone(None))
    gap = (pl.col("timestamp").diff() > window).fill_null(True)
    first = pl.struct(keys).is_first_distinct() if keys else pl.int_range(pl.len()) == 0
    df = frame.sort([*keys, "timestamp"]).with_columns(_run=(gap | first).cum_sum())
    start = pl.Series("window_start", [None] * df.height, dtype=pl.Datetime("us"))
    df = df.with_columns(start)
    while True:
        pending = df["window_start"].is_null()
        if not pending.any():
            break
        opened = df.filter(pending).group_by("_run").agg(_open=pl.col("timestamp").min().dt.truncate("1h"))
        df = (
            df.join(opened, on="_run", how="left")
            .with_columns(
                window_start=pl.when(
                    pl.col("window_start").is_null() & (pl.col("timestamp") - pl.col("_open") <= window)
                )
                .then(pl.col("_open"))
                .otherwise(pl.col("window_start"))
            )
            .drop("_open")
        )
    return df.drop("_run")


def windows(messages: pl.DataFrame, window: timedelta = WINDOW) -> pl.DataFrame:
    """One row per (session, window): start, nominal end, last activity, counts, tokens.

    ``messages`` needs ``session_id``, ``timestamp`` and the four token columns.
    Ids are assigned in (session_id, start_time) order starting at 1.
    """
    tokens = pl.sum_horizontal(*[pl.col(c).fill_null(0) for c in TOKEN_COLUMNS])
    return (
        assign_windows(messages.select("session_id", "timestamp", *TOKEN_COLUMNS), "session_id", window)
        .group_by("session_id", "window_start")
        .agg(
            last_activity=pl.col("timestamp").max(),
            message_count=pl.len().cast(pl.Int32),
            total_tokens=tokens.sum().cast(pl.Int64),
        )
        .sort("session_id", "window_start")
        .select(
            pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("id"),
            "session_id",
            pl.col("window_start").alias("start_time"),
            (pl.col("window_start") + window).alias("end_time"),
            "last_activity",
            "message_count",
            "total_tokens",
        )
    )

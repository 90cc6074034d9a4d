"""Five-hour usage windows computed from message timestamps, as ccusage does.

A window opens at its first message's timestamp rounded down to the hour (UTC) and
nominally ends five hours later. A message joins the current window unless more
than five hours have passed since the window's start or since the previous message;
then it opens a new window. (ccusage ``blocks``; see the fixtures' FORMAT.md §11.)

The rule lives once, in NumPy (``window_starts``, ``window_rows``): runs of activity are
split at gaps over five hours in one pass; inside a run, windows are peeled off one per
iteration, and a run rarely holds more than a few windows. ``assign_windows`` and
``windows`` apply it to Polars frames; the Claude Code ingest calls it on arrays.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np

from workbench import schema

if TYPE_CHECKING:  # imported where used: the ingest calls the NumPy core only
    import polars as pl

WINDOW = timedelta(hours=5)
_HOUR_US = 3_600_000_000

TOKEN_COLUMNS = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens")


def _us(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


def window_starts(stamps: np.ndarray, new_group: np.ndarray, window: timedelta = WINDOW) -> np.ndarray:
    """The start (µs since the epoch) of each row's window.

    ``stamps`` are µs since the epoch, sorted within groups; ``new_group`` is True on the
    first row of each group (windows never span groups).
    """
    n = len(stamps)
    if n == 0:
        return np.zeros(0, np.int64)
    w = _us(window)
    stamps = stamps.astype(np.int64, copy=False)
    run = np.asarray(new_group, bool).copy()
    run[0] = True
    run[1:] |= np.diff(stamps) > w
    run_id = np.cumsum(run)
    start = np.full(n, np.iinfo(np.int64).min)
    pending = np.arange(n)
    while len(pending):
        ids, ts = run_id[pending], stamps[pending]
        first = np.r_[True, ids[1:] != ids[:-1]]
        opened = (ts[first] // _HOUR_US) * _HOUR_US
        open_at = opened[np.cumsum(first) - 1]
        joins = ts - open_at <= w
        start[pending[joins]] = open_at[joins]
        pending = pending[~joins]
    return start


def window_rows(
    sessions: np.ndarray, stamps: np.ndarray, tokens: np.ndarray, window: timedelta = WINDOW
) -> dict[str, np.ndarray]:
    """The ``session_windows`` columns (ids from 1, in (session, start) order) for messages
    sorted by (session, timestamp): ``stamps`` in µs, ``tokens`` each message's total."""
    new_session = np.r_[True, sessions[1:] != sessions[:-1]] if len(sessions) else np.zeros(0, bool)
    start = window_starts(stamps, new_session, window)
    first = new_session | np.r_[True, start[1:] != start[:-1]] if len(start) else new_session
    at = np.flatnonzero(first)
    us = "datetime64[us]"
    return {
        "id": np.arange(1, len(at) + 1, dtype=np.int64),
        "session_id": sessions[at].astype(np.int64),
        "start_time": start[at].astype(us),
        "end_time": (start[at] + _us(window)).astype(us),
        "last_activity": np.maximum.reduceat(stamps, at).astype(us) if len(at) else stamps.astype(us),
        "message_count": np.diff(np.r_[at, len(start)]).astype(np.int32),
        "total_tokens": np.add.reduceat(tokens.astype(np.int64), at) if len(at) else tokens.astype(np.int64),
    }


def _naive_utc(frame: pl.DataFrame) -> pl.DataFrame:
    import polars as pl

    if getattr(frame.schema["timestamp"], "time_zone", None):  # aware: compare in naive UTC
        return frame.with_columns(pl.col("timestamp").dt.convert_time_zone("UTC").dt.replace_time_zone(None))
    return frame


def _stamps(frame: pl.DataFrame) -> np.ndarray:
    import polars as pl

    stamps = frame["timestamp"]
    if stamps.null_count():
        raise ValueError(
            f"timestamp has {stamps.null_count()} nulls: a message without a time belongs to no"
            " window; drop or fill those rows first"
        )
    return stamps.cast(pl.Datetime("us")).to_physical().to_numpy()


def assign_windows(
    frame: pl.DataFrame, by: str | list[str] = "session_id", window: timedelta = WINDOW
) -> pl.DataFrame:
    """Add ``window_start`` to every row of ``frame`` (needs ``timestamp`` and ``by``),
    sorted by ``by`` and timestamp."""
    import polars as pl

    keys = [by] if isinstance(by, str) else list(by)
    df = _naive_utc(frame).sort([*keys, "timestamp"])
    new_group = pl.struct(keys).is_first_distinct() if keys else pl.int_range(pl.len()) == 0
    first = df.select(new_group.alias("f"))["f"].to_numpy() if df.height else np.zeros(0, bool)
    starts = window_starts(_stamps(df), first, window)
    return df.with_columns(window_start=pl.Series(starts, dtype=pl.Int64).cast(pl.Datetime("us")))


def windows(messages: pl.DataFrame, window: timedelta = WINDOW) -> pl.DataFrame:
    """One row per (session, window): start, nominal end, last activity, counts, tokens.

    ``messages`` needs ``session_id``, ``timestamp`` and the four token columns.
    Ids are assigned in (session_id, start_time) order starting at 1.
    """
    import polars as pl

    df = _naive_utc(messages).sort("session_id", "timestamp")
    tokens = df.select(pl.sum_horizontal(pl.col(c).fill_null(0).cast(pl.Int64) for c in TOKEN_COLUMNS))
    columns = window_rows(
        df["session_id"].cast(pl.Int64).to_numpy(), _stamps(df), tokens.to_series().to_numpy(), window
    )
    return pl.DataFrame(columns, schema=schema.polars_schema("session_windows"))

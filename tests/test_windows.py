from datetime import datetime, timedelta

import polars as pl
import pytest

from workbench.windows import assign_windows, windows

T0 = datetime(2026, 1, 1)


def frame(session_times):
    rows = [(s, T0 + timedelta(minutes=m)) for s, minutes in session_times.items() for m in minutes]
    return pl.DataFrame(rows, schema=["session_id", "timestamp"], orient="row").with_columns(
        input_tokens=pl.lit(1, pl.Int32),
        output_tokens=pl.lit(2, pl.Int32),
        cache_creation_tokens=pl.lit(None, pl.Int32),
        cache_read_tokens=pl.lit(10, pl.Int32),
    )


def test_window_starts_on_the_hour_and_lasts_five_hours():
    # 10:30 opens 10:00-15:00; 15:00 is not *more* than 5 h after the start, so it joins.
    out = windows(frame({1: [630, 720, 900]}))
    assert out.rows() == [(1, 1, T0.replace(hour=10), T0.replace(hour=15), T0.replace(hour=15), 3, 39)]


def test_new_window_after_five_hours_from_start_or_a_long_gap():
    out = windows(frame({1: [630, 901, 1260], 2: [0, 301]}))
    starts = out.select("session_id", pl.col("start_time").dt.hour()).rows()
    # session 1: 10:00, then 15:01 opens 15:00, then 21:00 after a >5 h gap
    # session 2: 00:00 and 05:01 (301 minutes after the previous message: a gap > 5 h)
    assert starts == [(1, 10), (1, 15), (1, 21), (2, 0), (2, 5)]
    assert out["id"].to_list() == [1, 2, 3, 4, 5]
    assert out["message_count"].sum() == 5


def test_global_blocks_span_sessions():
    df = frame({1: [0, 60], 2: [120]})
    out = assign_windows(df, by=[])
    assert out["window_start"].n_unique() == 1


def test_many_windows_in_one_run_peel_off_iteratively():
    # A message every 4 hours for two days: never a gap > 5 h, a new window every 5 h.
    out = windows(frame({1: list(range(0, 48 * 60, 240))}))
    # Messages at 0, 4, 8, ... 44 h: each window (0-5 h, 8-13 h, ...) holds exactly two.
    assert out.height == 6
    assert out["message_count"].to_list() == [2] * 6
    assert (out["end_time"] - out["start_time"]).unique().to_list() == [timedelta(hours=5)]


def test_null_timestamps_are_refused_with_the_fix():
    df = frame({1: [0, 60]}).with_columns(pl.when(pl.col("timestamp") > T0).then(pl.col("timestamp")))
    with pytest.raises(ValueError, match="timestamp has 1 nulls.*drop or fill"):
        windows(df)

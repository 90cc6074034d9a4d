"""ccusage's reports (daily, session, blocks) computed from a Dataset, and ccusage itself.

The Dataset keeps token usage only on the one copy of each streamed response that
ccusage counts, so these are plain group-bys over messages with usage. ccusage's session
report has a row per transcript file it read, named after the file: a subagent's file
under ``<session>/subagents/`` counts for ``<session>``, while an older subagent file
``agent-<id>.jsonl`` beside the sessions has a row of its own. ``message_lines.parquet``
keeps each message's file, so the same rows come out here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import polars as pl

from workbench.dataset import Dataset
from workbench.errors import WorkbenchError
from workbench.windows import TOKEN_COLUMNS, WINDOW, assign_windows

#: The ccusage release the agreement tests and the benchmark are pinned to.
CCUSAGE_VERSION = "20.0.24"
_TOTAL = pl.sum_horizontal(pl.col(c).cast(pl.Int64) for c in TOKEN_COLUMNS).alias("total_tokens")
_SUMS = [pl.col(c).cast(pl.Int64).sum() for c in TOKEN_COLUMNS]


def usage_entries(ds: Dataset) -> pl.DataFrame:
    """Messages that carry usage: the session ccusage files them under (see above),
    timestamp, model and the four counts."""
    parts = pl.col("file").str.split("/")
    session = (
        pl.when(parts.list.get(-2, null_on_oob=True) == "subagents")
        .then(parts.list.get(-3, null_on_oob=True))
        .otherwise(parts.list.last().str.strip_suffix(".jsonl"))
    )
    files = pl.scan_parquet(ds.path / "message_lines.parquet").select(session=session)
    return (
        pl.concat([ds.scan("messages"), files], how="horizontal")  # row by row, as written
        .filter(pl.col("input_tokens").is_not_null())
        .select("session", "timestamp", "model", *TOKEN_COLUMNS)
        .sort("timestamp", "session")
        .collect()
    )


def daily_usage(ds: Dataset) -> pl.DataFrame:
    """Token sums per UTC day (``ccusage daily --timezone UTC``)."""
    return (
        usage_entries(ds)
        .group_by(date=pl.col("timestamp").dt.date())
        .agg(*_SUMS, entries=pl.len())
        .with_columns(_TOTAL)
        .sort("date")
    )


def session_usage(ds: Dataset) -> pl.DataFrame:
    """Token sums per transcript file, subagents' files under ``<session>/subagents/``
    included in their session's (``ccusage session``)."""
    return (
        usage_entries(ds)
        .group_by("session")
        .agg(*_SUMS, entries=pl.len(), last_activity=pl.col("timestamp").max())
        .with_columns(_TOTAL)
        .sort("session")
    )


def block_usage(ds: Dataset) -> pl.DataFrame:
    """Global 5-hour billing blocks over all usage (``ccusage blocks``, gap blocks left out)."""
    entries = usage_entries(ds)
    return (
        assign_windows(entries, by=[])
        .group_by(start_time="window_start")
        .agg(*_SUMS, entries=pl.len(), last_activity=pl.col("timestamp").max())
        .with_columns(_TOTAL, end_time=pl.col("start_time") + WINDOW)
        .sort("start_time")
    )


class CcusageMissing(WorkbenchError):
    """No working ccusage binary."""


def find_ccusage(project: Path | None = None) -> Path:
    """A working ccusage: $WORKBENCH_CCUSAGE, the project's .tools, or PATH."""
    project = project or Path(__file__).resolve().parents[3]
    candidates = [os.environ.get("WORKBENCH_CCUSAGE")]
    candidates += [
        str(project / ".tools" / "ccusage" / "node_modules" / ".bin" / "ccusage"),
        str(project / ".tools" / "node_modules" / ".bin" / "ccusage"),
        shutil.which("ccusage"),
    ]
    for c in candidates:
        if not c or not Path(c).exists():
            continue
        try:
            done = subprocess.run([c, "--version"], capture_output=True, text=True, timeout=60)
        except OSError:
            continue
        if done.returncode == 0:
            return Path(c)
    raise CcusageMissing(
        "No working ccusage found (tried $WORKBENCH_CCUSAGE, .tools/ccusage, .tools, PATH): install it with "
        f"`npm install --prefix .tools/ccusage ccusage@{CCUSAGE_VERSION}`"
    )


def run_ccusage(command: str, config_dir: Path, binary: Path | None = None) -> dict:
    """``ccusage COMMAND --json --offline --timezone UTC`` on the tree at ``config_dir``."""
    binary = binary or find_ccusage()
    env = {**os.environ, "CLAUDE_CONFIG_DIR": str(config_dir), "TZ": "UTC"}
    args = [str(binary), command, "--json", "--offline", "--timezone", "UTC"]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        raise WorkbenchError(f"ccusage {command} failed ({done.returncode}): {done.stderr.strip()[:500]}")
    return json.loads(done.stdout)


#: ccusage's names of the four counts in a block's ``tokenCounts``, and in a day's or session's row
_BLOCK_COUNTS = ("inputTokens", "outputTokens", "cacheCreationInputTokens", "cacheReadInputTokens")
_ROW_COUNTS = ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens")


def ccusage_frame(command: str, report: dict) -> pl.DataFrame:
    """ccusage's JSON report as a frame with the same columns as the functions above."""
    key = {"daily": "date", "session": "session", "blocks": "start_time"}[command]
    if command == "blocks":
        rows = [
            {key: b["startTime"], **_counts(b["tokenCounts"], _BLOCK_COUNTS), "entries": b["entries"],
             "total_tokens": b["totalTokens"]}
            for b in report["blocks"] if not b["isGap"]
        ]  # fmt: skip
    else:
        rows = [
            {key: r["period"], **_counts(r, _ROW_COUNTS), "total_tokens": r["totalTokens"]}
            for r in report[command]
        ]
    frame = pl.DataFrame(rows, schema_overrides={c: pl.Int64 for c in (*TOKEN_COLUMNS, "total_tokens")})
    if frame.is_empty():
        return frame
    if command == "blocks":
        utc = pl.col(key).str.to_datetime(time_zone="UTC")
        frame = frame.with_columns(utc.dt.replace_time_zone(None).dt.cast_time_unit("us"))
    elif command == "daily":
        frame = frame.with_columns(pl.col(key).str.to_date())
    return frame.sort(key)


def _counts(row: dict, names: tuple[str, ...]) -> dict[str, int]:
    return {column: row[name] for name, column in zip(names, TOKEN_COLUMNS, strict=True)}

"""What the evidence feeds the other labs: the workload, the findings, the traffic mix.

- ``workload.csv`` is a pg_stat_statements export (``query``, ``calls``,
  ``total_exec_time``, ``mean_exec_time``): ``workbench advise --workload`` reads it
  (:func:`workbench.indexes.workload.from_file`).
- ``findings.csv``: one row per N+1 pattern, ranked by the time batching would save.
- ``mix.csv``: requests by the statement that opens them, with their shares.
- ``quarantine.jsonl``: each line that could not be read, with file, line and reason.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import polars as pl

from workbench.evidence.analysis import Evidence


def workload(ev: Evidence) -> pl.DataFrame:
    """The templates as pg_stat_statements columns (``advise --workload`` reads them)."""
    return ev.templates.select(
        pl.col("query"),
        pl.col("calls"),
        pl.col("total_ms").alias("total_exec_time"),
        pl.col("mean_ms").alias("mean_exec_time"),
    ).filter(pl.col("query") != "")


def write_workload(ev: Evidence, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    workload(ev).write_csv(path)
    return path


def write(ev: Evidence, out_dir: str | Path) -> dict[str, Path]:
    """Every export of ``ev`` into ``out_dir``; returns name -> file."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "workload": write_workload(ev, out / "workload.csv"),
        "findings": out / "findings.csv",
        "mix": out / "mix.csv",
        "quarantine": out / "quarantine.jsonl",
    }
    ev.findings.write_csv(files["findings"])
    ev.mix.write_csv(files["mix"])
    with files["quarantine"].open("wb") as f:
        for file, line, reason in ev.quarantine.entries:
            f.write(orjson.dumps({"file": file, "line": line, "reason": reason}) + b"\n")
    return files

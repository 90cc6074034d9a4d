"""k6 results in the same tables: its JSON end-of-test summary, imported.

A team that already runs k6 exports the summary with ``k6 run --summary-export=FILE``
(metrics flat: ``"http_req_duration": {"avg", "min", "med", "max", "p(90)", "p(95)", ...}``,
``"http_reqs": {"count", "rate"}``, ``"http_req_failed": {"passes", "fails", "value"}``)
or writes ``JSON.stringify(data)`` from ``handleSummary`` (the same values under
``"values"``). Both are read; k6 reports milliseconds. For ``http_req_failed`` (a rate
metric) ``passes`` counts the failed requests. Which percentiles exist depends on
``--summary-trend-stats`` (add ``p(99)`` and ``p(99.9)`` for the SLO table); a missing
one is left empty, never guessed.

>>> row = import_summary("k6-summary.json", label="staging")     # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import polars as pl

from workbench.service.load.schedule import LoadError

_TRENDS = {"p50": ("med", "p(50)"), "p90": ("p(90)",), "p99": ("p(99)",), "p999": ("p(99.9)",)}


def import_summary(path: str | os.PathLike[str], label: str | None = None) -> pl.DataFrame:
    """One summary row (the columns of :meth:`LoadRun.summary` that k6 has) from a k6 JSON file."""
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as e:
        raise LoadError(f"Cannot read k6 summary {str(file)!r}: {e.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        first = text.lstrip().splitlines()[0] if text.strip() else ""
        if first.startswith("{") and '"type"' in first and '"metric"' in first:
            raise LoadError(
                f"{str(file)!r} is k6's --out json stream (one point per line), not its summary: "
                "export the summary with `k6 run --summary-export=FILE`"
            ) from None
        raise LoadError(f"{str(file)!r} is not JSON: expected k6's `--summary-export` file") from None
    metrics = data.get("metrics") if isinstance(data, dict) else None
    if not isinstance(metrics, dict) or "http_req_duration" not in metrics:
        raise LoadError(
            f"{str(file)!r} is not a k6 summary: it has no metrics.http_req_duration "
            "(expected the file of `k6 run --summary-export=FILE` or handleSummary's JSON)"
        )
    duration = _values(metrics["http_req_duration"], "http_req_duration", file)
    reqs = _values(metrics.get("http_reqs", {}), "http_reqs", file)
    failed = _values(metrics.get("http_req_failed", {}), "http_req_failed", file)
    count = _number(reqs.get("count"), "http_reqs.count", file)
    rate = _number(reqs.get("rate"), "http_reqs.rate", file)
    errors = _number(failed.get("passes"), "http_req_failed.passes", file) if failed else 0.0
    row: dict[str, Any] = {
        "label": label or file.stem,
        "stage": -1,
        "offered_rps": math.nan,  # k6 summaries hold the achieved rate only
        "sent": int(count),
        "ok": int(count - errors),
        "achieved_rps": rate * (count - errors) / count if count else 0.0,
    }
    for name, keys in _TRENDS.items():
        value = next((duration[k] for k in keys if k in duration), None)
        row[f"{name}_ms"] = (
            math.nan if value is None else _number(value, f"http_req_duration.{keys[0]}", file)
        )
        row[f"{name}_lo"] = row[f"{name}_hi"] = math.nan
    row["max_ms"] = _number(duration.get("max", math.nan), "http_req_duration.max", file)
    row["errors"] = int(errors)
    row["error_rate"] = errors / count if count else 0.0
    row["errors_by_kind"] = json.dumps({"http_req_failed": int(errors)} if errors else {})
    row["send_lag_p99_ms"] = math.nan
    row["partial"] = False
    row["source"] = "k6"
    return pl.DataFrame([row])


def _values(metric: Any, name: str, file: Path) -> dict[str, Any]:
    if not isinstance(metric, dict):
        raise LoadError(f"{str(file)!r}: metrics.{name} is not an object")
    values = metric.get("values", metric)  # handleSummary nests them; --summary-export does not
    if not isinstance(values, dict):
        raise LoadError(f"{str(file)!r}: metrics.{name}.values is not an object")
    return values


def _number(value: Any, name: str, file: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LoadError(f"{str(file)!r}: {name} is {value!r}, not a number")
    return float(value)

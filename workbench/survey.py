"""Notebook 01's survey of the data as verdicts: heavy tail, windows, engines agree, sample.

Each answer is computed from the data, so the notebook's summary stays true when the
data changes.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from workbench.dataset import Dataset
from workbench.verdicts import Verdict

#: A sample keeps the tail when its p90, p99 and largest session are within this factor of the source's.
TAIL_TOLERANCE = 1.5


def verdicts(
    ds: Dataset,
    stats: pl.DataFrame,
    comparison: pl.DataFrame,
    rows_by_engine: Mapping[str, Mapping[str, int]],
) -> list[Verdict]:
    """The answers to notebook 01's questions.

    ``stats`` is ``ds.session_stats()``, ``comparison`` is ``shape.compare(ds, sample)``,
    ``rows_by_engine`` maps each engine that ran to its ``table_counts()``.
    """
    messages = stats["messages"].sort(descending=True)
    top = max(1, round(0.01 * messages.len()))
    top_share = messages.head(top).sum() / max(1, messages.sum())
    median = float(messages.median() or 0)
    largest = int(messages[0]) if messages.len() else 0
    multi = float((stats["windows"] > 1).mean() or 0)
    out = [
        Verdict(
            "heavy tail of session sizes",
            f"top 1% of sessions hold {top_share:.0%} of messages",
            f"{stats.height:,} sessions; the median has {median:,.0f} messages, the largest {largest:,} "
            f"({largest / max(median, 1):,.0f}x the median).",
        ),
        Verdict(
            "5-hour windows per session",
            f"{multi:.0%} of sessions span more than one",
            f"{ds.counts['session_windows']:,} windows for {stats.height:,} sessions; "
            f"the most in one session: {int(stats['windows'].max() or 0)}.",
        ),
        _agreement(ds.counts, rows_by_engine),
        _sample(comparison),
    ]
    return out


def _agreement(expected: Mapping[str, int], rows_by_engine: Mapping[str, Mapping[str, int]]) -> Verdict:
    engines = ", ".join(rows_by_engine) or "none"
    differ = [
        f"{engine} {table}: {got.get(table, 0):,} rows, expected {n:,}"
        for engine, got in rows_by_engine.items()
        for table, n in expected.items()
        if got.get(table, 0) != n
    ]
    if not rows_by_engine:
        return Verdict("same rows in every engine", "no engine ran", "", engines)
    if differ:
        return Verdict("same rows in every engine", "rows differ", "; ".join(differ) + ".", engines)
    return Verdict(
        "same rows in every engine",
        "same rows",
        f"Each engine holds the dataset's {sum(expected.values()):,} rows, table by table "
        f"({', '.join(f'{t} {n:,}' for t, n in expected.items())}).",
        engines,
    )


def _sample(comparison: pl.DataFrame) -> Verdict:
    ratio = dict(zip(comparison["metric"], comparison["ratio"], strict=True))
    sessions = comparison.filter(pl.col("metric") == "sessions")[comparison.columns[2]].item()
    tail = {k: ratio.get(f"messages/session {k}") for k in ("p50", "p90", "p99", "max")}
    off = [
        f"{k} {'missing' if r is None else f'{r:.2f}x'}"
        for k, r in tail.items()
        if k != "p50" and (r is None or not 1 / TAIL_TOLERANCE <= r <= TAIL_TOLERANCE)
    ]
    detail = (
        f"{sessions:,.0f} sessions sampled; messages per session against the source: "
        + ", ".join(f"{k} {r:.2f}x" for k, r in tail.items() if r is not None)
        + f" (kept means p90, p99 and the largest within {TAIL_TOLERANCE}x)."
    )
    verdict = "tail kept" if not off else "tail shifted: " + ", ".join(off)
    return Verdict("does a sample keep the heavy tail", verdict, detail)

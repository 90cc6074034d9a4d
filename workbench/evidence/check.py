"""A proposed batch rewrite proved on a sample database: the same rows, and its speedup.

The largest occurrence of a finding carries the statement as the application sent it and,
for the extended protocol, each execution's bound values (the log's ``parameters:``
detail). The one value that varies between executions becomes an array: the N
statements run one by one and the batch (``= ANY($n)``) runs once, on the sample, in a
read-only transaction; their rows must be the same multiset before either is timed
(:func:`workbench.measure.measure`, medians).

>>> check(ev.example(1), url)              # doctest: +SKIP
Check(same_rows=True, rows=412, singles_ms=3.1, batch_ms=0.6, ...)
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import polars as pl
import psycopg

from workbench.engines.postgres import mask_secrets
from workbench.evidence.analysis import Evidence
from workbench.evidence.detect import Run
from workbench.evidence.fingerprint import batch_rewrite, split_comment
from workbench.evidence.readers import EvidenceError
from workbench.measure import measure


@dataclass
class Check:
    same_rows: bool | None  # None: not checked (see reason)
    rows: int = 0
    singles_ms: float | None = None
    batch_ms: float | None = None
    values: int = 0
    batch_sql: str = ""
    reason: str = ""

    @property
    def speedup(self) -> float | None:
        if self.singles_ms and self.batch_ms:
            return self.singles_ms / self.batch_ms
        return None


def _array(values: list[str]) -> str:
    """A PostgreSQL array literal of text values; the server types it from the column."""
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"


def plan(run: Run) -> tuple[str, str, list[list[str | None]], int] | Check:
    """(statement, batch, parameter lists, varying position) of a run, or why it cannot be checked."""
    sql = split_comment(run.executions[0].sql)[0]
    params = [s.params for s in run.executions]
    if any(p is None for p in params):
        return Check(
            None, reason="the log shows no bound values (simple protocol): rewrite and check by hand"
        )
    width = {len(p) for p in params}
    if len(width) != 1:
        return Check(None, reason="the executions bind different numbers of values")
    varying = [i for i in range(width.pop()) if len({p[i] for p in params}) > 1]
    if len(varying) != 1:
        return Check(None, reason=f"{len(varying)} values vary between executions: batch by hand")
    k = varying[0]
    batch = batch_rewrite(sql, number=k + 1)
    if batch is None:
        return Check(None, reason=f"${k + 1} is not compared with = to a column: batch by hand")
    unique = list(dict.fromkeys(p[k] for p in params if p[k] is not None))
    lists = [[*params[0][:k], v, *params[0][k + 1 :]] for v in unique]
    return sql, batch, lists, k


def check(run: Run | None, url: str, repeat: int = 5) -> Check:
    """Run the loop and its batch on the database at ``url`` (read-only); compare, then time."""
    if run is None:
        return Check(None, reason="no example kept")
    planned = plan(run)
    if isinstance(planned, Check):
        return planned
    sql, batch, lists, k = planned
    batched = [*lists[0][:k], _array([p[k] for p in lists]), *lists[0][k + 1 :]]
    try:
        con = psycopg.connect(url, cursor_factory=psycopg.RawCursor, connect_timeout=10)
    except psycopg.Error as e:
        raise EvidenceError(
            f"Cannot connect to the sample database: {mask_secrets(str(e).strip(), url)}"
        ) from None
    with con:
        con.read_only = True  # a sample is read, never written
        cur = con.cursor()

        def singles() -> list[tuple]:
            rows: list[tuple] = []
            for p in lists:
                cur.execute(sql, p)
                rows += cur.fetchall()
            return rows

        def one() -> list[tuple]:
            cur.execute(batch, batched)
            return cur.fetchall()

        try:
            a, b = singles(), one()
        except psycopg.Error as e:
            return Check(
                None, values=len(lists), batch_sql=batch, reason=f"the sample rejects it: {e}".strip()
            )
        same = sorted(map(repr, a)) == sorted(map(repr, b))
        if not same:
            return Check(
                False, len(a), values=len(lists), batch_sql=batch, reason="different rows: not timed"
            )
        t_singles = statistics.median(measure(singles, repeat=repeat)) / 1e6
        t_batch = statistics.median(measure(one, repeat=repeat)) / 1e6
    return Check(True, len(a), t_singles, t_batch, len(lists), batch)


def check_findings(ev: Evidence, url: str, top: int = 5, repeat: int = 5) -> pl.DataFrame:
    """The ``top`` findings checked on ``url``: same rows, times, speedup, the saving re-estimated.

    The saving re-estimated scales the logged loop time by the measured batch/singles ratio
    and adds the round trips the rule counts.
    """
    rows = []
    for row in ev.findings.head(top).iter_rows(named=True):
        c = check(ev.example(row["rank"]), url, repeat)
        saving = None
        if c.speedup:
            saving = (
                row["repeated_ms"] * (1 - 1 / c.speedup)
                + (row["executions"] - row["requests"]) * ev.rule.rtt_ms
            )
        rows.append(
            {
                "rank": row["rank"],
                "same_rows": c.same_rows,
                "rows": c.rows,
                "values": c.values,
                "singles_ms": c.singles_ms,
                "batch_ms": c.batch_ms,
                "speedup": c.speedup,
                "checked_saving_ms": saving,
                "batch_sql": c.batch_sql,
                "reason": c.reason,
            }
        )
    schema = {
        "rank": pl.Int64,
        "same_rows": pl.Boolean,
        "rows": pl.Int64,
        "values": pl.Int64,
        "singles_ms": pl.Float64,
        "batch_ms": pl.Float64,
        "speedup": pl.Float64,
        "checked_saving_ms": pl.Float64,
        "batch_sql": pl.String,
        "reason": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)

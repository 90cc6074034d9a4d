"""Notebook 06's conclusions, computed from the evidence: where the N+1s are, what they
cost, the fix and what it saves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from workbench.evidence.analysis import Evidence
from workbench.evidence.fingerprint import relations
from workbench.verdicts import Verdict

KEY_WORDS = {
    "trace": "trace id (traceparent comment)",
    "session+transaction+gap": "backend session + transaction + pauses",
    "session+gap": "backend session + pauses",
    "application+gap": "application_name + pauses (concurrent requests merge: upper bounds)",
    "gap": "pauses only",
}


def name(sql: str) -> str:
    """A statement's short name: its verb and tables (``SELECT messages``)."""
    tables = relations(sql)
    verb = sql.split(None, 1)[0].upper() if sql else "?"
    return f"{verb} {', '.join(tables)}" if tables else sql[:40]


def keys_sentence(ev: Evidence) -> str:
    keys = ev.keys()
    total = sum(keys.values())
    parts = [f"{KEY_WORDS.get(k, k)} for {n} of {total}" for k, n in keys.items()]
    return "Requests were grouped by " + "; ".join(parts) + "." if parts else "No request was read."


def _checked(checked: pl.DataFrame | None, rank: int) -> dict[str, Any] | None:
    if checked is None:
        return None
    rows = checked.filter(pl.col("rank") == rank)
    return rows.row(0, named=True) if len(rows) else None


def _speed(speedup: float) -> str:
    if speedup >= 1:
        return f"{speedup:.1f}x faster than the loop"
    return f"{1 / speedup:.1f}x slower than the loop there (its statements are cheap on the sample)"


def headline(ev: Evidence, checked: pl.DataFrame | None = None) -> str:
    """The first screen's answer in a few sentences."""
    requests = int(ev.requests["requests"].sum()) if len(ev.requests) else 0
    read = f"{ev.statements:,} statements in {requests:,} requests"
    if ev.findings.is_empty():
        return f"**No N+1** in {read} ({ev.rule.describe()}). {keys_sentence(ev)}"
    f = ev.findings
    total_ms = float(ev.templates["total_ms"].sum()) or 1.0
    top = f.row(0, named=True)
    text = (
        f"**{len(f)} N+1 pattern(s)** in {read} ({ev.rule.describe()}). The costliest: after "
        f"`{name(top['source'])}`, `{name(top['repeated'])}` runs {top['per_request']:.1f} times a request "
        f"({top['executions']:,} executions in {top['requests']:,} requests, {top['repeated_ms']:.1f} ms, "
        f"{top['repeated_ms'] / total_ms:.0%} of all statement time). "
    )
    c = _checked(checked, 1)
    if top["rewrite"]:
        text += f"The fix: `{top['rewrite']}`"
        if c and c["same_rows"]:
            text += (
                f", checked on the sample: the same {c['rows']:,} rows for {c['values']} values, "
                f"{_speed(c['speedup'])}; batching saves about {c['checked_saving_ms']:.1f} ms over this log "
                f"(the loop's time scaled by that ratio, plus {ev.rule.rtt_ms:g} ms per round trip saved)."
            )
        else:
            reason = f" ({c['reason']})" if c else ""
            text += f"; not checked on a sample{reason}. Batching saves up to {top['saving_ms']:.1f} ms."
    else:
        text += "No `= $n` to batch: rewrite it by hand (a JOIN or an IN-list)."
    return text + " " + keys_sentence(ev)


def verdicts(
    ev: Evidence,
    checked: pl.DataFrame | None = None,
    conditions: Mapping[str, Any] | None = None,
    top: int = 5,
) -> list[Verdict]:
    """One verdict per finding (the ``top`` most saving), or one saying there is none."""
    conditions = dict(conditions or {})
    conditions.update({"rule": ev.rule.describe(), "statements": ev.statements, "files": len(ev.files)})
    if ev.findings.is_empty():
        return [
            Verdict(
                "N+1 in production records",
                f"none found in {ev.statements:,} statements",
                conditions=conditions,
            )
        ]
    out = []
    for row in ev.findings.head(top).iter_rows(named=True):
        c = _checked(checked, row["rank"])
        detail = (
            f"after {name(row['source'])}: {row['executions']:,} executions in {row['requests']:,} requests "
            f"(max {row['max_per_request']} in one), {row['repeated_ms']:.1f} ms; "
            f"grouped by {KEY_WORDS[row['key']]}"
        )
        if c and c["same_rows"]:
            verdict = f"batch it: same rows, {_speed(c['speedup'])} on the sample"
            if c["checked_saving_ms"] is not None and c["checked_saving_ms"] <= 0:
                verdict = f"leave it: same rows, but {_speed(c['speedup'])} on the sample"
            effect, unit = c["speedup"], "x"
        elif row["rewrite"]:
            verdict, effect, unit = f"batch it: saves up to {row['saving_ms']:.1f} ms (not checked)", None, ""
        else:
            verdict, effect, unit = "rewrite by hand: no = $n to batch", None, ""
        out.append(
            Verdict(
                f"N+1 #{row['rank']}: {name(row['repeated'])}",
                verdict,
                detail,
                engine="postgres",
                effect=effect,
                unit=unit,
                conditions=conditions,
                artifact=row["rewrite"],
            )
        )
    return out

"""The one verdict schema every lab writes and the report and decision page read.

A :class:`Verdict` is one computed answer to one of the plan's questions. Every notebook
saves its verdicts as ``<out>/<notebook>/verdicts.json``; the index page and the decision
page read only those files, so no lab imports the report and nothing is retyped.

A verdict that speaks to a plan item (``item`` is a key of :data:`PLAN_ITEMS`) also says
what to do about it (``decision``), its effect under the profile with an interval, what
the change costs, the condition under which the answer flips, and where the evidence and
the artefact to apply are. Verdicts without an item are a lab's own findings (detail).

>>> v = Verdict("the plan's JOIN", "helps: 1.4x faster", item="n_plus_one", decision="ship",
...             effect=1.4, low=1.3, high=1.5, unit="x")
>>> v.interval()
'1.4x (1.3-1.5)'
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

VERDICTS_FILE = "verdicts.json"

#: What a plan item's verdict tells the team to do.
DECISIONS = ("ship", "ship changed", "don't ship", "not measured here")

#: The plan's items, in the order the decision page lists them: key -> the plan's words.
#: Index items beyond the plan's four are keyed ``index:<table>(<columns>)`` and added
#: after these by whichever lab recommends them.
PLAN_ITEMS: dict[str, str] = {
    "n_plus_one": "the N+1 fix (loading sessions with their messages and windows)",
    "index:sessions(project_id, created_at DESC)": "index sessions(project_id, created_at DESC)",
    "index:messages(session_id, timestamp)": "index messages(session_id, timestamp)",
    "index:session_windows(session_id)": "index session_windows(session_id)",
    "index:jobs(status, created_at DESC)": "index jobs(status, created_at DESC)",
    "index_desc": "DESC in the plan's indexes",
    "pagination": "cursor pagination",
    "cache": "the query cache",
    "pool_size": "the connection pool size",
    "batch_size": "the batch size of log sync",
    "fixed_sleep": "the fixed sleep between batches",
    "streaming": "streaming the JSONL log sync",
    "slo:p50": "API P50 < 50 ms",
    "slo:p99": "API P99 < 200 ms",
    "slo:rate": "1,000 req/s",
    "slo:memory": "memory < 500 MB",
    "slo:cpu": "CPU < 30%",
    "slo:db_p99": "DB query P99 < 100 ms",
    "slo:errors": "error rate < 0.1%",
}

#: The plan's success criteria, judged for "today" against "with the shipped set".
SUCCESS_CRITERIA: dict[str, str] = {
    "success:p99": "P99 < 200 ms",
    "success:memory": "memory 30% lower",
    "success:db": "DB queries 50% faster",
    "success:capacity": "twice the concurrent capacity",
    "success:errors": "error rate < 0.1%",
}


@dataclass(frozen=True)
class Verdict:
    """One computed answer to one of the plan's questions.

    ``topic`` is the question in the plan's words ("the plan's three-table JOIN"),
    ``verdict`` the short answer ("3.1x slower than N+1 (today)", "tie", "met"),
    ``detail`` the sentence with the numbers behind it, ``engine`` where it was measured.

    For the decision page: ``item`` (a :data:`PLAN_ITEMS` or :data:`SUCCESS_CRITERIA` key,
    or ``index:...``), ``decision`` (one of :data:`DECISIONS`), ``effect`` with its
    interval ``low``-``high`` in ``unit`` ("x" for a ratio where above 1 is better),
    ``conditions`` it was measured under (profile, engine, round trip, page size, n),
    ``cost`` of the change, ``flips`` (when the answer would change), ``evidence``
    (a link relative to the report folder), ``artifact`` (what to apply: a migration
    file, a configuration value), and ``governs`` (why this verdict decides its item
    over another lab's on the same item, when there is one).
    """

    topic: str
    verdict: str
    detail: str = ""
    engine: str | None = None
    item: str | None = None
    decision: str | None = None
    effect: float | None = None
    low: float | None = None
    high: float | None = None
    unit: str = ""
    conditions: Mapping[str, Any] = field(default_factory=dict)
    cost: str = ""
    flips: str = ""
    evidence: str = ""
    artifact: str = ""
    governs: str = ""

    def __post_init__(self) -> None:
        if self.decision is not None and self.decision not in DECISIONS:
            expected = ", ".join(DECISIONS)
            raise WorkbenchError(
                f"Unknown decision {self.decision!r} for {self.topic!r}: expected one of {expected}"
            )
        if self.decision is not None and self.item is None:
            raise WorkbenchError(f"Verdict {self.topic!r} has a decision but no plan item: set item=")

    def interval(self) -> str:
        """The effect and its interval as people read it: ``1.4x (1.3-1.5)``, ``38 ms``."""
        if self.effect is None:
            return ""
        unit = self.unit
        sep = "" if unit in ("x", "%", "") else " "

        def num(x: float) -> str:
            return f"{x:.3g}" if abs(x) < 100 else f"{x:,.0f}"

        text = f"{num(self.effect)}{sep}{unit}"
        if self.low is not None and self.high is not None:
            text += f" ({num(self.low)}-{num(self.high)})"
        return text


def label(item: str) -> str:
    """A plan item's words: ``index:x(y)`` -> ``index x(y)``."""
    return PLAN_ITEMS.get(item) or SUCCESS_CRITERIA.get(item) or item.replace(":", " ", 1)


def save(notebook: str, verdicts: Sequence[Verdict], out_dir: str | os.PathLike[str]) -> Path:
    """Write ``out_dir/<notebook>/verdicts.json`` (the index and decision pages read these)."""
    folder = Path(out_dir) / notebook
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / VERDICTS_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    data = [{k: v for k, v in asdict(x).items() if v not in (None, "", {})} for x in verdicts]
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load(out_dir: str | os.PathLike[str], notebook: str) -> list[Verdict]:
    """The verdicts a notebook saved, or [] when it saved none."""
    path = Path(out_dir) / notebook / VERDICTS_FILE
    if not path.exists():
        return []
    known = {f.name for f in fields(Verdict)}
    return [Verdict(**{k: v for k, v in d.items() if k in known}) for d in json.loads(path.read_bytes())]


def group(verdicts: Sequence[Verdict]) -> list[tuple[str, list[Verdict]]]:
    """The verdicts by question, in the order the questions first appear.

    >>> [(t, len(vs)) for t, vs in group([Verdict("a", "x", engine="duckdb"),
    ...     Verdict("b", "y"), Verdict("a", "x", engine="sqlite")])]
    [('a', 2), ('b', 1)]
    """
    groups: dict[str, list[Verdict]] = {}
    for v in verdicts:
        groups.setdefault(v.topic, []).append(v)
    return list(groups.items())


def _answer_html(group: Sequence[Verdict]) -> str:
    """A question's answer: one line per distinct verdict, with the engines that gave it."""
    by_verdict: dict[str, list[str]] = {}
    for v in group:
        by_verdict.setdefault(v.verdict, []).extend(
            e.strip() for e in (v.engine or "").split(",") if e.strip()
        )
    lines = []
    for verdict, engines in by_verdict.items():
        on = f"<span class='on'>{html.escape(', '.join(dict.fromkeys(engines)))}:</span> " if engines else ""
        lines.append(f"{on}<b>{html.escape(verdict)}</b>")
    return "<br>".join(lines)


def _why_html(group: Sequence[Verdict]) -> str:
    """A question's reasons: the one sentence, or one per engine behind a disclosure."""
    details = list(dict.fromkeys(v.detail for v in group if v.detail))
    if len(details) <= 1:
        return html.escape(details[0]) if details else ""
    items = "".join(
        f"<li><span class='on'>{html.escape(v.engine or '')}:</span> {html.escape(v.detail)}</li>"
        for v in group
        if v.detail
    )
    return f"<details><summary>why, per engine ({len(group)})</summary><ul>{items}</ul></details>"


def to_html(verdicts: Sequence[Verdict]) -> str:
    """The verdicts as a table for people: one row per question (the plan's words), its
    answer per engine on one line each (engines that agree share a line), and why: the
    sentence with the numbers, or one per engine behind a disclosure, so the first screen
    answers every question and every verdict stays one click away.
    """
    rows = "\n".join(
        f"<tr><td>{html.escape(topic)}</td><td>{_answer_html(g)}</td><td>{_why_html(g)}</td></tr>"
        for topic, g in group(verdicts)
    )
    return (
        "<table class='verdicts'><thead><tr><th style='text-align:left'>question</th>"
        "<th style='text-align:left'>answer</th>"
        f"<th style='text-align:left'>why</th></tr></thead><tbody>\n{rows}\n</tbody></table>"
    )


def show(notebook: str, verdicts: Sequence[Verdict], out_dir: str | os.PathLike[str]) -> Any:
    """Save the verdicts and return them as an HTML table for the notebook to display.

    Call it last in the Conclude cell tagged ``verdicts``: the HTML export shows that
    cell's output at the top of the page.
    """
    from IPython.display import HTML

    save(notebook, verdicts, out_dir)
    return HTML(to_html(verdicts))

"""The plan, judged: every lab's verdicts gathered into one row per plan item, for one profile.

The decision page is computed from what the labs saved (``<out>/<notebook>/verdicts.json``,
:mod:`workbench.verdicts`), never retyped. For each plan item it takes the verdicts that
carry that ``item`` and a ``decision``, measured under the report's profile. On the
profile's engine when there is one:

- one lab speaks to the item: its verdict is the row;
- several labs agree: the row names them all;
- they disagree: the one that states why it ``governs`` decides, and the row shows the
  others beside it; with no stated reason (or two that claim to govern) the row says the
  labs disagree, and :func:`check` raises, so a contradiction cannot pass unnoticed.

Items no lab measured get "not measured here". Verdicts measured under another profile
(a stale folder) are left out and listed.

>>> from workbench.verdicts import Verdict
>>> rows = decide({"02": [Verdict("JOIN", "1.4x faster", item="n_plus_one", decision="ship",
...                               conditions={"profile": "default"})]}, "default", "postgres")
>>> row = {r.item: r for r in rows}["n_plus_one"]
>>> row.decision, row.sources, {r.item: r for r in rows}["cache"].decision
('ship', ['02'], 'not measured here')
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.verdicts import DECISIONS, PLAN_ITEMS, SUCCESS_CRITERIA, Verdict, label
from workbench.verdicts import load as load_verdicts

NOT_MEASURED = "not measured here"


class ReconcileError(WorkbenchError):
    """Two labs' verdicts on one plan item contradict each other with no stated reason."""


@dataclass
class Row:
    """One plan item judged: the governing verdict, and every other lab's word on it."""

    item: str
    decision: str
    verdict: Verdict | None = None
    sources: list[str] = field(default_factory=list)
    others: list[tuple[str, Verdict]] = field(default_factory=list)
    conflict: str = ""

    @property
    def label(self) -> str:
        return label(self.item)


def _engine_of(v: Verdict) -> set[str]:
    return {e.strip() for e in (v.engine or v.conditions.get("engine") or "").split(",") if e.strip()}


def _order(item: str) -> tuple[int, str]:
    keys = [*SUCCESS_CRITERIA, *PLAN_ITEMS]
    if item in keys:
        return keys.index(item), item
    # other recommended indexes go after the plan's own indexes
    return (keys.index("index_desc") if item.startswith("index:") else len(keys)), item


def decide(by_notebook: Mapping[str, Sequence[Verdict]], profile: str, engine: str) -> list[Row]:
    """One :class:`Row` per success criterion and plan item (those no lab measured included),
    in the plan's order, from the verdicts each notebook saved under ``profile``."""
    found: dict[str, list[tuple[str, Verdict]]] = {}
    for notebook, verdicts in by_notebook.items():
        for v in verdicts:
            if v.item is None or v.decision is None:
                continue
            if v.conditions.get("profile", profile) != profile:
                continue
            found.setdefault(v.item, []).append((notebook, v))
    rows = []
    for item in sorted({*SUCCESS_CRITERIA, *PLAN_ITEMS, *found}, key=_order):
        said = found.get(item, [])
        on_engine = [(n, v) for n, v in said if not _engine_of(v) or engine in _engine_of(v)]
        said = on_engine or said  # another engine's word beats none, and says which engine
        rows.append(_row(item, said))
    return rows


def _row(item: str, said: list[tuple[str, Verdict]]) -> Row:
    if not said:
        return Row(item, NOT_MEASURED)
    decisions = {v.decision for _, v in said}
    if len(decisions) == 1:
        best = next(((n, v) for n, v in said if v.governs), said[0])
        return Row(
            item,
            best[1].decision or NOT_MEASURED,
            best[1],
            [best[0], *(n for n, _ in said if n != best[0])],  # the one that governs first
            [x for x in said if x != best],
        )
    governing = [(n, v) for n, v in said if v.governs]
    if len({v.decision for _, v in governing}) == 1:
        n, v = governing[0]
        return Row(item, v.decision or NOT_MEASURED, v, [n], [x for x in said if x[0] != n])
    names = ", ".join(f"{n} says {v.decision!r}" for n, v in said)
    why = "two labs claim to govern" if governing else "no lab states why it governs"
    return Row(item, "labs disagree", said[0][1], [n for n, _ in said], said[1:], f"{names}; {why}")


def check(rows: Sequence[Row]) -> None:
    """Raise :class:`ReconcileError` naming every item whose labs contradict each other."""
    bad = [f"{r.label}: {r.conflict}" for r in rows if r.conflict]
    if bad:
        raise ReconcileError(
            "Labs contradict each other under one profile: "
            + "; ".join(bad)
            + ". Set `governs` on the verdict that decides, with the reason."
        )


def gather(out_dir: str | os.PathLike[str], notebooks: Sequence[str]) -> dict[str, list[Verdict]]:
    """Every notebook's saved verdicts, by notebook."""
    return {nb: load_verdicts(out_dir, nb) for nb in notebooks}


def stale(by_notebook: Mapping[str, Sequence[Verdict]], profile: str) -> list[str]:
    """Notebooks whose plan verdicts were measured under another profile than ``profile``."""
    return sorted(
        nb
        for nb, vs in by_notebook.items()
        if any(v.decision and v.conditions.get("profile", profile) != profile for v in vs)
    )


# ---- the page ----------------------------------------------------------------------------------
_CLASS = {"ship": "ship", "ship changed": "changed", "don't ship": "dont", NOT_MEASURED: "none"}


_MAIN = (("engine", "{}"), ("rtt_ms", "RTT {} ms"), ("recent_sessions", "pages of {}"), ("n", "n = {:,}"))


def _conditions(v: Verdict) -> str:
    """The conditions as people read them: engine, round trip, page, sample; the rest behind
    a disclosure (the profile itself is stated once, above the tables)."""
    c = {k: val for k, val in v.conditions.items() if k != "profile"}
    parts = []
    for key, text in _MAIN:
        if key in c:
            val = c.pop(key)
            if key == "rtt_ms" and not isinstance(val, int | float):
                parts.append(f"RTT {val}")  # "loopback": measured on this machine, no added delay
            else:
                parts.append(text.format(val) if isinstance(val, int | float) or "{}" in text else str(val))
    head = html.escape(", ".join(parts))
    if not c:
        return head
    rest = "".join(
        f"<li>{html.escape(k.replace('_', ' '))}: {html.escape(str(val))}</li>" for k, val in c.items()
    )
    return f"{head}<details><summary>conditions</summary><ul>{rest}</ul></details>"


def _links(notebooks: Sequence[str], v: Verdict | None) -> str:
    links = []
    if v and v.evidence:
        links.append(f"<a href='{html.escape(v.evidence)}'>evidence</a>")
    links += [
        f"<a href='{html.escape(nb)}.html'>{html.escape(nb)}</a>"
        for nb in notebooks
        if not v or nb not in v.evidence
    ]
    if v and v.artifact:
        target = html.escape(v.artifact)
        shown = html.escape(Path(v.artifact).name if "/" in v.artifact else v.artifact)
        links.append(
            f"apply: <a href='{target}'>{shown}</a>" if "/" in v.artifact else f"apply: <code>{shown}</code>"
        )
    return " · ".join(links)


_TARGET_WORDS = {"ship": "met", "ship changed": "met", "don't ship": "missed", NOT_MEASURED: "not shown"}


def is_target(item: str) -> bool:
    """An SLO or success criterion: judged met / missed / not shown rather than shipped."""
    return item.startswith("slo:") or item in SUCCESS_CRITERIA


def _word(r: Row) -> str:
    cls = _CLASS.get(r.decision, "conflict")
    word = r.decision
    if is_target(r.item) and r.decision in _TARGET_WORDS:
        word = _TARGET_WORDS[r.decision] if r.verdict else NOT_MEASURED
    return f"<span class='word {cls}'>{html.escape(word)}</span>"


def _others(r: Row) -> str:
    if r.conflict:
        return f"<p class='conflict'>Labs disagree: {html.escape(r.conflict)}.</p>"
    if not r.others:
        return ""
    items = "".join(
        f"<li>{html.escape(nb)}: {html.escape(v.decision or '')} — {html.escape(v.verdict)}</li>"
        for nb, v in r.others
    )
    governs = r.verdict.governs if r.verdict else ""
    summary = f"also measured by {len(r.others)} more" + (", and which governs" if governs else "")
    why = f"<p>{html.escape(r.sources[0])} governs: {html.escape(governs)}</p>" if governs else ""
    return f"<details><summary>{summary}</summary><ul>{items}</ul>{why}</details>"


def _table(rows: Sequence[Row], first: str) -> str:
    body = []
    for r in rows:
        v = r.verdict
        if v is None:
            body.append(
                f"<tr class='none'><td>{html.escape(r.label)}</td><td>{_word(r)}</td><td colspan='4'>"
                "no lab measured this under the profile</td></tr>"
            )
            continue
        what = f"<b>{html.escape(v.verdict)}</b>"
        if v.detail:
            what += f"<br><span class='detail'>{html.escape(v.detail)}</span>"
        cond = _conditions(v)
        body.append(
            f"<tr><td>{html.escape(r.label)}</td><td>{_word(r)}</td><td>{what}{_others(r)}</td>"
            f"<td class='num'>{html.escape(v.interval())}</td>"
            f"<td>{html.escape(v.cost)}{'<br>' if v.cost and v.flips else ''}"
            f"{'<span class=flips>flips: ' + html.escape(v.flips) + '</span>' if v.flips else ''}</td>"
            f"<td>{cond}<br>{_links(r.sources, v)}</td></tr>"
        )
    head = (
        f"<tr><th>{first}</th><th>decision</th><th>what the labs found</th><th>effect (95% interval)</th>"
        "<th>cost · when it flips</th><th>measured on · evidence</th></tr>"
    )
    return f"<table class='decision'><thead>{head}</thead><tbody>\n" + "\n".join(body) + "\n</tbody></table>"


def to_html(
    rows: Sequence[Row],
    profile_sentence: str,
    rtt_source: str = "",
    stale_notebooks: Sequence[str] = (),
    profile_name: str = "default",
) -> str:
    """The decision: the plan's success criteria judged, then one row per plan item."""
    criteria = [r for r in rows if r.item in SUCCESS_CRITERIA]
    slos = [r for r in rows if r.item.startswith("slo:")]
    items = [r for r in rows if not is_target(r.item)]
    counts = {d: sum(r.decision == d for r in items) for d in DECISIONS}
    tally = ", ".join(f"{n} {d}" for d, n in counts.items() if n)
    conflicts = [r for r in rows if r.conflict]
    warn = (
        f"<p class='conflict'>{len(conflicts)} item(s) where labs disagree with no stated reason: "
        + ", ".join(html.escape(r.label) for r in conflicts)
        + ".</p>"
        if conflicts
        else ""
    )
    old = ""
    if stale_notebooks:
        names = html.escape(", ".join(stale_notebooks))
        old = f"<p class='none'>Left out, measured under another profile: {names}.</p>"
    source = f" <span class='detail'>Round trip: {html.escape(rtt_source)}.</span>" if rtt_source else ""
    return f"""<section class='wb-decision'>
<h2>The decision, for profile {html.escape(profile_name)}</h2>
<p class='conditions'>{html.escape(profile_sentence)}{source}</p>
{warn}{old}
<h3>The plan's success criteria: today against the shipped set</h3>
{_table(criteria, "criterion")}
<h3>What to ship ({html.escape(tally)})</h3>
{_table(items, "plan item")}
<h3>The plan's SLOs with the shipped set</h3>
{_table(slos, "SLO")}
</section>"""


DECISION_CSS = """
<style>
table.decision { table-layout: fixed; width: 100%; font-size: 14px; }
table.decision td, table.decision th { overflow-wrap: anywhere; }
table.decision th:nth-child(1) { width: 15%; } table.decision th:nth-child(2) { width: 10%; }
table.decision th:nth-child(3) { width: 33%; } table.decision th:nth-child(4) { width: 11%; }
table.decision th:nth-child(5) { width: 15%; } table.decision th:nth-child(6) { width: 16%; }
table.decision td:nth-child(1) { font-weight: 600; }
table.decision .num { text-align: right; font-variant-numeric: tabular-nums; }
.word { font-weight: 700; padding: 0 .3rem; border-radius: 3px; display: inline-block; }
.word.ship { color: #fff; background: #1a7f37; } .word.changed { color: #fff; background: #0550ae; }
.word.dont { color: #fff; background: #cf222e; } .word.none { color: #555; background: #eee; }
.word.conflict { color: #fff; background: #9a6700; }
tr.none td { color: #666; }
.detail, .flips { color: #555; font-size: 13px; } .flips { font-style: italic; }
p.conflict { color: #9a6700; font-weight: 600; }
.wb-decision .conditions { background: #f6f8fa; border-left: 4px solid #0550ae; padding: .4rem .8rem; }
</style>
"""

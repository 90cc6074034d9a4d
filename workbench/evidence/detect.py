"""N+1 detection inside one request, with a rule comparable to Sentry's.

Sentry flags an N+1 when one transaction holds sequential, non-overlapping spans of one
normalised query, more than 5 of them, more than 50 ms in total, after a "source" span.
Here the spans are a request's statements (:mod:`workbench.evidence.grouping`):

- a **run** of fingerprint F is F's executions in one request while the loop lasts. The
  loop's body is what ran between its first two executions (``windows`` between two
  ``messages``, per session); the run ends when a statement from before the loop and
  outside its body runs again (the next request's source, when a gap key merged two
  requests);
- the run's executions must not overlap in time (more than ``overlap_ms``, the log's
  time-stamp resolution): overlapping ones are a parallel fan-out, not a loop;
- ``count > min_count`` and ``total > min_total_ms`` (the statements' own durations, plus
  ``rtt_ms`` each: the log measures the server, Sentry's spans the client);
- a **source** statement precedes the run: the last one before it outside the loop body.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from workbench.evidence.grouping import Group
from workbench.evidence.records import Statement


@dataclass(frozen=True)
class Rule:
    """Thresholds of the N+1 rule (Sentry's defaults)."""

    min_count: int = 5  # more than this many executions
    min_total_ms: float = 50.0  # more than this much time, round trips included
    rtt_ms: float = 0.0  # the app-to-database round trip each execution pays
    need_source: bool = True
    overlap_ms: float = 1.0

    def describe(self) -> str:
        source = ", after a source statement" if self.need_source else ""
        rtt = f" (durations + {self.rtt_ms:g} ms round trip each)" if self.rtt_ms else ""
        return (
            f"more than {self.min_count} sequential executions of one fingerprint in one request, "
            f"more than {self.min_total_ms:g} ms in total{rtt}{source}"
        )


SENTRY = Rule()


@dataclass
class Run:
    """One N+1 occurrence: a request's loop of one statement, and the statement before it."""

    group: Group
    source: Statement | None
    executions: list[Statement]

    @property
    def fp(self) -> str:
        return self.executions[0].fp or ""

    @property
    def total_ms(self) -> float:
        return sum(s.duration_ms or 0.0 for s in self.executions)

    @property
    def max_ms(self) -> float:
        return max(s.duration_ms or 0.0 for s in self.executions)


def _overlap(executions: Sequence[Statement], tolerance_s: float) -> bool:
    for a, b in zip(executions, executions[1:], strict=False):
        if a.end is not None and b.start is not None and b.start < a.end - tolerance_s:
            return True
    return False


def runs(group: Group, rule: Rule = SENTRY) -> list[Run]:
    """The N+1 runs of one request under ``rule``."""
    stmts = group.statements
    if len(stmts) <= rule.min_count:
        return []
    first: dict[str, int] = {}
    counts: dict[str, int] = {}
    for i, s in enumerate(stmts):
        fp = s.fp or ""
        first.setdefault(fp, i)
        counts[fp] = counts.get(fp, 0) + 1
    found: list[Run] = []
    for fp, n in counts.items():
        if n <= rule.min_count or not fp:
            continue
        for start, end, body in _segments(stmts, fp, first):
            found += _judge(group, stmts, start, end, body | {fp}, fp, rule)
    found.sort(key=lambda r: stmts.index(r.executions[0]))
    return found


def _segments(stmts: Sequence[Statement], fp: str, first: dict[str, int]) -> list[tuple[int, int, set]]:
    """``fp``'s loops: index ranges [start, end] and the loop body (what ran between the
    first two executions). A loop ends when a statement from before it, outside its body,
    runs again: the next request's source, when a gap key merged two requests."""
    positions = [i for i, s in enumerate(stmts) if s.fp == fp]
    out: list[tuple[int, int, set]] = []
    start = prev = positions[0]
    body: set | None = None
    for p in positions[1:]:
        between = {stmts[j].fp or "" for j in range(prev + 1, p)}
        if body is None:
            body = between
        elif any(x not in body and first[x] < start for x in between):
            out.append((start, prev, body))
            start, body = p, None
        prev = p
    out.append((start, prev, body or set()))
    return out


def _judge(
    group: Group, stmts: Sequence[Statement], start: int, end: int, body: set, fp: str, rule: Rule
) -> list[Run]:
    executions = [s for s in stmts[start : end + 1] if s.fp == fp]
    if len(executions) <= rule.min_count:
        return []
    total = sum(s.duration_ms or 0.0 for s in executions) + rule.rtt_ms * len(executions)
    if total <= rule.min_total_ms or _overlap(executions, rule.overlap_ms / 1000.0):
        return []
    source = next((s for s in reversed(stmts[:start]) if s.fp not in body), None)
    if source is None and rule.need_source:
        return []
    return [Run(group, source, executions)]

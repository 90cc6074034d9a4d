"""Statements gathered into requests, with the best key the log offers, named.

Keys, best first:

- ``trace``: the W3C trace id in a sqlcommenter ``traceparent`` comment; one request
  exactly, whichever connections its statements used.
- ``session+transaction+gap``: one backend session (``%c`` / ``session_id``, else the
  process id); statements of one transaction (the same virtual xid) stay together, and a
  pause longer than ``gap_ms`` between transactions starts a new request (a pooled
  connection serves requests one after another).
- ``application+gap``: only ``application_name`` is known: concurrent requests of one
  application merge, so counts are upper bounds.

Groups are closed as the log moves on (a later statement, or ``idle_s`` of log time
without one), so memory holds only the requests in flight.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from workbench.evidence.fingerprint import traceparent
from workbench.evidence.records import Statement

KINDS = ("trace", "session+transaction+gap", "session+gap", "application+gap", "gap")
GAP_MS = 100.0
IDLE_S = 30.0
#: A group longer than this is cut (a batch session that never pauses).
MAX_STATEMENTS = 10_000
_SWEEP = 20_000


@dataclass
class Group:
    """One request's statements in the order they ran, and the key that gathered them."""

    kind: str
    key: str
    statements: list[Statement] = field(default_factory=list)
    last_end: float | None = None
    last_vxid: str | None = None


def key_of(s: Statement) -> tuple[str, str]:
    """The best grouping key ``s`` carries: (kind, key)."""
    if "traceparent" in s.sql:
        trace = traceparent(s.sql)
        if trace is not None:
            return "trace", trace[0]
    if s.session:
        return ("session+transaction+gap" if s.vxid else "session+gap"), s.session
    if s.app:
        return "application+gap", s.app
    return "gap", ""


class Grouper:
    """Feeds statements in log order; yields each group once it is complete."""

    def __init__(self, gap_ms: float = GAP_MS, idle_s: float = IDLE_S, max_statements: int = MAX_STATEMENTS):
        self.gap = gap_ms / 1000.0
        self.idle = max(idle_s, self.gap)
        self.max_statements = max_statements
        self.open: dict[tuple[str, str], Group] = {}
        self.now: float | None = None
        self.seen = 0

    def add(self, s: Statement) -> list[Group]:
        """The groups ``s`` completes (usually none)."""
        kind, key = key_of(s)
        slot = (kind, key)
        done: list[Group] = []
        group = self.open.get(slot)
        if group is not None and kind != "trace" and self._splits(group, s):
            done.append(self.open.pop(slot))
            group = None
        if group is None:
            group = self.open[slot] = Group(kind, key)
        group.statements.append(s)
        end = s.end
        if end is not None:
            if group.last_end is None or end > group.last_end:
                group.last_end = end
            if self.now is None or end > self.now:
                self.now = end
        group.last_vxid = s.vxid
        if len(group.statements) >= self.max_statements:
            done.append(self.open.pop(slot))
        self.seen += 1
        if not self.seen % _SWEEP:
            done += self.sweep()
        return done

    def _splits(self, group: Group, s: Statement) -> bool:
        if s.vxid and s.vxid == group.last_vxid:
            return False  # one transaction is one request
        start = s.start
        return start is not None and group.last_end is not None and start - group.last_end > self.gap

    def sweep(self) -> list[Group]:
        """Close the groups no later statement can extend."""
        if self.now is None:
            return []
        done = [
            slot
            for slot, g in self.open.items()
            if g.last_end is not None
            and self.now - g.last_end > (self.idle if g.kind == "trace" else self.gap)
        ]
        return [self.open.pop(slot) for slot in done]

    def finish(self) -> Iterator[Group]:
        yield from self.open.values()
        self.open = {}

"""One executed statement as a log shows it, and the pieces every log format shares.

PostgreSQL writes the same message text whatever the log's format (stderr, csvlog,
jsonlog): ``duration: 0.412 ms  statement: SELECT ...`` (simple protocol),
``duration: 0.120 ms  execute <unnamed>: SELECT ... $1`` (extended protocol, with
``parameters: $1 = '42'`` in the message's detail), or, under ``log_statement``, the
statement first and ``duration: ... ms`` alone at its end. :class:`Assembler` turns those
messages into :class:`Statement` records; the readers only split lines into fields.

>>> m = message("duration: 0.412 ms  execute S_1: SELECT 1")
>>> m.duration_ms, m.kind, m.sql
(0.412, 'execute', 'SELECT 1')
>>> parameters("parameters: $1 = '42', $2 = 'it''s', $3 = NULL")
['42', "it's", None]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

#: Most quarantined lines kept with their reason (the count goes on).
QUARANTINE_KEPT = 10_000


class Statement:
    """One statement execution: when it ended, how long it took, its SQL and who ran it."""

    __slots__ = (
        "file",
        "line",
        "end",
        "duration_ms",
        "sql",
        "params",
        "session",
        "vxid",
        "app",
        "kind",
        "fp",
    )

    def __init__(
        self,
        file: str,
        line: int,
        end: float | None,
        duration_ms: float | None,
        sql: str,
        params: list[str | None] | None = None,
        session: str | None = None,
        vxid: str | None = None,
        app: str | None = None,
        kind: str = "statement",
    ) -> None:
        self.file, self.line, self.end, self.duration_ms = file, line, end, duration_ms
        self.sql, self.params, self.session, self.vxid, self.app, self.kind = (
            sql,
            params,
            session,
            vxid,
            app,
            kind,
        )
        self.fp: str | None = None  # set by the analysis: the statement's fingerprint

    @property
    def start(self) -> float | None:
        """The start time: the log's time stamp is written when the statement ends."""
        if self.end is None:
            return None
        return self.end - (self.duration_ms or 0.0) / 1000.0

    def __repr__(self) -> str:
        return f"Statement({self.file}:{self.line}, {self.duration_ms} ms, {self.sql[:40]!r})"


@dataclass
class Quarantine:
    """Lines that could not be read: file, line and reason (the first few thousand kept)."""

    entries: list[tuple[str, int, str]] = field(default_factory=list)
    count: int = 0

    def add(self, file: str, line: int, reason: str) -> None:
        self.count += 1
        if len(self.entries) < QUARANTINE_KEPT:
            self.entries.append((file, line, reason))

    def lines(self) -> list[str]:
        """``file:line: reason`` per kept entry."""
        return [f"{f}:{n}: {r}" for f, n, r in self.entries]


# ---- time stamps -------------------------------------------------------------------------
_SECONDS: dict[str, float] = {}


def timestamp(text: str) -> float:
    """Seconds since the epoch of a log time stamp (``%m``/``%t``: ``2026-12-06 09:15:26.123 UTC``).

    The zone's name is not interpreted: a log has one zone, and grouping needs differences only.

    >>> timestamp("2026-12-06 09:15:26.125 UTC") - timestamp("2026-12-06 09:15:26 UTC")
    0.125
    """
    whole = text[:19]
    seconds = _SECONDS.get(whole)
    if seconds is None:
        if len(_SECONDS) > 4096:  # consecutive lines share their second: a small cache suffices
            _SECONDS.clear()
        seconds = _SECONDS[whole] = datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp()
    if len(text) > 20 and text[19] == ".":
        space = text.find(" ", 20)
        return seconds + float(text[19:space] if space > 0 else text[19:])
    return seconds


# ---- messages ------------------------------------------------------------------------------
class Message(NamedTuple):
    duration_ms: float | None
    kind: str | None  # statement, execute, parse, bind; None for a bare duration or another message
    sql: str


_KINDS = ("statement", "execute", "parse", "bind")


def message(text: str) -> Message:
    """The duration, kind and SQL of a log message (kind None when it carries no statement)."""
    duration = None
    if text.startswith("duration: "):
        number, _, rest = text[10:].partition(" ms")
        try:
            duration = float(number)
        except ValueError:
            return Message(None, None, text)
        text = rest.lstrip(" ")
        if not text:
            return Message(duration, None, "")
    head, sep, sql = text.partition(": ")
    if not sep:
        return Message(duration, None, text)
    kind = head.split(" ", 1)[0]
    if kind not in _KINDS or (kind == "statement" and head != "statement"):
        return Message(duration, None, text)
    return Message(duration, kind, sql)


def parameters(detail: str | None) -> list[str | None] | None:
    """Values of ``parameters: $1 = '...', $2 = NULL`` (PostgreSQL's quoting), or None."""
    if not detail or not detail.startswith("parameters: "):
        return None
    out: list[str | None] = []
    text, i, n = detail, len("parameters: "), len(detail)
    while i < n:
        eq = text.find(" = ", i)
        if eq < 0:
            break
        i = eq + 3
        if text.startswith("NULL", i):
            out.append(None)
            i += 4
        elif i < n and text[i] == "'":
            chars, i = [], i + 1
            while i < n:
                c = text[i]
                if c == "'":
                    if i + 1 < n and text[i + 1] == "'":
                        chars.append("'")
                        i += 2
                        continue
                    i += 1
                    break
                chars.append(c)
                i += 1
            out.append("".join(chars))
        else:
            break
        i = text.find("$", i)
        if i < 0:
            break
    return out


class Assembler:
    """Turns log messages into :class:`Statement` records, in the order they complete.

    A statement logged without its duration (``log_statement``) waits for the same
    session's ``duration: ... ms`` line; the next statement of that session, or the end of
    the file, releases it without one. ``parse`` and ``bind`` steps are not executions.
    """

    def __init__(self) -> None:
        self.pending: dict[str, Statement] = {}

    def add(
        self,
        file: str,
        line: int,
        end: float | None,
        text: str,
        detail: str | None,
        session: str | None,
        vxid: str | None,
        app: str | None,
    ) -> tuple[Statement, ...]:
        """The statements this message completes (usually itself; none for a step)."""
        m = message(text)
        key = session or ""
        if m.kind is None:
            if m.duration_ms is not None and not m.sql:
                waiting = self.pending.pop(key, None)
                if waiting is not None:
                    waiting.duration_ms = m.duration_ms
                    waiting.end = end
                    return (waiting,)
            return ()
        if m.kind == "parse" or m.kind == "bind":
            return ()
        s = Statement(file, line, end, m.duration_ms, m.sql, parameters(detail), session, vxid, app, m.kind)
        waiting = self.pending.pop(key, None) if self.pending else None
        if m.duration_ms is None:
            self.pending[key] = s
            return (waiting,) if waiting is not None else ()
        return (waiting, s) if waiting is not None else (s,)

    def finish(self) -> Iterator[Statement]:
        yield from self.pending.values()
        self.pending.clear()

"""A declared ``log_line_prefix`` turned into a parser of stderr log lines.

PostgreSQL's stderr log starts every line with the prefix the server was configured with
(``log_line_prefix``, e.g. ``'%m [%p] %q%u@%d '``), then ``LOG:  `` (or ``DETAIL:  ``,
``ERROR:  `` ...) and the message; the lines of a multi-line message after the first start
with a tab. The prefix's escapes become named fields:

==== ==================  ====  ====================
%m   time (ms)           %u    user
%t   time (s)            %d    database
%n   epoch time          %a    application_name
%p   process id          %h    remote host
%c   session id          %r    remote host(port)
%l   line in session     %x    transaction id
%v   virtual xid         %e    SQLSTATE
%q   the rest only for sessions
==== ==================  ====  ====================

>>> p = LinePrefix("%m [%p] %q%u@%d/%a %c %x %v ")
>>> f = p.match("2026-12-06 09:15:26.123 UTC [4242] app@db/psql 6578a1b2.1092 0 3/7 LOG:  duration: 1 ms")
>>> f["time"], f["pid"], f["user"], f["app"], f["session"], f["vxid"], f["severity"], f["message"]
('2026-12-06 09:15:26.123 UTC', '4242', 'app', 'psql', '6578a1b2.1092', '3/7', 'LOG', 'duration: 1 ms')
>>> p.match("2026-12-06 09:15:26.123 UTC [77] LOG:  checkpoint starting: time")["user"] is None
True
"""

from __future__ import annotations

import re

from workbench.errors import WorkbenchError

#: The default of PostgreSQL 15's ``log_line_prefix``.
DEFAULT = "%m [%p] "

_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [A-Za-z0-9+:-]+)?"
_ESCAPES = {
    "m": ("time", _TIME),
    "t": ("time", _TIME),
    "n": ("epoch", r"\d+(?:\.\d+)?"),
    "p": ("pid", r"\d+"),
    "c": ("session", r"[0-9a-f]+\.[0-9a-f]+"),
    "l": ("line", r"\d+"),
    "u": ("user", r"[^\s@\[\]]*?"),
    "d": ("db", r"[^\s@/\[\]]*?"),
    "a": ("app", r".*?"),
    "h": ("host", r"[^\s\]]*?"),
    "r": ("host", r"[^\s\]]*?"),
    "x": ("xid", r"\d+"),
    "v": ("vxid", r"(?:-?\d+/-?\d+)?"),
    "e": ("sqlstate", r"[0-9A-Z]{5}"),
    "i": ("tag", r".*?"),
    "b": ("backend", r".*?"),
    "s": ("session_start", _TIME),
    "Q": ("query_id", r"-?\d+"),
    "P": ("leader", r"\d*"),
}
_SEVERITIES = (
    "DEBUG[1-5]|INFO|NOTICE|WARNING|ERROR|LOG|FATAL|PANIC|DETAIL|HINT|CONTEXT|STATEMENT|QUERY|LOCATION"
)


class PrefixError(WorkbenchError):
    """A ``log_line_prefix`` holds an escape the reader does not know."""


class LinePrefix:
    """Parses lines written under one ``log_line_prefix`` into fields (None where absent)."""

    def __init__(self, prefix: str = DEFAULT) -> None:
        self.prefix = prefix
        parts: list[str] = []
        seen: set[str] = set()
        optional_from: int | None = None
        i = 0
        while i < len(prefix):
            c = prefix[i]
            if c != "%":
                parts.append(re.escape(c))
                i += 1
                continue
            start, j = i, i + 1
            while j < len(prefix) and (prefix[j].isdigit() or prefix[j] == "-"):
                j += 1  # padding, e.g. %-10a: values are padded with spaces
            if j >= len(prefix):
                raise PrefixError(f"log_line_prefix {prefix!r} ends inside an escape: complete it")
            e = prefix[j]
            i = j + 1
            if e == "%":
                parts.append("%")
            elif e == "q":
                optional_from = len(parts)
            elif e in _ESCAPES:
                name, pattern = _ESCAPES[e]
                padded = j > start + 1
                group = f"(?P<{name}>{pattern})" if name not in seen else f"(?:{pattern})"
                seen.add(name)
                parts.append(rf"\s*{group}\s*" if padded else group)
            else:
                known = ", ".join(f"%{k}" for k in [*_ESCAPES, "q", "%"])
                raise PrefixError(
                    f"Unknown escape %{e} in log_line_prefix {prefix!r}: expected one of {known}"
                )
        if optional_from is not None:
            parts[optional_from:] = ["(?:" + "".join(parts[optional_from:]) + ")?"]
        self.fields = sorted(seen)
        self.pattern = re.compile(
            "".join(parts) + rf"(?P<severity>{_SEVERITIES}):  (?P<message>.*)", re.DOTALL
        )

    def match(self, line: str) -> dict[str, str | None] | None:
        """The fields of ``line``, or None when it does not start with the prefix."""
        m = self.pattern.match(line)
        return m.groupdict() if m else None

"""What a request carries to its SQL statements: its trace id, its cancellation, their timing.

**Tracing.** A request's W3C ``traceparent`` header (``00-<trace id>-<parent id>-<flags>``)
names it; a request without a valid one gets a fresh id. Every statement the request
runs carries it as a trailing SQL comment in sqlcommenter's form
(``/*traceparent='00-…-01'*/``), so PostgreSQL's own logs (``log_statement``,
``log_min_duration_statement``, ``pg_stat_activity.query``) group by request. The
answer carries the same header back. The cost: each statement's text is new, so it is
not prepared (PostgreSQL parses and plans it every time).

**Cancellation.** When a request gives up (its deadline passes, or its client goes
away), :meth:`RequestEngine.cancel` marks it cancelled and sends PostgreSQL a cancel
request for the statement running on its connection: the statement ends with
``QueryCanceled`` on the server, and a statement not yet started raises
:class:`Cancelled` before it is sent. The connection stays usable.

>>> parent = traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
>>> parent
'00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
>>> with_comment("SELECT 1", parent)
"SELECT 1 /*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/"
>>> traceparent("garbage").startswith("00-") and len(traceparent(None)) == 55
True
"""

from __future__ import annotations

import contextlib
import random
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from workbench.engines.postgres import _bind

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class Cancelled(Exception):
    """The request gave up before this statement was sent (``reason``: timeout or disconnect)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"request cancelled ({reason})")
        self.reason = reason


def traceparent(header: str | None) -> str:
    """``header`` when it is a valid version-00 ``traceparent`` with non-zero ids, else a new one
    (a fresh trace id and parent id, sampled). Ids need to be unique, not secret: the
    Mersenne Twister draws them (``secrets`` cost a system call each, on the event loop)."""
    match = _TRACEPARENT.match((header or "").strip().lower())
    if match and set(match[1]) != {"0"} and set(match[2]) != {"0"}:
        return match[0]
    return f"00-{random.getrandbits(128) or 1:032x}-{random.getrandbits(64) or 1:016x}-01"


def with_comment(sql: str, parent: str) -> str:
    """``sql`` with the sqlcommenter comment for ``parent`` appended (its value is URL-safe)."""
    return f"{sql.rstrip().rstrip(';')} /*traceparent='{parent}'*/"


class RequestEngine:
    """An engine as one request sees it: each ``execute`` carries the request's trace comment
    (when ``parent`` is set), is timed into ``record`` (seconds), and is refused once the
    request is cancelled."""

    def __init__(self, engine: Any, record: Callable[[float], None], parent: str | None = None) -> None:
        self.engine, self.record, self.parent = engine, record, parent
        self.dialect = engine.dialect
        self.reason = ""
        self._finished = False
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def execute(self, sql: str, params: Any = None) -> list[tuple]:
        if self.reason:
            raise Cancelled(self.reason)
        started = time.perf_counter()
        try:
            if not self.parent:
                return self.engine.execute(sql, params)
            # Bound first, then commented: the binding (sqlglot's tokenizer, cached by the
            # statement's text) keys on the text without the per-request comment, so it
            # stays cached; the comment (hex digits and dashes) needs no escaping.
            text, values = _bind(sql, params)
            cur = self.engine.con.execute(with_comment(text, self.parent), values)
            return cur.fetchall() if cur.description else []
        finally:
            self.record(time.perf_counter() - started)

    def finish(self) -> None:
        """The request's work is over: a later :meth:`cancel` does nothing. Waits for a cancel
        under way, so the connection goes back to the pool only after it."""
        with self._lock:
            self._finished = True

    def cancel(self, reason: str) -> bool:
        """Mark the request cancelled and ask PostgreSQL to cancel the running statement
        (blocking for one short connection: call it on a thread). False when the work had
        already finished. A cancel that reaches an idle connection is ignored by PostgreSQL."""
        with self._lock:
            if self._finished or self.reason:
                return False
            self.reason = reason
            with contextlib.suppress(Exception):  # the connection may already be gone
                self.engine.con.cancel_safe(timeout=5)
            return True

"""The service's read endpoints: their SQL, parameters and answers (blocking, on a pool thread).

Each endpoint is a :class:`ReadRoute`: a path, the name that labels its metrics, and the
work that turns a request and a database engine into a JSON-able answer (``None`` for
404; :class:`BadRequest` for 400). The app (:mod:`workbench.service.app`) wraps each in
the request frame: query cache, pool, timing and recovery.

>>> decode_cursor(encode_cursor(datetime(2026, 1, 2, 3, 4), 42))
(datetime.datetime(2026, 1, 2, 3, 4), 42)
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from starlette.requests import Request

from workbench import queries
from workbench.service.settings import Settings

MAX_LIMIT = 1000
#: A first page starts after this (later than any row): the keyset cursor's "unset".
FIRST_PAGE = datetime(9999, 1, 1)


def encode_cursor(created_at: datetime, session_id: int) -> str:
    """An opaque keyset cursor: the last row's (created_at, id)."""
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{session_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        created, sid = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created), int(sid)
    except Exception:
        raise BadRequest(f"Invalid cursor {cursor!r}: pass the next_cursor of the previous page") from None


class BadRequest(Exception):
    """A 400: the message names the bad value."""


def session_page(db: Any, project_id: int, limit: int, cursor: str | None) -> dict[str, Any]:
    from workbench.strategies import SESSION_COLUMNS

    after_created, after_id = decode_cursor(cursor) if cursor else (FIRST_PAGE, 0)
    rows = db.execute(
        queries.load("session_page", db.dialect),
        {"project_id": project_id, "limit": limit, "after_created_at": after_created, "after_id": after_id},
    )
    sessions = [dict(zip(SESSION_COLUMNS, r, strict=True)) for r in rows]
    last = sessions[-1] if len(sessions) == limit else None
    return {
        "project_id": project_id,
        "sessions": sessions,
        "next_cursor": encode_cursor(last["created_at"], last["id"]) if last else None,
    }


def recent(db: Any, project_id: int, limit: int, strategy: str) -> dict[str, Any]:
    from workbench.strategies import strategy as named

    return {
        "project_id": project_id,
        "strategy": strategy,
        "sessions": named(strategy).load(db, project_id, limit),
    }


def session_detail(db: Any, session_id: int) -> dict[str, Any] | None:
    from workbench.strategies import MESSAGE_COLUMNS, SESSION_COLUMNS, WINDOW_COLUMNS

    rows = db.execute(queries.load("session_by_id", db.dialect), {"session_id": session_id})
    if not rows:
        return None
    session = dict(zip(SESSION_COLUMNS, rows[0], strict=True))
    params = {"session_id": session_id}
    msgs = db.execute(queries.load("session_messages", db.dialect), params)
    wins = db.execute(queries.load("session_windows", db.dialect), params)
    session["messages"] = [dict(zip(MESSAGE_COLUMNS, r, strict=True)) for r in msgs]
    session["windows"] = [dict(zip(WINDOW_COLUMNS, r, strict=True)) for r in wins]
    return session


def day_usage(db: Any, day: date) -> dict[str, Any]:
    start = datetime(day.year, day.month, day.day)
    params = {"day_start": start, "day_end": start + timedelta(days=1)}
    rows = db.execute(queries.load("day_usage", db.dialect), params)
    names = (
        "model",
        "messages",
        "sessions",
        "input_tokens",
        "output_tokens",
        "cache_creation_tokens",
        "cache_read_tokens",
    )
    return {"day": day.isoformat(), "models": [dict(zip(names, r, strict=True)) for r in rows]}


def jobs_page(db: Any, status: str, limit: int) -> dict[str, Any]:
    names = (
        "id",
        "session_id",
        "type",
        "status",
        "attempts",
        "error",
        "created_at",
        "started_at",
        "finished_at",
    )
    rows = db.execute(queries.load("jobs_by_status", db.dialect), {"status": status, "limit": limit})
    return {"status": status, "jobs": [dict(zip(names, r, strict=True)) for r in rows]}


def _int(request: Request, name: str, default: int | None = None, *, path: bool = False) -> int:
    raw = request.path_params.get(name) if path else request.query_params.get(name)
    if raw is None:
        if default is None:
            raise BadRequest(f"Missing parameter {name!r}")
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise BadRequest(f"Parameter {name}={raw!r} is not an integer") from None
    if value < (1 if name == "limit" else 0) or (name == "limit" and value > MAX_LIMIT):
        raise BadRequest(f"Parameter {name}={value} is out of range (limit: 1..{MAX_LIMIT})")
    return value


@dataclass(frozen=True)
class ReadRoute:
    """One endpoint: ``work(request, db)`` runs on a pool thread with a connection."""

    path: str
    name: str
    work: Callable[[Request, Any], Any]
    cacheable: bool = True


def read_routes(settings: Settings) -> list[ReadRoute]:
    """The endpoints for ``settings`` (its loading strategy; the debug routes when asked)."""

    def sessions_work(request: Request, db: Any) -> Any:
        return session_page(
            db,
            _int(request, "project_id", path=True),
            _int(request, "limit", 20),
            request.query_params.get("cursor"),
        )

    def recent_work(request: Request, db: Any) -> Any:
        return recent(
            db, _int(request, "project_id", path=True), _int(request, "limit", 20), settings.strategy
        )

    def session_work(request: Request, db: Any) -> Any:
        return session_detail(db, _int(request, "session_id", path=True))

    def usage_work(request: Request, db: Any) -> Any:
        raw = request.path_params["day"]
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise BadRequest(f"Invalid day {raw!r}: use YYYY-MM-DD") from None
        return day_usage(db, day)

    def jobs_work(request: Request, db: Any) -> Any:
        return jobs_page(db, request.query_params.get("status", "queued"), _int(request, "limit", 50))

    routes = [
        ReadRoute("/projects/{project_id}/sessions", "sessions", sessions_work),
        ReadRoute("/projects/{project_id}/recent", "recent", recent_work),
        ReadRoute("/sessions/{session_id}", "session", session_work),
        ReadRoute("/usage/{day}", "usage", usage_work),
        ReadRoute("/jobs", "jobs", jobs_work),
    ]
    if settings.debug_routes:
        routes += [
            ReadRoute("/_fail", "fail", fail_work, cacheable=False),
            ReadRoute("/_sleep", "sleep", sleep_work, cacheable=False),
        ]
    return routes


def fail_work(request: Request, db: Any) -> Any:
    if request.query_params.get("kill") == "connection":  # a broken connection, to be replaced
        db.engine.con.close()
    raise RuntimeError("a failing handler (the /_fail debug route)")


def sleep_work(request: Request, db: Any) -> Any:  # holds its connection, for backpressure tests
    db.execute("SELECT pg_sleep(:s)", {"s": _int(request, "ms", 100) / 1000})
    return {"slept_ms": _int(request, "ms", 100)}

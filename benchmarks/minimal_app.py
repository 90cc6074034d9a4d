"""A minimal plain-ASGI app serving ``/projects/{id}/recent?limit=N`` batched: the yardstick.

No framework, no metrics, no thread hops: an async psycopg pool, the batch strategy's
three statements, rows zipped into dicts and encoded with orjson. It answers what
``workbench serve --strategy batch`` answers on that endpoint (bench_service_vs_minimal.py
checks the bodies are equal before it times anything). Run under uvicorn with the
database in ``$MINIMAL_APP_DATABASE_URL`` and the pool size in ``$MINIMAL_APP_POOL``.

    MINIMAL_APP_DATABASE_URL=postgresql://... .venv/bin/python -m uvicorn \\
        --app-dir benchmarks minimal_app:app --port 8001 --no-access-log
"""

from __future__ import annotations

import os

import orjson
from psycopg_pool import AsyncConnectionPool

SESSIONS = """
SELECT id, project_id, external_id, title, model, git_branch, is_sidechain, message_count,
       created_at, updated_at
FROM sessions WHERE project_id = %s ORDER BY created_at DESC, id DESC LIMIT %s
"""
MESSAGES = """
SELECT id, session_id, external_id, role, type, content, timestamp, model,
       input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens
FROM messages WHERE session_id = ANY(%s::bigint[]) ORDER BY session_id, timestamp, id
"""
WINDOWS = """
SELECT id, session_id, start_time, end_time, last_activity, message_count, total_tokens
FROM session_windows WHERE session_id = ANY(%s::bigint[]) ORDER BY session_id, start_time, id
"""
S_COLS = ("id", "project_id", "external_id", "title", "model", "git_branch", "is_sidechain")
S_COLS += ("message_count", "created_at", "updated_at")
M_COLS = ("id", "session_id", "external_id", "role", "type", "content", "timestamp", "model")
M_COLS += ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens")
W_COLS = ("id", "session_id", "start_time", "end_time", "last_activity", "message_count", "total_tokens")

pool = AsyncConnectionPool(
    os.environ.get("MINIMAL_APP_DATABASE_URL", ""),
    min_size=int(os.environ.get("MINIMAL_APP_POOL", "8")),
    max_size=int(os.environ.get("MINIMAL_APP_POOL", "8")),
    kwargs={"autocommit": True},
    open=False,
)


async def recent(project_id: int, limit: int) -> bytes:
    async with pool.connection() as con:
        rows = await (await con.execute(SESSIONS, (project_id, limit))).fetchall()
        sessions = [dict(zip(S_COLS, r, strict=True)) | {"messages": [], "windows": []} for r in rows]
        if sessions:
            by_id = {s["id"]: s for s in sessions}
            ids = list(by_id)
            for r in await (await con.execute(MESSAGES, (ids,))).fetchall():
                by_id[r[1]]["messages"].append(dict(zip(M_COLS, r, strict=True)))
            for r in await (await con.execute(WINDOWS, (ids,))).fetchall():
                by_id[r[1]]["windows"].append(dict(zip(W_COLS, r, strict=True)))
    return orjson.dumps({"project_id": project_id, "strategy": "batch", "sessions": sessions})


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await pool.open(wait=True)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    parts = scope["path"].strip("/").split("/")
    status, body = 404, b'{"error":"not found"}'
    if len(parts) == 3 and parts[0] == "projects" and parts[2] == "recent":
        query = dict(p.split("=", 1) for p in scope["query_string"].decode().split("&") if "=" in p)
        status, body = 200, await recent(int(parts[1]), int(query.get("limit", "20")))
    elif scope["path"] == "/health":
        status, body = 200, b'{"status":"ok"}'
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})

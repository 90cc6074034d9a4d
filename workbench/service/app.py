"""The backend's read API as an ASGI app: Starlette routes on uvicorn, over PostgreSQL.

Why this shape. The backend is Go: ``net/http`` runs each request on its own goroutine
and ``database/sql`` holds a bounded pool of connections (``SetMaxOpenConns``). The
closest Python service is an event loop that accepts every connection (uvicorn, with
its C HTTP parser) and runs the blocking database work on a bounded set of threads,
one per pooled connection. Then the two knobs the plan talks about are explicit
settings — the pool size, and the worker processes (Go's GOMAXPROCS: Python needs
processes to use more than one core) — and backpressure is bounded: a request that
would wait beyond ``max_waiting`` others gets ``503`` on the event loop before it takes a
thread, one that waits past ``pool_timeout`` gets ``503`` then, never an unbounded queue. Starlette is a thin,
well-kept ASGI toolkit (routing and responses, no ORM or validation layer), so the
floor it adds per request is small and is measured (``/health``). A WSGI server would
tie concurrency to threads and could only refuse work after taking a thread; aiohttp's
server would do, but ASGI runs in-process under ``TestClient`` for the tests and on any
ASGI server.

Endpoints (all ``GET``; JSON):

================================== ===================================================
``/projects/{id}/sessions``        a project's session list, newest first, paginated by
                                   keyset (``limit``, ``cursor``; ``next_cursor``)
``/projects/{id}/recent``          the ``limit`` most recent sessions with messages and
                                   windows, loaded by the configured strategy (the plan's
                                   N+1 page: :mod:`workbench.strategies`)
``/sessions/{id}``                 one session with its messages and windows
``/usage/{YYYY-MM-DD}``            a day's usage: messages and tokens per model
``/jobs``                          the jobs page (``status``, ``limit``)
``/health``                        no database: the service's own floor
``/metrics``                       Prometheus text format
``/stats``                         this process's statement timings, pool waits and
                                   cache hits (JSON; ``?reset=1`` starts a new interval)
================================== ===================================================

A query cache (off by default; ``cache_seconds`` > 0 turns it on) keeps each read
endpoint's answer for that many seconds, keyed by its path and query, in a bounded
TTL/LRU cache (``cachetools.TTLCache``, ``cache_size`` entries). A hit answers on the
event loop without taking a pool connection; hits and misses are counted in
``/metrics`` and ``/stats``. It trades freshness (an answer up to ``cache_seconds`` old)
for load, as any read cache in front of the backend would.

Every handler runs inside one request frame. Recovery (the plan's panic recovery): an
exception becomes a ``500`` counted by kind, a broken connection is replaced, and the
service keeps serving. Deadline and disconnect (the plan's context): a request past
``request_timeout`` answers ``504``, and one whose client goes away is dropped; either
way its running statement is cancelled in PostgreSQL and counted
(``workbench_http_cancelled_total``). Tracing: the request's ``traceparent`` (or a new
one) is answered back and, with ``trace_sql``, carried into every statement as a SQL
comment (:mod:`~workbench.service.context`).

The parts, one concept each: :mod:`~workbench.service.settings` (what a run is configured
with), :mod:`~workbench.service.pool` (connections, 503 when full),
:mod:`~workbench.service.metrics` (``/metrics`` and ``/stats``),
:mod:`~workbench.service.context` (what a request carries to its statements) and
:mod:`~workbench.service.routes` (each endpoint's SQL and answer); this module assembles
them into the app, with the request frame every read endpoint runs in.

>>> app = create_app(Settings(database_url=url, strategy="batch", pool_size=4))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

import anyio
import orjson
from cachetools import TTLCache
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from psycopg.errors import QueryCanceled
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from workbench.service.context import Cancelled, RequestEngine, traceparent
from workbench.service.metrics import Instruments
from workbench.service.pool import Pool, PoolFull
from workbench.service.routes import BadRequest, read_routes
from workbench.service.settings import ENDPOINTS, SETTINGS_ENV, ServiceError, Settings

__all__ = ["ENDPOINTS", "ServiceError", "Settings", "app_from_env", "create_app", "query_cache"]


def _json(obj: Any, status: int = 200) -> Response:
    return _raw_json(orjson.dumps(obj), status)


def _raw_json(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/json")


def _encoded(answer: Any) -> bytes | None:
    return None if answer is None else orjson.dumps(answer)


def query_cache(settings: Settings, timer: Callable[[], float] = time.monotonic) -> TTLCache | None:
    """The read cache for ``settings`` (None when off): (status, body) by (endpoint, path, query)."""
    if not settings.cache_seconds:
        return None
    return TTLCache(maxsize=settings.cache_size, ttl=settings.cache_seconds, timer=timer)


def create_app(settings: Settings, cache_timer: Callable[[], float] = time.monotonic) -> Starlette:
    """The service for ``settings``; ``cache_timer`` is the query cache's clock (a test's fake one)."""
    metrics = Instruments(settings.pool_size)
    pool = Pool(
        settings.database_url, settings.pool_size, settings.max_waiting, settings.pool_timeout, metrics
    )
    cache = query_cache(settings, cache_timer)

    def timed(name: str) -> Callable[[float], None]:
        return lambda seconds: metrics.statement(name, seconds)

    async def supervised(job: Awaitable[Any], request: Request, state: _Work) -> Any:
        """``job``'s result, unless the deadline passes or the client goes away first: then the
        request's statement is cancelled in PostgreSQL and :class:`Cancelled` raised once the
        job has ended (so its connection is back in the pool)."""
        task = asyncio.ensure_future(job)
        watch = asyncio.ensure_future(_disconnected(request))
        try:
            deadline = settings.request_timeout or None
            done, _ = await asyncio.wait((task, watch), timeout=deadline, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
        if task in done:
            return task.result()
        reason = "disconnect" if watch in done else "timeout"
        await anyio.to_thread.run_sync(state.cancel, reason)
        try:  # ends at once: its statement was cancelled, or the next one refused
            return await task  # (or it had just finished: its answer stands)
        except (QueryCanceled, Cancelled):
            raise Cancelled(reason) from None

    def endpoint(
        name: str, work: Callable[[Request, Any], Any], cacheable: bool = True
    ) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            started = time.perf_counter()
            key = (name, request.url.path, request.url.query) if cache is not None and cacheable else None
            if key is not None:  # looked up and filled on the event loop only: no lock needed
                hit = cache.get(key)
                metrics.cached(name, hit is not None)
                if hit is not None:
                    response = Response(hit[1], status_code=hit[0], media_type="application/json")
                    metrics.counts[str(hit[0])] += 1
                    metrics.requests.labels(name, str(hit[0])).observe(time.perf_counter() - started)
                    return response
            parent = traceparent(request.headers.get("traceparent"))
            state = _Work(parent if settings.trace_sql else None, timed(name))
            metrics.in_flight.inc()
            try:
                # The answer is encoded on the handler's thread too, after its connection went
                # back: 1.3 MB of JSON took the event loop ~2 ms a request (profile_service.py).
                job = pool.run(lambda engine: state.run(work, request, engine), _encoded)
                body = await supervised(job, request, state)
                response = _json({"error": "not found"}, 404) if body is None else _raw_json(body)
            except PoolFull as e:
                response = _json({"error": f"busy: no database connection ({e.reason})"}, 503)
                metrics.errors.labels(name, f"pool_{e.reason}").inc()
            except BadRequest as e:
                response = _json({"error": str(e)}, 400)
            except Cancelled as e:  # given up: its statement was cancelled in PostgreSQL
                metrics.cancelled.labels(name, e.reason).inc()
                if e.reason == "timeout":
                    response = _json({"error": f"timed out after {settings.request_timeout:g} s"}, 504)
                    metrics.errors.labels(name, "timeout").inc()
                else:  # nobody reads it: 499, as nginx logs a client that closed its request
                    response = _json({"error": "client closed the request"}, 499)
            except Exception as e:  # the plan's panic recovery: count it, answer 500, keep serving
                response = _json({"error": f"{type(e).__name__} in {name}"}, 500)
                metrics.errors.labels(name, type(e).__name__).inc()
            finally:
                metrics.in_flight.dec()
            response.headers["traceparent"] = parent
            status = response.status_code
            if key is not None and status in (200, 404):
                cache[key] = (status, response.body)
            metrics.counts[str(status)] += 1
            metrics.requests.labels(name, str(status)).observe(time.perf_counter() - started)
            return response

        return handle

    async def health(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def metrics_route(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def stats_route(request: Request) -> Response:
        reset = request.query_params.get("reset") == "1"
        return _json(metrics.stats(reset) | {"settings": asdict(settings) | {"database_url": "***"}})

    routes = [Route(r.path, endpoint(r.name, r.work, r.cacheable)) for r in read_routes(settings)]
    routes += [Route("/health", health), Route("/metrics", metrics_route), Route("/stats", stats_route)]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await anyio.to_thread.run_sync(pool.open)
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(pool.close)

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.settings, app.state.pool, app.state.metrics = settings, pool, metrics
    return app


class _Work:
    """One request's database work: its engine (once it has a connection) and its cancellation."""

    def __init__(self, parent: str | None, record: Callable[[float], None]) -> None:
        self.parent, self.record = parent, record
        self.db: RequestEngine | None = None
        self.reason = ""

    def run(self, work: Callable[[Request, Any], Any], request: Request, engine: Any) -> Any:
        """On the pool's thread, holding a connection."""
        db = self.db = RequestEngine(engine, self.record, self.parent)
        if self.reason:  # given up while it waited for the connection
            db.reason = self.reason
        try:
            return work(request, db)
        finally:
            db.finish()

    def cancel(self, reason: str) -> None:
        """On a helper thread: refuse what has not started, cancel what runs."""
        self.reason = reason
        if self.db is not None:
            self.db.cancel(reason)


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone away (ASGI ``http.disconnect``)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def app_from_env() -> Starlette:
    """The app for ``$WORKBENCH_SERVICE_SETTINGS`` (JSON): uvicorn's factory in each worker."""
    text = os.environ.get(SETTINGS_ENV)
    if not text:
        raise ServiceError(f"${SETTINGS_ENV} is not set: start the service with `workbench serve`")
    return create_app(Settings.from_json(text))

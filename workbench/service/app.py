"""The backend's read API as an ASGI app: Starlette routes on uvicorn, over PostgreSQL.

Why this shape. The backend is Go: ``net/http`` runs each request on its own goroutine
and ``database/sql`` holds a bounded pool of connections (``SetMaxOpenConns``). The
closest Python service is an event loop that accepts every connection (uvicorn, with
its C HTTP parser) and runs the blocking database work on a bounded set of threads,
one per pooled connection. Then the two knobs the plan talks about are explicit
settings — the pool size, and the worker processes (Go's GOMAXPROCS: Python needs
processes to use more than one core) — and backpressure is decided on the event loop
before any thread or connection is taken: a request that would wait beyond a bound
gets ``503`` at once instead of joining an unbounded queue. Starlette is a thin,
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

Every handler runs inside one recovery frame (the plan's panic recovery): an exception
becomes a ``500`` counted by kind, the connection is checked and replaced when broken,
and the service keeps serving.

>>> app = create_app(Settings(database_url=url, strategy="batch", pool_size=4))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

import anyio
import orjson
from cachetools import TTLCache
from hdrh.histogram import HdrHistogram
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from workbench import queries
from workbench.errors import WorkbenchError

#: The endpoints the load mix draws from, by name (the ``endpoint`` label of the metrics).
ENDPOINTS = ("sessions", "recent", "session", "usage", "jobs")
SETTINGS_ENV = "WORKBENCH_SERVICE_SETTINGS"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Latency buckets (seconds): dense around the SLO thresholds (50 ms, 100 ms, 200 ms).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2, 5, 10)
MAX_LIMIT = 1000


class ServiceError(WorkbenchError):
    """The service cannot start with these settings."""


@dataclass(frozen=True)
class Settings:
    """What one service run is configured with (one configuration of the comparison).

    ``pool_size``: database connections (and handler threads) per worker process.
    ``max_waiting``: requests allowed to wait for a connection; beyond it ``503`` at once.
    ``pool_timeout``: seconds a request may wait for a connection before ``503``.
    ``workers``: uvicorn worker processes. ``debug_routes``: add ``/_fail`` and ``/_sleep?ms=`` (tests).
    ``cache_seconds``: keep read answers this long (0: no query cache); ``cache_size``: at most
    this many answers (least recently used go first).
    """

    database_url: str
    strategy: str = "n_plus_one"
    pool_size: int = 4
    max_waiting: int = 64
    pool_timeout: float = 0.5
    workers: int = 1
    debug_routes: bool = False
    cache_seconds: float = 0.0
    cache_size: int = 4096

    def __post_init__(self) -> None:
        from workbench.strategies import strategy

        strategy(self.strategy)  # unknown names fail here, with the list
        for name in ("pool_size", "workers"):
            if getattr(self, name) < 1:
                raise ServiceError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.max_waiting < 0 or self.pool_timeout < 0:
            raise ServiceError(
                f"max_waiting ({self.max_waiting}) and pool_timeout ({self.pool_timeout}) must be >= 0"
            )
        if self.cache_seconds < 0 or self.cache_size < 1:
            raise ServiceError(
                f"cache_seconds ({self.cache_seconds}) must be >= 0 (0: no cache) and cache_size "
                f"({self.cache_size}) at least 1"
            )
        if not self.database_url.startswith(("postgresql", "postgres:")):
            raise ServiceError(
                f"The service runs over PostgreSQL, not {self.database_url.split(':')[0]!r}: the backend "
                "under study uses it, and the embedded engines' connections are bound to one thread. "
                "Pass a postgresql:// URL (workbench pg start gives one)."
            )

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Settings:
        return cls(**json.loads(text))

    @property
    def label(self) -> str:
        """Short name in tables: strategy and pool, then workers and cache where not the default."""
        text = f"{self.strategy} pool={self.pool_size}"
        if self.workers != 1:
            text += f" workers={self.workers}"
        return text + (f" cache={self.cache_seconds:g}s" if self.cache_seconds else "")


class PoolFull(Exception):
    """No connection within the bound: answered with 503 (``reason``: queue or timeout)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


# ---- instrumentation ---------------------------------------------------------------------
class Instruments:
    """The service's Prometheus metrics, plus HDR histograms for ``/stats``.

    With ``$PROMETHEUS_MULTIPROC_DIR`` set (several worker processes), prometheus-client
    writes every process's values to that folder and ``/metrics`` sums them; its process
    collector (CPU seconds, resident memory) has no multiprocess mode, so with several
    workers those two SLIs come from the load tool's psutil sampling only.
    """

    def __init__(self, pool_size: int) -> None:
        self.multiproc = bool(os.environ.get(MULTIPROC_ENV))
        self.registry = None if self.multiproc else CollectorRegistry()
        reg = {"registry": self.registry} if self.registry is not None else {}
        live = {"multiprocess_mode": "livesum"} if self.multiproc else {}
        self.requests = Histogram(
            "workbench_http_request_duration_seconds",
            "Time from the request reaching the app to its response, by endpoint and status.",
            ["endpoint", "status"],
            buckets=BUCKETS,
            **reg,
        )
        self.errors = Counter(
            "workbench_http_errors",
            "Requests answered 5xx, by endpoint and kind.",
            ["endpoint", "kind"],
            **reg,
        )
        self.in_flight = Gauge("workbench_http_in_flight", "Requests being handled.", **reg, **live)
        self.pool_in_use = Gauge("workbench_pool_in_use", "Connections lent to handlers.", **reg, **live)
        self.pool_size = Gauge("workbench_pool_size", "Connections in the pool.", **reg, **live)
        self.pool_waiting = Gauge(
            "workbench_pool_waiting", "Requests waiting for a connection.", **reg, **live
        )
        self.pool_wait = Histogram(
            "workbench_pool_wait_seconds", "Time waiting for a connection.", buckets=BUCKETS, **reg
        )
        self.db = Histogram(
            "workbench_db_statement_seconds",
            "Time of each SQL statement, by endpoint.",
            ["endpoint"],
            buckets=BUCKETS,
            **reg,
        )
        self.cache = Counter(
            "workbench_cache_requests",
            "Read requests looked up in the query cache, by endpoint and result (hit or miss).",
            ["endpoint", "result"],
            **reg,
        )
        self.pool_size.set(pool_size)
        if self.registry is not None:  # CPU seconds and resident memory of this process
            from prometheus_client import ProcessCollector

            ProcessCollector(registry=self.registry)
        self._lock = threading.Lock()
        self.db_hdr = HdrHistogram(1, 60_000_000, 3)  # microseconds, 1 µs .. 60 s
        self.wait_hdr = HdrHistogram(1, 60_000_000, 3)
        self.counts: collections.Counter[str] = collections.Counter()
        self.cache_counts: collections.Counter[str] = collections.Counter()

    def cached(self, endpoint: str, hit: bool) -> None:
        result = "hit" if hit else "miss"
        self.cache.labels(endpoint, result).inc()
        self.cache_counts[result] += 1  # on the event loop only: no lock needed

    def statement(self, endpoint: str, seconds: float) -> None:
        self.db.labels(endpoint).observe(seconds)
        with self._lock:
            self.db_hdr.record_value(max(1, int(seconds * 1e6)))

    def waited(self, seconds: float) -> None:
        self.pool_wait.observe(seconds)
        with self._lock:
            self.wait_hdr.record_value(max(1, int(seconds * 1e6)))

    def exposition(self) -> bytes:
        if not self.multiproc:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)

    def stats(self, reset: bool = False) -> dict[str, Any]:
        """Statement timings, pool waits and answers since start (or the last reset)."""
        with self._lock:
            out = {
                "pid": os.getpid(),
                "db_statements": self.db_hdr.get_total_count(),
                "db_p50_ms": self.db_hdr.get_value_at_percentile(50) / 1000,
                "db_p99_ms": self.db_hdr.get_value_at_percentile(99) / 1000,
                "db_max_ms": self.db_hdr.get_max_value() / 1000,
                "pool_waits": self.wait_hdr.get_total_count(),
                "pool_wait_p99_ms": self.wait_hdr.get_value_at_percentile(99) / 1000,
                "pool_wait_max_ms": self.wait_hdr.get_max_value() / 1000,
                "requests": dict(self.counts),
                "cache_hits": self.cache_counts["hit"],
                "cache_misses": self.cache_counts["miss"],
            }
            if reset:
                self.db_hdr.reset()
                self.wait_hdr.reset()
                self.counts.clear()
                self.cache_counts.clear()
            return out


class TimedEngine:
    """An engine whose ``execute`` times every statement (the service's own DB timing)."""

    def __init__(self, engine: Any, record: Callable[[float], None]) -> None:
        self.engine, self.record = engine, record
        self.dialect = engine.dialect

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def execute(self, sql: str, params: Any = None) -> list[tuple]:
        started = time.perf_counter()
        try:
            return self.engine.execute(sql, params)
        finally:
            self.record(time.perf_counter() - started)


# ---- the pool ----------------------------------------------------------------------------
class Pool:
    """A bounded pool of engines handed out on the event loop.

    ``acquire`` returns an idle engine at once, or waits (at most ``timeout`` seconds,
    and only while fewer than ``max_waiting`` others wait) for one to be released;
    otherwise it raises :class:`PoolFull`. Waiting is a future per waiter, so a release
    hands the engine straight to the oldest waiter and a timeout never loses one.
    """

    def __init__(self, factory: Callable[[], Any], size: int, max_waiting: int, timeout: float) -> None:
        self.factory, self.size, self.max_waiting, self.timeout = factory, size, max_waiting, timeout
        self.idle: list[Any] = []
        self.waiters: collections.deque[asyncio.Future] = collections.deque()
        self.in_use = 0

    def open(self) -> None:
        self.idle = [self.factory() for _ in range(self.size)]

    def close(self) -> None:
        for engine in self.idle:
            with contextlib.suppress(Exception):
                engine.close()
        self.idle = []

    async def acquire(self) -> Any:
        if self.idle:
            self.in_use += 1
            return self.idle.pop()
        if len(self.waiters) >= self.max_waiting:
            raise PoolFull("queue")
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        try:
            engine = await asyncio.wait_for(asyncio.shield(fut), self.timeout)
        except TimeoutError:
            if fut.done() and not fut.cancelled():  # released to us as the timeout fired
                engine = fut.result()
            else:
                fut.cancel()
                raise PoolFull("timeout") from None
        finally:
            with contextlib.suppress(ValueError):
                self.waiters.remove(fut)
        self.in_use += 1
        return engine

    def release(self, engine: Any) -> None:
        self.in_use -= 1
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_result(engine)
                return
        self.idle.append(engine)

    def healthy(self, engine: Any) -> Any:
        """``engine`` if its connection still answers, else a new one (called in a thread)."""
        try:
            engine.execute("SELECT 1")
            return engine
        except Exception:
            with contextlib.suppress(Exception):
                engine.close()
            return self.factory()


# ---- the endpoints' work (blocking, on a pool thread) -----------------------------------------
_PAGE_SQL = """
SELECT id, project_id, external_id, title, model, git_branch, is_sidechain, message_count,
       created_at, updated_at
FROM sessions
WHERE project_id = :project_id
  AND (CAST(:after_created AS TIMESTAMP) IS NULL
       OR (created_at, id) < (CAST(:after_created AS TIMESTAMP), :after_id))
ORDER BY created_at DESC, id DESC
LIMIT :limit
"""
_SESSION_SQL = """
SELECT id, project_id, external_id, title, model, git_branch, is_sidechain, message_count,
       created_at, updated_at
FROM sessions WHERE id = :session_id
"""
_USAGE_SQL = """
SELECT coalesce(model, '') AS model, count(*) AS messages, count(DISTINCT session_id) AS sessions,
       coalesce(sum(input_tokens), 0) AS input_tokens, coalesce(sum(output_tokens), 0) AS output_tokens,
       coalesce(sum(cache_creation_tokens), 0) AS cache_creation_tokens,
       coalesce(sum(cache_read_tokens), 0) AS cache_read_tokens
FROM messages
WHERE timestamp >= :day_start AND timestamp < :day_end
GROUP BY coalesce(model, '')
ORDER BY model
"""


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

    after_created, after_id = decode_cursor(cursor) if cursor else (None, 0)
    rows = db.execute(
        _PAGE_SQL,
        {"project_id": project_id, "limit": limit, "after_created": after_created, "after_id": after_id},
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

    rows = db.execute(_SESSION_SQL, {"session_id": session_id})
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
    rows = db.execute(_USAGE_SQL, {"day_start": start, "day_end": start + timedelta(days=1)})
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


def _json(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


# ---- the app -----------------------------------------------------------------------------------
def query_cache(settings: Settings, timer: Callable[[], float] = time.monotonic) -> TTLCache | None:
    """The read cache for ``settings`` (None when off): (status, body) by (endpoint, path, query)."""
    if not settings.cache_seconds:
        return None
    return TTLCache(maxsize=settings.cache_size, ttl=settings.cache_seconds, timer=timer)


def create_app(
    settings: Settings,
    engine_factory: Callable[[], Any] | None = None,
    cache_timer: Callable[[], float] = time.monotonic,
) -> Starlette:
    """The service for ``settings``; ``engine_factory`` opens one connection (default: PostgreSQL);
    ``cache_timer`` is the query cache's clock (a test's fake one)."""
    from workbench.engines import open_engine

    factory = engine_factory or (lambda: open_engine("postgres", settings.database_url))
    metrics = Instruments(settings.pool_size)
    pool = Pool(factory, settings.pool_size, settings.max_waiting, settings.pool_timeout)
    limiter = anyio.CapacityLimiter(settings.pool_size)
    cache = query_cache(settings, cache_timer)

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
            metrics.in_flight.inc()
            status, engine = 500, None
            try:
                waited = time.perf_counter()
                metrics.pool_waiting.set(len(pool.waiters) + 1)
                try:
                    engine = await pool.acquire()
                finally:
                    metrics.pool_waiting.set(len(pool.waiters))
                metrics.waited(time.perf_counter() - waited)
                metrics.pool_in_use.set(pool.in_use)
                db = TimedEngine(engine, lambda s: metrics.statement(name, s))
                body = await anyio.to_thread.run_sync(work, request, db, limiter=limiter)
                response = _json({"error": "not found"}, 404) if body is None else _json(body)
            except PoolFull as e:
                response = _json({"error": f"busy: no database connection ({e.reason})"}, 503)
                metrics.errors.labels(name, f"pool_{e.reason}").inc()
            except BadRequest as e:
                response = _json({"error": str(e)}, 400)
            except Exception as e:  # the plan's panic recovery: count it, answer 500, keep serving
                response = _json({"error": f"{type(e).__name__} in {name}"}, 500)
                metrics.errors.labels(name, type(e).__name__).inc()
                if engine is not None:
                    engine = await anyio.to_thread.run_sync(pool.healthy, engine, limiter=limiter)
            finally:
                if engine is not None:
                    pool.release(engine)
                    metrics.pool_in_use.set(pool.in_use)
                metrics.in_flight.dec()
            status = response.status_code
            if key is not None and status in (200, 404):
                cache[key] = (status, response.body)
            metrics.counts[str(status)] += 1
            metrics.requests.labels(name, str(status)).observe(time.perf_counter() - started)
            return response

        return handle

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

    def fail_work(request: Request, db: Any) -> Any:
        if request.query_params.get("kill") == "connection":  # a broken connection, to be replaced
            db.engine.con.close()
        raise RuntimeError("a failing handler (the /_fail debug route)")

    def sleep_work(request: Request, db: Any) -> Any:  # holds its connection, for backpressure tests
        db.execute("SELECT pg_sleep(:s)", {"s": _int(request, "ms", 100) / 1000})
        return {"slept_ms": _int(request, "ms", 100)}

    async def health(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def metrics_route(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def stats_route(request: Request) -> Response:
        reset = request.query_params.get("reset") == "1"
        return _json(metrics.stats(reset) | {"settings": asdict(settings) | {"database_url": "***"}})

    routes = [
        Route("/projects/{project_id}/sessions", endpoint("sessions", sessions_work)),
        Route("/projects/{project_id}/recent", endpoint("recent", recent_work)),
        Route("/sessions/{session_id}", endpoint("session", session_work)),
        Route("/usage/{day}", endpoint("usage", usage_work)),
        Route("/jobs", endpoint("jobs", jobs_work)),
        Route("/health", health),
        Route("/metrics", metrics_route),
        Route("/stats", stats_route),
    ]
    if settings.debug_routes:
        routes += [
            Route("/_fail", endpoint("fail", fail_work, cacheable=False)),
            Route("/_sleep", endpoint("sleep", sleep_work, cacheable=False)),
        ]

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


def app_from_env() -> Starlette:
    """The app for ``$WORKBENCH_SERVICE_SETTINGS`` (JSON): uvicorn's factory in each worker."""
    text = os.environ.get(SETTINGS_ENV)
    if not text:
        raise ServiceError(f"${SETTINGS_ENV} is not set: start the service with `workbench serve`")
    return create_app(Settings.from_json(text))

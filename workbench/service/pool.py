"""The service's database connections: ``psycopg_pool`` with 503-when-full.

A request takes a connection on the handler's thread and holds it while its work runs
there. Both bounds answer ``503`` (:class:`PoolFull`), and the app counts each by its
``reason``:

* ``queue``: ``size`` requests hold connections and ``max_waiting`` more already wait, so
  a new one is refused at once, on the event loop, before it takes a thread;
* ``timeout``: no connection came within ``timeout`` seconds.

``psycopg_pool`` opens the connections, replaces one that broke under a request (it
checks each on return), and hands a returned connection straight to the oldest waiting
thread. It replaced a hand-written pool on the event loop: at saturation it served more
and under overload it kept serving while answering the 503s (docs/BENCHMARKS.md,
benchmarks/bench_pool.py).

>>> pool = Pool("postgresql://127.0.0.1/db", size=4, max_waiting=8, timeout=0.5)  # doctest: +SKIP
>>> pool.open()                                                                   # doctest: +SKIP
>>> await pool.run(lambda engine: engine.execute("SELECT 1"))                    # doctest: +SKIP
[(1,)]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from psycopg_pool import ConnectionPool, PoolTimeout, TooManyRequests

from workbench.engines.postgres import PostgresEngine, _libpq_url

T = TypeVar("T")


class PoolFull(Exception):
    """No connection within the bound: answered with 503 (``reason``: queue or timeout)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class Observer:
    """What a pool reports: requests waiting (+1/-1), connections lent (+1/-1), each wait's
    seconds. :class:`workbench.service.metrics.Instruments` is one; this one ignores all."""

    def waiting(self, delta: int) -> None: ...

    def lent(self, delta: int) -> None: ...

    def waited(self, seconds: float) -> None: ...


class Pool:
    """``size`` connections to ``url``; at most ``max_waiting`` requests wait, each at most
    ``timeout`` seconds (see the module docstring)."""

    def __init__(
        self, url: str, size: int, max_waiting: int, timeout: float, observer: Observer | None = None
    ) -> None:
        self.url, self.size, self.timeout = url, size, timeout
        self.observer = observer or Observer()
        self.pool = ConnectionPool(
            _libpq_url(url),
            min_size=size,
            max_size=size,
            kwargs={"autocommit": True, "connect_timeout": 10},
            timeout=timeout,
            open=False,
            name="workbench",
        )
        # The threads that hold or wait for a connection: beyond them, 503 at once.
        self.limiter = anyio.CapacityLimiter(size + max_waiting)
        self.in_use = 0

    def open(self) -> None:
        self.pool.open(wait=True)

    def close(self) -> None:
        self.pool.close()

    async def run(self, work: Callable[[Any], Any], then: Callable[[Any], T] = lambda x: x) -> T:
        """``then(work(engine))`` on a thread: ``work`` holding a pooled connection, ``then``
        after it went back (e.g. encoding the answer); :class:`PoolFull` when no connection
        comes within the bounds."""
        if self.limiter.available_tokens < 1:
            raise PoolFull("queue")
        return await anyio.to_thread.run_sync(self._run, work, then, limiter=self.limiter)

    def _run(self, work: Callable[[Any], Any], then: Callable[[Any], T]) -> T:
        started = time.perf_counter()
        self.observer.waiting(1)
        try:
            con = self.pool.getconn()
        except TooManyRequests:
            raise PoolFull("queue") from None
        except PoolTimeout:
            raise PoolFull("timeout") from None
        finally:
            self.observer.waiting(-1)
        self.observer.waited(time.perf_counter() - started)
        self.observer.lent(1)
        self.in_use += 1
        try:
            result = work(_engine(self.url, con))
        finally:
            self.in_use -= 1
            self.observer.lent(-1)
            self.pool.putconn(con)  # a broken connection is discarded and replaced
        return then(result)


def _engine(url: str, con: Any) -> PostgresEngine:
    """A :class:`PostgresEngine` over ``con``, a connection the pool owns (never closed here)."""
    engine = PostgresEngine.__new__(PostgresEngine)
    engine.target, engine.schema_name, engine.con = url, "public", con
    return engine

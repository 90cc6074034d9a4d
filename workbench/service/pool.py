"""A bounded pool of database engines handed out on the event loop, with 503-when-full.

>>> import asyncio
>>> pool = Pool(lambda: object(), size=1, max_waiting=0, timeout=0.1)
>>> pool.open()
>>> async def two():
...     held = await pool.acquire()
...     try:
...         await pool.acquire()
...     except PoolFull as e:
...         return e.reason
>>> asyncio.run(two())
'queue'
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable
from typing import Any


class PoolFull(Exception):
    """No connection within the bound: answered with 503 (``reason``: queue or timeout)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


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

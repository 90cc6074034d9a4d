"""The open-loop load generator: sends at intended times, whatever the responses do.

:class:`OpenLoop` walks the schedule: it sleeps until request *i*'s intended time, starts
its send as a task and moves on at once, so a slow or stalled response delays nothing
after it. Each latency runs from the intended time to the response (no coordinated
omission). The send lag (actual start − intended) goes to its own histogram: it says
whether the generator kept its schedule. ``clock`` and ``sleep`` are injectable, so a
test drives it on a fake clock.

Bounded: the schedule is (count and seconds), in-flight requests are capped
(``max_in_flight``; a send beyond it is recorded as ``not_sent``, never queued), every
request has a timeout, and the drain after the last send is bounded. When the target
stops answering (``abort_after`` connection failures in a row) the run stops and is
marked partial; what was measured is kept.

Targets: loopback, or a URL the caller names with ``allow_remote=True`` (the CLI's
``--url``). Requests only ever go to that base URL.

>>> run = run_load("http://127.0.0.1:8000", Profile.constant(50, 5), requests)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import queue
import socket
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import numpy as np
import polars as pl

from workbench.service.load.results import LoadRun, new_histogram, record
from workbench.service.load.schedule import LoadError, Profile

Send = Callable[[str], Awaitable[int]]
CONNECTION_FAILURES = {"refused", "disconnected", "connection_reset"}


def check_url(url: str, allow_remote: bool = False) -> str:
    """``url`` as a base URL (no trailing slash), or a :class:`LoadError` naming it.

    Only http(s) with a host; a host other than loopback needs ``allow_remote`` (the user
    named it), so the tool never loads anything it was not pointed at.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise LoadError(f"Malformed URL {url!r} ({e}): use e.g. http://127.0.0.1:8000") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LoadError(f"Malformed URL {url!r}: use http://HOST:PORT (e.g. http://127.0.0.1:8000)")
    if parts.query or parts.fragment:
        raise LoadError(f"URL {url!r} has a query or fragment: give the service's base URL only")
    if not allow_remote and not is_loopback(parts.hostname):
        raise LoadError(
            f"{parts.hostname!r} in {url!r} is not loopback: the load tool sends only to 127.0.0.1, "
            "or to a URL you name explicitly (--url)"
        )
    del port
    return url.rstrip("/")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_reachable(url: str, timeout: float = 3.0) -> None:
    """Refuse a target nothing answers at, before any schedule starts."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except OSError as e:
        reason = "connection refused" if isinstance(e, ConnectionRefusedError) else str(e) or type(e).__name__
        raise LoadError(
            f"Nothing answers at {url} ({reason}): start the service (workbench serve) or check the URL"
        ) from None


def classify(exc: BaseException) -> str:
    """An error kind for a failed send (the ``outcome`` column)."""
    import aiohttp

    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "disconnected"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "refused" if isinstance(exc.os_error, ConnectionRefusedError) else "connect_error"
    if isinstance(exc, aiohttp.ClientOSError | ConnectionError):
        return "connection_reset"
    return type(exc).__name__


class OpenLoop:
    """Runs one schedule; see the module docstring."""

    def __init__(
        self,
        send: Send,
        *,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        max_in_flight: int = 2000,
        abort_after: int = 50,
        drain_seconds: float = 10.0,
    ) -> None:
        self.send, self.clock, self.sleep = send, clock, sleep
        self.max_in_flight, self.abort_after, self.drain_seconds = max_in_flight, abort_after, drain_seconds
        self.reason = ""
        self._failures = 0

    async def run(
        self, times: np.ndarray, stages: np.ndarray, requests: Sequence[tuple[str, str]]
    ) -> tuple[dict[str, list], dict[int, Any], Any]:
        n = len(times)
        rec: dict[str, list] = {
            "stage": stages[:n].tolist(),
            "endpoint": [r[0] for r in requests[:n]],
            "intended_s": times.tolist(),
            "sent_s": [None] * n,
            "latency_ms": [None] * n,
            "status": [None] * n,
            "outcome": ["aborted"] * n,  # what the loop never reached (a run stopped early)
        }
        hdr: dict[int, Any] = {}
        lag = new_histogram()
        tasks: set[asyncio.Task] = set()
        start = self.clock()
        for i in range(n):
            if self.reason:
                break
            target = start + times[i]
            delay = target - self.clock()
            await self.sleep(delay if delay > 0 else 0)
            now = self.clock()
            record(lag, now - target)
            if len(tasks) >= self.max_in_flight:
                rec["outcome"][i] = "client_overload"  # the generator's own limit: counted, never queued
                continue
            rec["sent_s"][i] = now - start
            task = asyncio.ensure_future(self._one(i, target, requests[i][1], int(stages[i]), rec, hdr))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.drain_seconds)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1)
        return rec, hdr, lag

    async def _one(
        self, i: int, target: float, path: str, stage: int, rec: dict[str, list], hdr: dict
    ) -> None:
        try:
            status = await self.send(path)
        except asyncio.CancelledError:
            rec["outcome"][i] = "timeout"
            return
        except Exception as e:  # every failure is a measured outcome, never a crash of the run
            kind = classify(e)
            rec["outcome"][i] = kind
            self._failures = self._failures + 1 if kind in CONNECTION_FAILURES else 0
            if self._failures >= self.abort_after and not self.reason:
                self.reason = f"the target stopped answering ({self._failures} {kind} in a row)"
            return
        self._failures = 0
        done = self.clock()
        rec["status"][i] = status
        rec["latency_ms"][i] = (done - target) * 1000
        if status >= 500:
            rec["outcome"][i] = f"http_{status}"
        else:
            rec["outcome"][i] = "ok"
            record(hdr.setdefault(stage, new_histogram()), done - target)


class ThreadTimer:
    """``await timer.sleep(delay)`` wakes the event loop within tens of microseconds of the time.

    The event loop's own timers (uvloop's libuv, or asyncio's selector) count in whole
    milliseconds, so a send woke anywhere from about half a millisecond early to half a
    millisecond late. Here a helper thread waits with ``time.sleep`` (the OS's
    high-resolution timers) and wakes the loop through ``call_soon_threadsafe``; the loop
    meanwhile sleeps in its poll, handling answers, and no core is spun. One wait at a time
    (the generator's sends are sequential).
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="workbench-load-timer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            deadline, loop, future = item
            remaining = deadline - time.perf_counter()
            if remaining > 0:
                time.sleep(remaining)
            loop.call_soon_threadsafe(_wake, future)

    async def sleep(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((time.perf_counter() + delay, loop, future))
        await future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(5)


def _wake(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


class HttpSender:
    """aiohttp keep-alive client: ``await sender(path)`` returns the status."""

    def __init__(self, base_url: str, timeout: float = 10.0, connections: int = 2000) -> None:
        self.base_url, self.timeout, self.connections = base_url, timeout, connections
        self.session: Any = None

    async def __aenter__(self) -> HttpSender:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=self.connections, ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout), auto_decompress=False
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()

    async def __call__(self, path: str) -> int:
        async with self.session.get(self.base_url + path) as r:
            await r.read()
            return r.status


def run_load(
    url: str,
    profile: Profile,
    requests: Sequence[tuple[str, str]],
    *,
    label: str = "",
    allow_remote: bool = False,
    timeout: float = 10.0,
    max_in_flight: int = 2000,
    abort_after: int = 50,
    on_start: Callable[[], Any] | None = None,
) -> LoadRun:
    """Send ``requests`` (endpoint, path) to ``url`` on ``profile``'s schedule; return the run.

    Runs on its own thread and event loop (uvloop when installed), so it works the same
    from a notebook (whose loop is already running) and from the command line.

    Nothing process-wide is changed: no scheduling class, no garbage-collector switch.
    The run's ``realtime`` records whether its thread ran in the real-time class anyway
    (inherited from a caller that chose it: :func:`realtime_scheduling`, ``workbench loadtest --realtime``).
    """
    base = check_url(url, allow_remote)
    check_reachable(base)
    times, stages = profile.intended()
    if len(requests) < len(times):
        raise LoadError(f"{len(requests)} requests for {len(times)} scheduled sends: draw at least as many")
    if on_start is not None:
        on_start()
    result: dict[str, Any] = {}

    async def main() -> None:
        timer = ThreadTimer()
        try:
            async with HttpSender(base, timeout, max_in_flight) as sender:
                loop = OpenLoop(
                    sender,
                    sleep=timer.sleep,
                    max_in_flight=max_in_flight,
                    abort_after=abort_after,
                    drain_seconds=timeout + 1,
                )
                result["loop"] = loop
                result["out"] = await loop.run(times, stages, requests)
        finally:
            timer.close()

    def thread() -> None:
        result["realtime"] = _in_realtime_class()
        try:
            try:
                import uvloop

                factory = uvloop.new_event_loop
            except ImportError:  # pragma: no cover - uvloop is a dependency
                factory = None
            with asyncio.Runner(loop_factory=factory) as runner:
                runner.run(main())
        except BaseException as e:  # re-raised on the caller's thread
            result["error"] = e

    started = time.perf_counter()
    worker = threading.Thread(target=thread, name="workbench-load", daemon=True)
    worker.start()
    worker.join(profile.seconds + timeout + 30)  # bounded even if something hangs
    wall = time.perf_counter() - started
    if "error" in result:
        raise result["error"]
    if "out" not in result:
        raise LoadError(
            f"The load run to {base} did not finish within its bound ({profile.seconds + timeout + 30:.0f} s)"
        )
    rec, hdr, lag = result["out"]
    reason = result["loop"].reason
    frame = pl.DataFrame(
        rec,
        schema={
            "stage": pl.Int32,
            "endpoint": pl.String,
            "intended_s": pl.Float64,
            "sent_s": pl.Float64,
            "latency_ms": pl.Float64,
            "status": pl.Int32,
            "outcome": pl.String,
        },
    )
    return LoadRun(
        label=label or profile.describe(),
        url=base,
        profile=profile.describe(),
        requests=frame,
        hdr=hdr,
        lag=lag,
        stage_rates=[s.rate if s.end_rate is None else (s.rate + s.end_rate) / 2 for s in profile.stages],
        stage_seconds=[s.seconds for s in profile.stages],
        partial=bool(reason),
        reason=reason,
        wall_seconds=wall,
        realtime=result.get("realtime", False),
    )


@contextlib.contextmanager
def realtime_scheduling() -> Iterator[bool]:
    """The calling thread in the real-time FIFO class (priority 10) until exit, for an entry
    point to opt into (``workbench loadtest --realtime``), never a library default.

    Threads it starts (the generator's) inherit the class, so on a busy machine the OS wakes
    them first: at load average 8-10, send lag P99 at 50-200 req/s was 7-490 ms in the
    ordinary class and 0.3-0.8 ms in this one (docs/BENCHMARKS.md). Yields whether it was
    granted (Linux, and CAP_SYS_NICE or an RLIMIT_RTPRIO); the class is restored on exit.
    """
    try:
        before = os.sched_getscheduler(0), os.sched_getparam(0)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))  # 0: the calling thread
    except (AttributeError, OSError):  # not Linux, or not permitted
        yield False
        return
    try:
        yield True
    finally:
        os.sched_setscheduler(0, *before)


def _in_realtime_class() -> bool:
    """Whether the calling thread runs in a real-time scheduling class (Linux; else False)."""
    try:
        return os.sched_getscheduler(0) in (os.SCHED_FIFO, os.SCHED_RR)
    except (AttributeError, OSError):
        return False

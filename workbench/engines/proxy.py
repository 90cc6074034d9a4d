"""A latency proxy on loopback: network distance between the driver and PostgreSQL.

``tc netem`` is not available on these machines, so the delay is added in user space,
the way toxiproxy's latency toxic does it: every chunk read from one side is stamped on
arrival and written to the other side ``delay_ms`` later, in order. Each direction has
its own reader and writer, so a chunk that arrives while an earlier one waits is not
delayed twice (a streamed result pays the delay once, not once per chunk), and the two
directions never wait for each other. A round trip therefore costs ``2 × delay_ms``
more than through the proxy at zero delay, plus each sleep's wake-up after its due time
(measure it with :func:`ping_ms`, as the RTT sweep does; figures in docs/BENCHMARKS.md),
and the proxy at zero delay costs a little more than a direct connection.

Threads, not asyncio, for the delay's precision at the lowest cost. A delayed chunk
must leave within microseconds of its due time (a "same zone" round trip is 0.2 ms, so
0.1 ms each way): ``time.sleep`` waits with nanosecond resolution (``clock_nanosleep``),
while asyncio's default selector (epoll) rounds every timer wait up to a whole
millisecond. The writer threads also ask the kernel for 1 ns timer slack (Linux
``prctl``, their own threads only), which cuts a sleep's overshoot from ~75 µs to
~25 µs, and sleep that much less (the least overshoot of a few naps, measured when the
connection opens). A thread blocked in ``recv``/``sendall``/``sleep`` holds no GIL, so the driver
beside it in the same process is held up only while a chunk is handed on. At zero delay each direction is one
thread copying ``recv`` to ``sendall``, the least work per chunk; with a delay, a reader
thread stamps chunks into a queue and a writer thread sends each when it is due.
benchmarks/bench_proxy.py measures the overhead against a direct connection and a
minimal asyncio forwarder, and the delay's accuracy (docs/BENCHMARKS.md).

The proxy records what it did: ``holds`` keeps how long each delayed chunk was held
(arrival to send, seconds; the latest 100,000) and ``lead`` the most any writer woke
early, so a test checks the delay applied without timing anything itself.

Closing either side closes the other: when one side ends its stream (or resets it), the
data it sent before is delivered and then both sockets are shut down.

>>> with LatencyProxy.to(url, delay_ms=0.5) as proxy:           # doctest: +SKIP
...     engine = PostgresEngine(proxy.rewrite(url))           # 1 ms more per round trip
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import ipaddress
import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from workbench.errors import EngineError

CHUNK = 256 * 1024
LOOPBACK = "127.0.0.1"


class ProxyError(EngineError):
    """The latency proxy cannot serve this target."""


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _low_timer_slack() -> None:
    """This thread's sleeps wake within ~1 ns of timer slack instead of 50 µs (Linux only)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(29, 1, 0, 0, 0)  # PR_SET_TIMERSLACK


def _least_oversleep(probes: int = 5, nap: float = 50e-6) -> float:
    """The least this thread's ``time.sleep`` wakes after its due time (s), over a few naps.

    Writers sleep that much less, so the quickest wake-ups land on time and none early.
    """
    lates = []
    for _ in range(probes):
        started = time.perf_counter()
        time.sleep(nap)
        lates.append(time.perf_counter() - started - nap)
    return max(0.0, min(lates))


class LatencyProxy:
    """Forward ``127.0.0.1:port`` to ``target_host:target_port``, ``delay_ms`` later each way.

    A context manager: entering starts listening (``port`` is then the listening port),
    leaving stops accepting and closes every forwarded connection.
    """

    def __init__(self, target_host: str, target_port: int, delay_ms: float = 0.0, chunk: int = CHUNK) -> None:
        if not _loopback(target_host):
            raise ProxyError(
                f"Latency proxy target {target_host!r} is not a loopback address: the proxy adds "
                "delay on top of loopback's; point it at a server on 127.0.0.1 (workbench pg start)"
            )
        if delay_ms < 0:
            raise ProxyError(f"delay_ms={delay_ms!r}: a delay cannot be negative")
        self.target = (target_host, int(target_port))
        self.delay_ms = float(delay_ms)
        self.chunk = chunk
        self.port = 0
        self.accepted = 0
        #: How long each delayed chunk was held, arrival to send (s); the latest 100,000.
        self.holds: collections.deque[float] = collections.deque(maxlen=100_000)
        #: The most any writer woke before a chunk's due time (s): holds are at least delay - lead.
        self.lead = 0.0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @classmethod
    def to(cls, url: str, delay_ms: float = 0.0) -> LatencyProxy:
        """A proxy in front of the server a PostgreSQL ``url`` names (its host and port)."""
        parsed = make_url(url)
        return cls(parsed.host or "", parsed.port or 5432, delay_ms)

    def rewrite(self, url: str) -> str:
        """``url`` with its host and port replaced by the proxy's (user, database, options kept)."""
        if not self.port:
            raise ProxyError("The proxy is not listening yet: use it as a context manager first")
        parsed = make_url(url)
        if "host" in parsed.query or "port" in parsed.query:
            raise ProxyError("The URL sets host or port as a query parameter: put them in the URL's netloc")
        return parsed.set(host=LOOPBACK, port=self.port).render_as_string(hide_password=False)

    @property
    def open_connections(self) -> int:
        """Forwarded connections not yet closed on both sides."""
        with self._lock:
            return len(self._sockets) // 2

    # ---- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> LatencyProxy:
        self._listener = socket.create_server((LOOPBACK, 0), backlog=128)
        self.port = self._listener.getsockname()[1]
        self._spawn(self._accept, self._listener)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux
            self._listener.close()
            self._listener = None
        with self._lock:
            live, threads = list(self._sockets), list(self._threads)
        for s in live:
            _shutdown(s)
        for t in threads:
            t.join(timeout=2)

    def _spawn(self, target: Callable[..., Any], *args: Any) -> None:
        t = threading.Thread(target=target, args=args, daemon=True, name=f"latency-proxy-{target.__name__}")
        with self._lock:
            self._threads = [*filter(threading.Thread.is_alive, self._threads), t]
        t.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            self.accepted += 1
            _Connection(self, client, server).start()


def _shutdown(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)


class _Connection:
    """One client connection and its server connection: two directions, closed together."""

    def __init__(self, proxy: LatencyProxy, client: socket.socket, server: socket.socket) -> None:
        self.proxy, self.client, self.server = proxy, client, server
        self.open_directions = 2
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle wait on small messages
        with proxy._lock:
            proxy._sockets |= {client, server}

    def start(self) -> None:
        for src, dst in ((self.client, self.server), (self.server, self.client)):
            if self.proxy.delay_ms == 0:
                self.proxy._spawn(self._copy, src, dst)
            else:
                chunks: queue.SimpleQueue[tuple[float, float, bytes] | None] = queue.SimpleQueue()
                self.proxy._spawn(self._read, src, chunks)
                self.proxy._spawn(self._write, dst, chunks)

    def _copy(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(self.proxy.chunk):
                dst.sendall(data)
        self._done()

    def _read(self, src: socket.socket, chunks: queue.SimpleQueue) -> None:
        delay = self.proxy.delay_ms / 1000
        with contextlib.suppress(OSError):
            while data := src.recv(self.proxy.chunk):
                chunks.put((time.perf_counter(), delay, data))
        chunks.put(None)

    def _write(self, dst: socket.socket, chunks: queue.SimpleQueue) -> None:
        _low_timer_slack()
        lead = min(_least_oversleep(), self.proxy.delay_ms / 2000)  # wake that much early
        self.proxy.lead = max(self.proxy.lead, lead)
        holds = self.proxy.holds
        try:
            while (item := chunks.get()) is not None:
                arrived, delay, data = item
                if (wait := arrived + delay - lead - time.perf_counter()) > 0:
                    time.sleep(wait)
                holds.append(time.perf_counter() - arrived)
                dst.sendall(data)
        except OSError:
            self._shutdown_both()  # the reader then sees the end and stops
            while chunks.get() is not None:
                pass
        self._done()

    def _shutdown_both(self) -> None:
        _shutdown(self.client)
        _shutdown(self.server)

    def _done(self) -> None:
        """End of one direction, its data delivered: the connection ends (as toxiproxy's do),
        both sockets are shut down, and closed when the other direction has finished too."""
        self._shutdown_both()
        with self.proxy._lock:
            self.open_directions -= 1
            if self.open_directions:
                return
            self.proxy._sockets -= {self.client, self.server}
        self.client.close()
        self.server.close()


def ping_ms(
    url: str, pings: int = 200, warmup: int = 20, clock: Callable[[], int] = time.perf_counter_ns
) -> list[float]:
    """Round-trip times (ms) of ``SELECT 1`` on one new connection to ``url``, after a warm-up.

    Through a proxy, the median minus the direct median is the proxy's cost per round trip.
    """
    libpq_url = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq_url, autocommit=True) as con:
        for _ in range(warmup):
            con.execute("SELECT 1").fetchall()
        out = []
        for _ in range(pings):
            started = clock()
            con.execute("SELECT 1").fetchall()
            out.append((clock() - started) / 1e6)
    return out

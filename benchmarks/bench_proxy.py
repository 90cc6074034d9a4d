"""Benchmark the latency proxy itself: what it costs per round trip, and how exact its delay is.

(a) Zero delay: ``SELECT 1`` round trips direct, through the proxy (threads, as
    ``workbench.engines.proxy`` does it), and through a minimal asyncio forwarder
    (protocols, the cheapest asyncio design) written here only for the comparison.
    Blocks of pings alternate between the paths, so all see the same load; medians,
    overhead in µs and ratio to direct.
(b) A large result (8 MB ``bytea``) direct and through the proxy at zero delay.
(c) Delay accuracy: the round trip added at each set RTT (ping through the proxy at that
    RTT minus ping through it at zero delay), against the RTT set.

(d) With ``--sweep``: the RTT sweep of notebook 02 at its defaults (the ``small``
    dataset, generated into a temp folder and loaded, 100 sessions), its wall time and
    its conclusions.

    .venv/bin/python benchmarks/bench_proxy.py [--url URL] [--pings 2000] [--rounds 5] [--sweep]

Without ``--url`` it starts a throwaway PostgreSQL. The load average is printed before
and after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workbench.engines.proxy import LatencyProxy  # noqa: E402
from workbench.engines.server import PostgresServer  # noqa: E402


class _Pipe(asyncio.Protocol):
    """One side of an asyncio forwarding pair: what it receives, its peer writes."""

    def __init__(self, peer: asyncio.Transport | None = None) -> None:
        self.peer = peer

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.peer.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None:
            self.peer.close()


class _Client(_Pipe):
    """The accepted side: reading waits until the upstream connection is made."""

    def __init__(self, forwarder: AsyncioForwarder) -> None:
        super().__init__()
        self.forwarder = forwarder

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        transport.pause_reading()
        self.forwarder.loop.create_task(self._connect())

    async def _connect(self) -> None:
        loop, target = self.forwarder.loop, self.forwarder.target
        self.peer, _ = await loop.create_connection(lambda: _Pipe(self.transport), *target)
        self.transport.resume_reading()


class AsyncioForwarder:
    """Zero-delay TCP forwarding on an asyncio event loop in its own thread."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.loop = asyncio.new_event_loop()

    def __enter__(self) -> AsyncioForwarder:
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.server = asyncio.run_coroutine_threadsafe(
            self.loop.create_server(self._accepted, "127.0.0.1", 0), self.loop
        ).result()
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def _accepted(self) -> _Pipe:
        return _Client(self)

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)


def pings(con: psycopg.Connection, n: int, sql: str = "SELECT 1") -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter_ns()
        con.execute(sql).fetchall()
        out.append((time.perf_counter_ns() - started) / 1e3)
    return out


def alternate(cons: dict[str, psycopg.Connection], n: int, rounds: int, sql: str = "SELECT 1") -> dict:
    """Blocks of ``n`` pings per path, alternated ``rounds`` times; all µs."""
    for con in cons.values():
        pings(con, 20, sql)
    times: dict[str, list[float]] = {name: [] for name in cons}
    for _ in range(rounds):
        for name, con in cons.items():
            times[name] += pings(con, n, sql)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="a PostgreSQL URL on loopback (default: a throwaway server)")
    parser.add_argument("--pings", type=int, default=2000, help="pings per block (default 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="blocks per path (default 5)")
    parser.add_argument("--sweep", action="store_true", help="also run notebook 02's RTT sweep")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    with ExitStack() as stack:
        url = args.url or stack.enter_context(PostgresServer.start()).url
        parsed = make_url(url)
        threads = stack.enter_context(LatencyProxy.to(url))
        aio = stack.enter_context(AsyncioForwarder(parsed.host, parsed.port))
        aio_url = parsed.set(port=aio.port).render_as_string(hide_password=False)
        cons = {
            "direct": psycopg.connect(url, autocommit=True),
            "proxy (threads)": psycopg.connect(threads.rewrite(url), autocommit=True),
            "asyncio forwarder": psycopg.connect(aio_url, autocommit=True),
        }
        for con in cons.values():
            stack.callback(con.close)

        print(
            f"\n(a) SELECT 1 round trip, zero delay: medians of {args.rounds} x {args.pings} pings per path"
        )
        medians = alternate(cons, args.pings, args.rounds)
        direct = medians["direct"]
        for name, m in medians.items():
            print(f"  {name:18s} {m:7.1f} µs  overhead {m - direct:+6.1f} µs  ratio {m / direct:.2f}x")

        print("\n(b) 8 MB bytea result, zero delay: medians of 3 x 10 per path")
        big = "SELECT decode(repeat('ab', 8000000), 'hex')"
        medians = alternate({k: cons[k] for k in ("direct", "proxy (threads)")}, 10, 3, big)
        direct = medians["direct"]
        for name, m in medians.items():
            print(f"  {name:18s} {m / 1000:7.2f} ms  ratio {m / direct:.2f}x")

        print("\n(c) delay accuracy: round trip added (through the proxy at RTT minus at zero delay)")
        for rtt in (0.2, 0.5, 1.0, 2.0):
            with (
                LatencyProxy.to(url, rtt / 2) as slow,
                psycopg.connect(slow.rewrite(url), autocommit=True) as con,
            ):
                m = alternate({"zero": cons["proxy (threads)"], "slow": con}, 300, 3)
            added = (m["slow"] - m["zero"]) / 1000
            print(f"  set {rtt:4.1f} ms  added {added:6.3f} ms  ({added / rtt - 1:+.1%})")
        if args.sweep:
            sweep(url)
    print(f"\nload average after: {os.getloadavg()}")


def sweep(url: str) -> None:
    from workbench.engines import open_engine
    from workbench.sources.synthetic import generate
    from workbench.strategies import ensure_indexes, network

    with tempfile.TemporaryDirectory() as tmp:
        dataset = generate(Path(tmp) / "small", "small", 7)
        with open_engine("postgres", url) as engine:
            engine.load(dataset)
            ensure_indexes(engine)
    print(f"\n(d) RTT sweep, small dataset, 100 sessions; load average {os.getloadavg()[0]:.2f}")
    started = time.perf_counter()
    result = network.sweep(url, limit=100)
    print(f"  wall {time.perf_counter() - started:.1f} s, load average {os.getloadavg()[0]:.2f}")
    summary = result.summary()
    for r in summary.iter_rows(named=True):
        print(
            f"  {r['rtt_ms']:4.1f} ms  {r['strategy']:13s} n={r['n']:2d}  {r['median_ms']:7.1f} ms"
            f" [{r['lo_ms']:.1f}, {r['hi_ms']:.1f}]  model {r['model_ms']:7.1f} ms"
        )
    print(network.conclusions(summary, result.pings, result.context))


if __name__ == "__main__":
    main()

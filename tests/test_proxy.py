"""The latency proxy on a real PostgreSQL: its delay, bytes unchanged, closing propagated."""

from __future__ import annotations

import hashlib
import os
import socket
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from workbench.engines.proxy import LatencyProxy, ProxyError, ping_ms


def _timed(con: psycopg.Connection, sql: str) -> float:
    started = time.perf_counter()
    con.execute(sql).fetchall()
    return (time.perf_counter() - started) * 1000


def test_every_chunk_is_held_for_the_set_delay_each_way(postgres_server_url):
    delay_ms = 1.0  # each way: a 2 ms round trip, "cross zone"
    with (
        LatencyProxy.to(postgres_server_url, delay_ms) as slow,
        psycopg.connect(slow.rewrite(postgres_server_url), autocommit=True) as con,
    ):
        for _ in range(50):
            con.execute("SELECT 1").fetchall()
        holds, lead = list(slow.holds), slow.lead
    # What the proxy recorded, not what a clock here saw: a query and its answer are at least
    # one chunk each way, and no chunk left before its due time less the writer's early wake.
    assert len(holds) >= 2 * 50
    assert 0 <= lead <= delay_ms / 2000
    assert min(holds) >= delay_ms / 1000 - lead, (min(holds), lead)
    with LatencyProxy.to(postgres_server_url) as zero:  # zero delay: copied at once, nothing held
        with psycopg.connect(zero.rewrite(postgres_server_url), autocommit=True) as con:
            con.execute("SELECT 1").fetchall()
        assert not zero.holds and zero.lead == 0


def _echo(url: str, payload: bytes) -> tuple[str, bytes]:
    with psycopg.connect(url, autocommit=True) as con:
        digest, back = con.execute("SELECT md5(%s::bytea), %s::bytea", (payload, payload)).fetchone()
    return digest, bytes(back)


@pytest.mark.parametrize("delay_ms", [0.0, 0.2])
def test_bytes_pass_unchanged_both_ways_on_many_connections(postgres_server_url, delay_ms):
    payloads = [os.urandom(size) for size in (1, 1000, 300_000, 3_000_000, 8_000_000)] * 4
    with LatencyProxy.to(postgres_server_url, delay_ms) as proxy:
        url = proxy.rewrite(postgres_server_url)
        with ThreadPoolExecutor(max_workers=10) as pool:
            results = list(pool.map(lambda p: _echo(url, p), payloads))
        assert proxy.accepted == len(payloads)
    for payload, (digest, back) in zip(payloads, results, strict=True):
        assert digest == hashlib.md5(payload).hexdigest()  # what the server received
        assert back == payload  # what the client received


def wait_until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _backends(url: str, application: str) -> int:
    with psycopg.connect(url, autocommit=True) as con:
        query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        return con.execute(query, (application,)).fetchone()[0]


@pytest.mark.parametrize("delay_ms", [0.0, 0.5])
def test_closing_the_client_side_closes_the_server_side(postgres_server_url, delay_ms):
    with LatencyProxy.to(postgres_server_url, delay_ms) as proxy:
        con = psycopg.connect(proxy.rewrite(postgres_server_url), application_name="proxy-client-close")
        assert _backends(postgres_server_url, "proxy-client-close") == 1
        # Cut the client's socket without the protocol's goodbye (Terminate), as a crash would.
        with socket.socket(fileno=os.dup(con.pgconn.socket)) as raw:
            raw.shutdown(socket.SHUT_RDWR)
        assert wait_until(lambda: _backends(postgres_server_url, "proxy-client-close") == 0)
        assert wait_until(lambda: proxy.open_connections == 0)
        con.close()


@pytest.mark.parametrize("delay_ms", [0.0, 0.5])
def test_closing_the_server_side_closes_the_client_side(postgres_server_url, delay_ms):
    with (
        LatencyProxy.to(postgres_server_url, delay_ms) as proxy,
        psycopg.connect(proxy.rewrite(postgres_server_url), autocommit=True) as con,
    ):
        pid = con.execute("SELECT pg_backend_pid()").fetchone()[0]
        with psycopg.connect(postgres_server_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert wait_until(lambda: proxy.open_connections == 0)
        with pytest.raises(psycopg.OperationalError):
            con.execute("SELECT 1")


def test_leaving_the_context_closes_everything(postgres_server_url):
    with LatencyProxy.to(postgres_server_url, 0.5) as proxy:
        con = psycopg.connect(proxy.rewrite(postgres_server_url), autocommit=True)
        con.execute("SELECT 1")
        port = proxy.port
    assert proxy.open_connections == 0
    with pytest.raises(psycopg.OperationalError):
        con.execute("SELECT 1")
    con.close()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_rewrite_keeps_user_database_and_options():
    with LatencyProxy("127.0.0.1", 5432) as proxy:
        url = proxy.rewrite("postgresql+psycopg://me:secret@localhost:5432/db?sslmode=disable")
    assert url == f"postgresql+psycopg://me:secret@127.0.0.1:{proxy.port}/db?sslmode=disable"


def test_refuses_what_it_cannot_do():
    with pytest.raises(ProxyError, match="'db.example.com' is not a loopback address"):
        LatencyProxy.to("postgresql://u@db.example.com:5432/x")
    with pytest.raises(ProxyError, match="cannot be negative"):
        LatencyProxy("127.0.0.1", 5432, delay_ms=-1)
    with pytest.raises(ProxyError, match="not listening yet"):
        LatencyProxy("127.0.0.1", 5432).rewrite("postgresql://u@127.0.0.1/x")


def test_ping_measures_round_trips(postgres_server_url):
    times = ping_ms(postgres_server_url, pings=10, warmup=1)
    assert len(times) == 10 and all(t > 0 for t in times)


def test_a_streamed_result_pays_the_delay_once_not_per_chunk(postgres_server_url):
    big = "SELECT decode(repeat('ab', 4000000), 'hex')"  # 4 MB: hundreds of chunks

    def fetch_ms(delay_ms: float) -> float:
        with (
            LatencyProxy.to(postgres_server_url, delay_ms) as proxy,
            psycopg.connect(proxy.rewrite(postgres_server_url), autocommit=True) as con,
        ):
            con.execute(big).fetchone()
            return statistics.median(_timed(con, big) for _ in range(3))

    zero, slow = fetch_ms(0), fetch_ms(5.0)
    # Delayed per chunk, hundreds of chunks would take seconds; pipelined, 10 ms more.
    assert slow < 2 * zero + 100, (zero, slow)

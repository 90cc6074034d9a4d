"""The service's endpoints against the query lab's rows, recovery, and backpressure (503)."""

from __future__ import annotations

import asyncio
import socket
import threading
import warnings
from datetime import date, datetime
from pathlib import Path

import httpx
import orjson
import polars as pl
import psycopg
import pytest
import service_db
from test_proxy import wait_until

from workbench import queries, strategies
from workbench.engines import open_engine
from workbench.service.app import create_app
from workbench.service.pool import Pool, PoolFull
from workbench.service.process import ServiceProcess
from workbench.service.routes import decode_cursor, encode_cursor
from workbench.service.settings import ServiceError, Settings

with warnings.catch_warnings():  # starlette 1.x suggests httpx2; httpx is what is installed
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.postgres
loaded_url = service_db.loaded_url  # the shared fixture


@pytest.fixture(scope="module")
def engine(loaded_url: str):
    with open_engine("postgres", loaded_url) as e:
        yield e


def _client(url: str, **options) -> TestClient:
    return TestClient(create_app(Settings(database_url=url, debug_routes=True, **options)))


def _json(value):
    """What a value looks like after the service's JSON encoding."""
    return orjson.loads(orjson.dumps(value))


@pytest.mark.parametrize("name", list(strategies.STRATEGIES))
def test_recent_returns_the_strategies_rows(loaded_url, engine, name):
    project_id, _ = strategies.largest_project(engine)
    expected = strategies.strategy("n_plus_one").load(engine, project_id, 7)
    with _client(loaded_url, strategy=name, pool_size=2) as client:
        r = client.get(f"/projects/{project_id}/recent", params={"limit": 7})
    assert r.status_code == 200
    body = r.json()
    assert body["strategy"] == name
    assert body["sessions"] == _json(expected)
    assert sum(len(s["messages"]) for s in body["sessions"]) > 0


def test_session_list_pages_cover_the_project_in_order(loaded_url, engine):
    project_id, n = strategies.largest_project(engine)
    everything = engine.execute(
        queries.load("project_sessions", "postgres"), {"project_id": project_id, "limit": 1000}
    )
    seen, cursor = [], None
    with _client(loaded_url) as client:
        for _ in range(100):  # bounded: at most 100 pages
            params = {"limit": 4} | ({"cursor": cursor} if cursor else {})
            page = client.get(f"/projects/{project_id}/sessions", params=params).json()
            seen += page["sessions"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    assert len(seen) == n
    assert [s["id"] for s in seen] == [r[0] for r in everything]
    assert seen[0] == _json(dict(zip(strategies.SESSION_COLUMNS, everything[0], strict=True)))


def test_session_detail_matches_n_plus_one(loaded_url, engine):
    project_id, _ = strategies.largest_project(engine)
    expected = strategies.n_plus_one(engine, project_id, 3)[1]
    with _client(loaded_url) as client:
        body = client.get(f"/sessions/{expected['id']}").json()
        missing = client.get("/sessions/999999999")
    assert body == _json(expected)
    assert missing.status_code == 404


def test_day_usage_matches_the_dataset(loaded_url, tiny):
    messages = tiny.read("messages")
    day = messages["timestamp"].dt.date().mode().sort()[0]
    expected = (
        messages.filter(pl.col("timestamp").dt.date() == day)
        .group_by(pl.col("model").fill_null(""))
        .agg(pl.len().alias("messages"), pl.col("output_tokens").sum())
        .sort("model")
    )
    with _client(loaded_url) as client:
        body = client.get(f"/usage/{day.isoformat()}").json()
        bad = client.get("/usage/2024-13-45")
    got = [(m["model"], m["messages"], m["output_tokens"]) for m in body["models"]]
    assert got == expected.rows()
    assert bad.status_code == 400 and "2024-13-45" in bad.json()["error"]


def test_jobs_page_matches_the_named_query(loaded_url, engine):
    rows = engine.execute(queries.load("jobs_by_status", "postgres"), {"status": "failed", "limit": 10})
    with _client(loaded_url) as client:
        body = client.get("/jobs", params={"status": "failed", "limit": 10}).json()
    assert [j["id"] for j in body["jobs"]] == [r[0] for r in rows]


def test_bad_parameters_answer_400_naming_the_value(loaded_url):
    with _client(loaded_url) as client:
        r = client.get("/projects/1/recent", params={"limit": "ten"})
        assert r.status_code == 400 and "'ten'" in r.json()["error"]
        r = client.get("/projects/1/sessions", params={"cursor": "garbage"})
        assert r.status_code == 400 and "garbage" in r.json()["error"]


def test_a_failing_handler_gives_500_is_counted_and_the_service_keeps_serving(loaded_url):
    with _client(loaded_url, pool_size=1) as client:
        assert client.get("/_fail").status_code == 500
        # A broken connection is replaced: the single pooled connection serves the next request.
        assert client.get("/_fail", params={"kill": "connection"}).status_code == 500
        assert client.get("/jobs").status_code == 200
        assert client.get("/health").json() == {"status": "ok"}
        metrics = client.get("/metrics").text
    assert 'workbench_http_errors_total{endpoint="fail",kind="RuntimeError"} 2.0' in metrics
    assert 'workbench_http_request_duration_seconds_count{endpoint="jobs",status="200"} 1.0' in metrics


def test_a_full_pool_answers_503_fast(loaded_url):
    app = create_app(Settings(database_url=loaded_url, debug_routes=True, pool_size=1, max_waiting=0))

    async def run() -> tuple[int, int, bool]:
        app.state.pool.open()
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                slow = asyncio.create_task(c.get("/_sleep", params={"ms": 2000}))
                for _ in range(200):  # until the slow request holds the only connection (bounded)
                    if app.state.pool.in_use:
                        break
                    await asyncio.sleep(0.01)
                busy = await c.get("/jobs")
                answered_first = not slow.done()  # 503 at once, not after the holder finished
                return (await slow).status_code, busy.status_code, answered_first
        finally:
            app.state.pool.close()

    slow, busy, answered_first = asyncio.run(run())
    assert (slow, busy) == (200, 503)
    assert answered_first
    metrics = app.state.metrics.exposition().decode()
    assert 'workbench_http_errors_total{endpoint="jobs",kind="pool_queue"} 1.0' in metrics


def test_pool_refuses_beyond_its_queue_waits_then_times_out_and_loses_no_connection(loaded_url):
    async def until(condition) -> None:
        for _ in range(500):  # bounded: 5 s
            if condition():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the pool never reached the expected state")

    async def scenario(timeout: float) -> list[str]:
        pool = Pool(loaded_url, size=1, max_waiting=1, timeout=timeout)
        pool.open()
        release, events = threading.Event(), []

        def hold(engine):
            release.wait(10)
            return engine.execute("SELECT 1")[0][0]

        async def attempt(work=lambda engine: "got") -> None:
            try:
                events.append(await pool.run(work))
            except PoolFull as e:
                events.append(e.reason)

        try:
            holder = asyncio.create_task(attempt(hold))
            await until(lambda: pool.in_use == 1)
            waiter = asyncio.create_task(attempt())
            await until(lambda: pool.pool.get_stats().get("requests_waiting", 0) == 1)
            if timeout > 1:  # one holds, one waits: the next is refused at once
                await attempt()
                release.set()
            await waiter  # served when the holder returns, or timed out
            release.set()
            await holder
            events.append(f"in_use={pool.in_use} available={pool.pool.get_stats()['pool_available']}")
        finally:
            release.set()
            pool.close()
        return events

    assert asyncio.run(scenario(timeout=5)) == ["queue", 1, "got", "in_use=0 available=1"]
    assert asyncio.run(scenario(timeout=0.05)) == ["timeout", 1, "in_use=0 available=1"]


def test_cached_answers_equal_uncached_ones_and_expire_on_the_cache_clock(loaded_url, engine, tiny):
    project_id, _ = strategies.largest_project(engine)
    session_id = engine.execute("SELECT min(id) FROM sessions WHERE project_id = :p", {"p": project_id})[0][0]
    day = tiny.read("messages")["timestamp"].min().date().isoformat()
    urls = [
        f"/projects/{project_id}/sessions?limit=5",
        f"/projects/{project_id}/recent?limit=5",
        f"/sessions/{session_id}",
        "/sessions/999999999",  # a 404 is cached too
        f"/usage/{day}",
        "/jobs?status=queued&limit=10",
    ]
    now = [0.0]
    cached = create_app(
        Settings(database_url=loaded_url, strategy="batch", cache_seconds=5), cache_timer=lambda: now[0]
    )
    with _client(loaded_url, strategy="batch") as plain, TestClient(cached) as client:
        expected = [(r.status_code, r.json()) for r in map(plain.get, urls)]
        first = [(r.status_code, r.json()) for r in map(client.get, urls)]
        again = [(r.status_code, r.json()) for r in map(client.get, urls)]
        assert client.get("/stats").json()["cache_hits"] == len(urls)
        now[0] = 5.1  # past the TTL: every answer is fetched again
        fresh = [(r.status_code, r.json()) for r in map(client.get, urls)]
        stats = client.get("/stats").json()
        metrics = client.get("/metrics").text
    assert first == expected and again == expected and fresh == expected
    assert expected[3][0] == 404
    assert (stats["cache_hits"], stats["cache_misses"]) == (len(urls), 2 * len(urls))
    assert stats["db_statements"] > 0
    assert 'workbench_cache_requests_total{endpoint="recent",result="hit"} 1.0' in metrics
    assert 'workbench_cache_requests_total{endpoint="recent",result="miss"} 2.0' in metrics


def test_settings_refuse_bad_values():
    with pytest.raises(ServiceError, match="pool_size must be at least 1, not 0"):
        Settings(database_url="postgresql://x/y", pool_size=0)
    with pytest.raises(ServiceError, match="'sqlite'"):
        Settings(database_url="sqlite:///x.db")
    with pytest.raises(Exception, match=r"Unknown strategy 'n\+1'"):
        Settings(database_url="postgresql://x/y", strategy="n+1")
    assert Settings.from_json(Settings(database_url="postgresql://x/y").to_json()).pool_size == 4
    with pytest.raises(ServiceError, match=r"cache_seconds \(-1\) must be >= 0"):
        Settings(database_url="postgresql://x/y", cache_seconds=-1)
    assert Settings(database_url="postgresql://x/y", cache_seconds=2).label == "n_plus_one pool=4 cache=2s"


def test_cursor_round_trips():
    when = datetime(2026, 1, 2, 3, 4, 5, 6)
    assert decode_cursor(encode_cursor(when, 42)) == (when, 42)
    assert date(2026, 1, 2) == when.date()


# ---- cancellation and tracing, on the real PostgreSQL ------------------------------------------
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def _sleeping(url: str, marker: str) -> list[tuple[str, str]]:
    """(state, query) of the backends whose last statement carries ``marker``."""
    with psycopg.connect(url, autocommit=True) as con:
        return con.execute(
            "SELECT state, query FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()",
            (f"%{marker}%",),
        ).fetchall()


def test_a_request_past_its_deadline_gets_504_and_its_query_is_cancelled(loaded_url):
    settings = Settings(
        database_url=loaded_url, debug_routes=True, pool_size=1, request_timeout=0.3, trace_sql=True
    )
    trace = "0af7651916cd43dd8448eb211c80319c"
    with TestClient(create_app(settings)) as client:
        r = client.get(
            "/_sleep", params={"ms": 60_000}, headers={"traceparent": f"00-{trace}-b7ad6b7169203331-01"}
        )
        # The 60 s statement is no longer running: PostgreSQL cancelled it (its backend is idle).
        assert wait_until(lambda: [s for s, _ in _sleeping(loaded_url, trace)] == ["idle"])
        assert client.get("/jobs").status_code == 200  # the one connection serves on
        metrics = client.get("/metrics").text
    assert r.status_code == 504 and "timed out after 0.3 s" in r.json()["error"]
    assert r.headers["traceparent"] == f"00-{trace}-b7ad6b7169203331-01"
    assert 'workbench_http_cancelled_total{endpoint="sleep",reason="timeout"} 1.0' in metrics
    assert 'workbench_http_errors_total{endpoint="sleep",kind="timeout"} 1.0' in metrics


def test_a_client_that_goes_away_cancels_its_query(loaded_url):
    settings = Settings(
        database_url=loaded_url, debug_routes=True, pool_size=1, request_timeout=0, trace_sql=True
    )
    trace = "5c3f1a2b4d6e8f9012345678abcdef01"
    with ServiceProcess.start(settings) as svc, socket.create_connection(("127.0.0.1", svc.port)) as raw:
        raw.sendall(
            b"GET /_sleep?ms=60000 HTTP/1.1\r\nHost: test\r\n"
            + f"traceparent: 00-{trace}-b7ad6b7169203331-01\r\n\r\n".encode()
        )
        assert wait_until(lambda: [s for s, _ in _sleeping(loaded_url, trace)] == ["active"])
        raw.close()  # the client gives up
        assert wait_until(lambda: [s for s, _ in _sleeping(loaded_url, trace)] == ["idle"])
        assert wait_until(lambda: 'reason="disconnect"} 1.0' in svc.get_text("/metrics"))
        metrics = svc.get_text("/metrics")
    assert 'workbench_http_cancelled_total{endpoint="sleep",reason="disconnect"} 1.0' in metrics
    assert 'kind="timeout"' not in metrics  # a client leaving is not the service's error


def test_every_statement_of_a_request_carries_its_trace_id_into_the_statement_log(loaded_url, engine):
    data_dir = Path(engine.execute("SHOW data_directory")[0][0])
    log = data_dir.parent / "server.log"  # where PostgresServer has the server log its stderr
    if not log.exists():
        pytest.skip(f"the server's log is not at {log} (a server the suite did not start)")
    name = loaded_url.rsplit("/", 1)[1]
    with psycopg.connect(loaded_url, autocommit=True) as con:  # this test's own database
        con.execute(f"ALTER DATABASE \"{name}\" SET log_statement = 'all'")
    project_id, _ = strategies.largest_project(engine)
    try:
        with _client(
            loaded_url, strategy="batch", trace_sql=True
        ) as client:  # connections opened after the ALTER
            traced = client.get(
                f"/projects/{project_id}/recent", params={"limit": 3}, headers={"traceparent": PARENT}
            )
            fresh = client.get(f"/projects/{project_id}/recent", params={"limit": 3})
    finally:
        with psycopg.connect(loaded_url, autocommit=True) as con:
            con.execute(f'ALTER DATABASE "{name}" RESET log_statement')
    assert traced.status_code == fresh.status_code == 200
    assert traced.headers["traceparent"] == PARENT
    generated = fresh.headers["traceparent"]  # no header: a new trace id
    assert generated != PARENT and generated.startswith("00-") and generated.endswith("-01")
    statements = strategies.strategy("batch").statements(3)
    text = log.read_text(errors="replace")
    assert text.count(f"/*traceparent='{PARENT}'*/") == statements
    assert text.count(f"/*traceparent='{generated}'*/") == statements

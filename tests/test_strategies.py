"""Loading strategies on real engines: identical results, counted statements, accounting."""

from __future__ import annotations

import itertools
from datetime import datetime

import numpy as np
import polars as pl
import pytest

from workbench import figures, strategies
from workbench.engines import open_engine
from workbench.measure import Results, latency_floor
from workbench.strategies import STRATEGIES, CountingEngine, StrategyMismatchError

PROJECT, LIMIT = 1, 7


@pytest.fixture(params=["duckdb", "sqlite", "postgres"])
def engine(request, tiny, tmp_path):
    name = request.param
    target = request.getfixturevalue("postgres_url") if name == "postgres" else str(tmp_path / f"db.{name}")
    with open_engine(name, target) as e:
        e.load(tiny)
        yield e


def expected(tiny, project_id: int, limit: int) -> list[dict]:
    """The result built from the dataset's Parquet files, independently of any engine."""
    sessions = (
        tiny.read("sessions")
        .filter(pl.col("project_id") == project_id)
        .sort(["created_at", "id"], descending=True)
        .head(limit)
    )
    messages = tiny.read("messages").sort("timestamp", "id")
    windows = tiny.read("session_windows").sort("start_time", "id")
    out = []
    for s in sessions.iter_rows(named=True):
        s["messages"] = messages.filter(pl.col("session_id") == s["id"]).to_dicts()
        s["windows"] = windows.filter(pl.col("session_id") == s["id"]).to_dicts()
        out.append(s)
    return out


def test_every_strategy_returns_the_same_sessions(engine, tiny):
    loads = strategies.check_equal(engine, PROJECT, LIMIT)
    truth = expected(tiny, PROJECT, LIMIT)
    assert len(truth) == LIMIT
    for name, load in loads.items():
        assert load.sessions == truth, name
    first = truth[0]
    assert isinstance(first["created_at"], datetime) and isinstance(first["is_sidechain"], bool)
    assert isinstance(first["messages"][0]["timestamp"], datetime)


def test_statements_are_counted_not_assumed(engine):
    loads = strategies.check_equal(engine, PROJECT, LIMIT)
    counts = {name: load.statements for name, load in loads.items()}
    assert counts == {"n_plus_one": 1 + 2 * LIMIT, "joined": 1, "per_relation": 2, "batch": 3, "aggregate": 1}
    # The counter saw every statement the strategy ran, in order.
    log = loads["n_plus_one"].log
    assert "FROM sessions" in log[0].sql and all("session_id = :session_id" in s.sql for s in log[1:])
    assert [s.params["session_id"] for s in log[1::2]] == [s["id"] for s in loads["n_plus_one"].sessions]


def test_rows_and_bytes_show_the_join_multiplying(engine):
    limit = 30  # enough sessions that some span several windows
    loads = strategies.check_equal(engine, PROJECT, limit)
    load = loads["n_plus_one"]
    n_messages, n_windows = load.messages, load.windows
    assert any(len(s["windows"]) > 1 for s in load.sessions), "no multi-window session: raise limit"
    assert load.rows == limit + n_messages + n_windows
    assert loads["batch"].rows == load.rows and loads["batch"].bytes == load.bytes
    per_session = [len(s["messages"]) * max(1, len(s["windows"])) for s in load.sessions]
    assert loads["joined"].rows == sum(per_session) > n_messages  # m×w rows per session
    assert loads["joined"].bytes > load.bytes
    assert loads["aggregate"].rows == limit


def test_batch_binds_an_array_on_postgres_and_expands_elsewhere(engine):
    load = strategies.run(engine, "batch", PROJECT, LIMIT)
    children = [s.sql for s in load.log[1:]]
    if engine.name == "postgres":
        assert all("ANY(" in " ".join(sql.split()).replace("( ", "(") for sql in children)
        assert all(isinstance(s.params["session_ids"], list) for s in load.log[1:])
    else:
        assert all("IN :session_ids" in " ".join(sql.split()) for sql in children)


def test_edge_cases_empty_project_and_limit_beyond_the_project(engine):
    empty = strategies.check_equal(engine, 999_999, 5)
    assert all(load.sessions == [] for load in empty.values())
    assert empty["n_plus_one"].statements == 1 and empty["batch"].statements == 1
    _, sessions = strategies.largest_project(engine)
    loads = strategies.check_equal(engine, PROJECT, sessions + 50, ["n_plus_one", "batch"])
    assert len(loads["batch"].sessions) == sessions
    assert loads["n_plus_one"].statements == 1 + 2 * sessions


def test_a_wrong_strategy_is_caught_before_timing(engine, monkeypatch):
    def drops_a_message(db, project_id, limit):
        sessions = strategies.batch(db, project_id, limit)
        sessions[1]["messages"].pop()
        return sessions

    broken = strategies.Strategy("broken", drops_a_message, "broken", lambda n: 3)
    monkeypatch.setitem(STRATEGIES, "broken", broken)
    with pytest.raises(StrategyMismatchError, match=r"'broken' differs from 'n_plus_one'.*messages against"):
        strategies.compare({engine.name: engine}, PROJECT, LIMIT, repeat=1)


def test_server_side_time_where_the_engine_has_it(engine):
    book = strategies.accounting(strategies.check_equal(engine, PROJECT, 3), engine)
    if engine.name == "sqlite":
        assert book["server_ms"].is_null().all()
    else:
        assert (book["server_ms"] > 0).all()


def fake_clock(step_ns: int = 1_000_000):
    ticks = itertools.count(0, step_ns)
    return lambda: next(ticks)


def test_compare_records_counted_runs_with_context(engine, tiny):
    results, book = strategies.compare(
        {engine.name: engine}, PROJECT, LIMIT, repeat=3, server_time=False, dataset=tiny, clock=fake_clock()
    )
    frame = results.frame
    assert frame.height == 3 * len(STRATEGIES)
    assert (frame["wall_ns"] == 1_000_000).all()  # one tick per timed run: only the logic is tested
    per_run = dict(frame.group_by("strategy").agg(pl.col("statements").unique()).iter_rows())
    assert per_run["n_plus_one"] == [1 + 2 * LIMIT] and per_run["batch"] == [3]
    assert frame["dataset_hash"].unique().to_list() == [tiny.content_hash]
    assert frame["engine_version"][0] == engine.version()
    assert results.context["engines"][engine.name]["version"] == engine.version()
    assert set(book["strategy"]) == set(STRATEGIES)


def test_scaling_bounds_n_plus_one_and_records_sessions_loaded(engine):
    results = strategies.scaling(
        {engine.name: engine}, PROJECT, [1, 4, 100], repeat=1, max_statements=20, clock=fake_clock()
    )
    frame = results.frame
    _, in_project = strategies.largest_project(engine)
    assert sorted(frame["sessions"].unique()) == [1, 4, min(100, in_project)]
    n_plus_one = frame.filter(pl.col("strategy") == "n_plus_one")
    assert sorted(n_plus_one["sessions"]) == [1, 4]  # 201 statements at 100 exceed the bound
    summary = results.summary()
    fig = figures.scaling_figure(summary, pl.DataFrame([latency_floor(engine, repeat=5, warmup=1)]))
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert {t.name for t in fig.data if t.showlegend is not False} == set(STRATEGIES)


def test_log_sizes():
    assert strategies.log_sizes(1000, 7) == [1, 3, 10, 32, 100, 316, 1000]
    assert strategies.log_sizes(1) == [1]


def synthetic_results(times_ms: dict[str, list[float]], engine: str = "duckdb") -> Results:
    rows = [
        {
            "engine": engine,
            "strategy": s,
            "sessions": 10,
            "run": i,
            "wall_ns": int(t * 1e6),
            "statements": 1,
            "rows": 1,
        }
        for s, ts in times_ms.items()
        for i, t in enumerate(ts)
    ]
    return Results.from_runs(rows, {"engines": {}})


def test_recommendation_is_computed_from_the_numbers():
    results = synthetic_results(
        {
            "n_plus_one": [100, 101, 99, 100, 102],
            "batch": [10, 10.2, 9.9, 10.1, 10],
            "joined": [20, 21, 19, 20, 20],
        }
    )
    rec = strategies.recommend(results).row(0, named=True)
    assert rec["best"] == "batch" and rec["runner_up"] == "joined"
    assert rec["speedup"] == pytest.approx(10.0) and rec["lo"] <= rec["speedup"] <= rec["hi"]
    text = strategies.conclusions(results)
    assert text.startswith("duckdb: load 10 sessions with batch (select-in) (10.00 ms median), 10.0x faster")
    assert "the runner-up, 3-table LEFT JOIN (plan), is 2.00x slower" in text
    close = synthetic_results({"n_plus_one": [50, 50, 50], "batch": [10, 11, 9], "joined": [10.2, 9.8, 10.1]})
    assert "statistically indistinguishable" in strategies.conclusions(close)


def test_strategy_figure_has_one_bar_trace_per_engine():
    summary = pl.concat(
        [
            synthetic_results({"n_plus_one": [5, 6], "batch": [1, 2]}, e).summary()
            for e in ("duckdb", "sqlite")
        ]
    )
    fig = figures.strategy_figure(summary)
    assert [t.name for t in fig.data] == ["duckdb", "sqlite"]
    assert list(fig.data[0].x) == ["n_plus_one", "batch"]


def test_counting_engine_delegates_and_resets(engine):
    db = CountingEngine(engine, record=True)
    assert db.execute("SELECT 1") == [(1,)]
    assert (db.statements, db.rows, len(db.log)) == (1, 1, 1)
    assert db.name == engine.name and db.dialect == engine.dialect
    db.reset()
    assert (db.statements, db.rows, db.log) == (0, 0, [])
    assert strategies.payload_bytes([(1, "héllo", None, True, datetime(2026, 1, 1))]) == 8 + 6 + 0 + 1 + 8


def test_counting_engine_counts_query_too(engine):
    db = CountingEngine(engine, record=True)
    frame = db.query("SELECT id FROM sessions WHERE project_id = :p", {"p": PROJECT})
    assert (db.statements, db.rows) == (1, frame.height) and db.log[0].rows == frame.rows()


def test_postgres_warms_up_until_prepared_statements_settle(engine, monkeypatch):
    calls = []

    def counted(db, project_id, limit):
        calls.append(limit)
        return strategies.batch(db, project_id, limit)

    monkeypatch.setitem(STRATEGIES, "counted", strategies.Strategy("counted", counted, "c", lambda n: 3))
    strategies.compare({engine.name: engine}, PROJECT, 2, names=["counted"], repeat=2, server_time=False)
    # The checked run, warm-up rounds up to the engine's warmup_runs, then the timed runs.
    assert len(calls) == engine.warmup_runs + 2
    assert engine.warmup_runs == (11 if engine.name == "postgres" else 1)
    calls.clear()
    strategies.compare(
        {engine.name: engine}, PROJECT, 2, names=["counted"], repeat=2, warmup=3, server_time=False
    )
    assert len(calls) == 3 + 2


def test_indexes_touch_only_the_workbench_tables(postgres_url, tiny):
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute("CREATE TABLE users AS SELECT g AS id FROM generate_series(1, 100) g")
    with open_engine("postgres", postgres_url, schema_name="lab") as engine:
        engine.load(tiny)
        strategies.ensure_indexes(engine)
        assert set(strategies.ACCESS_PATH_INDEXES) <= set(engine.list_indexes()["name"])
        strategies.drop_indexes(engine, [])  # an empty list drops nothing
        assert set(strategies.ACCESS_PATH_INDEXES) <= set(engine.list_indexes()["name"])
    with psycopg.connect(postgres_url, autocommit=True) as con:
        analyzed = dict(
            con.execute(
                "SELECT schemaname || '.' || relname, last_analyze FROM pg_stat_user_tables"
            ).fetchall()
        )
    assert analyzed["public.users"] is None  # another schema's table: its statistics untouched
    assert analyzed["lab.messages"] is not None
    # A database the workbench did not create is refused before anything runs on it.
    from workbench.errors import UnsafeTargetError

    with open_engine("postgres", postgres_url) as public, pytest.raises(UnsafeTargetError):
        strategies.ensure_indexes(public, {})


def test_crossings_are_found_and_interpolated_on_log_axes():
    def rows(strategy, ms, engine="sqlite"):
        return [
            {
                "engine": engine,
                "strategy": strategy,
                "sessions": n,
                "run": 0,
                "wall_ns": int(t * 1e6),
                "statements": 1,
                "rows": 1,
            }
            for n, t in zip([1, 10, 100, 1000], ms, strict=True)
        ]

    # n_plus_one grows 10x per decade, joined is flat at 10 ms: they cross at 10 sessions,
    # exactly on a measured size, and again never; batch never crosses joined.
    runs = (
        rows("n_plus_one", [1, 10, 100, 1000])
        + rows("joined", [10, 10, 10, 10])
        + rows("batch", [5, 6, 7, 8])
    )
    runs += rows("n_plus_one", [1, 20, 400, 8000], "duckdb") + rows("joined", [2, 3, 4, 5], "duckdb")
    summary = Results.from_runs(runs, {"engines": {}}).summary()
    found = strategies.crossings(summary)
    duck = found.filter(pl.col("engine") == "duckdb").row(0, named=True)
    assert (duck["faster_below"], duck["faster_above"]) == ("n_plus_one", "joined")
    # log-linear between (1, 1 ms) / (1, 2 ms) and (10, 20 ms) / (10, 3 ms)
    t = np.log(2) / (np.log(2) + np.log(20 / 3))
    assert duck["sessions"] == pytest.approx(10**t) and duck["ms"] == pytest.approx(20**t)
    lite = found.filter(pl.col("engine") == "sqlite").sort("faster_above")
    assert lite.select("faster_below", "faster_above").rows() == [
        ("n_plus_one", "batch"),
        ("n_plus_one", "joined"),
    ]
    assert lite["sessions"][1] == pytest.approx(10) and lite["ms"][1] == pytest.approx(10)  # a tie at 10
    assert 1 < lite["sessions"][0] < 10  # 1 < 5 ms, then 10 > 6 ms
    fig = figures.scaling_figure(
        summary, pl.DataFrame({"engine": ["sqlite"], "floor_ms": [0.01]}), crossings=found
    )
    marks = [t for t in fig.data if t.name == "strategies cross"]
    assert len(marks) == 2 and [t.showlegend for t in marks] == [True, False]


def test_scaling_conclusions_are_computed_from_the_numbers():
    rows = [
        {
            "engine": "sqlite",
            "strategy": s,
            "sessions": n,
            "run": 0,
            "wall_ns": int(t * 1e6),
            "statements": k(n),
            "rows": 1,
        }
        for s, k, ms in (("n_plus_one", lambda n: 1 + 2 * n, [1, 100]), ("joined", lambda n: 1, [10, 20]))
        for n, t in zip([1, 100], ms, strict=True)
    ]
    summary = Results.from_runs(rows, {"engines": {}}).summary()
    floors = pl.DataFrame({"engine": ["sqlite"], "floor_ms": [0.25]})
    text = strategies.scaling_conclusions(summary, floors, strategies.crossings(summary))
    assert text.startswith("sqlite: at 100 sessions joined is fastest (20.0 ms)")
    assert "N+1 takes 100.0 ms for 201 statements, 50% of it the per-statement floor (250 µs each)" in text
    assert "N+1 is overtaken by joined at ~" in text


def test_crossings_can_be_limited_to_one_strategy():
    rows = [
        {"engine": "pg", "strategy": s, "sessions": n, "run": 0, "wall_ns": t, "statements": 1, "rows": 1}
        for s, ts in (("n_plus_one", [1, 9]), ("joined", [2, 5]), ("batch", [3, 4]))
        for n, t in zip([1, 10], ts, strict=True)
    ]
    summary = Results.from_runs(rows, {"engines": {}}).summary()
    assert strategies.crossings(summary).height == 3
    only = strategies.crossings(summary, involving=["n_plus_one"])
    assert sorted(only["faster_above"]) == ["batch", "joined"]

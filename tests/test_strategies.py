"""Loading strategies on real engines: identical results, counted statements, accounting."""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from workbench import figures, queries, strategies
from workbench.engines import open_engine
from workbench.errors import WorkbenchError
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
        assert load.result == truth, name
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
    assert [s.params["session_id"] for s in log[1::2]] == [s["id"] for s in loads["n_plus_one"].result]


def test_rows_and_bytes_show_the_join_multiplying(engine):
    limit = 30  # enough sessions that some span several windows
    loads = strategies.check_equal(engine, PROJECT, limit)
    load = loads["n_plus_one"]
    n_messages, n_windows = load.messages, load.windows
    assert any(len(s["windows"]) > 1 for s in load.result), "no multi-window session: raise limit"
    assert load.rows == limit + n_messages + n_windows
    assert loads["batch"].rows == load.rows and loads["batch"].bytes == load.bytes
    per_session = [len(s["messages"]) * max(1, len(s["windows"])) for s in load.result]
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
    assert all(load.result == [] for load in empty.values())
    assert empty["n_plus_one"].statements == 1 and empty["batch"].statements == 1
    _, sessions = strategies.largest_project(engine)
    loads = strategies.check_equal(engine, PROJECT, sessions + 50, ["n_plus_one", "batch"])
    assert len(loads["batch"].result) == sessions
    assert loads["n_plus_one"].statements == 1 + 2 * sessions


def test_a_wrong_strategy_is_caught_before_timing(engine):
    def drops_a_message(db, project_id, limit):
        sessions = strategies.batch(db, project_id, limit)
        sessions[1]["messages"].pop()
        return sessions

    broken = strategies.Strategy("broken", drops_a_message, "broken", lambda n: 3)
    with pytest.raises(StrategyMismatchError, match=r"'broken' differs from 'n_plus_one'.*\[1\]\.messages: "):
        strategies.compare({engine.name: engine}, PROJECT, LIMIT, strategies=["n_plus_one", broken], repeat=1)


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
    floor = pl.DataFrame([latency_floor(engine, repeat=5, warmup=1)])
    fig = figures.scaling_figure(strategies.labelled(summary), floor)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert {t.name for t in fig.data if t.showlegend is not False} == {s.label for s in STRATEGIES.values()}


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
    assert rec["best"] == "batch" and rec["runner_up"] == "joined" and rec["n"] == 5
    assert rec["speedup"] == pytest.approx(10.0, rel=0.02) and rec["lo"] <= rec["speedup"] <= rec["hi"]
    assert rec["class"] == "faster" and rec["runner_up_class"] == "slower" and rec["ties"] == ""
    text = strategies.conclusions(results)
    assert text.startswith(
        "duckdb: load 10 sessions with the batch select-in (10.00 ms median, n = 5); "
        "against today's N+1 it is 10.00x faster"
    )
    assert "the runner-up, the plan's JOIN, is 2.00x slower" in text
    close = synthetic_results(
        {"n_plus_one": [50] * 5, "batch": [10, 10.1, 9.9, 10, 10], "joined": [10.1, 10, 10, 10.1, 10.05]}
    )
    assert "the plan's JOIN, is a tie" in strategies.conclusions(close)
    assert strategies.recommend(close)["ties"][0] == "joined"


def test_conclusions_carry_unstable_and_load_and_refuse_to_rank_under_load():
    results = synthetic_results({"n_plus_one": [100, 150, 90, 200, 100], "batch": [10, 10, 10, 10, 10]})
    assert "Unstable (CV > 10%): today's N+1 CV" in strategies.conclusions(results)
    loaded = Results(results.frame.with_columns(load_before=pl.lit(0.5), load_after=pl.lit(3.6)), {})
    text = strategies.conclusions(loaded, limit=1.8)
    assert text.startswith("duckdb: load average 0.50 before, 3.60 after timing: 2.0x the limit of 1.80")
    assert "batch" not in text.split("Unstable")[0]  # no ranking
    quiet = Results(results.frame.with_columns(load_before=pl.lit(0.5), load_after=pl.lit(0.7)), {})
    assert "Load average 0.50 before, 0.70 after." in strategies.conclusions(quiet, limit=1.8)
    (v,) = strategies.best_verdicts(loaded, limit=1.8)
    assert v.verdict == "not ranked (load too high)" and v.engine == "duckdb"


def join_book(engine="duckdb"):
    return pl.DataFrame(
        [
            {
                "engine": engine,
                "strategy": "n_plus_one",
                "messages": 4839,
                "windows": 123,
                "statements": 201,
                "rows": 5062,
                "bytes": 6_087_224,
                "server_ms": 19.0,
            },
            {
                "engine": engine,
                "strategy": "joined",
                "messages": 4839,
                "windows": 123,
                "statements": 1,
                "rows": 9888,
                "bytes": 15_085_970,
                "server_ms": 22.9,
            },
        ]
    )


def test_join_verdict_names_the_join_in_the_plans_words():
    slow = synthetic_results(
        {
            "n_plus_one": [40, 41, 39, 40, 40],
            "joined": [120, 123, 118, 121, 120],
            "batch": [35, 36, 34, 35, 35],
        }
    )
    (v,) = strategies.join_verdicts(slow, join_book())
    assert v.engine == "duckdb" and v.topic == "the plan's three-table JOIN on this machine (for comparison)"
    assert v.verdict == "not a good fix: 3.0x slower than today's N+1"
    assert v.detail.startswith(
        "Against today's N+1, the plan's single three-table LEFT JOIN "
        "of sessions, their messages and their windows is 3.0"
    )
    assert "against the batch select-in, the best alternative, 3.4" in v.detail
    assert "ships 9,888 rows for 4,962 real ones (2.0x" in v.detail
    assert "15.1 MB against 6.1 MB for today's N+1, in 1 statement against 201" in v.detail
    assert "the engine's own time 22.9 ms against 19.0 ms" in v.detail
    loaded = Results(slow.frame.with_columns(load_before=pl.lit(4.0), load_after=pl.lit(4.0)), {})
    (v,) = strategies.join_verdicts(loaded, join_book(), limit=1.8)
    assert v.verdict == "not ranked (load too high); ships 2.0x the real rows, 2.5x the bytes"
    assert v.detail.startswith("load average 4.00 before, 4.00 after timing: 2.2x the limit of 1.80")


def test_join_verdict_on_a_tie_and_on_a_win():
    tie = synthetic_results({"n_plus_one": [40, 41, 39, 40, 40], "joined": [40.5, 40.6, 39.5, 40.2, 40.1]})
    (v,) = strategies.join_verdicts(tie, join_book())
    assert v.verdict == "no gain: a tie with today's N+1" and "a tie (time ratio 1.0" in v.detail
    win = synthetic_results(
        {"n_plus_one": [90, 91, 89, 90, 90], "joined": [30, 31, 29, 30, 30], "batch": [10, 11, 9, 10, 10]}
    )
    (v,) = strategies.join_verdicts(win, join_book())
    assert v.verdict == "helps: 3.0x faster than today's N+1, but the batch select-in is 3.0x faster still"
    assert "((" not in v.verdict + v.detail and "))" not in v.verdict + v.detail
    both = synthetic_results(
        {
            "n_plus_one": [90, 91, 89, 90, 90],
            "joined": [30, 31, 29, 30, 30],
            "batch": [30, 30.5, 29.5, 30, 30.1],
        }
    )
    assert strategies.join_verdicts(both, join_book())[0].verdict.startswith(
        "a good fix: 3.0x faster than today's N+1, a tie with the batch select-in"
    )


def test_strategy_figure_has_one_trace_of_dots_per_engine():
    summary = pl.concat(
        [
            synthetic_results({"n_plus_one": [5, 6], "batch": [1, 2]}, e).summary()
            for e in ("duckdb", "sqlite")
        ]
    )
    fig = figures.strategy_figure(strategies.labelled(summary))
    assert [t.name for t in fig.data] == ["duckdb", "sqlite"]
    assert list(fig.data[0].x) == ["N+1 (today)", "batch (select-in)"]
    assert {t.type for t in fig.data} == {"scatter"} and fig.layout.scattermode == "group"  # no bars on log


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


def test_postgres_warms_up_until_prepared_statements_settle(engine):
    calls = []

    def counted(db, project_id, limit):
        calls.append(limit)
        return strategies.batch(db, project_id, limit)

    counted = strategies.Strategy("counted", counted, "c", lambda n: 3)
    strategies.compare({engine.name: engine}, PROJECT, 2, strategies=[counted], repeat=2, server_time=False)
    # The checked run, warm-up rounds up to the engine's warmup_runs, then the timed runs.
    assert len(calls) == engine.warmup_runs + 2
    assert engine.warmup_runs == (11 if engine.name == "postgres" else 1)
    calls.clear()
    strategies.compare(
        {engine.name: engine}, PROJECT, 2, strategies=[counted], repeat=2, warmup=3, server_time=False
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
    costs = pl.DataFrame({"engine": ["sqlite"], "statement_ms": [0.25], "select1_ms": [0.002]})
    text = strategies.scaling_conclusions(summary, costs, strategies.crossings(summary))
    assert text.startswith("sqlite: at 100 sessions the plan's JOIN is fastest (20.0 ms median)")
    assert (
        "today's N+1 takes 100.0 ms for 201 statements, 50% of it their own cost "
        "(250 µs per child query, measured; SELECT 1 alone: 2 µs)" in text
    )
    assert "; today's N+1 is faster below ~" in text and "sessions, the plan's JOIN above" in text


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


def test_compare_records_the_load_before_and_after_per_engine(engine):
    results, _ = strategies.compare(
        {engine.name: engine},
        PROJECT,
        2,
        strategies=["batch"],
        repeat=2,
        server_time=False,
        clock=fake_clock(),
    )
    frame = results.frame
    assert frame["load_before"].null_count() == 0 and frame["load_after"].null_count() == 0
    assert {"load_before", "load_after"} <= set(results.summary().columns)


def test_scaling_warms_up_as_compare_does(engine):
    calls = []

    def counted(db, project_id, limit):
        calls.append(limit)
        return strategies.batch(db, project_id, limit)

    counted = strategies.Strategy("counted", counted, "c", lambda n: 3)
    strategies.scaling(
        {engine.name: engine}, PROJECT, [2], strategies=[counted], repeat=2, clock=fake_clock()
    )
    assert len(calls) == engine.warmup_runs + 2  # the checked run, the engine's warm-up, the timed runs


def test_the_multiplication_model_matches_what_the_join_ships(engine, tiny):
    mult = strategies.multiplication(tiny, PROJECT)
    limit = 30
    loads = strategies.check_equal(engine, PROJECT, limit, ["n_plus_one", "joined"])
    page = mult.head(limit)
    assert page["session_id"].to_list() == [s["id"] for s in loads["joined"].result]
    assert page["cum_join_rows"][-1] == loads["joined"].rows
    assert page["cum_real_rows"][-1] == loads["n_plus_one"].messages + loads["n_plus_one"].windows
    if engine.name != "sqlite":  # SQLite returns booleans as 0/1 integers (8 bytes here, not 1)
        assert page["cum_join_bytes"][-1] == loads["joined"].bytes
        assert page["cum_real_bytes"][-1] == loads["n_plus_one"].bytes
    worst = strategies.worst_sessions(mult, 3)
    top = worst.row(0, named=True)
    assert top["extra_rows"] == (mult["join_rows"] - mult["real_rows"]).max()
    fig = figures.multiplication_figure(mult, worst)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert "1,000" in fig.layout.yaxis.ticktext and "1e3" not in fig.layout.yaxis.ticktext
    assert [t.name for t in fig.data if t.showlegend] == [
        "JOIN (plan)",
        "real (messages + windows)",
        "worst sessions",
    ]


def test_statement_cost_times_the_n_plus_one_child_queries(engine):
    ticks = itertools.count(0, 100_000)  # every timed statement reads 0.1 ms on this clock
    cost = strategies.statement_cost(engine, PROJECT, 3, rounds=2, clock=lambda: next(ticks))
    assert cost["engine"] == engine.name and cost["n"] == 2 * 2 * 3
    assert cost["statement_ms"] == pytest.approx(0.1) and cost["lo"] == pytest.approx(0.1)
    assert cost["mean_ms"] == pytest.approx(0.1)
    assert cost["select1_ms"] == pytest.approx(0.1)
    text = strategies.statement_cost_sentence(cost, statements=201, n_plus_one_ms=40.0)
    assert "costs 100 µs on" in text and "201 statements × that cost = 20.1 ms, 50% of N+1's 40.0 ms" in text
    summary = pl.DataFrame({"engine": [engine.name], "strategy": ["n_plus_one"], "median_ms": [40.0]})
    (v,) = strategies.statement_cost_verdicts(pl.DataFrame([cost]), summary, 100)
    assert v.verdict == "100 µs, against 100 µs for SELECT 1" and v.engine == engine.name
    assert "201 statements × that cost = 20.1 ms" in v.detail


def test_index_effect_claims_only_what_the_plan_shows(engine, tiny):
    sql = queries.load("session_messages", engine.dialect)
    effect = strategies.index_effect(engine, sql, {"session_id": 1}, repeat=3, clock=fake_clock())
    assert effect["ratio"] == pytest.approx(1.0)
    if effect["plan_changed"]:
        assert "plan changed" in effect["sentence"] and "not attributable" not in effect["sentence"]
    else:
        assert (
            "plan unchanged" in effect["sentence"] and "not attributable to the index" in effect["sentence"]
        )
    if engine.name == "duckdb":
        assert "ART index" in effect["sentence"]
    if engine.name == "sqlite":
        assert effect["plan_changed"] and effect["index_used"]


def test_crossings_need_intervals_apart_on_both_sides():
    def rows(strategy, per_size):
        return [
            {
                "engine": "pg",
                "strategy": strategy,
                "sessions": n,
                "run": i,
                "wall_ns": int(t * 1e6),
                "statements": 1,
                "rows": 1,
            }
            for n, ts in zip([1, 10, 100], per_size, strict=True)
            for i, t in enumerate(ts)
        ]

    # b wanders around a within noise at 10 and 100: no crossing, though the medians swap.
    noisy = rows("n_plus_one", [[1, 1.1, 0.9] * 4, [10, 14, 7] * 4, [50, 60, 40] * 4])
    noisy += rows("batch", [[5, 5.5, 4.5] * 4, [11, 15, 6] * 4, [48, 62, 41] * 4])
    summary = Results.from_runs(noisy, {"engines": {}}).summary()
    assert strategies.crossings(summary).is_empty()
    # Apart at 1 (N+1 faster) and at 100 (batch faster): one crossing, in that direction.
    clear = rows("n_plus_one", [[1, 1.1, 0.9] * 4, [10, 14, 7] * 4, [100, 105, 95] * 4])
    clear += rows("batch", [[5, 5.5, 4.5] * 4, [11, 15, 6] * 4, [20, 21, 19] * 4])
    found = strategies.crossings(Results.from_runs(clear, {"engines": {}}).summary())
    assert found.select("faster_below", "faster_above").rows() == [("n_plus_one", "batch")]
    assert 1 < found["sessions"][0] < 100


# ---- your own strategies ------------------------------------------------------------------
EXAMPLES = Path(__file__).resolve().parents[1] / "queries" / "examples"


def my_last_ten(db, project_id, limit):
    """A user's own N+1: the page's sessions, then each one's last 10 messages."""
    page = queries.translate(
        "SELECT id, title FROM sessions WHERE project_id = :p ORDER BY created_at DESC, id DESC LIMIT :n",
        db.dialect,
    )
    last = queries.translate(
        "SELECT id AS message_id, role, timestamp, output_tokens FROM messages WHERE session_id = :s "
        "ORDER BY timestamp DESC, id DESC LIMIT 10",
        db.dialect,
    )
    out = []
    for sid, title in db.execute(page, {"p": project_id, "n": limit}):
        out += [{"session_id": sid, "title": title} | m for m in db.query(last, {"s": sid}).to_dicts()]
    return out


def test_your_own_function_and_sql_file_against_n_plus_one(engine):
    before = dict(STRATEGIES)
    mine = strategies.Strategy("my_last_ten", my_last_ten, statements=lambda n: 1 + n)
    window = EXAMPLES / "last10_window.sql"  # a Path: a SQL file strategy, one statement
    files = [window] + (
        [strategies.from_sql(EXAMPLES / "last10_lateral.sql")] if engine.name != "sqlite" else []
    )
    loads = strategies.check_equal(engine, PROJECT, LIMIT, [mine, *files])
    assert set(loads) == {"my_last_ten", "last10_window", *(["last10_lateral"] if len(files) > 1 else [])}
    rows = loads["my_last_ten"].result
    assert loads["my_last_ten"].statements == 1 + LIMIT and loads["last10_window"].statements == 1
    assert len({r["session_id"] for r in rows}) == LIMIT and rows[0]["role"] is not None
    assert loads["last10_window"].messages is None  # no fixed keys: it compares what both return
    results, book = strategies.compare(
        {engine.name: engine}, PROJECT, LIMIT, strategies=[mine, *files], repeat=2, clock=fake_clock()
    )
    assert set(results.frame["strategy"]) == set(loads) and book["sessions"].is_null().all()
    scaled = strategies.scaling(
        {engine.name: engine}, PROJECT, [1, LIMIT], strategies=[mine, window], repeat=1, clock=fake_clock()
    )
    assert scaled.frame.height == 4

    # Against the built-in N+1, a plain function (statements not checked) that returns the same sessions.
    def sessions_my_way(db, project_id, limit):
        return strategies.per_relation(db, project_id, limit)

    assert set(strategies.check_equal(engine, PROJECT, LIMIT, ["n_plus_one", sessions_my_way])) == {
        "n_plus_one",
        "sessions_my_way",
    }
    assert dict(STRATEGIES) == before  # nothing registered
    with pytest.raises(TypeError):
        STRATEGIES["mine"] = mine  # the built-ins are read-only


def test_the_equality_check_catches_a_wrong_strategy_of_your_own(engine):
    def one_message_short(db, project_id, limit):
        rows = my_last_ten(db, project_id, limit)
        return rows[:-1]

    with pytest.raises(
        StrategyMismatchError, match=r"'one_message_short' differs from 'last10_window'.*items"
    ):
        strategies.check_equal(engine, PROJECT, LIMIT, [EXAMPLES / "last10_window.sql", one_message_short])
    wrong_count = strategies.Strategy("my_last_ten", my_last_ten, statements=1)
    with pytest.raises(StrategyMismatchError, match=r"ran 8 statements for 7 sessions; it should run 1"):
        strategies.check_equal(engine, PROJECT, LIMIT, [wrong_count])


def test_unknown_strategies_are_named_with_the_fix(tmp_path):
    with pytest.raises(
        WorkbenchError, match=r"Unknown strategy 'n_plus_two': give one of n_plus_one, .*\.sql file"
    ):
        strategies.resolve(["n_plus_two"])
    with pytest.raises(WorkbenchError, match=r"not found: give the path of a \.sql file"):
        strategies.resolve([tmp_path / "missing.sql"])
    with pytest.raises(WorkbenchError, match=r"Two strategies are named 'batch'"):
        strategies.resolve(["batch", strategies.Strategy("batch", strategies.batch)])


def test_a_strategy_file_that_does_not_parse_is_named(tmp_path):
    bad = tmp_path / "broken.sql"
    bad.write_text("SELECT FROM WHERE (")
    with pytest.raises(WorkbenchError, match=r"Strategy file '.*broken\.sql': Cannot parse query"):
        strategies.from_sql(bad)

"""The index lab on real engines: HypoPG on PostgreSQL, real builds on SQLite and DuckDB,
pagination counts, and migrations applied up and down. Timings are not asserted on."""

from __future__ import annotations

import polars as pl
import psycopg
import pytest

from workbench.engines import open_engine
from workbench.errors import UnsafeTargetError
from workbench.indexes import advisor, migrations, pagination
from workbench.indexes import evaluate as ev
from workbench.indexes import workload as wl
from workbench.indexes.candidates import IndexSpec


def _count(clock_state=[0]):  # noqa: B006 - a deterministic fake clock shared by a test
    def clock() -> int:
        clock_state[0] += 1_000
        return clock_state[0]

    return clock


@pytest.fixture
def pg(tiny, postgres_url):
    with open_engine("postgres", postgres_url) as engine:
        engine.load(tiny)
        yield engine


@pytest.fixture(params=["sqlite", "duckdb"])
def embedded(request, tiny, tmp_path):
    with open_engine(request.param, str(tmp_path / f"tiny.{request.param}")) as engine:
        engine.load(tiny)
        yield engine


SMALL = ["session_messages", "jobs_queue", "project_sessions", "session_windows"]


def test_hypopg_costs_fall_for_a_point_query_and_nothing_is_built(pg):
    w = wl.from_folder(names=SMALL)
    advice = ev.analyze(w, pg, wl.draw(pg))
    frame = ev.hypothetical(pg, advice, [IndexSpec("messages", ("session_id", "timestamp", "id"))])
    row = frame.filter((pl.col("query") == "session_messages") & (pl.col("case") == "hot")).row(0, named=True)
    assert row["cost_after"] < row["cost_before"]
    assert row["plan_change"].startswith("Seq Scan on messages -> ")
    assert pg.list_indexes().is_empty()  # hypothetical only
    assert "hypopg" not in pg.existing_tables()  # kept out of the workbench's schema: still writable
    pg.check_writable()


def test_advisor_on_postgres_recommends_and_writes_migrations(pg, tmp_path):
    w = wl.from_folder(names=SMALL)
    report = advisor.advise(pg, w, out_dir=tmp_path, repeat=3, write_rows=200, clock=_count())
    assert report.hypothetical is not None and not report.hypothetical.is_empty()
    per_q = report.builds.per_query
    assert {"speedup", "lo", "hi", "plan_change", "rows_read_before"} <= set(per_q.columns)
    idx = report.builds.per_index
    assert (idx["size_bytes"] > 0).all() and idx["write_cost"].is_not_null().all()
    plan_rows = report.selection.filter(pl.col("plan_index"))
    assert len(plan_rows) == 4  # each of the plan's indexes gets a verdict
    assert (
        "DESC does not matter"
        in plan_rows.filter(pl.col("index") == "jobs(status, created_at DESC)")["desc"][0]
    )
    assert set(report.total["query"]) == set(SMALL)
    assert pg.list_indexes().is_empty()  # everything built was dropped again


def test_advisor_without_hypopg_on_a_foreign_database_says_so(postgres_url, tiny, tmp_path):
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute("CREATE TABLE their_table (id int)")
    with open_engine("postgres", postgres_url) as prod:
        assert "not installed" in ev.hypopg_ready(prod)
        with pytest.raises(ev.HypoPGMissing, match="CREATE EXTENSION hypopg"):
            ev.hypothetical(prod, ev.Advice(wl.from_folder(names=["jobs_queue"]), {}, {}, {}, []))
        with pytest.raises(UnsafeTargetError):
            ev.measure_builds(prod, ev.Advice(wl.from_folder(names=["jobs_queue"]), {}, {}, {}, []))


def test_advisor_on_embedded_engines(embedded, tmp_path):
    w = wl.from_folder(names=SMALL)
    report = advisor.advise(embedded, w, out_dir=tmp_path, repeat=3, write_rows=200, clock=_count())
    assert report.hypothetical is None
    assert not report.builds.per_query.is_empty()
    assert embedded.list_indexes().is_empty()
    assert (tmp_path / "migrations" / embedded.name).is_dir()


def test_advisor_keeps_going_past_a_bad_query(embedded, tmp_path):
    good = wl.from_folder(names=["jobs_queue"]).queries
    bad = [
        wl.WorkloadQuery("broken", "SELECT FROM WHERE ("),
        wl.WorkloadQuery("ghost", "SELECT * FROM ghosts"),
        wl.WorkloadQuery("unbound", "SELECT * FROM jobs WHERE status = :colour"),
    ]
    report = advisor.advise(embedded, wl.Workload(good + bad), repeat=2, write_rows=50, clock=_count())
    assert report.advice.workload.names() == ["jobs_queue"]
    text = " | ".join(report.advice.errors)
    assert "'broken' does not parse" in text and "'ghosts'" in text and ":colour" in text


def test_existing_prefix_index_is_flagged_and_dropped_by_a_migration(embedded, tmp_path):
    embedded.create_index("ix_old_jobs_status", "jobs", ["status"])
    w = wl.from_folder(names=["jobs_queue", "jobs_by_status"])
    report = advisor.advise(embedded, w, out_dir=tmp_path, repeat=2, write_rows=50, clock=_count())
    row = report.existing.filter(pl.col("name") == "ix_old_jobs_status").row(0, named=True)
    assert row["status"] in {"redundant", "used"}
    if row["status"] == "redundant":
        assert any("drop_ix_old_jobs_status" in p.name for p in report.migrations)
    assert "ix_old_jobs_status" in embedded.list_indexes()["name"].to_list()  # restored after measuring


# ---- pagination --------------------------------------------------------------------------------
def test_plans_cursor_loses_or_repeats_rows_keyset_neither(embedded):
    hot = wl.draw(embedded)["hot"]["project_id"]
    frame = pagination.correctness(embedded, hot, size=5, inserts_per_page=2)
    get = {(r["pager"], r["scenario"]): r for r in frame.iter_rows(named=True)}
    for scenario in ("still table", "rows inserted between pages"):
        assert get[("cursor", scenario)]["missed"] + get[("cursor", scenario)]["repeated"] > 0
        assert get[("keyset", scenario)]["missed"] == 0 and get[("keyset", scenario)]["repeated"] == 0
    assert get[("offset", "still table")]["missed"] == 0
    assert get[("offset", "rows inserted between pages")]["repeated"] > 0
    assert embedded.table_counts()["sessions"] == 60  # inserted rows removed


def test_pagination_counts_on_postgres(pg):
    frame = pagination.correctness(pg, wl.draw(pg)["hot"]["project_id"], size=5)
    keyset = frame.filter(pl.col("pager") == "keyset")
    assert keyset["missed"].sum() == 0 and keyset["repeated"].sum() == 0
    cursor = frame.filter(pl.col("pager") == "cursor")
    assert (cursor["missed"] + cursor["repeated"]).min() > 0


def test_pagination_counting_logic():
    assert pagination.count([1, 2, 3, 4], [[1, 2], [2, 9]]) == {
        "rows": 4,
        "returned": 4,
        "missed": 2,
        "repeated": 1,
        "pages": 2,
    }


def test_depth_latency_builds_and_drops_the_index_each_pager_needs(embedded):
    frame = pagination.depth_latency(embedded, 1, size=1, depths=(1, 5, 10_000), repeat=2, clock=_count())
    assert set(frame["pager"]) == {"cursor", "offset", "keyset"}
    assert frame["page"].max() == 5  # page 10,000 does not exist at this size
    assert embedded.list_indexes().is_empty()
    assert set(pagination.growth(frame)["pager"]) == {"cursor", "offset", "keyset"}


# ---- migrations applied --------------------------------------------------------------------------
def _apply_up_and_down(engine, tmp_path):
    engine.create_index("ix_old", "messages", ["session_id"])
    changes = [
        migrations.Change(
            IndexSpec("sessions", ("project_id", "created_at"), (False, True)), "evidence: test"
        ),
        migrations.Change(IndexSpec("jobs", ("status", "created_at")), "evidence"),
        migrations.Change(IndexSpec("messages", ("session_id",)), "redundant", drop=True, name="ix_old"),
    ]
    migrations.write(tmp_path, changes, [engine.dialect])
    folder = tmp_path / "migrations" / engine.dialect
    migrations.apply(engine, folder, "up")
    names = set(engine.list_indexes()["name"])
    assert names == {"ix_sessions_project_id_created_at_desc", "ix_jobs_status_created_at"}
    migrations.apply(engine, folder, "up")  # IF NOT EXISTS / IF EXISTS: applying twice is harmless
    migrations.apply(engine, folder, "down")
    assert set(engine.list_indexes()["name"]) == {"ix_old"}


def test_migrations_up_and_down_on_postgres(pg, tmp_path):
    _apply_up_and_down(pg, tmp_path)


def test_migrations_up_and_down_on_sqlite(tiny, tmp_path):
    with open_engine("sqlite", str(tmp_path / "m.sqlite")) as engine:
        engine.load(tiny)
        _apply_up_and_down(engine, tmp_path)

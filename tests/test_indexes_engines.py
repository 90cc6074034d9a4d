"""The index lab on real engines: HypoPG on PostgreSQL, real builds on SQLite and DuckDB,
pagination counts, and migrations applied up and down. Timings are not asserted on."""

from __future__ import annotations

import polars as pl
import psycopg
import pytest

from workbench import queries, schema
from workbench.engines import open_engine
from workbench.engines.base import MARKER
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
    ]
    report = advisor.advise(embedded, wl.Workload(good + bad), repeat=2, write_rows=50, clock=_count())
    assert report.advice.workload.names() == ["jobs_queue"]
    text = " | ".join(report.advice.errors)
    assert "'broken' does not parse" in text and "'ghosts'" in text
    # ... but a parameter without a value stops it: the answer would leave the query out.
    unbound = wl.WorkloadQuery("unbound", "SELECT * FROM jobs WHERE status = :colour")
    with pytest.raises(wl.UnboundParameter, match=":colour .* --values FILE"):
        advisor.advise(embedded, wl.Workload([*good, unbound]), repeat=2, write_rows=50, clock=_count())
    values = {"colour": {"query": "SELECT status FROM jobs GROUP BY status ORDER BY count(*) DESC, status"}}
    report = advisor.advise(
        embedded, wl.Workload([*good, unbound]), repeat=2, write_rows=50, values=values, clock=_count()
    )
    assert report.advice.workload.names() == ["jobs_queue", "unbound"]
    drawn = [c["colour"] for c in report.advice.params.values()]
    assert drawn == [c["status"] for c in report.advice.params.values()]  # the same query, hottest first


def test_existing_prefix_index_is_flagged_and_dropped_by_a_migration(embedded, tmp_path):
    embedded.create_index("ix_old_jobs_status", "jobs", ["status"])
    w = wl.from_folder(names=["jobs_queue", "jobs_by_status"])
    report = advisor.advise(embedded, w, out_dir=tmp_path, repeat=2, write_rows=50, clock=_count())
    row = report.existing.filter(pl.col("name") == "ix_old_jobs_status").row(0, named=True)
    assert row["status"] in {"redundant", "used"}
    if row["status"] == "redundant":
        assert any("drop_ix_old_jobs_status" in p.name for p in report.migrations)
    assert "ix_old_jobs_status" in embedded.list_indexes()["name"].to_list()  # restored after measuring


def test_write_cost_is_paired_on_scratch_copies_that_leave_nothing_behind(embedded):
    counts = embedded.table_counts()
    with ev.WriteBench(embedded, "messages", rows=500) as bench:
        r, lo, hi = bench.cost(IndexSpec("messages", ("session_id", "timestamp")), rounds=3)
        assert bench.rows == 500 and lo <= r <= hi
    assert embedded.table_counts() == counts
    assert embedded.list_indexes().is_empty()
    assert not any(t.startswith("wbw_") for t in embedded.existing_tables())
    embedded.check_writable()


def test_write_cost_scratch_copies_on_postgres_leave_nothing_behind(pg):
    with ev.WriteBench(pg, "sessions", rows=50) as bench:
        r, lo, hi = bench.cost(IndexSpec("sessions", ("project_id", "created_at"), (False, True)), rounds=2)
    assert lo <= r <= hi
    assert pg.execute("SELECT count(*) FROM pg_namespace WHERE nspname = :s", {"s": ev.SCRATCH_SCHEMA}) == [
        (0,)
    ]
    assert pg.list_indexes().is_empty()


def test_existing_indexes_dropped_for_the_before_times_is_said(embedded, tmp_path):
    embedded.create_index("ix_team_jobs", "jobs", ["status", "created_at", "id"])
    w = wl.from_folder(names=["jobs_queue"])
    report = advisor.advise(embedded, w, repeat=2, write_rows=50, clock=_count())
    assert any("existing secondary indexes (ix_team_jobs) dropped" in n for n in report.notes)
    row = report.selection.filter(pl.col("index") == "jobs(status, created_at, id)").row(0, named=True)
    assert row["decision"].startswith("already served by ix_team_jobs")
    assert "ix_team_jobs" in set(embedded.list_indexes()["name"])


def test_an_existing_expression_index_is_left_out_not_fatal(embedded, tmp_path):
    embedded.execute("CREATE INDEX ix_jobs_lower_status ON jobs (lower(status))")
    w = wl.from_folder(names=["jobs_queue"])
    report = advisor.advise(embedded, w, repeat=2, write_rows=50, clock=_count())
    listed = set(report.existing["name"]) if "name" in report.existing.columns else set()
    assert "ix_jobs_lower_status" not in listed  # it used to stop the advisor (not a plain column)
    assert "ix_jobs_lower_status" in set(embedded.list_indexes()["name"])  # still there, untouched


# ---- the profile's workload ---------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["n_plus_one", "batch", "joined", "per_relation", "aggregate"])
def test_endpoint_statements_are_what_the_service_runs(pg, strategy):
    from workbench.service import routes as app
    from workbench.strategies.loading import CountingEngine

    named = {}
    for f in queries.QUERIES_DIR.glob("*.sql"):
        for arrays in (False, True):
            try:
                named[wl.fingerprint(queries.load(f.stem, "postgres", arrays=arrays))] = f.stem
            except Exception:  # noqa: BLE001 - arrays only where the query has an IN list
                continue
    case = wl.draw(pg)["hot"]
    calls = {
        "sessions": lambda db: app.session_page(db, case["project_id"], 20, None),
        "recent": lambda db: app.recent(db, case["project_id"], 5, strategy),
        "session": lambda db: app.session_detail(db, case["session_id"]),
        "usage": lambda db: app.day_usage(db, case["day_start"].date()),
        "jobs": lambda db: app.jobs_page(db, case["status"], 50),
    }
    for endpoint, call in calls.items():
        db = CountingEngine(pg, record=True)
        call(db)
        ran: dict[str, int] = {}
        for st in db.log:
            name = named[wl.fingerprint(st.sql)]
            ran[name] = ran.get(name, 0) + 1
        assert ran == wl.endpoint_statements(endpoint, strategy, recent=5), endpoint


def test_the_profiles_workload_runs_on_every_engine(embedded):
    from workbench.profile import load

    w = wl.from_profile(load())
    assert w.get("session_messages").frequency == pytest.approx(0.3 * 20 + 0.25)
    params = wl.draw(embedded)
    for q in w.queries:
        sql = queries.translate(q.sql, embedded.dialect)
        for case in params.values():
            embedded.execute(sql, wl.bind(q, case))


def test_decisions_on_the_profiles_engine_with_the_plan_items_fields(tiny, tmp_path):
    from dataclasses import replace

    from workbench.indexes import decisions
    from workbench.profile import load
    from workbench.verdicts import DECISIONS, PLAN_ITEMS

    prof = replace(load(), engine="sqlite")
    with open_engine("sqlite", str(tmp_path / "d.sqlite")) as engine:
        engine.load(tiny)
        report = advisor.advise(
            engine, wl.from_profile(prof), out_dir=tmp_path / "03_indexes", repeat=3, write_rows=200
        )
        hot = wl.draw(engine)["hot"]["project_id"]
        pages = pagination.correctness(engine, hot, size=5)
        depth = pagination.depth_latency(engine, hot, size=5, depths=(1, 2, 4), repeat=2)
    found = decisions.verdicts({"sqlite": report}, pages, depth, prof, tmp_path, page_size=5)
    items = {v.item: v for v in found if v.item}
    plan = [k for k in PLAN_ITEMS if k.startswith("index:")]
    assert set(plan) | {"index_desc", "pagination", "success:db"} <= set(items)
    for key in plan:
        v = items[key]
        assert v.decision in DECISIONS and v.evidence == "03_indexes.html" and v.engine == "sqlite"
        assert v.unit == "x" and v.low <= v.effect <= v.high and v.cost.startswith("inserts into ")
        assert v.conditions["profile"] == "default" and "mix" in v.conditions["workload"]
        if v.decision.startswith("ship"):
            assert (tmp_path / v.artifact).is_file() and v.artifact.startswith(
                "03_indexes/migrations/sqlite/"
            )
    for v in found:  # any other recommended index ships with its migration
        if v.item and v.item not in items or (v.item or "").startswith("index:") and v.item not in plan:
            assert v.decision == "ship" and (tmp_path / v.artifact).is_file()
    assert items["index_desc"].decision == "don't ship"  # every sort on these keys runs one way
    page = items["pagination"]
    assert page.decision == "ship changed" and page.conditions["page_size"] == 5
    assert "rows 6-10" in page.detail or "rows 16-20" in page.detail
    db = items["success:db"]
    assert db.unit == "%" and db.low <= db.effect <= db.high
    word = db.verdict.split(":")[0]  # a target is decided as met / missed, or shows nothing
    assert db.decision == {"met": "ship", "missed": "don't ship"}.get(word, "not measured here")


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


def test_migrations_applied_on_top_of_a_teams_existing_ones(tiny, tmp_path):
    folder = tmp_path / "db" / "migrations"
    folder.mkdir(parents=True)
    (folder / "000001_init.up.sql").write_text("CREATE INDEX ix_team ON jobs (status);\n")
    (folder / "000001_init.down.sql").write_text("DROP INDEX ix_team;\n")
    change = migrations.Change(IndexSpec("messages", ("session_id", "timestamp")), "evidence")
    migrations.write_folder(folder, [change], "sqlite")
    with open_engine("sqlite", str(tmp_path / "m.sqlite")) as engine:
        engine.load(tiny)
        assert migrations.apply(engine, folder) == [
            "000001_init.up.sql",
            "000002_create_ix_messages_session_id_timestamp.up.sql",
        ]
        assert set(engine.list_indexes()["name"]) == {"ix_team", "ix_messages_session_id_timestamp"}
        migrations.apply(engine, folder, "down")
        assert engine.list_indexes().is_empty()


# ---- covering indexes (INCLUDE, PostgreSQL) -------------------------------------------------------
def _jobs_queue_plan(engine) -> set[str]:
    """The node types of jobs_queue's plan, from EXPLAIN's JSON."""
    q = wl.from_folder(names=["jobs_queue"]).queries[0]
    sql = queries.translate(q.sql, "postgres")
    nodes = [engine.explain(sql, wl.bind(q, wl.draw(engine)["hot"]), analyze=False)[0]["Plan"]]
    for node in nodes:
        nodes += node.get("Plans", [])
    return {n["Node Type"] for n in nodes}


def test_covering_index_serves_jobs_queue_by_an_index_only_scan(pg, tmp_path):
    plain = IndexSpec("jobs", ("status", "created_at", "id"))
    wide = IndexSpec("jobs", ("status", "created_at", "id"), include=("session_id", "type", "attempts"))
    pg.execute("VACUUM (ANALYZE) jobs")  # the visibility map an index-only scan relies on
    pg.execute("SET enable_seqscan = off")  # the tiny sample would rather scan; compare index paths
    pg.execute("SET enable_bitmapscan = off")
    migrations.write(tmp_path, [migrations.Change(plain, "plain")], ["postgres"])
    migrations.apply(pg, tmp_path / "migrations" / "postgres", "up")
    assert "Index Scan" in _jobs_queue_plan(pg)  # visits the heap for session_id, type, attempts
    migrations.write(tmp_path, [migrations.Change(wide, "covering")], ["postgres"])
    folder = tmp_path / "migrations" / "postgres"
    migrations.apply(pg, folder, "up")
    pg.execute("DROP INDEX ix_jobs_status_created_at_id")
    assert "Index Only Scan" in _jobs_queue_plan(pg)
    listed = pg.list_indexes().row(0, named=True)
    assert (listed["name"], listed["columns"]) == (
        "ix_jobs_status_created_at_id_covering",
        "status, created_at, id",
    )
    assert "INCLUDE (session_id, type, attempts)" in listed["sql"]
    migrations.apply(pg, folder, "down")
    assert pg.list_indexes().is_empty()


def test_advisor_measures_covering_variants_on_postgres(pg, tmp_path):
    w = wl.from_folder(names=["jobs_queue"])
    report = advisor.advise(pg, w, repeat=2, write_rows=50, covering=True, clock=_count())
    wide = "jobs(status, created_at, id) INCLUDE (session_id, type, attempts)"
    assert {wide, "jobs(status, created_at, id)"} <= set(report.builds.per_index["index"])
    assert wide in set(report.hypothetical["index"])  # estimated by HypoPG too
    assert report.selection.filter(pl.col("index") == wide)["decision"][0]  # a verdict either way
    assert pg.list_indexes().is_empty()


def test_covering_is_postgres_only(embedded, tmp_path):
    w = wl.from_folder(names=["jobs_queue"])
    report = advisor.advise(embedded, w, repeat=2, write_rows=50, covering=True, clock=_count())
    assert not any("INCLUDE" in label for label in report.builds.per_index["index"])
    assert any("INCLUDE is PostgreSQL's" in n for n in report.notes)


# ---- `workbench advise --url` on a database the workbench did not create: reads only ---------------
def _db_state(url: str) -> dict:
    """What a write would change: relations (with their files), schemas (temporary ones too),
    extensions, every table's rows, and the tuples the statistics count as written."""
    with psycopg.connect(url, autocommit=True) as con:
        state = {
            "relations": con.execute(
                "SELECT n.nspname, c.relname, c.relkind, c.relfilenode FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
                " AND n.nspname NOT LIKE 'pg_toast%'"
                " ORDER BY 1, 2"
            ).fetchall(),
            "schemas": con.execute("SELECT nspname FROM pg_namespace ORDER BY 1").fetchall(),
            "extensions": con.execute(
                "SELECT extname, extnamespace::regnamespace::text FROM pg_extension"
            ).fetchall(),
            "written": con.execute(
                "SELECT tup_inserted, tup_updated, tup_deleted FROM pg_stat_database"
                " WHERE datname = current_database()"
            ).fetchone(),
            "tables": con.execute(
                "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables ORDER BY 1"
            ).fetchall(),
        }
        for table in schema.TABLES:
            state[table] = con.execute(
                f"SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t"
            ).fetchone()
    return state


def _wait_for_other_sessions_to_end(url: str) -> None:
    """A backend flushes its statistics before it leaves pg_stat_activity: wait for that."""
    import time

    with psycopg.connect(url, autocommit=True) as con:
        for _ in range(600):  # a hang guard (30 s), not a timing
            others = con.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()[0]
            if not others:
                return
            time.sleep(0.05)
    raise AssertionError("the advisor's sessions did not end")


@pytest.fixture
def foreign(postgres_url, tiny):
    """The tiny dataset in a database the workbench did not create (no marker table)."""
    with open_engine("postgres", postgres_url) as engine:
        engine.load(tiny)
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute(f"DROP TABLE {MARKER}")
        con.execute("VACUUM ANALYZE")  # settle the statistics before the snapshot
    return postgres_url


def _advise_url(tiny, tmp_path, url: str):
    from click.testing import CliRunner

    from workbench.cli import main

    args = ["advise", "--engine", "sqlite", "--dataset", str(tiny.path), "--url", url]
    args += ["--queries", str(tmp_path / "q"), "--repeat", "2", "--out", str(tmp_path / "out")]
    return CliRunner().invoke(main, args)


@pytest.fixture
def advise_queries(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the local sample goes to ./data
    (tmp_path / "q").mkdir()
    for name in ("jobs_queue", "session_windows"):
        (tmp_path / "q" / f"{name}.sql").write_text(queries.source(name))


def test_advise_url_without_hypopg_reads_only(foreign, tiny, tmp_path, advise_queries):
    before = _db_state(foreign)
    result = _advise_url(tiny, tmp_path, foreign)  # as the superuser: it could write, and must not
    assert result.exit_code == 0, result.output
    assert "HypoPG is not installed in" in result.output and "CREATE EXTENSION hypopg" in result.output
    _wait_for_other_sessions_to_end(foreign)
    assert _db_state(foreign) == before  # no extension, schema, index, table or row added


def test_advise_url_with_hypopg_needs_only_select(foreign, tiny, tmp_path, advise_queries):
    from sqlalchemy.engine import make_url

    role = "advise_reader"
    with psycopg.connect(foreign, autocommit=True) as con:  # what the database's owner would do
        con.execute("CREATE SCHEMA hypopg")
        con.execute("CREATE EXTENSION hypopg SCHEMA hypopg")
        con.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'reader'")
        con.execute(f"REVOKE TEMPORARY ON DATABASE {make_url(foreign).database} FROM PUBLIC")
        con.execute(f"GRANT USAGE ON SCHEMA public, hypopg TO {role}")
        con.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
        con.execute("VACUUM ANALYZE")  # settle the statistics the owner's changes moved
    reader = make_url(foreign).set(username=role, password="reader").render_as_string(hide_password=False)
    try:
        before = _db_state(foreign)
        result = _advise_url(tiny, tmp_path, reader)
        assert result.exit_code == 0, result.output
        assert "HypoPG: " in result.output and "planner estimates on" in result.output
        assert "reader@" not in result.output or "***" in result.output  # the password stays masked
        _wait_for_other_sessions_to_end(foreign)
        assert _db_state(foreign) == before
    finally:
        with psycopg.connect(foreign, autocommit=True) as con:
            con.execute(f"DROP OWNED BY {role}")
            con.execute(f"DROP ROLE {role}")

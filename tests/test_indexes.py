"""The index lab's logic with known answers: candidates, workload files, selection, migrations files."""

from __future__ import annotations

import json

import polars as pl
import pytest

from workbench import queries
from workbench.indexes import candidates as cand
from workbench.indexes import migrations as mig
from workbench.indexes import workload as wl
from workbench.indexes.candidates import CandidateError, IndexSpec, analyze, derive


def keys(sql: str, distinct=None) -> list[str]:
    return [c.spec.label for c in derive(analyze(sql, "q"), distinct)]


# ---- candidates: known answers ---------------------------------------------------------------
def test_equality_then_sort_wants_a_two_column_index_in_that_order():
    assert keys("SELECT * FROM jobs WHERE status = :s ORDER BY created_at DESC LIMIT 20") == [
        "jobs(status, created_at)"
    ]


def test_equality_comes_before_range_whatever_the_order_written():
    a = keys("SELECT * FROM messages WHERE timestamp >= :t AND session_id = :s")
    b = keys("SELECT * FROM messages WHERE session_id = :s AND timestamp >= :t")
    assert a == b == ["messages(session_id, timestamp)"]


def test_non_sargable_predicates_are_flagged_with_their_rewrite_never_indexed():
    a = analyze("SELECT * FROM messages WHERE date(timestamp) = :day", "daily")
    assert derive(a) == []
    (flag,) = a.flags
    assert (flag.query, flag.table, flag.column) == ("daily", "messages", "timestamp")
    assert "timestamp >= :day AND timestamp < :day + interval '1 day'" in flag.rewrite
    b = analyze("SELECT * FROM sessions WHERE title LIKE '%fix%'", "search")
    assert derive(b) == [] and "leading wildcard" in b.flags[0].reason and "pg_trgm" in b.flags[0].rewrite
    c = analyze("SELECT * FROM sessions WHERE lower(title) = :t", "ci")
    assert derive(c) == [] and "expression index on LOWER(title)" in c.flags[0].rewrite


def test_low_selectivity_column_wants_no_index():
    assert keys("SELECT * FROM messages WHERE role = :r", {("messages", "role"): 2}) == []
    # ... unless the index also serves a top-N sort, which stops early
    assert keys(
        "SELECT * FROM messages WHERE role = :r ORDER BY timestamp LIMIT 5", {("messages", "role"): 2}
    ) == ["messages(role, timestamp)"]
    assert keys("SELECT * FROM messages WHERE session_id = :s", {("messages", "session_id"): 1500}) == [
        "messages(session_id)"
    ]


def test_desc_is_kept_only_for_mixed_directions():
    assert keys("SELECT * FROM sessions WHERE project_id = :p ORDER BY created_at DESC, id DESC LIMIT 5") == [
        "sessions(project_id, created_at, id)"
    ]
    assert keys("SELECT * FROM sessions WHERE project_id = :p ORDER BY created_at DESC, title LIMIT 5") == [
        "sessions(project_id, created_at, title DESC)"
    ]


def test_joins_primary_keys_and_ctes():
    found = keys(queries.source("project_sessions_joined"))
    assert "messages(session_id)" in found and "session_windows(session_id)" in found
    assert keys("SELECT * FROM sessions WHERE id = :id") == []


def test_existing_prefix_index_is_reported_redundant():
    existing = {
        "ix_a": IndexSpec("messages", ("session_id",)),
        "ix_b": IndexSpec("messages", ("session_id", "timestamp")),
        "ix_c": IndexSpec("jobs", ("status",)),
    }
    assert cand.redundant(existing) == {"ix_a": "messages(session_id, timestamp)"}
    assert cand.redundant({"ix_c": existing["ix_c"]}, [IndexSpec("jobs", ("status", "created_at"))]) == {
        "ix_c": "jobs(status, created_at)"
    }
    assert cand.parse_existing("t", "a, b DESC") == IndexSpec("t", ("a", "b"), (False, True))
    assert cand.parse_existing("t", "[a, b]") == IndexSpec("t", ("a", "b"))
    # Read from the CREATE INDEX itself where there is one: INCLUDE and DESC kept, expressions left out.
    pg = "CREATE INDEX ix ON public.jobs USING btree (status, created_at DESC) INCLUDE (session_id, type)"
    assert cand.parse_existing("jobs", "status, created_at DESC", pg) == IndexSpec(
        "jobs", ("status", "created_at"), (False, True), ("session_id", "type")
    )
    lite = 'CREATE INDEX "ix" ON "jobs" ("status", "created_at" DESC)'
    assert cand.parse_existing("jobs", "status, created_at", lite, "sqlite").descending == (False, True)
    assert cand.parse_existing("jobs", "x", "CREATE INDEX ix ON jobs((lower(status)));", "duckdb") is None
    assert cand.parse_existing("jobs", "lower(status)") is None


def test_bad_queries_name_the_query_and_the_value():
    with pytest.raises(CandidateError, match="Query 'broken' does not parse"):
        analyze("SELECT FROM WHERE (", "broken")
    with pytest.raises(CandidateError, match="names table 'nope'"):
        analyze("SELECT * FROM nope WHERE a = 1", "q1")
    with pytest.raises(CandidateError, match="column 'colour', which table 'sessions' does not have"):
        analyze("SELECT * FROM sessions WHERE colour = :c", "q2")
    with pytest.raises(Exception, match="Invalid identifier"):
        IndexSpec("sessions", ("id; DROP TABLE x",))


def test_covering_variant_includes_the_other_selected_columns_beside_the_plain_key():
    sql = queries.source("jobs_queue")  # SELECT id, session_id, type, status, attempts, created_at
    plain, wide = (c.spec for c in derive(analyze(sql, "jobs_queue"), covering=True))
    assert plain.label == "jobs(status, created_at, id)"
    assert wide.label == "jobs(status, created_at, id) INCLUDE (session_id, type, attempts)"
    assert wide.name == "ix_jobs_status_created_at_id_covering" != plain.name  # both can exist
    assert wide.covers(plain) and not plain.covers(wide)
    assert keys(sql) == [plain.label]  # without covering, the plain key alone
    # Too many other columns (a message's content and tokens): no covering variant.
    wide_rows = queries.source("session_messages")
    assert [c.spec.include for c in derive(analyze(wide_rows, "q"), covering=True)] == [()]


def test_selection_keeps_a_covering_variant_apart_from_its_plain_key():
    from workbench.indexes.evaluate import Advice
    from workbench.indexes.select import _covers

    w = wl.Workload([wl.WorkloadQuery("q", queries.source("jobs_queue"))])
    advice = Advice(w, {}, {"q": analyze(w.queries[0].sql, "q")}, {}, [])
    plain = IndexSpec("jobs", ("status", "created_at", "id"))
    wide = IndexSpec("jobs", ("status", "created_at", "id"), include=("session_id", "type", "attempts"))
    assert _covers(wide, plain, advice) and not _covers(plain, wide, advice)


def test_index_sql_per_dialect():
    spec = IndexSpec("sessions", ("project_id", "created_at"), (False, True), ("title",))
    assert spec.sql("postgres", concurrently=True) == (
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "ix_sessions_project_id_created_at_desc_covering" '
        'ON "sessions" ("project_id", "created_at" DESC) INCLUDE ("title")'
    )
    assert spec.sql("duckdb") == (
        'CREATE INDEX IF NOT EXISTS "ix_sessions_project_id_created_at_desc_covering" ON "sessions" ("project_id", "created_at")'  # noqa: E501
    )


# ---- workload --------------------------------------------------------------------------------
def test_fingerprints_match_named_and_logged_forms():
    assert wl.fingerprint("SELECT * FROM jobs WHERE status = :s LIMIT :n") == wl.fingerprint(
        "select * from jobs where status = $1 limit 20"
    )
    assert wl.fingerprint("SELECT * FROM m WHERE a IN :ids") == wl.fingerprint(
        "SELECT * FROM m WHERE a IN ($1, $2, $3)"
    )


def test_pg_stat_statements_export_sets_frequencies(tmp_path):
    q = " ".join(queries.source("session_messages").split("\n", 2)[2].split()).replace(":session_id", "$1")
    f = tmp_path / "pgss.csv"
    f.write_text(
        "userid,query,calls,total_exec_time\n"
        f'10,"{q}",900,45.0\n'
        "10,\"SELECT count(*) FROM jobs WHERE status = 'failed'\",30,3.0\n"
        '10,"SELECT * FROM sessions WHERE external_id = $1",12,1.0\n'
        "10,broken,notanumber,1\n"
    )
    w = wl.from_file(f)
    assert w.get("session_messages").frequency == 900.0
    assert w.get("session_messages").mean_ms == pytest.approx(0.05)
    adhoc = [x for x in w.queries if x.name.startswith("stmt_")]
    assert len(adhoc) == 1 and adhoc[0].frequency == 30.0
    assert any("pgss.csv:4" in e and "unbound parameter" in e for e in w.errors)
    assert any("pgss.csv:5" in e and "malformed" in e for e in w.errors)


def test_jsonlog_and_csvlog_grouped_by_fingerprint(tmp_path):
    j = tmp_path / "pg.json"
    lines = [
        {
            "timestamp": "2026-11-01",
            "message": "duration: 0.500 ms  statement: SELECT * FROM jobs WHERE status = 'pending' ORDER BY created_at, id LIMIT 20",  # noqa: E501
        },
        {
            "timestamp": "2026-11-01",
            "message": "duration: 0.300 ms  statement: SELECT * FROM jobs WHERE status = 'failed' ORDER BY created_at, id LIMIT 20",  # noqa: E501
        },
        {"timestamp": "2026-11-01", "message": "connection received: host=127.0.0.1"},
    ]
    j.write_text("\n".join(json.dumps(x) for x in lines) + "\n{not json\n")
    w = wl.from_file(j)
    (q,) = w.queries
    assert q.frequency == 2 and q.mean_ms == pytest.approx(0.4)
    assert any("pg.json:4" in e for e in w.errors)
    c = tmp_path / "pg.csv"
    row = [
        "2026-11-01 00:00:00 UTC",
        "u",
        "db",
        "1",
        "h",
        "s",
        "1",
        "SELECT",
        "t",
        "1/1",
        "0",
        "LOG",
        "00000",
        "duration: 1.0 ms  statement: SELECT * FROM sessions WHERE project_id = 3",
    ]
    c.write_text(",".join(f'"{x}"' for x in row) + "\n" + '"too","short"\n')
    w = wl.from_file(c)
    assert w.queries[0].frequency == 1 and any("pg.csv:2" in e and "malformed csvlog" in e for e in w.errors)


def test_unknown_workload_format_is_refused(tmp_path):
    f = tmp_path / "w.txt"
    f.write_text("hello\n")
    with pytest.raises(wl.WorkloadError, match="Unknown workload file format"):
        wl.from_file(f)


def test_unbound_parameter_names_the_query():
    q = wl.WorkloadQuery("odd", "SELECT * FROM jobs WHERE status = :colour")
    with pytest.raises(wl.WorkloadError, match="Query 'odd' has parameter :colour"):
        wl.bind(q, {"status": "x"})


# ---- selection -------------------------------------------------------------------------------
def test_greedy_selection_counts_only_real_gains_within_budgets():
    from workbench.indexes.evaluate import Advice
    from workbench.indexes.select import Budgets, choose

    w = wl.Workload(
        [
            wl.WorkloadQuery("a", "SELECT * FROM messages WHERE session_id = :s", 10.0),
            wl.WorkloadQuery("b", "SELECT * FROM jobs WHERE status = :s ORDER BY created_at LIMIT 5", 1.0),
        ]
    )
    specs = [
        IndexSpec("messages", ("session_id",)),
        IndexSpec("messages", ("session_id", "timestamp")),
        IndexSpec("jobs", ("status", "created_at")),
    ]
    advice = Advice(
        w,
        {},
        {q.name: analyze(q.sql, q.name) for q in w.queries},
        {s: [cand.Candidate(s, "a", "")] for s in specs},
        [],
    )
    per_query = pl.DataFrame(
        [
            {
                "engine": "e",
                "index": specs[0].label,
                "query": "a",
                "before_ms": 10.0,
                "after_ms": 1.0,
                "speedup": 10.0,
                "lo": 9.0,
                "hi": 11.0,
                "plan_change": "x -> y",
            },
            {
                "engine": "e",
                "index": specs[1].label,
                "query": "a",
                "before_ms": 10.0,
                "after_ms": 0.9,
                "speedup": 11.0,
                "lo": 9.0,
                "hi": 12.0,
                "plan_change": "x -> y",
            },
            {
                "engine": "e",
                "index": specs[2].label,
                "query": "b",
                "before_ms": 5.0,
                "after_ms": 1.0,
                "speedup": 5.0,
                "lo": 0.8,
                "hi": 9.0,
                "plan_change": "x -> y",
            },
        ]
    )
    per_index = pl.DataFrame(
        [
            {
                "engine": "e",
                "index": s.label,
                "name": s.name,
                "table": s.table,
                "build_ms": 1.0,
                "size_bytes": 100,
                "write_cost": w_,
            }
            for s, w_ in zip(specs, (1.1, 1.2, 1.0), strict=True)
        ]
    )
    baseline = pl.DataFrame(
        [{"engine": "e", "query": "a", "before_ms": 10.0}, {"engine": "e", "query": "b", "before_ms": 5.0}]
    )
    out = choose(advice, per_query, per_index, baseline, Budgets(max_write_cost=1.5))
    d = dict(zip(out["index"], out["decision"], strict=True))
    # The two messages keys tie within their intervals: the simpler one is kept.
    assert d[specs[0].label] == "recommend"
    assert d[specs[1].label] == "redundant given messages(session_id)"
    assert d[specs[2].label].startswith("no measurable gain")  # its interval includes 1
    tight = choose(advice, per_query, per_index, baseline, Budgets(max_write_cost=1.05))
    d = dict(zip(tight["index"], tight["decision"], strict=True))
    assert d[specs[0].label].startswith("over the write budget (messages inserts 1.10x")
    assert d[specs[1].label].startswith("over the write budget")


def _choose(sql, measured, budgets=None, existing=None):
    """``select.choose`` on one query and its candidates: ``measured`` maps an index label to
    (speedup, lo, hi, write_cost, write_lo, write_hi); the query takes 10 ms without an index."""
    from workbench.indexes.evaluate import Advice
    from workbench.indexes.select import Budgets, choose

    w = wl.Workload([wl.WorkloadQuery("q", sql)])
    an = analyze(sql, "q")
    specs = {s.label: s for c in derive(an) for s in [c.spec]}
    specs.update({label: _spec(label) for label in measured if label not in specs})
    advice = Advice(w, {}, {"q": an}, {specs[k]: [cand.Candidate(specs[k], "q", "")] for k in measured}, [])
    per_query = pl.DataFrame(
        [
            {"engine": "e", "index": k, "query": "q", "before_ms": 10.0, "after_ms": 10.0 / m[0],
             "speedup": m[0], "lo": m[1], "hi": m[2], "plan_change": "Seq Scan -> Index Scan"}
            for k, m in measured.items()
        ]
    )  # fmt: skip
    per_index = pl.DataFrame(
        [
            {"engine": "e", "index": k, "name": specs[k].name, "table": specs[k].table, "build_ms": 1.0,
             "size_bytes": 100, "write_cost": m[3], "write_lo": m[4], "write_hi": m[5]}
            for k, m in measured.items()
        ]
    )  # fmt: skip
    baseline = pl.DataFrame([{"engine": "e", "query": "q", "before_ms": 10.0}])
    out = choose(advice, per_query, per_index, baseline, budgets or Budgets(), existing=existing)
    return {r["index"]: r for r in out.iter_rows(named=True)}


def _spec(label: str) -> IndexSpec:
    table, cols = label.rstrip(")").split("(")
    parts = [c.split() for c in cols.split(", ")]
    return IndexSpec(table, tuple(p[0] for p in parts), tuple(len(p) > 1 for p in parts))


def test_a_table_joined_on_its_primary_key_keeps_its_other_filter_as_a_candidate():
    sql = (
        "SELECT m.id FROM messages m JOIN sessions s ON s.id = m.session_id WHERE s.project_id = :project_id"
    )
    assert keys(sql) == ["messages(session_id)", "sessions(project_id)"]


def test_write_budget_rejects_only_when_the_interval_clears_it():
    sql = "SELECT * FROM messages WHERE session_id = :session_id"
    noisy = _choose(sql, {"messages(session_id)": (5.0, 4.5, 5.5, 1.61, 1.2, 2.1)})
    assert noisy["messages(session_id)"]["decision"] == "recommend"  # 1.61x, but it may be 1.2x
    clear = _choose(sql, {"messages(session_id)": (5.0, 4.5, 5.5, 1.61, 1.55, 1.7)})
    assert clear["messages(session_id)"]["decision"] == (
        "over the write budget (messages inserts 1.61x, at least 1.55x, > 1.50x)"
    )


def test_a_write_cost_below_one_is_no_measurable_cost_never_a_speedup():
    from workbench.indexes.evaluate import write_text

    assert write_text(0.62, 0.41, 1.08) == "no measurable write cost (0.41-1.08x)"
    assert write_text(0.8, 0.7, 0.9) == "no measurable write cost (0.70-0.90x)"
    assert write_text(1.31, 1.12, 1.5) == "1.31x (1.12-1.50)"


def test_a_candidate_adding_nothing_is_redundant_given_the_chosen_one_with_both_gains():
    sql = "SELECT * FROM messages WHERE session_id = :session_id ORDER BY timestamp"
    got = _choose(
        sql,
        {
            "messages(session_id)": (3.5, 3.3, 3.7, 1.1, 1.0, 1.2),
            "messages(session_id, timestamp)": (3.6, 3.2, 3.9, 1.2, 1.1, 1.3),
        },
    )
    wide = got["messages(session_id, timestamp)"]
    assert wide["decision"] == "redundant given messages(session_id)"  # not "no measurable gain"
    assert wide["standalone_share"] == pytest.approx(1 - 1 / 3.6) and wide["saved_share"] == 0
    assert "3.6x [3.2, 3.9]" in wide["queries_helped"]


def test_no_desc_key_is_recommended_where_desc_does_not_matter():
    sql = "SELECT * FROM jobs WHERE status = :status ORDER BY created_at DESC LIMIT 5"
    got = _choose(sql, {"jobs(status, created_at DESC)": (4.0, 3.5, 4.5, 1.1, 1.0, 1.2)})
    row = got["jobs(status, created_at DESC)"]
    assert row["desc"].startswith("DESC does not matter")
    assert row["decision"] == "not recommended as written: DESC does not matter here"
    both = _choose(
        sql,
        {
            "jobs(status, created_at DESC)": (4.0, 3.5, 4.5, 1.1, 1.0, 1.2),
            "jobs(status, created_at)": (4.0, 3.5, 4.5, 1.1, 1.0, 1.2),
        },
    )
    assert [k for k, r in both.items() if r["decision"] == "recommend"] == ["jobs(status, created_at)"]


def test_nothing_recommended_says_nothing_changes():
    nothing = pl.DataFrame(
        {"index": ["t(a)"], "decision": ["no measurable gain (plan unchanged or interval includes 1)"]}
    )
    rep = _report("postgres", [10.0, 5.0], [13.3, 7.0], nothing)
    assert rep.target_verdict() == "missed: nothing recommended"
    sentence = rep.verdict_sentence()
    assert "nothing changes" in sentence and "15.00 ms" in sentence
    assert "higher" not in sentence and "sped up" not in sentence


def test_ties_within_the_interval_go_to_the_simpler_key_whatever_the_order():
    sql = "SELECT * FROM session_windows WHERE session_id = :session_id ORDER BY start_time, id"
    measured = {
        "session_windows(session_id, start_time, id)": (6.0, 4.8, 7.0, 1.3, 1.1, 1.4),
        "session_windows(session_id)": (5.5, 4.5, 6.5, 1.2, 1.1, 1.3),
    }
    for order in (measured, dict(reversed(measured.items()))):
        got = _choose(sql, order)
        assert got["session_windows(session_id)"]["decision"] == "recommend"
        assert got["session_windows(session_id, start_time, id)"]["decision"] == (
            "redundant given session_windows(session_id)"
        )
    # ... but a longer key whose interval clears the shorter one's is kept.
    clear = _choose(
        sql, {**measured, "session_windows(session_id, start_time, id)": (12.0, 10.0, 14.0, 1.3, 1.1, 1.4)}
    )
    assert clear["session_windows(session_id, start_time, id)"]["decision"] == "recommend"


def test_a_candidate_an_existing_index_serves_is_reported_not_recommended():
    sql = "SELECT * FROM messages WHERE session_id = :session_id"
    existing = {"ix_team": IndexSpec("messages", ("session_id", "timestamp"))}
    got = _choose(sql, {"messages(session_id)": (5.0, 4.5, 5.5, 1.1, 1.0, 1.2)}, existing=existing)
    assert got["messages(session_id)"]["decision"] == (
        "already served by ix_team (messages(session_id, timestamp)), an existing index"
    )


def test_a_recommendation_must_save_a_minimum_share_of_the_workload():
    from workbench.indexes.select import Budgets

    sql = "SELECT * FROM messages WHERE session_id = :session_id"
    small = {"messages(session_id)": (1.005, 1.001, 1.01, 1.1, 1.0, 1.2)}
    assert _choose(sql, small)["messages(session_id)"]["decision"].startswith(
        "saves under 1% of the workload"
    )
    assert _choose(sql, small, Budgets(min_saving=0))["messages(session_id)"]["decision"] == "recommend"
    # 2% on its estimate, but perhaps 0.5%: not clearly above the threshold, so not decided by noise.
    near = _choose(sql, {"messages(session_id)": (1.02, 1.005, 1.04, 1.1, 1.0, 1.2)})["messages(session_id)"]
    assert near["decision"] == (
        "saves under 1% of the workload at the low end of its interval (0.50%-3.85% beside the chosen set)"
    )


# ---- migration files -------------------------------------------------------------------------
def test_covering_migration_has_include_on_postgres_only(tmp_path):
    spec = IndexSpec("jobs", ("status", "created_at", "id"), include=("session_id", "type"))
    mig.write(tmp_path, [mig.Change(spec, "helps jobs_queue 1.4x [1.2, 1.6]")], ["postgres", "sqlite"])
    name = "000001_create_ix_jobs_status_created_at_id_covering"
    pg = (tmp_path / "migrations" / "postgres" / f"{name}.up.sql").read_text()
    assert pg.rstrip().endswith(
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "ix_jobs_status_created_at_id_covering" '
        'ON "jobs" ("status", "created_at", "id") INCLUDE ("session_id", "type");'
    )
    assert "-- create jobs(status, created_at, id) INCLUDE (session_id, type) (postgres)" in pg
    sqlite = (tmp_path / "migrations" / "sqlite" / f"{name}.up.sql").read_text()
    assert "INCLUDE (" not in sqlite.replace("-- create jobs(status, created_at, id) INCLUDE", "")
    down = (tmp_path / "migrations" / "postgres" / f"{name}.down.sql").read_text()
    assert down.rstrip().endswith(
        'DROP INDEX CONCURRENTLY IF EXISTS "ix_jobs_status_created_at_id_covering";'
    )


def test_migration_files_one_statement_each_with_evidence(tmp_path):
    changes = [
        mig.Change(IndexSpec("jobs", ("status", "created_at")), "helps jobs_queue 3.0x [2.5, 3.4]"),
        mig.Change(IndexSpec("messages", ("session_id",)), "redundant", drop=True, name="old_ix"),
    ]
    written = mig.write(tmp_path, changes)
    pg = sorted(p.name for p in (tmp_path / "migrations" / "postgres").iterdir())
    assert pg == [
        "000001_create_ix_jobs_status_created_at.down.sql",
        "000001_create_ix_jobs_status_created_at.up.sql",
        "000002_drop_old_ix.down.sql",
        "000002_drop_old_ix.up.sql",
    ]
    assert len(written) == 12
    up = (tmp_path / "migrations" / "postgres" / pg[1]).read_text()
    assert up.startswith(
        mig.MARKER + "\n-- create jobs(status, created_at) (postgres)\n-- helps jobs_queue 3.0x [2.5, 3.4]\n"
    )
    assert up.rstrip().endswith(
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "ix_jobs_status_created_at" ON "jobs" ("status", "created_at");'  # noqa: E501
    )
    assert up.count(";") == 1
    drop_up = (tmp_path / "migrations" / "postgres" / pg[3]).read_text()
    assert 'DROP INDEX CONCURRENTLY IF EXISTS "old_ix";' in drop_up
    lite = (tmp_path / "migrations" / "sqlite" / "000002_drop_old_ix.down.sql").read_text()
    assert 'CREATE INDEX IF NOT EXISTS "old_ix" ON "messages" ("session_id");' in lite


def _team_folder(tmp_path):
    folder = tmp_path / "db" / "migrations"
    folder.mkdir(parents=True)
    (folder / "000001_init.up.sql").write_text("CREATE INDEX ix_team ON jobs (status);\n")
    (folder / "000001_init.down.sql").write_text("DROP INDEX ix_team;\n")
    (folder / "README.md").write_text("our migrations\n")
    return folder


JOBS = mig.Change(IndexSpec("jobs", ("status", "created_at")), "helps jobs_queue")
MSGS = mig.Change(IndexSpec("messages", ("session_id",)), "helps session_messages")


def test_a_teams_migrations_survive_and_numbering_continues_after_them(tmp_path):
    folder = _team_folder(tmp_path)
    written = mig.write_folder(folder, [JOBS, MSGS], "postgres")
    assert [p.name for p in written] == [
        "000002_create_ix_jobs_status_created_at.up.sql",
        "000002_create_ix_jobs_status_created_at.down.sql",
        "000003_create_ix_messages_session_id.up.sql",
        "000003_create_ix_messages_session_id.down.sql",
    ]
    assert (folder / "000001_init.up.sql").read_text() == "CREATE INDEX ix_team ON jobs (status);\n"
    # A second run rewrites only its own files.
    again = mig.write_folder(folder, [MSGS], "postgres")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["000001_init.up.sql", "000001_init.down.sql", "README.md", *(p.name for p in again)]
    )
    assert again[0].name == "000002_create_ix_messages_session_id.up.sql"
    assert [p.name for p in mig.files(folder, "up")] == ["000001_init.up.sql", again[0].name]


def test_a_clash_with_a_file_the_workbench_did_not_write_is_an_error_naming_it(tmp_path):
    folder = _team_folder(tmp_path)
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(mig.MigrationError, match="000001_init.up.sql, a file the workbench did not write"):
        mig.write_folder(folder, [JOBS], "postgres", start_version=1)
    (folder / "000007_later.up.sql").write_text("SELECT 1;\n")
    with pytest.raises(
        mig.MigrationError, match="comes before .*000007_later.up.sql: migrate up would never"
    ):
        mig.write_folder(folder, [JOBS], "postgres", start_version=5)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*before, "000007_later.up.sql"])
    assert mig.write_folder(folder, [JOBS], "postgres", start_version=100)[0].name.startswith("000100_")


def test_timestamp_versions_as_migrate_create_makes_them(tmp_path):
    from datetime import UTC, datetime

    now = datetime(2026, 12, 6, 9, 30, 59, tzinfo=UTC)
    folder = _team_folder(tmp_path)
    ups = [p.name for p in mig.write_folder(folder, [JOBS, MSGS], "sqlite", versions="timestamp", now=now)]
    assert ups[0] == "20261206093059_create_ix_jobs_status_created_at.up.sql"
    assert ups[2] == "20261206093100_create_ix_messages_session_id.up.sql"
    unix = mig.write_folder(tmp_path / "u", [JOBS], "sqlite", versions="unix", now=now)
    assert unix[0].name == f"{int(now.timestamp())}_create_ix_jobs_status_created_at.up.sql"


def test_exported_is_03s_folder_even_when_it_recommended_nothing(tmp_path):
    from workbench.errors import WorkbenchError

    with pytest.raises(WorkbenchError, match="run notebook 03_indexes first"):
        mig.exported(tmp_path)
    folder = tmp_path / "03_indexes" / "migrations" / "postgres"
    mig.write(tmp_path / "03_indexes", [], ["postgres"])
    assert mig.exported(tmp_path) == folder and mig.files(folder, "up") == []
    mig.write(tmp_path / "03_indexes", [JOBS], ["postgres"])
    assert [p.name for p in mig.files(mig.exported(tmp_path), "up")] == [
        "000001_create_ix_jobs_status_created_at.up.sql"
    ]


def test_files_follow_golang_migrates_naming_rules(tmp_path):
    for name in ("9_a.up.sql", "10_b.up.sql", "10_b.down.sql", "notes.sql", "x_y.up.sql"):
        (tmp_path / name).write_text("SELECT 1;\n")
    assert [p.name for p in mig.files(tmp_path, "up")] == ["9_a.up.sql", "10_b.up.sql"]
    (tmp_path / "0009_again.up.sql").write_text("SELECT 1;\n")
    with pytest.raises(mig.MigrationError, match="Version 9 appears twice"):
        mig.files(tmp_path, "up")


def _report(engine, before, after, selection=None, migrations=()):
    from workbench.indexes import advisor

    total = pl.DataFrame(
        {
            "query": ["a", "b"],
            "frequency": [1.0, 1.0],
            "before_ms": before,
            "after_ms": after,
            "speedup": [b / a for b, a in zip(before, after, strict=True)],
        }
    )
    if selection is None:
        selection = pl.DataFrame({"index": ["t(a)"], "decision": ["recommend"]})
    return advisor.Report(
        engine, None, None, selection, pl.DataFrame(),
        total.with_columns(lo=pl.col("speedup") * 0.9, hi=pl.col("speedup") * 1.1),
        migrations=list(migrations),
    )  # fmt: skip


def test_target_verdict_says_higher_never_negative_lower():
    worse = _report("duckdb", [10.0, 14.0], [11.0, 14.5])
    assert worse.target_verdict() == "missed: 6% higher"
    sentence = worse.verdict_sentence()
    assert (
        "from 24.00 ms to 25.50 ms per round of its queries, no measurable change (-3% to +18%), "
        "against the plan's target" in sentence
    )
    assert "most of what remains is in b (57% of it, unchanged within noise (0.87-1.06x)) and a" in sentence
    better = _report("sqlite", [10.0, 10.0], [1.0, 1.0])
    assert better.target_verdict() == "met: 90% lower"
    assert better.verdict_sentence().endswith(
        "20.00 ms to 2.00 ms per round of its queries, 90% lower (-91% to -89%): "
        "the plan's target of 50% lower is met."
    )


def test_plan_index_decisions_in_the_plans_words():
    from workbench.indexes.advisor import plan_index_verdict

    assert plan_index_verdict("recommend") == "needed"
    assert plan_index_verdict("no measurable gain (plan unchanged or interval includes 1)") == (
        "not needed: no measurable gain"
    )
    over = "over the write budget (session_windows inserts 6.01x, at least 5.50x, > 1.50x)"
    assert plan_index_verdict(over) == (
        "not needed: write cost over budget, session_windows inserts 6.01x, at least 5.50x, > 1.50x"
    )
    assert plan_index_verdict("redundant given t(a)") == "not needed: redundant given t(a)"
    covered = plan_index_verdict("covered by jobs(status, created_at, id) (a prefix of its key)")
    assert covered == "served by jobs(status, created_at, id), recommended instead"


def test_index_verdicts_one_question_each_answered_per_engine():
    from workbench import verdicts
    from workbench.indexes import advisor

    selection = pl.DataFrame(
        {
            "plan_index": [True, False],
            "index": ["jobs(status, created_at DESC)", "jobs(status, created_at, id)"],
            "decision": ["recommend", "no measurable gain (plan unchanged or interval includes 1)"],
            "queries_helped": ["jobs_queue 2.2x [1.4, 2.3]", ""],
            "write_cost": [1.3, 1.1],
            "write_lo": [1.2, 0.9],
            "write_hi": [1.4, 1.2],
            "desc": ["no DESC needed", "no DESC needed"],
        }
    )
    reports = {
        e: _report(e, [10.0, 10.0], [1.0, 1.0], selection) for e in ("sqlite", "postgres")
    }  # fmt: skip
    pages = pl.DataFrame(
        [
            {"engine": e, "pager": p, "scenario": s, "missed": m, "repeated": r}
            for e in ("sqlite", "postgres")
            for p, m, r in (("cursor", 900, 60), ("offset", 0, 40), ("keyset", 0, 0))
            for s in ("still table", "rows inserted between pages")
        ]
    )
    depth = pl.DataFrame(
        [
            {"engine": e, "pager": p, "page": page, "median_ms": ms}
            for e in ("sqlite", "postgres")
            for p, points in (
                ("cursor", [(1, 1.0)]),
                ("offset", [(1, 1.0), (1000, 25.0)]),
                ("keyset", [(1, 1.0), (1000, 1.1)]),
            )  # noqa: E501
            for page, ms in points
        ]
    )
    found = advisor.verdicts(reports, pages, depth)
    topics = [t for t, _ in verdicts.group(found)]
    assert topics == [
        "does the chosen set cut total DB time by 50%",
        "the plan's index jobs(status, created_at DESC)",
        "which pagination is correct",
        "is pagination flat with depth (keyset within 2x)",
    ]
    by = {(v.topic, v.engine): v for v in found}
    assert by[(topics[1], "sqlite")].verdict == "needed"
    correct = by[(topics[2], "postgres")]
    assert correct.verdict == "only keyset is correct"
    assert "the plan's cursor missed 1,800 and repeated 120 rows; OFFSET missed 0 and repeated 80 rows" in (
        correct.detail
    )
    flat = by[(topics[3], "sqlite")]
    assert flat.verdict == "keyset flat: 1.1x at page 1,000"
    assert "the plan's cursor 1.0x at page 1, where its walk ends; OFFSET 25.0x at page 1,000" in flat.detail
    page = verdicts.to_html(found)
    assert page.count("<tr>") == 1 + len(topics)  # one row per question
    assert "sqlite, postgres:</span> <b>only keyset is correct</b>" in page


def test_migrations_shown_inline_and_linked_relative_to_the_pages(tmp_path):
    from workbench.indexes import advisor

    pages = tmp_path / "reports"
    written = mig.write(
        pages / "03_indexes", [mig.Change(IndexSpec("jobs", ("status", "created_at")), "helps jobs_queue")]
    )
    reports = {
        "postgres": _report(
            "postgres", [1.0, 1.0], [0.5, 0.5], migrations=[p for p in written if "postgres" in str(p)]
        ),  # noqa: E501
        "duckdb": _report("duckdb", [1.0, 1.0], [1.0, 1.0]),
    }
    page = advisor.migrations_html(reports, pages)
    assert (
        ">CREATE INDEX CONCURRENTLY IF NOT EXISTS &quot;ix_jobs_status_created_at&quot; "
        "ON &quot;jobs&quot;" in page
    )
    assert ";;" not in page and ("(&quot;status&quot;, &quot;created_at&quot;);</code>" in page)
    assert "href='03_indexes/migrations/postgres/000001_create_ix_jobs_status_created_at.up.sql'" in page
    assert "href='03_indexes/migrations/postgres/000001_create_ix_jobs_status_created_at.down.sql'" in page
    assert str(tmp_path) not in page  # relative links: they open offline wherever reports/ is copied
    assert "<h4>duckdb</h4><p>No index earned its keep here: no migration.</p>" in page


def test_evaluation_table_for_people():
    selection = pl.DataFrame(
        {
            "engine": ["sqlite"],
            "rank": [1],
            "index": ["jobs(status, created_at DESC)"],
            "name": ["ix"],
            "table": ["jobs"],
            "decision": ["covered by jobs(status, created_at, id) (a prefix of its key)"],
            "saved_ms": [1.0],
            "saved_share": [0.5035],
            "standalone_share": [0.6],
            "queries_helped": [""],
            "write_cost": [1.3333],
            "write_lo": [1.2],
            "write_hi": [1.5],
            "size_bytes": [65536],
            "build_ms": [2.34],
            "desc": ["no DESC needed"],
            "plan_index": [True],
        }
    )
    page = advisor_tables(selection)
    assert "saved (%)" in page and "saved alone (%)" in page and "size (kB)" in page
    assert "1.33x (1.20-1.50)" in page
    assert "plan: jobs(status, created_at DESC)" in page and ">50.3<" in page and ">64<" in page
    assert "none measurably" in page and "no DESC needed" not in page and "saved_ms" not in page
    assert ">covered by jobs(status, created_at, id)<" in page


def advisor_tables(selection):
    from workbench.indexes import advisor

    return advisor.evaluation_table(
        {"sqlite": _report("sqlite", [1.0, 1.0], [1.0, 1.0], selection)}
    )._repr_html_()


# ---- figures ---------------------------------------------------------------------------------
def test_figures_draw_each_interval_around_its_estimate():
    from workbench.indexes import figures as ifig

    per_query = pl.DataFrame(
        {"engine": ["sqlite"], "index": ["ix"], "query": ["q"], "speedup": [4.0], "lo": [3.0], "hi": [6.0]}
    )
    bar = ifig.speedups(per_query).data[0]
    assert (list(bar.error_x.array), list(bar.error_x.arrayminus)) == ([2.0], [1.0])
    per_index = pl.DataFrame(
        {"engine": ["sqlite"], "index": ["ix"], "write_cost": [1.5], "write_lo": [1.25], "write_hi": [2.0]}
    )
    bar = ifig.write_costs(per_index).data[0]
    assert (list(bar.error_y.array), list(bar.error_y.arrayminus)) == ([0.5], [0.25])
    pages = pl.DataFrame(
        {
            "engine": ["sqlite"] * 2,
            "pager": ["keyset"] * 2,
            "page": [1000, 1],
            "median_ms": [2.0, 1.0],
            "lo_ms": [1.5, 0.5],
            "hi_ms": [3.0, 1.5],
        }
    )
    line = ifig.depth(pages).data[0]
    assert list(line.x) == [1, 1000] and list(line.error_y.array) == [0.5, 1.0]

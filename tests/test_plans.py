"""Plans from real engines parsed into one model; each finding on a plan built to trigger it."""

from __future__ import annotations

import pytest

from workbench import figures, plans, queries
from workbench.engines import open_engine
from workbench.plans import Node, Plan

# At most 30,000 rows, PostgreSQL's ANALYZE reads the whole table: estimates are exact,
# so the planted misestimate (correlated columns) is the same on every run.
BIG_ROWS = 30_000


@pytest.fixture
def pg(postgres_url, tiny):
    with open_engine("postgres", postgres_url) as engine:
        engine.load(tiny)
        engine.execute(
            f"CREATE TABLE big AS SELECT g AS id, mod(g, 1000) AS k, g AS a, g AS b "
            f"FROM generate_series(1, {BIG_ROWS}) g"
        )
        engine.execute("ANALYZE big")
        yield engine


@pytest.fixture
def duck(tmp_path, tiny):
    with open_engine("duckdb", str(tmp_path / "p.duckdb")) as engine:
        engine.load(tiny)
        yield engine


def findings_of(plan: Plan) -> dict[str, list[plans.Finding]]:
    out: dict[str, list[plans.Finding]] = {}
    for f in plans.findings(plan):
        out.setdefault(f.kind, []).append(f)
    return out


def assert_times_are_inclusive(plan: Plan) -> None:
    for node in plan.nodes():
        assert node.time_ms is not None
        assert (
            node.time_ms + 1e-6 >= sum(c.time_ms for c in node.children) * 0.999 or node.operator == "Memoize"
        )
    frame = plan.frame()
    assert frame["exclusive_ms"].sum() == pytest.approx(plan.total_ms, rel=0.05)


def test_duckdb_plan_parses_into_the_model(duck):
    sql = queries.load("project_sessions_joined", "duckdb")
    plan = plans.explain(duck, sql, {"project_id": 1, "limit": 5})
    assert plan.engine == "duckdb" and plan.execution_ms > 0
    assert plan.root.operator not in ("RESULT_COLLECTOR", "EXPLAIN_ANALYZE")  # wrappers stripped
    relations = {n.relation for n in plan.nodes()}
    assert {"messages", "session_windows", "sessions"} <= relations
    scan = next(n for n in plan.nodes() if n.relation == "messages")
    assert scan.actual_rows is not None and scan.estimated_rows is not None and scan.loops == 1
    assert (
        plan.root.actual_rows
        == duck.execute(f"SELECT count(*) FROM ({sql})", {"project_id": 1, "limit": 5})[0][0]
    )
    assert_times_are_inclusive(plan)


def test_postgres_plan_parses_into_the_model(pg):
    sql = queries.load("project_sessions_joined", "postgres")
    plan = plans.explain(pg, sql, {"project_id": 1, "limit": 5})
    assert plan.engine == "postgres" and plan.execution_ms > 0 and plan.planning_ms is not None
    scan = next(n for n in plan.nodes() if n.relation == "messages")
    assert scan.operator == "Seq Scan" and scan.actual_rows == 3000 and scan.loops == 1
    assert "Shared Hit Blocks" in scan.details  # BUFFERS made it through
    assert_times_are_inclusive(plan)
    text = plan.text(actuals=False)
    assert "Seq Scan on messages" in text and "ms" not in text


def test_sqlite_plan_maps_to_the_model_without_actuals(tmp_path, tiny):
    with open_engine("sqlite", str(tmp_path / "p.sqlite")) as engine:
        engine.load(tiny)
        engine.create_index("ix_messages_session", "messages", ["session_id"])
        plan = plans.explain(engine, queries.load("session_messages", "sqlite"), {"session_id": 1})
        joined = plans.explain(
            engine, queries.load("project_sessions_joined", "sqlite"), {"project_id": 1, "limit": 5}
        )
    assert plan.engine == "sqlite" and plan.execution_ms is None and plan.total_ms is None
    assert any(n.operator == "SEARCH USING INDEX" and n.relation == "messages" for n in plan.nodes())
    assert all(n.actual_rows is None and n.time_ms is None for n in joined.nodes())
    assert any(
        n.operator.startswith("CO-ROUTINE") or n.operator.startswith("MATERIALIZE") for n in joined.nodes()
    )
    assert plans.findings(joined) == []  # nothing to judge without actuals
    assert figures.plan_time_figure({"sqlite": joined}).data == ()


def test_seq_scan_under_a_selective_filter(pg, duck):
    duck.con.execute(f"CREATE TABLE big AS SELECT g AS id, g % 1000 AS k FROM range(1, {BIG_ROWS + 1}) t(g)")
    for engine in (pg, duck):
        found = findings_of(plans.explain(engine, "SELECT * FROM big WHERE k = 7"))
        (scan,) = found["seq_scan_selective"]
        assert scan.value == BIG_ROWS and "under (k = 7)" in scan.message
        (removed,) = found["filter_removes_rows"]
        assert removed.value == pytest.approx(1 - 30 / BIG_ROWS)
    # Not selective: most rows kept, so no finding.
    assert "seq_scan_selective" not in findings_of(plans.explain(pg, "SELECT * FROM big WHERE k > 7"))


def test_row_misestimate(pg):
    # a and b are the same column: the planner multiplies their selectivities (1/30 each).
    found = findings_of(plans.explain(pg, "SELECT * FROM big WHERE a <= 1000 AND b <= 1000"))
    (miss,) = found["misestimate"]
    assert miss.value == pytest.approx(30, rel=0.1) and "underestimated" in miss.message


def test_nested_loop_with_many_loops(pg):
    pg.execute("SET enable_hashjoin = off")
    pg.execute("SET enable_mergejoin = off")
    plan = plans.explain(pg, "SELECT count(*) FROM messages m JOIN sessions s ON s.id = m.session_id")
    (loop,) = findings_of(plan)["nested_loop_many"]
    assert loop.value == 3000 and loop.operator == "Nested Loop"


def test_sort_and_hash_spilling_to_disk(pg):
    pg.execute("SET work_mem = '64kB'")
    (sort,) = findings_of(plans.explain(pg, "SELECT * FROM big ORDER BY b DESC, id"))["spill"]
    assert sort.operator == "Sort" and "external" in sort.message
    (hashed,) = findings_of(plans.explain(pg, "SELECT count(*) FROM big x JOIN big y ON x.id = y.b"))["spill"]
    assert hashed.operator == "Hash" and "batches" in hashed.message


def test_exclusive_time_share_on_a_built_plan():
    leaf = Node("Seq Scan", 100, 100, time_ms=6.0, loops=1, details={"relation": "t"})
    other = Node("Index Scan", 10, 10, time_ms=1.0, loops=1)
    root = Node("Hash Join", 10, 10, time_ms=10.0, loops=1, children=[leaf, other])
    plan = Plan("postgres", root, execution_ms=10.0)
    frame = plan.frame()
    assert frame["exclusive_ms"].to_list() == [3.0, 6.0, 1.0]
    assert frame["exclusive_share"].to_list() == [0.3, 0.6, 0.1]
    shares = {f.operator: f.value for f in plans.findings(plan) if f.kind == "time_share"}
    assert shares == {"Hash Join": 0.3, "Seq Scan on t": 0.6}
    fig = figures.plan_time_figure({"a": plan, "b": plan})
    assert len(fig.data) == 2 and list(fig.data[0].x) == [1.0, 6.0, 3.0]


def test_plan_diff_after_adding_an_index(pg):
    sql = "SELECT * FROM big WHERE k = 7"
    before = plans.explain(pg, sql)
    pg.execute("CREATE INDEX ix_big_k ON big (k)")  # big is the test's own table, not a workbench one
    after = plans.explain(pg, sql)
    d = plans.diff(before, after)
    changes = dict(zip(d["label"], d["change"], strict=True))
    assert changes["Seq Scan on big"] == "removed"
    assert any(label.endswith("on big") and change == "added" for label, change in changes.items())
    summary = plans.diff_summary(before, after)
    assert summary.startswith("plan changed") and "removed: Seq Scan on big" in summary
    assert "ms" not in summary  # one EXPLAIN ANALYZE run is no evidence of a speedup
    assert plans.plan_change(before, before)["summary"].startswith("plan unchanged (")
    assert "seq_scan_selective" not in findings_of(after)
    assert plans.diff(before, before)["change"].unique().to_list() == ["kept"]


def test_unknown_engine_and_bad_input_are_clear_errors():
    from workbench.errors import WorkbenchError

    with pytest.raises(WorkbenchError, match="No plan parser for engine 'mysql'"):
        plans.parse("mysql", {})
    with pytest.raises(WorkbenchError, match="has no 'Plan'"):
        plans.parse_postgres([{}])
    with pytest.raises(WorkbenchError, match="DuckDB plan has no operators"):
        plans.parse_duckdb("{}")


def test_parallel_plan_times_are_wall_times_not_summed_over_workers(pg):
    for setting in (
        "parallel_setup_cost = 0",
        "parallel_tuple_cost = 0",
        "min_parallel_table_scan_size = 0",
        "max_parallel_workers_per_gather = 2",
    ):
        pg.execute(f"SET {setting}")
    # Large enough that the workers' scan, not their start-up, is most of the Gather's time.
    pg.execute("CREATE TABLE huge AS SELECT g AS id, g % 1000 AS k FROM generate_series(1, 1000000) g")
    pg.execute("ANALYZE huge")
    plan = plans.explain(pg, "SELECT count(*) FROM huge WHERE k = 7")
    gather = next(n for n in plan.nodes() if n.operator == "Gather")
    assert gather.details["Workers Launched"] >= 1, "no worker launched: nothing parallel was tested"
    scan = next(n for n in plan.nodes() if n.relation == "huge")
    assert scan.loops == gather.details["Workers Launched"] + 1
    assert abs(scan.actual_rows - 1000) < scan.loops  # a total (PostgreSQL rounds rows per loop)
    assert_times_are_inclusive(plan)
    assert scan.time_ms <= gather.time_ms * 1.001
    assert all(share <= 1.0 for share in plan.frame()["exclusive_share"].drop_nulls())


def test_a_node_that_never_ran_is_no_misestimate():
    never = {
        "Node Type": "Index Scan",
        "Relation Name": "m",
        "Plan Rows": 5000,
        "Actual Rows": 0,
        "Actual Loops": 0,
        "Actual Total Time": 0.0,
    }
    outer = {
        "Node Type": "Seq Scan",
        "Relation Name": "s",
        "Plan Rows": 1,
        "Actual Rows": 0,
        "Actual Loops": 1,
        "Actual Total Time": 0.01,
    }
    root = {
        "Node Type": "Nested Loop",
        "Plan Rows": 5000,
        "Actual Rows": 0,
        "Actual Loops": 1,
        "Actual Total Time": 0.02,
        "Plans": [outer, never],
    }
    plan = plans.parse_postgres([{"Plan": root, "Execution Time": 0.05}])
    assert plan.nodes()[2].loops == 0 and plan.nodes()[2].actual_rows == 0
    assert [f.operator for f in plans.findings(plan) if f.kind == "misestimate"] == ["Nested Loop"]


def pg_node(node_type, plan_rows, actual_rows, loops=1, children=(), **extra):
    return {
        "Node Type": node_type,
        "Plan Rows": plan_rows,
        "Actual Rows": actual_rows,
        "Actual Loops": loops,
        "Actual Total Time": 0.01,
        "Plans": list(children),
        **extra,
    }


def misestimated(plan: Plan) -> list[str]:
    return [f.operator for f in plans.findings(plan) if f.kind == "misestimate"]


def test_no_misestimate_under_a_limit_that_stopped_early():
    scan = pg_node("Seq Scan", 10_000, 100, **{"Relation Name": "sessions"})
    limited = pg_node("Limit", 100, 100, children=[scan])
    assert misestimated(plans.parse_postgres([{"Plan": limited}])) == []
    # The same scan with no Limit above it is flagged, and so is an underestimate under one.
    assert misestimated(plans.parse_postgres([{"Plan": scan}])) == ["Seq Scan on sessions"]
    under = pg_node("Seq Scan", 10, 5_000, **{"Relation Name": "sessions"})
    assert misestimated(plans.parse_postgres([{"Plan": pg_node("Limit", 100, 100, children=[under])}])) == [
        "Seq Scan on sessions"
    ]


def duck_plan(*, dynamic: bool, parent: str = "HASH_JOIN") -> dict:
    extra = {"Table": "q.main.messages", "Type": "Sequential Scan", "Estimated Cardinality": "75000"}
    if dynamic:
        extra["Dynamic Filters"] = "optional: session_id IN PRF(id)"
    scan = {
        "name": "SEQ_SCAN",
        "operator_cardinality": 4_000,
        "operator_timing": 0.001,
        "extra_info": extra,
        "children": [],
    }
    top = {
        "name": parent,
        "operator_cardinality": 4_000,
        "operator_timing": 0.001,
        "extra_info": {"Estimated Cardinality": "4000"},
        "children": [scan],
    }
    return {"operator": [top], "query": {"total_time": 0.002}}


def test_duckdb_scan_cut_by_a_runtime_join_filter_is_no_misestimate():
    assert misestimated(plans.parse_duckdb(duck_plan(dynamic=True))) == []
    assert misestimated(plans.parse_duckdb(duck_plan(dynamic=False))) == ["SEQ_SCAN on messages"]
    # Under DuckDB's TOP_N the input may stop early too.
    assert misestimated(plans.parse_duckdb(duck_plan(dynamic=False, parent="TOP_N"))) == []


def test_real_duckdb_join_plan_has_no_runtime_filter_false_alarm(duck):
    sql = queries.load("project_sessions_joined", "duckdb")
    plan = plans.explain(duck, sql, {"project_id": 1, "limit": 5})
    filtered = [n for n in plan.nodes() if n.details.get("runtime_filter")]
    assert filtered, "DuckDB built no run-time join filter here: nothing was tested"
    flagged = misestimated(plan)
    assert not any(f"{n.label}" in flagged and n.actual_rows < n.estimated_rows for n in filtered)


def test_postgres_per_loop_rounding_is_noted_and_no_misestimate():
    # 1,000 loops of ~0.4 rows each: PostgreSQL prints 0 per loop, so the total is 0 ± 500.
    inner = pg_node("Index Scan", 0.4, 0, loops=1_000, **{"Relation Name": "session_windows"})
    outer = pg_node("Seq Scan", 1_000, 1_000, **{"Relation Name": "sessions"})
    plan = plans.parse_postgres([{"Plan": pg_node("Nested Loop", 400, 0, children=[outer, inner])}])
    found = findings_of(plan)
    assert "misestimate" not in found or all("Index Scan" not in f.operator for f in found["misestimate"])
    (note,) = found["rounded_rows"]
    assert note.operator == "Index Scan on session_windows" and "±500" in note.message
    # Many rows per loop: rounding cannot matter, no note.
    many = pg_node("Index Scan", 50, 50, loops=1_000, **{"Relation Name": "messages"})
    assert "rounded_rows" not in findings_of(plans.parse_postgres([{"Plan": many}]))


def test_sqlite_relations_resolve_from_alias_to_table(tmp_path, tiny):
    with open_engine("sqlite", str(tmp_path / "a.sqlite")) as engine:
        engine.load(tiny)
        joined = plans.explain(
            engine, queries.load("project_sessions_joined", "sqlite"), {"project_id": 1, "limit": 5}
        )
    relations = {n.relation for n in joined.nodes() if n.relation}
    assert {"messages", "session_windows", "sessions"} <= relations
    assert not relations & {"m", "w", "s"}
    assert {n.details.get("alias") for n in joined.nodes()} >= {"m", "w"}
    assert plans.sqlite_aliases("SELECT * FROM messages AS m JOIN t") == {"m": "messages", "t": "t"}


def test_duckdb_art_index_use_is_read_from_the_plan(duck):
    sql = queries.load("session_messages", "duckdb")
    scan = plans.explain(duck, sql, {"session_id": 1})
    change = plans.plan_change(scan, scan)
    assert not change["changed"] and change["summary"].startswith("plan unchanged")
    assert "did not use its ART index (SEQ_SCAN on messages" in change["summary"]
    duck.create_index("ix_messages_session", "messages", ["session_id"])
    point = plans.explain(duck, sql, {"session_id": 1})
    assert plans.index_nodes(point) == ["INDEX_SCAN on messages"]
    change = plans.plan_change(scan, point)
    assert change["changed"] and "used its ART index (INDEX_SCAN on messages" in change["summary"]

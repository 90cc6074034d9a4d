"""The evidence package on small logs written here: readers, fingerprints, grouping, rule, exports."""

from __future__ import annotations

import csv
import io
import itertools
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from workbench.cli import main
from workbench.evidence import analysis, export, readers
from workbench.evidence.detect import Rule, runs
from workbench.evidence.fingerprint import Fingerprints, batch_rewrite, fingerprint, normalized, traceparent
from workbench.evidence.grouping import Group, Grouper
from workbench.evidence.prefix import LinePrefix, PrefixError
from workbench.evidence.records import Quarantine, Statement, message, parameters
from workbench.indexes import workload

T0 = "2026-12-06 09:00:00"
SESSIONS = "SELECT id FROM sessions WHERE project_id = $1 ORDER BY created_at DESC LIMIT $2"
MESSAGES = "SELECT id, content FROM messages WHERE session_id = $1 ORDER BY timestamp"
WINDOWS = "SELECT id FROM session_windows WHERE session_id = $1"


def _json(
    ms: int, message: str, session: str = "65a.1", vxid: str = "3/1", detail: str | None = None
) -> bytes:
    record = {
        "timestamp": f"{T0}.{ms:03d} UTC",
        "pid": 42,
        "session_id": session,
        "vxid": vxid,
        "error_severity": "LOG",
        "message": message,
        "application_name": "api",
    }
    if detail:
        record["detail"] = detail
    return orjson.dumps(record) + b"\n"


def n_plus_one_jsonlog(path: Path, sessions: int = 8, bad: bool = True) -> Path:
    """One request: the sessions, then messages and windows per session (extended protocol)."""
    lines = [_json(0, "connection authorized: user=app", vxid="")]
    lines.append(
        _json(
            1, f"duration: 2.000 ms  execute <unnamed>: {SESSIONS}", detail="parameters: $1 = '7', $2 = '20'"
        )
    )
    for i in range(sessions):
        ms = 10 + 10 * i
        lines.append(
            _json(ms, f"duration: 4.000 ms  execute S_1: {MESSAGES}", detail=f"parameters: $1 = '{i}'")
        )
        lines.append(
            _json(ms + 5, f"duration: 1.000 ms  execute S_2: {WINDOWS}", detail=f"parameters: $1 = '{i}'")
        )
    if bad:
        lines.insert(3, b'{"timestamp": "2026-12-06 09:00:00.003 UTC", "message": "dura\n')
    path.write_bytes(b"".join(lines))
    return path


# ---- records -------------------------------------------------------------------------------
def test_message_kinds():
    assert message("duration: 1.5 ms  statement: SELECT 1") == (1.5, "statement", "SELECT 1")
    assert message("execute <unnamed>: SELECT $1") == (None, "execute", "SELECT $1")
    assert message("duration: 0.2 ms  bind S_1: SELECT 1").kind == "bind"
    assert message("duration: 3.25 ms") == (3.25, None, "")
    assert message("checkpoint starting: time").kind is None


def test_parameters_quoting():
    assert parameters("parameters: $1 = '1', $2 = 'a, $3 = ''b''', $3 = NULL") == ["1", "a, $3 = 'b'", None]
    assert parameters("no parameters") is None


# ---- readers: one bad line each, the rest kept -------------------------------------------------
def test_jsonlog_keeps_valid_lines_and_quarantines_the_bad_one(tmp_path):
    path = n_plus_one_jsonlog(tmp_path / "pg.json")
    q = Quarantine()
    stmts = list(readers.jsonlog(path, q, progress=False))
    assert len(stmts) == 17
    assert q.count == 1 and q.entries[0][:2] == (str(path), 4) and "not a jsonlog record" in q.entries[0][2]
    first = stmts[0]
    assert (first.duration_ms, first.kind, first.params, first.session, first.vxid, first.app) == (
        2.0,
        "execute",
        ["7", "20"],
        "65a.1",
        "3/1",
        "api",
    )
    assert first.sql == SESSIONS and first.line == 2


def _csv_row(ms: int, message: str, detail: str = "", session: str = "65a.1") -> list[str]:
    row = [""] * 26
    row[0], row[3], row[5], row[9], row[11] = f"{T0}.{ms:03d} UTC", "42", session, "3/1", "LOG"
    row[13], row[14], row[22] = message, detail, "api"
    return row


def test_csvlog_multiline_fields_and_a_short_row(tmp_path):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(_csv_row(1, "duration: 1.000 ms  statement: SELECT 1\nFROM t"))
    buf.write("2026-12-06 09:00:00.002 UTC,short,row\n")
    w.writerow(_csv_row(3, "duration: 2.000 ms  execute S_1: SELECT $1", "parameters: $1 = 'x'"))
    w.writerow(_csv_row(4, "disconnection: session time"))
    path = tmp_path / "pg.csv"
    path.write_text(buf.getvalue())
    q = Quarantine()
    stmts = list(readers.csvlog(path, q, progress=False))
    assert [(s.line, s.sql, s.params) for s in stmts] == [
        (1, "SELECT 1\nFROM t", None),
        (4, "SELECT $1", ["x"]),
    ]
    assert q.entries == [(str(path), 3, "3 columns, a csvlog line has at least 23")]


PREFIX = "%m [%p] %q%u@%d/%a %c %v %x "


def test_stderr_prefix_continuations_detail_and_a_bad_line(tmp_path):
    text = (
        f"{T0}.001 UTC [42] app@db/api 65a.1 3/1 0 LOG:  duration: 1.000 ms  execute S_1: SELECT id\n"
        "\tFROM t WHERE id = $1\n"
        f"{T0}.001 UTC [42] app@db/api 65a.1 3/1 0 DETAIL:  parameters: $1 = '5'\n"
        f"{T0}.002 UTC [7] LOG:  checkpoint starting: time\n"
        "garbage that a log rotation cut\n"
        f"{T0}.003 UTC [42] app@db/api 65a.1 3/2 0 LOG:  duration: 2.500 ms  statement: SELECT 2\n"
    )
    path = tmp_path / "pg.log"
    path.write_text(text)
    q = Quarantine()
    stmts = list(readers.stderr(path, q, PREFIX, progress=False))
    assert [(s.line, s.sql, s.params, s.vxid, s.app, s.session) for s in stmts] == [
        (1, "SELECT id\nFROM t WHERE id = $1", ["5"], "3/1", "api", "65a.1"),
        (6, "SELECT 2", None, "3/2", "api", "65a.1"),
    ]
    assert q.count == 1 and q.entries[0][1] == 5 and "log_line_prefix" in q.entries[0][2]


def test_stderr_log_statement_then_duration(tmp_path):
    text = (
        f"{T0}.001 UTC [42] LOG:  statement: SELECT 1\n"
        f"{T0}.002 UTC [43] LOG:  statement: SELECT 2\n"
        f"{T0}.009 UTC [42] LOG:  duration: 8.000 ms\n"
    )
    path = tmp_path / "pg.log"
    path.write_text(text)
    stmts = list(readers.stderr(path, Quarantine(), progress=False))
    assert sorted((s.sql, s.duration_ms, s.session) for s in stmts) == [
        ("SELECT 1", 8.0, "42"),
        ("SELECT 2", None, "43"),
    ]


def test_prefix_escapes():
    p = LinePrefix("%t %-6p %l %e %q[%u]")
    f = p.match("2026-12-06 09:00:00 UTC 42     3 00000 [bob]LOG:  x")
    assert (f["time"], f["pid"], f["line"], f["sqlstate"], f["user"]) == (
        "2026-12-06 09:00:00 UTC",
        "42",
        "3",
        "00000",
        "bob",
    )
    with pytest.raises(PrefixError, match="%y"):
        LinePrefix("%y ")


def test_pg_stat_statements_bad_row(tmp_path):
    path = tmp_path / "pgss.csv"
    path.write_text('query,calls,total_exec_time\n"SELECT * FROM t WHERE a = $1",10,5.5\nSELECT 2,many,1\n')
    q = Quarantine()
    rows = list(readers.pg_stat_statements(path, q, progress=False))
    assert [(r.sql, r.calls, r.total_ms) for r in rows] == [("SELECT * FROM t WHERE a = $1", 10, 5.5)]
    assert q.count == 1 and q.entries[0][1] == 3
    assert readers.detect_format(path) == "pg_stat_statements"


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(readers.EvidenceError, match="does not exist"):
        list(readers.statements([tmp_path / "none.log"], Quarantine()))
    with pytest.raises(readers.EvidenceError, match="Unknown log format 'xml'"):
        list(readers.statements([tmp_path], Quarantine(), format="xml"))


# ---- fingerprints --------------------------------------------------------------------------------
def test_fingerprints_ignore_values_and_in_list_length():
    a = fingerprint("SELECT * FROM t WHERE id IN (1, 2, 3, 4, 5) AND name = 'x'")
    assert a == fingerprint("SELECT * FROM t WHERE id IN ($1) AND name = $2")
    assert a != fingerprint("SELECT * FROM u WHERE id IN (1)")
    assert (
        normalized("select * from t where id in (1,2) and x = 'a'")
        == "SELECT * FROM t WHERE id IN ($1) AND x = $2"
    )
    prints = Fingerprints()
    assert prints("SELECT 1 FROM t WHERE a = 1") == prints("SELECT 1 FROM t WHERE a = 2")
    assert prints("SELEC nonsense") is None and prints.parsed == 3


def test_traceparent_and_rewrite():
    sql = "SELECT 1 /*traceparent='00-" + "a" * 32 + "-" + "b" * 16 + "-01'*/"
    assert traceparent(sql) == ("a" * 32, "b" * 16)
    assert traceparent("SELECT 1 /* traceparent is mentioned */") is None
    assert batch_rewrite("SELECT * FROM t WHERE a = $1 AND b = $2") is None  # which one varies?
    assert (
        batch_rewrite("SELECT * FROM t WHERE a = $1 AND b = $2", number=2)
        == "SELECT * FROM t WHERE a = $1 AND b = ANY($2)"
    )
    assert batch_rewrite("UPDATE t SET a = 1 WHERE id = $1") is None


# ---- grouping and the rule -----------------------------------------------------------------------
def _stmt(fp: str, end: float, ms: float = 10.0, session: str = "s", vxid: str | None = None, sql: str = "x"):
    s = Statement("f", 1, end, ms, sql, session=session, vxid=vxid)
    s.fp = fp
    return s


def _group(pattern: str, step: float = 0.02, ms: float = 10.0) -> Group:
    return Group("session+gap", "s", [_stmt(c, i * step, ms) for i, c in enumerate(pattern)])


def test_rule_finds_interleaved_loops_with_their_source():
    found = runs(_group("SMWMWMWMWMWMW"))
    assert [(r.fp, len(r.executions), r.source.fp) for r in found] == [("M", 6, "S"), ("W", 6, "S")]


def test_rule_thresholds():
    assert runs(_group("SMMMMM")) == []  # 5 is not more than 5
    assert runs(_group("SMMMMMM", ms=8.0)) == []  # 48 ms is not more than 50
    assert len(runs(_group("SMMMMMM", ms=8.0), Rule(rtt_ms=1.0))) == 1  # with round trips: 54 ms
    assert runs(_group("MMMMMMM")) == []  # no source
    assert len(runs(_group("MMMMMMM"), Rule(need_source=False))) == 1
    assert runs(_group("SMMMMMMM", step=0.001)) == []  # overlapping: a parallel fan-out


def test_rule_does_not_join_merged_requests():
    # batch requests merged by a gap key: each loads once; no loop
    assert runs(_group("SBW" * 8)) == []
    # N+1 requests merged: one run per request
    found = runs(_group("SMMMMMMSMMMMMM"))
    assert [len(r.executions) for r in found] == [6, 6]


def test_grouper_keys_and_gaps():
    trace = "/*traceparent='00-" + "c" * 32 + "-" + "d" * 16 + "-01'*/"
    g = Grouper(gap_ms=100)
    stmts = [
        _stmt("A", 0.00, session="1", vxid="3/1"),
        _stmt("B", 0.05, session="1", vxid="3/2"),
        _stmt("C", 0.50, session="1", vxid="3/3"),  # a pause: a new request
        _stmt("D", 0.90, session="1", vxid="3/3"),  # same transaction: same request, pause or not
        _stmt("E", 0.95, session="2", sql="SELECT 1 " + trace),
        _stmt("F", 5.00, session="3", sql="SELECT 2 " + trace),
    ]
    closed = [grp for s in stmts for grp in g.add(s)] + list(g.finish())
    got = sorted((grp.kind, grp.key, "".join(s.fp for s in grp.statements)) for grp in closed)
    assert got == [
        ("session+transaction+gap", "1", "AB"),
        ("session+transaction+gap", "1", "CD"),
        ("trace", "c" * 32, "EF"),
    ]


# ---- the whole pass, exports, the command --------------------------------------------------------
def test_analyse_ranks_and_exports(tmp_path):
    log = n_plus_one_jsonlog(tmp_path / "pg.json")
    ev = analysis.analyse([log], rule=Rule(min_total_ms=0), progress=False)
    f = ev.findings
    assert f["repeated"].to_list() == [normalized(MESSAGES), normalized(WINDOWS)]  # messages save more
    assert f["executions"].to_list() == [8, 8] and f["requests"].to_list() == [1, 1]
    assert f["repeated_ms"].to_list() == [32.0, 8.0] and f["saving_ms"].to_list() == [28.0, 7.0]
    assert f["rewrite"][0] == normalized(MESSAGES).replace("= $1", "= ANY($1)")
    assert ev.keys() == {"session+transaction+gap": 1} and ev.quarantine.count == 1
    t = ev.templates.row(0, named=True)
    assert (t["calls"], t["total_ms"]) == (8, 32.0) and t["p50_ms"] == pytest.approx(4.0, rel=0.03)
    files = export.write(ev, tmp_path / "out")
    assert orjson.loads(files["quarantine"].read_text().splitlines()[0])["line"] == 4
    assert len(files["mix"].read_text().splitlines()) == 2  # header, one kind of request


def test_workload_export_feeds_advise(tmp_path):
    """detect's workload is read by the index lab: the logged statements match queries/."""
    from workbench import queries
    from workbench.engines.base import bind

    lines = []
    for name, n in (("session_messages", 30), ("project_sessions", 3)):
        sql = bind(
            queries.load(name, "postgres"),
            {p: 1 for p in ("session_id", "project_id", "limit")},
            lambda k, c=itertools.count(1): f"${next(c)}",  # noqa: B008 - numbered once per statement
        )[0]
        lines += [_json(i, f"duration: 1.000 ms  execute S_1: {sql}") for i in range(n)]
    log = tmp_path / "pg.json"
    log.write_bytes(b"".join(lines))
    out = tmp_path / "workload.csv"
    result = CliRunner().invoke(
        main, ["detect", str(log), "--workload-out", str(out)], env={"WORKBENCH_PROGRESS": "0"}
    )
    assert result.exit_code == 0, result.output
    w = workload.from_file(out)
    assert {q.name: q.frequency for q in w.queries} == {"session_messages": 30.0, "project_sessions": 3.0}
    assert w.get("session_messages").mean_ms == pytest.approx(1.0)


def test_cli_detect_reports_findings_and_quarantine(tmp_path):
    log = n_plus_one_jsonlog(tmp_path / "pg.json")
    result = CliRunner().invoke(
        main,
        ["detect", str(log), "--min-total-ms", "0", "--out", str(tmp_path / "o")],
        env={"WORKBENCH_PROGRESS": "0"},
    )
    assert result.exit_code == 0, result.output
    assert "1 lines quarantined" in result.output and f"{log}:4: not a jsonlog record" in result.output
    assert "#1 N+1: 8 executions in 1 requests" in result.output and "= ANY($1)" in result.output
    assert (tmp_path / "o" / "findings.csv").exists()
    result = CliRunner().invoke(main, ["detect", str(tmp_path / "nope.json")])
    assert result.exit_code == 1 and "Error: Log file" in result.output


def test_conclusions_and_figure(tmp_path):
    from workbench.evidence import conclude, figures

    ev = analysis.analyse(
        [n_plus_one_jsonlog(tmp_path / "pg.json")], rule=Rule(min_total_ms=0), progress=False
    )
    text = conclude.headline(ev)
    assert text.startswith("**2 N+1 pattern(s)** in 17 statements in 1 requests")
    assert "after `SELECT sessions`, `SELECT messages` runs 8.0 times a request" in text
    assert "not checked on a sample. Batching saves up to 28.0 ms." in text
    found = conclude.verdicts(ev, conditions={"profile": "default"})
    assert [v.topic for v in found] == ["N+1 #1: SELECT messages", "N+1 #2: SELECT session_windows"]
    assert (
        found[0].verdict == "batch it: saves up to 28.0 ms (not checked)" and "= ANY($1)" in found[0].artifact
    )
    empty = analysis.analyse([n_plus_one_jsonlog(tmp_path / "few.json", sessions=3)], progress=False)
    assert conclude.headline(empty).startswith("**No N+1** in 7 statements")
    assert [v.verdict for v in conclude.verdicts(empty)] == ["none found in 7 statements"]
    fig = figures.templates(ev.templates)
    assert list(fig.data[0].y)[-1] == "1. SELECT messages" and fig.data[0].x[-1] == 32.0


def test_stderr_steps_skipped_with_their_detail(tmp_path):
    head = f"{T0}.001 UTC [42] app@db/api 65a.1 3/1 0 "
    text = (
        f"{head}LOG:  duration: 0.010 ms  bind S_1: SELECT id\n"
        "\tFROM t WHERE id = $1\n"
        f"{head}DETAIL:  parameters: $1 = '5'\n"
        f"{head}LOG:  duration: 1.000 ms  execute S_1: SELECT id\n"
        "\tFROM t WHERE id = $1\n"
        f"{head}DETAIL:  parameters: $1 = '6'\n"
        f"{head}LOG:  statement: SELECT 'LOG:  duration: 1 ms  bind x'\n"
    )
    path = tmp_path / "pg.log"
    path.write_text(text)
    q = Quarantine()
    stmts = list(readers.stderr(path, q, PREFIX, progress=False))
    assert [(s.line, s.kind, s.params) for s in stmts] == [(4, "execute", ["6"]), (7, "statement", None)]
    assert q.count == 0


@pytest.mark.parametrize(
    ("first", "name", "expected"),
    [
        # a csvlog record whose statement spans lines: its first line has an open quote
        (
            b'2026-12-06 10:43:33.802 UTC,"postgres","workbench",29886,"127.0.0.1:44138",6b1.74be,1,'
            b'"PARSE",2026-12-06 10:43:33 UTC,3/32,0,LOG,00000,"duration: 1.022 ms  parse <unnamed>: SELECT',
            "traffic.csvlog",
            "csvlog",
        ),
        (
            b"2026-12-06 10:43:33.802 UTC [29886] LOG:  duration: 0.1 ms  statement: SELECT a, b FROM t",
            "x",
            "stderr",
        ),
        (b'{"timestamp": "2026-12-06 09:15:26.123 UTC"}', "x", "jsonlog"),
        (b"userid,dbid,query,calls,total_exec_time", "x", "pg_stat_statements"),
    ],
)
def test_format_from_the_first_line(first, name, expected):
    assert readers.detect_format_of_line(first, name) == expected

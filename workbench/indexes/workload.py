"""The workload: which queries run, how often, and with which parameter values.

By default every query in ``queries/`` runs equally often. A workload file gives real
frequencies instead: a ``pg_stat_statements`` export (CSV with ``query`` and ``calls``
columns, as ``\\copy (SELECT * FROM pg_stat_statements) TO 'f.csv' CSV HEADER`` writes it),
or a PostgreSQL statement log in ``jsonlog`` (one JSON object a line, statement in
``message``) or ``csvlog`` format (message in the 14th column). Statements are grouped by
a fingerprint: the SQL parsed by sqlglot with every literal and parameter replaced by
``?`` and IN-lists collapsed, so ``$1``, ``:name`` and ``42`` match. A fingerprint that
matches a named query sets that query's frequency; one that does not joins the workload
as ``stmt_<fingerprint>`` when it binds no parameters (its literals make it runnable),
and is reported otherwise. Bad lines are reported with file and line; the rest is read.

Parameter values are drawn from the data, not one constant: for each query a ``hot``,
``typical`` and ``cold`` case (the project with most sessions, the median one, the one
with fewest; the same for sessions by messages, job statuses by frequency, days by
messages). A values file (:func:`read_values`, TOML or JSON) gives any other parameter
its values: one value, a list (hot, typical and cold are its first, middle and last
items), or a value query (``{query = "SELECT ..."}``: its first column, hottest first). A
query with a parameter that gets no value is an :class:`UnboundParameter` error naming it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl
import sqlglot
from sqlglot import exp

from workbench import queries
from workbench.errors import WorkbenchError

CASES = ("hot", "typical", "cold")
PAGE_SIZE = 20
#: A keyset cursor's first page starts after this (later than any row).
FAR_FUTURE = datetime(9999, 1, 1)
csv.field_size_limit(1 << 26)


#: The plan's endpoints, one query each: the session list (first page and the keyset-paginated
#: list), the transcript, the windows, the batch loaders, the jobs pages and a day's messages.
#: The other files are notebook 02's loading strategies and the pagination variants.
ENDPOINTS = (
    "project_sessions",
    "project_sessions_page_keyset",
    "session_messages",
    "session_windows",
    "messages_for_sessions",
    "windows_for_sessions",
    "jobs_queue",
    "jobs_by_status",
    "day_messages",
)


#: The service's loading strategy today (workbench.service.app's default): N+1.
TODAY = "n_plus_one"


def endpoint_statements(endpoint: str, strategy: str = TODAY, recent: int = PAGE_SIZE) -> dict[str, int]:
    """What one request to a service endpoint executes: query name -> statements per request.

    The endpoints are the service's routes (``workbench/service/app.py``): ``sessions`` (one
    keyset page of the list), ``recent`` (the recent sessions with their messages and windows,
    by the loading ``strategy``; N+1 runs two statements per session, ``recent`` of them),
    ``session`` (one session, its messages and windows), ``usage`` (a day's tokens by model)
    and ``jobs`` (one status's newest jobs). Names are files in ``queries/``, or the service's
    own statements (``session_page``, ``session_by_id``, ``day_usage``: :func:`service_sql`).

    >>> endpoint_statements("recent", "n_plus_one", recent=20)
    {'project_sessions': 1, 'session_messages': 20, 'session_windows': 20}
    >>> endpoint_statements("recent", "batch")
    {'project_sessions': 1, 'messages_for_sessions': 1, 'windows_for_sessions': 1}
    """
    recent_by = {
        "n_plus_one": {"project_sessions": 1, "session_messages": recent, "session_windows": recent},
        "joined": {"project_sessions_joined": 1},
        "per_relation": {"project_sessions_messages": 1, "project_sessions_windows": 1},
        "batch": {"project_sessions": 1, "messages_for_sessions": 1, "windows_for_sessions": 1},
        "aggregate": {"project_sessions_aggregated": 1},
    }
    by = {
        "sessions": {"session_page": 1},
        "session": {"session_by_id": 1, "session_messages": 1, "session_windows": 1},
        "usage": {"day_usage": 1},
        "jobs": {"jobs_by_status": 1},
    }
    if endpoint == "recent":
        if strategy not in recent_by:
            raise WorkloadError(f"Unknown strategy {strategy!r}: expected one of {', '.join(recent_by)}")
        return dict(recent_by[strategy])
    if endpoint not in by:
        raise WorkloadError(f"Unknown endpoint {endpoint!r}: expected one of recent, {', '.join(by)}")
    return dict(by[endpoint])


def service_sql() -> dict[str, str]:
    """The statements the service runs that are not files in ``queries/`` (its own SQL)."""
    from workbench.service import app

    return {"session_page": app._PAGE_SQL, "session_by_id": app._SESSION_SQL, "day_usage": app._USAGE_SQL}


def from_traffic(
    shares: dict[str, float], strategy: str = TODAY, recent: int = PAGE_SIZE, source: str = "a traffic mix"
) -> Workload:
    """The workload of a traffic mix (endpoint -> share of requests, e.g. a profile's
    ``traffic.shares()``): every statement its endpoints run, each query's frequency its
    statements per request, so the weighted total is the DB time per request.

    >>> w = from_traffic({"jobs": 0.5, "usage": 0.5})
    >>> [(q.name, q.frequency) for q in w.queries]
    [('jobs_by_status', 0.5), ('day_usage', 0.5)]
    """
    frequency: dict[str, float] = {}
    for endpoint, share in shares.items():
        for name, n in endpoint_statements(endpoint, strategy, recent).items():
            frequency[name] = frequency.get(name, 0.0) + share * n
    own = service_sql()
    out = []
    for name, f in frequency.items():
        sql = own[name] if name in own else queries.source(name)
        out.append(WorkloadQuery(name, sql, f, "workbench.service" if name in own else "queries/"))
    return Workload(out, source=source)


def from_profile(prof: Any, strategy: str = TODAY) -> Workload:
    """The workload of the production profile's traffic mix (``prof.traffic``), with the
    profile's "recent" page size; see :func:`from_traffic`."""
    shares = prof.traffic.shares()
    mix = ", ".join(f"{k} {v:.0%}" for k, v in shares.items())
    return from_traffic(
        shares, strategy, prof.pages.recent_sessions, f"the {prof.name} profile's traffic mix ({mix})"
    )


class WorkloadError(WorkbenchError):
    """A workload file or query cannot be read; the message names the file, line or query."""


class UnboundParameter(WorkloadError):
    """A query's parameter has no value: neither drawn from the data nor in a values file."""


@dataclass
class WorkloadQuery:
    name: str
    sql: str  # PostgreSQL syntax, :named parameters
    frequency: float = 1.0
    source: str = "queries/"
    mean_ms: float | None = None  # as the workload file reported it

    @cached_property
    def parameters(self) -> list[str]:
        tree = sqlglot.parse_one(self.sql, read="postgres")
        return list(dict.fromkeys(p.name for p in tree.find_all(exp.Placeholder)))


@dataclass
class Workload:
    queries: list[WorkloadQuery]
    errors: list[str] = field(default_factory=list)
    source: str = "queries/ (equal frequencies)"

    def names(self) -> list[str]:
        return [q.name for q in self.queries]

    def frame(self) -> pl.DataFrame:
        """The queries, their statements per request (frequency) and where their SQL comes from."""
        return pl.DataFrame(
            {
                "query": self.names(),
                "per request": [q.frequency for q in self.queries],
                "from": [q.source for q in self.queries],
            }
        )

    def get(self, name: str) -> WorkloadQuery:
        for q in self.queries:
            if q.name == name:
                return q
        raise WorkloadError(f"Unknown workload query {name!r}: expected one of {', '.join(self.names())}")


def from_folder(folder: str | Path | None = None, names: Sequence[str] | None = None) -> Workload:
    """Every ``*.sql`` in ``folder`` (``queries/`` by default), or only ``names``, equally often."""
    folder = Path(folder) if folder else queries.QUERIES_DIR
    if not folder.is_dir():
        raise WorkloadError(f"Queries folder {str(folder)!r} does not exist: pass a folder of *.sql files")
    files = sorted(folder.glob("*.sql"))
    if names is not None:
        known = {f.stem: f for f in files}
        missing = [n for n in names if n not in known]
        if missing:
            raise WorkloadError(f"Unknown query {missing[0]!r}: expected one of {', '.join(known)}")
        files = [known[n] for n in names]
    if not files:
        raise WorkloadError(f"No *.sql files in {str(folder)!r}")
    return Workload(
        [WorkloadQuery(f.stem, f.read_text(), 1.0, str(folder)) for f in files], source=f"{folder}"
    )


# ---- fingerprints -------------------------------------------------------------------------
def _normal(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Placeholder | exp.Parameter | exp.Literal | exp.Null | exp.Boolean):
        return exp.Placeholder()
    listed = node.args.get("field") is not None or node.expressions if isinstance(node, exp.In) else False
    if listed and node.args.get("query") is None:
        return exp.In(this=node.this.copy(), expressions=[exp.Placeholder()])
    return node


def normalize(sql: str) -> str:
    """``sql`` with values replaced by ``?`` (raises sqlglot's ParseError when it does not parse)."""
    tree = sqlglot.parse_one(sql, read="postgres")
    return tree.transform(_normal).sql(dialect="postgres", normalize=True, comments=False)


def fingerprint(sql: str) -> str:
    return hashlib.sha1(normalize(sql).encode()).hexdigest()[:12]


# ---- workload files -------------------------------------------------------------------------
_STATEMENT = re.compile(r"^(?:duration: [\d.]+ ms\s+)?(?:statement|execute [^:]*):\s*(.*)$", re.DOTALL)
_DURATION = re.compile(r"^duration: ([\d.]+) ms")


@dataclass
class Entry:
    sql: str
    calls: int
    total_ms: float | None
    where: str  # file:line


def read_file(path: str | Path) -> tuple[list[Entry], list[str], str]:
    """Statements of a workload file: (entries, errors naming file:line, detected format)."""
    path = Path(path)
    if not path.is_file():
        raise WorkloadError(f"Workload file {str(path)!r} does not exist")
    text = path.read_text(errors="replace")
    first = text.lstrip()[:1]
    head = text.splitlines()[0] if text else ""
    if first == "{":
        return (*_jsonlog(path, text), "jsonlog")
    if path.suffix == ".csv" and "query" in head.split(",") and "calls" in head.split(","):
        return (*_pg_stat_statements(path, text), "pg_stat_statements")
    if path.suffix == ".csv":
        return (*_csvlog(path, text), "csvlog")
    raise WorkloadError(
        f"Unknown workload file format {str(path)!r}: expected a pg_stat_statements CSV export "
        "(header with query and calls), a PostgreSQL csvlog (*.csv) or jsonlog (one JSON object a line)"
    )


def _pg_stat_statements(path: Path, text: str) -> tuple[list[Entry], list[str]]:
    entries, errors = [], []
    reader = csv.DictReader(text.splitlines(keepends=True))
    for row in reader:
        line = reader.line_num
        try:
            calls = int(row["calls"])
            total = row.get("total_exec_time") or row.get("total_time")
            entries.append(Entry(row["query"], calls, float(total) if total else None, f"{path}:{line}"))
        except (TypeError, ValueError, KeyError) as e:
            errors.append(f"{path}:{line}: malformed pg_stat_statements row ({e}): skipped")
    return entries, errors


def _from_message(message: str, where: str, entries: list[Entry]) -> None:
    m = _STATEMENT.match(message.strip())
    if not m:
        return  # other log lines (connections, checkpoints) carry no statement
    d = _DURATION.match(message.strip())
    entries.append(Entry(m.group(1).strip().rstrip(";"), 1, float(d.group(1)) if d else None, where))


def _jsonlog(path: Path, text: str) -> tuple[list[Entry], list[str]]:
    entries, errors = [], []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            message = record["message"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            errors.append(f"{path}:{i}: malformed jsonlog line ({type(e).__name__}: {e}): skipped")
            continue
        _from_message(str(message), f"{path}:{i}", entries)
    return entries, errors


#: csvlog's column holding the message (0-based; PostgreSQL 13+ layout).
CSVLOG_MESSAGE = 13


def _csvlog(path: Path, text: str) -> tuple[list[Entry], list[str]]:
    entries, errors = [], []
    reader = csv.reader(text.splitlines(keepends=True))
    start = 1
    for row in reader:
        where = f"{path}:{start}"
        start = reader.line_num + 1
        if len(row) <= CSVLOG_MESSAGE:
            errors.append(
                f"{where}: malformed csvlog line ({len(row)} columns, expected at least 14): skipped"
            )
            continue
        _from_message(row[CSVLOG_MESSAGE], where, entries)
    return entries, errors


def from_file(path: str | Path, folder: str | Path | None = None) -> Workload:
    """The named queries weighted by a workload file's calls, plus its unmatched runnable statements."""
    base = from_folder(folder)
    entries, errors, kind = read_file(path)
    by_print: dict[str, WorkloadQuery] = {}
    for q in base.queries:
        try:
            by_print[fingerprint(q.sql)] = q
        except sqlglot.errors.ParseError as e:
            errors.append(f"Query {q.name!r} does not parse ({str(e).splitlines()[0]}): left out")
    calls: dict[str, int] = {}
    total: dict[str, float] = {}
    sample: dict[str, Entry] = {}
    for e in entries:
        try:
            tree = sqlglot.parse_one(e.sql, read="postgres")
            if not isinstance(tree, exp.Select | exp.Union):
                continue  # only reads are indexed for; writes enter as the write cost
            fp = fingerprint(e.sql)
        except sqlglot.errors.ParseError as err:
            errors.append(f"{e.where}: statement does not parse ({str(err).splitlines()[0]}): skipped")
            continue
        calls[fp] = calls.get(fp, 0) + e.calls
        if e.total_ms is not None:
            total[fp] = total.get(fp, 0.0) + e.total_ms
        sample.setdefault(fp, e)
    out: list[WorkloadQuery] = []
    for fp, n in sorted(calls.items(), key=lambda kv: -kv[1]):
        mean = total[fp] / n if fp in total and n else None
        if fp in by_print:
            q = by_print[fp]
            out.append(WorkloadQuery(q.name, q.sql, float(n), str(path), mean))
            continue
        e = sample[fp]
        tree = sqlglot.parse_one(e.sql, read="postgres")
        if tree.find(exp.Parameter) is not None or tree.find(exp.Placeholder) is not None:
            errors.append(
                f"{e.where}: statement {e.sql[:60]!r} has an unbound parameter and matches no query in "
                "queries/: add it there with :named parameters to measure it"
            )
            continue
        out.append(WorkloadQuery(f"stmt_{fp[:8]}", e.sql, float(n), str(path), mean))
    if not out:
        raise WorkloadError(f"{str(path)!r} ({kind}) holds no SELECT statement the workbench can measure")
    return Workload(out, errors, f"{path} ({kind})")


# ---- parameters --------------------------------------------------------------------------
def _three(rows: Sequence[tuple]) -> list[Any]:
    """First, middle and last of rows sorted from hottest to coldest."""
    if not rows:
        raise WorkloadError("The dataset has no rows to draw parameters from")
    return [rows[0][0], rows[len(rows) // 2][0], rows[-1][0]]


def read_values(path: str | Path) -> dict[str, Any]:
    """A values file: parameter -> a value, a list, or ``{query = "SELECT ..."}`` (TOML or JSON).

    >>> import tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "values.toml")
    >>> _ = open(f, "w").write('git_branch = ["main", "dev", "old"]\\nmodel = "opus"\\n')
    >>> read_values(f)
    {'git_branch': ['main', 'dev', 'old'], 'model': 'opus'}
    """
    import tomllib

    path = Path(path)
    if not path.is_file():
        raise WorkloadError(f"Values file {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise WorkloadError(f"Values file {str(path)!r} is not valid {kind} ({e}): fix it") from None
    if not isinstance(data, dict):
        raise WorkloadError(f"Values file {str(path)!r} must map parameter names to values")
    for name, spec in data.items():
        if isinstance(spec, dict) and set(spec) != {"query"}:
            raise WorkloadError(
                f"Values file {str(path)!r}: parameter {name!r} is a table with keys {sorted(spec)}; "
                'give a value, a list, or {query = "SELECT ..."}'
            )
        if isinstance(spec, list) and not spec:
            raise WorkloadError(f"Values file {str(path)!r}: parameter {name!r} has an empty list")
    return data


def _given(engine: Any, name: str, spec: Any) -> list[Any]:
    """The hot, typical and cold value of a values-file entry."""
    if isinstance(spec, dict):
        sql = spec["query"]
        try:
            tree = sqlglot.parse_one(sql, read="postgres")
        except sqlglot.errors.ParseError as e:
            raise WorkloadError(
                f"The value query of :{name} does not parse ({str(e).splitlines()[0]})"
            ) from None
        if not isinstance(tree, exp.Select | exp.Union):
            raise WorkloadError(
                f"The value query of :{name} must be a SELECT (the workbench only reads there)"
            )
        rows = engine.execute(queries.translate(sql, engine.dialect))
        if not rows:
            raise WorkloadError(f"The value query of :{name} returned no rows: give it a query that does")
        return _three(rows)
    if isinstance(spec, list):
        return [spec[0], spec[len(spec) // 2], spec[-1]]
    return [spec] * len(CASES)


def draw(
    engine: Any, page_size: int = PAGE_SIZE, values: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Parameter values per case (hot, typical, cold), read from the engine's data (read-only).

    ``values`` (:func:`read_values`) adds parameters, or overrides drawn ones."""
    q = engine.execute
    projects = _three(
        q("SELECT project_id, count(*) AS n FROM sessions GROUP BY project_id ORDER BY n DESC, project_id")
    )
    sessions = _three(q("SELECT id, message_count FROM sessions ORDER BY message_count DESC, id"))
    statuses = _three(q("SELECT status, count(*) AS n FROM jobs GROUP BY status ORDER BY n DESC, status"))
    day_sql = queries.translate(
        "SELECT CAST(timestamp AS DATE) AS d, count(*) AS n FROM messages GROUP BY 1 ORDER BY n DESC, d",
        engine.dialect,
    )
    days = _three(q(day_sql))
    out: dict[str, dict[str, Any]] = {}
    for i, case in enumerate(CASES):
        project = projects[i]
        ids = [
            r[0]
            for r in q(
                "SELECT id FROM sessions WHERE project_id = :p ORDER BY created_at DESC, id DESC LIMIT 50",
                {"p": project},
            )
        ]
        day = days[i]
        if isinstance(day, str):
            day = datetime.fromisoformat(day)
        start = datetime(day.year, day.month, day.day)
        out[case] = {
            "project_id": project,
            "session_id": sessions[i],
            "session_ids": ids,
            "status": statuses[i],
            "limit": page_size,
            "offset": 0,
            "cursor": 0,
            "after_created_at": FAR_FUTURE,
            "after_id": 0,
            "day_start": start,
            "day_end": start + timedelta(days=1),
            "after_created": None,  # the service's first list page (its keyset cursor unset)
        }
    for name, spec in (values or {}).items():
        for case, value in zip(CASES, _given(engine, name, spec), strict=True):
            out[case][name] = value
    return out


def bind(query: WorkloadQuery, values: dict[str, Any]) -> dict[str, Any]:
    """The parameters ``query`` needs, or a :class:`WorkloadError` naming an unbound one."""
    try:
        params = query.parameters
    except sqlglot.errors.ParseError as e:
        raise WorkloadError(f"Query {query.name!r} does not parse ({str(e).splitlines()[0]})") from None
    missing = [p for p in params if p not in values]
    if missing:
        raise UnboundParameter(
            f"Query {query.name!r} has parameter :{missing[0]} that the workbench cannot draw a value "
            f"for: give it values in a values file (workbench advise --values FILE, e.g. "
            f'{missing[0]} = "x", a list, or {{query = "SELECT ..."}}), or name it like one of '
            f"{', '.join(sorted(values))}"
        )
    return {p: values[p] for p in params}

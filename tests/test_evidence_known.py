"""Known answers from real software: the workbench's service and a SQLAlchemy ORM app.

A throwaway PostgreSQL logs every statement in jsonlog, csvlog and stderr at once. The
service's ``n_plus_one`` strategy and the ORM's lazy loading must be found (both loops of
the service: messages and windows per session); the batch strategy, ``selectinload`` and
``joinedload`` must give no finding. The thresholds are Sentry's, with the time floor at 0:
the tiny dataset's statements take well under 50 ms together on loopback.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import polars as pl
import psycopg
import pytest
from sqlalchemy import ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from workbench import strategies
from workbench.engines import open_engine
from workbench.evidence import analysis
from workbench.evidence.capture import PREFIX, logging_server
from workbench.evidence.detect import Rule

pytestmark = pytest.mark.postgres
RULE = Rule(min_total_ms=0)
PAUSE = 0.25  # between requests: longer than the grouping's gap (100 ms)


@pytest.fixture(scope="module")
def logging_pg(pg_bindir, tiny):
    with logging_server() as (server, logs):
        with open_engine("postgres", server.url) as engine:
            engine.load(tiny)
            strategies.ensure_indexes(engine)
            projects = [
                r[0]
                for r in engine.execute(
                    "SELECT project_id FROM sessions GROUP BY 1 HAVING count(*) > 6 "
                    "ORDER BY count(*) DESC LIMIT 3"
                )
            ]
        yield server, logs, projects


def _analyse(logs, mark, tmp_path: Path) -> dict[str, analysis.Evidence]:
    out = {}
    logs.flush()  # one marker statement ends the traffic in every file
    for fmt in ("jsonlog", "csvlog", "stderr"):
        file = logs.since(mark, fmt, tmp_path / f"traffic.{fmt}", flush=False)
        out[fmt] = analysis.analyse([file], prefix=PREFIX, rule=RULE, progress=False)
    return out


@pytest.fixture(scope="module")
def service_logs(logging_pg, tmp_path_factory):
    from workbench.service.app import Settings
    from workbench.service.process import ServiceProcess

    server, logs, projects = logging_pg
    out = {}
    for name in ("n_plus_one", "batch"):
        mark = logs.mark()
        with ServiceProcess.start(Settings(database_url=server.url, strategy=name, pool_size=2)) as svc:
            for p in projects:
                svc.get_json(f"/projects/{p}/recent?limit=20")
                time.sleep(PAUSE)
        out[name] = _analyse(logs, mark, tmp_path_factory.mktemp(name))
    return out, projects


def test_service_n_plus_one_found_in_every_format(service_logs):
    found, projects = service_logs
    for fmt, ev in found["n_plus_one"].items():
        f = ev.findings
        assert sorted(r.split(" FROM ")[1].split()[0] for r in f["repeated"]) == [
            "messages",
            "session_windows",
        ]
        assert all(r.split(" FROM ")[1].startswith("sessions WHERE project_id = $1") for r in f["source"]), (
            fmt
        )
        assert all(r.split(" WHERE ")[1].startswith("session_id = $1") for r in f["repeated"]), fmt
        assert f["requests"].to_list() == [len(projects)] * 2, fmt  # every request, both loops
        assert all(r.startswith("SELECT") and "= ANY($1)" in r for r in f["rewrite"]), fmt
        assert set(ev.keys()) == {"session+transaction+gap"}, fmt


def test_service_batch_has_no_finding(service_logs):
    found, projects = service_logs
    for fmt, ev in found["batch"].items():
        assert ev.findings.is_empty(), fmt
        batched = ev.templates.filter(pl.col("query").str.contains("= ANY"))
        assert batched["calls"].to_list() == [len(projects)] * 2, fmt  # messages and windows, once each
        assert ev.quarantine.count == 0, fmt


# ---- a SQLAlchemy ORM app: lazy loading against selectin and joined loading ----------------------
class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "orm_authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    books: Mapped[list[Book]] = relationship(back_populates="author", lazy="select")


class Book(Base):
    __tablename__ = "orm_books"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("orm_authors.id"))
    title: Mapped[str]
    author: Mapped[Author] = relationship(back_populates="books")


@pytest.fixture(scope="module")
def orm_logs(logging_pg, tmp_path_factory):
    from sqlalchemy import create_engine, event, select
    from sqlalchemy.orm import (
        Session,
        joinedload,
        selectinload,
    )

    server, logs, _ = logging_pg

    engine = create_engine(server.url.replace("postgresql://", "postgresql+psycopg://"))
    trace = {"id": None}

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def comment(conn, cursor, statement, parameters, context, executemany):  # sqlcommenter's convention
        if trace["id"]:
            statement += f" /*traceparent='00-{trace['id']}-{uuid.uuid4().hex[:16]}-01'*/"
        return statement, parameters

    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add_all(Author(name=f"a{i}", books=[Book(title=f"b{i}.{j}") for j in range(3)]) for i in range(12))
        s.commit()
    out = {}
    for loading in ("lazy", "selectin", "joined"):
        options = {"lazy": [], "selectin": [selectinload(Author.books)], "joined": [joinedload(Author.books)]}
        mark = logs.mark()
        for traced in (False, True):
            for _ in range(2):  # two requests
                trace["id"] = uuid.uuid4().hex if traced else None
                with Session(engine) as s:
                    authors = s.scalars(
                        select(Author).options(*options[loading]).order_by(Author.id)
                    ).unique()
                    assert sum(len(a.books) for a in authors) == 36
                time.sleep(PAUSE)
        trace["id"] = None
        out[loading] = _analyse(logs, mark, tmp_path_factory.mktemp(loading))
    engine.dispose()
    return out


def test_orm_lazy_loading_found(orm_logs):
    for fmt, ev in orm_logs["lazy"].items():
        f = ev.findings
        assert len(f) == 1, fmt
        row = f.row(0, named=True)
        assert row["requests"] == 4 and row["executions"] == 48, fmt
        assert "orm_books" in row["repeated"] and "orm_authors" in row["source"], fmt
        assert "= ANY($1)" in row["rewrite"], fmt
        assert ev.keys()["trace"] == 2, fmt  # the traced requests were grouped by their trace id


@pytest.mark.parametrize("loading", ["selectin", "joined"])
def test_orm_batched_loading_has_no_finding(orm_logs, loading):
    for fmt, ev in orm_logs[loading].items():
        assert ev.findings.is_empty(), fmt
        assert ev.keys()["trace"] == 2, fmt


def test_rewrites_checked_on_the_database(logging_pg, service_logs, orm_logs):
    from workbench.evidence.check import check_findings

    server, _, _ = logging_pg
    for ev in (service_logs[0]["n_plus_one"]["jsonlog"], orm_logs["lazy"]["stderr"]):
        checked = check_findings(ev, server.url, repeat=2)
        assert checked["same_rows"].to_list() == [True] * len(ev.findings), checked["reason"].to_list()
        assert (checked["rows"] > 0).all() and (checked["values"] > 5).all()
        assert checked["speedup"].is_not_null().all()


def test_live_pg_stat_statements_read_only(logging_pg, service_logs):
    server, _, _ = logging_pg
    with psycopg.connect(server.url, autocommit=True) as con:
        con.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    ev = analysis.analyse([], urls=[server.url], progress=False)
    # libpg_query gives `= $1` and `= ANY($1)` one fingerprint (the service casts its array: another)
    loop = "FROM messages WHERE session_id = "
    messages = ev.templates.filter(pl.col("query").str.contains(loop, literal=True))
    assert messages["calls"].sum() >= 2 * 6  # two requests of more than 6 sessions
    assert ev.files == [server.url] and ev.findings.is_empty()  # aggregates: no requests to group

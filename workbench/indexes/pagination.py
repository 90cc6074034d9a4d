"""The paginated session list three ways: the plan's cursor, OFFSET, and a keyset cursor.

- ``cursor``: the plan's code, ``WHERE id > :cursor ORDER BY created_at DESC`` with the last
  page's last id as the next cursor. Ids follow insertion, creation times do not (the log
  sync imports old sessions late), so it skips rows and may stop early.
- ``offset``: ``ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset``: correct on a
  still table, but reads every skipped row (slower with depth), and rows inserted above the
  reader's position shift the next page (repeats).
- ``keyset``: ``WHERE (created_at, id) < (:after_created_at, :after_id)`` under the same order:
  each page starts strictly after the last row seen, so neither misses nor repeats, and a
  B-tree on ``(project_id, created_at, id)`` seeks straight to it at any depth.

:func:`walk` pages through a project while :func:`inserter` adds rows between pages, and
:func:`correctness` counts rows missed and repeated against the rows present at the start.
:func:`depth_latency` times page 1 to page N with the index each pager needs.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from workbench import measure, queries
from workbench.engines.base import Engine, identifier
from workbench.indexes.candidates import IndexSpec
from workbench.indexes.workload import FAR_FUTURE

PAGERS = ("cursor", "offset", "keyset")
QUERY = {p: f"project_sessions_page_{p}" for p in PAGERS}
#: The index each pager needs (derived by the candidates module from its query).
INDEX = {
    "cursor": IndexSpec("sessions", ("project_id", "id")),
    "offset": IndexSpec("sessions", ("project_id", "created_at", "id")),
    "keyset": IndexSpec("sessions", ("project_id", "created_at", "id")),
}


def _page(engine: Engine, pager: str, project_id: int, size: int, state: Any) -> list[tuple]:
    sql = queries.load(QUERY[pager], engine.dialect)
    params: dict[str, Any] = {"project_id": project_id, "limit": size}
    if pager == "cursor":
        params["cursor"] = state
    elif pager == "offset":
        params["offset"] = state
    else:
        params["after_created_at"], params["after_id"] = state
    return engine.execute(sql, params)


def _first(pager: str) -> Any:
    return {"cursor": 0, "offset": 0, "keyset": (FAR_FUTURE, 0)}[pager]


def _next(pager: str, state: Any, rows: Sequence[tuple]) -> Any:
    last = rows[-1]
    if pager == "cursor":
        return last[0]  # the plan's code: the last row's id
    if pager == "offset":
        return state + len(rows)
    return (last[5], last[0])  # created_at, id


def walk(
    engine: Engine,
    pager: str,
    project_id: int,
    size: int,
    *,
    between: Callable[[int], Any] | None = None,
    max_pages: int = 100_000,
) -> list[list[int]]:
    """Ids of every page until an empty or short page; ``between(page_no)`` runs after each page."""
    state, out = _first(pager), []
    for page_no in range(1, max_pages + 1):
        rows = _page(engine, pager, project_id, size, state)
        if not rows:
            break
        out.append([r[0] for r in rows])
        if len(rows) < size:
            break
        state = _next(pager, state, rows)
        if between is not None:
            between(page_no)
    return out


def inserter(
    engine: Engine, project_id: int, per_page: int, seed: int = 0
) -> tuple[Callable[[int], Any], Callable[[], Any]]:
    """(insert, cleanup): ``insert(page)`` adds ``per_page`` sessions to the project, half new
    (created now, on top of the list) and half synced late (older creation times, new ids);
    ``cleanup()`` removes everything it added."""
    engine.check_writable()
    top = int(engine.execute("SELECT coalesce(max(id), 0) FROM sessions")[0][0])
    lo, hi = engine.execute(
        "SELECT min(created_at), max(created_at) FROM sessions WHERE project_id = :p", {"p": project_id}
    )[0]
    lo, hi = _dt(lo), _dt(hi)
    rng = random.Random(seed)
    next_id = [top]
    newest = [hi]
    cols = (
        "id",
        "project_id",
        "external_id",
        "title",
        "model",
        "git_branch",
        "is_sidechain",
        "message_count",
        "created_at",
        "updated_at",
    )
    sql = (
        f"INSERT INTO sessions ({', '.join(identifier(c) for c in cols)}) VALUES "
        f"({', '.join(':' + c for c in cols)})"
    )

    def insert(page: int) -> None:
        for k in range(per_page):
            next_id[0] += 1
            if k % 2 == 0:
                newest[0] = newest[0] + timedelta(seconds=1)
                created = newest[0]
            else:
                created = lo + (hi - lo) * rng.random()
            engine._write(
                sql,
                {
                    "id": next_id[0],
                    "project_id": project_id,
                    "external_id": f"inserted-{next_id[0]}",
                    "title": "inserted while paging",
                    "model": None,
                    "git_branch": None,
                    "is_sidechain": False,
                    "message_count": 0,
                    "created_at": created,
                    "updated_at": created,
                },
            )

    def cleanup() -> None:
        engine._write("DELETE FROM sessions WHERE id > :top", {"top": top})

    return insert, cleanup


def _dt(value: Any) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def count(snapshot: Sequence[int], pages: Sequence[Sequence[int]]) -> dict[str, int]:
    """Rows of ``snapshot`` never returned (missed) and returned more than once (repeated)."""
    seen = Counter(i for page in pages for i in page)
    snap = set(snapshot)
    return {
        "rows": len(snap),
        "returned": sum(seen.values()),
        "missed": len(snap - set(seen)),
        "repeated": sum(n - 1 for i, n in seen.items() if n > 1),
        "pages": len(pages),
    }


def correctness(
    engine: Engine, project_id: int, size: int = 20, inserts_per_page: int = 2, seed: int = 0
) -> pl.DataFrame:
    """Per pager, on a still table and with rows inserted between pages: rows missed and repeated."""
    snapshot = [
        r[0] for r in engine.execute("SELECT id FROM sessions WHERE project_id = :p", {"p": project_id})
    ]
    rows = []
    for pager in PAGERS:
        for scenario in ("still table", "rows inserted between pages"):
            if scenario == "still table":
                pages = walk(engine, pager, project_id, size)
            else:
                insert, cleanup = inserter(engine, project_id, inserts_per_page, seed)
                try:
                    pages = walk(engine, pager, project_id, size, between=insert)
                finally:
                    cleanup()
            rows.append(
                {"engine": engine.name, "pager": pager, "scenario": scenario, **count(snapshot, pages)}
            )
    return pl.DataFrame(rows)


def depth_latency(
    engine: Engine,
    project_id: int,
    *,
    size: int = 20,
    depths: Sequence[int] = (1, 10, 100, 1000),
    repeat: int = 5,
    build: bool = True,
    clock: measure.Clock = time.perf_counter_ns,
) -> pl.DataFrame:
    """Latency of fetching page ``d`` for each pager, with the index it needs (built when ``build``).

    The offset and keyset positions come from the full order; the plan's cursor is taken from
    its own walk, so depths past the end of that walk have no point for it.
    """
    with measure.gc_paused():
        return _depth_latency(engine, project_id, size, depths, repeat, build, clock)


def _depth_latency(engine, project_id, size, depths, repeat, build, clock) -> pl.DataFrame:
    order = engine.execute(
        "SELECT id, created_at FROM sessions WHERE project_id = :p ORDER BY created_at DESC, id DESC",
        {"p": project_id},
    )
    pages_available = len(order) // size
    cursor_pages = walk(engine, "cursor", project_id, size)
    rows = []
    built: set[str] = set()
    existing = set(engine.list_indexes()["name"].to_list())
    try:
        for pager in PAGERS:
            spec = INDEX[pager]
            if build and spec.name not in existing and spec.name not in built:
                engine._write(spec.sql(engine.dialect))
                built.add(spec.name)
            fns = {}
            for d in depths:
                if d > pages_available:
                    continue
                if pager == "offset":
                    state = (d - 1) * size
                elif pager == "keyset":
                    state = (
                        _first(pager)
                        if d == 1
                        else (_dt(order[(d - 1) * size - 1][1]), order[(d - 1) * size - 1][0])
                    )
                else:
                    if d > len(cursor_pages):
                        continue
                    state = 0 if d == 1 else cursor_pages[d - 2][-1]
                fns[str(d)] = lambda state=state, pager=pager: _page(engine, pager, project_id, size, state)
            times = (
                measure.measure_interleaved(
                    fns, repeat=repeat, warmup=engine.warmup_runs, clock=clock, pause_gc=False
                )
                if fns
                else {}
            )
            for d, t in times.items():
                s = measure.summarize(t)
                rows.append(
                    {
                        "engine": engine.name,
                        "pager": pager,
                        "page": int(d),
                        "page_size": size,
                        "median_ms": s["median_ms"],
                        "lo_ms": s["median_lo"],
                        "hi_ms": s["median_hi"],
                        "index": spec.label if build else None,
                    }
                )
    finally:
        for name in built:
            engine.drop_index(name)
    return pl.DataFrame(rows)


def growth(frame: pl.DataFrame) -> pl.DataFrame:
    """Per engine and pager: latency of the deepest page measured over page 1 (the 2x target)."""
    out = []
    for (engine, pager), part in frame.group_by("engine", "pager", maintain_order=True):
        part = part.sort("page")
        first, last = part.row(0, named=True), part.row(-1, named=True)
        out.append(
            {
                "engine": engine,
                "pager": pager,
                "deepest_page": last["page"],
                "page_size": last.get("page_size"),
                "ratio": last["median_ms"] / first["median_ms"] if first["median_ms"] else None,
            }
        )
    return pl.DataFrame(out)

"""The tables made of what the messages left: sessions, projects, titles and windows."""

from __future__ import annotations

import re

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from workbench import schema
from workbench.sources.claude_code.reader import ENTRY_SCHEMA, hash63, session_id
from workbench.windows import window_rows

TITLE_TYPES = ("custom-title", "ai-title", "summary")
TITLE_FIELDS = {"custom-title": "customTitle", "ai-title": "aiTitle", "summary": "summary"}

#: A task's messages grouped by session and the values sessions and projects are made of.
GROUP_SCHEMA = pa.schema(
    [
        ENTRY_SCHEMA.field(c)
        for c in ("session_id", "session_key", "project", "role", "model", "git_branch", "cwd")
    ]
    + [("lo", pa.timestamp("us")), ("hi", pa.timestamp("us")), ("n", pa.int64())]
)
SESSION_SCHEMA = pa.schema(
    [("session_id", pa.int64()), ("session_key", pa.string()), ("project", pa.string()),
     ("lo", pa.timestamp("us")), ("hi", pa.timestamp("us")), ("n", pa.int64()),
     ("model", pa.string()), ("git_branch", pa.string())]
)  # fmt: skip


def groups(t: pa.Table) -> pa.Table:
    """A task's message rows grouped by ``GROUP_SCHEMA``'s keys: first, last, count."""
    keys = GROUP_SCHEMA.names[:-3]
    g = t.group_by(keys, use_threads=False).aggregate(
        [("timestamp", "min"), ("timestamp", "max"), ("line", "count")]
    )
    return (
        g.select([*keys, "timestamp_min", "timestamp_max", "line_count"])
        .rename_columns(GROUP_SCHEMA.names)
        .cast(GROUP_SCHEMA)
    )


def titles_of(raw: pa.Table) -> list[tuple[int, str | None, str | None, str]]:
    """The titles among raw entries, in order: (rank: 0 custom-title, 1 ai-title, 2 summary;
    sessionId; leafUuid; title)."""
    found = []
    titles = raw.filter(pc.is_in(raw.column("type"), pa.array(TITLE_TYPES)))
    for kind, session, text in zip(
        *(titles.column(c).to_pylist() for c in ("type", "session", "json")), strict=True
    ):
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue
        title, leaf = obj.get(TITLE_FIELDS[kind]) or obj.get("title"), obj.get("leafUuid")
        if isinstance(title, str) and title:
            found.append((TITLE_TYPES.index(kind), session, leaf if isinstance(leaf, str) else None, title))
    return found


def sessions_projects(
    groups: list[pa.Table], titles: list[tuple], leaves: dict[str, int]
) -> tuple[pa.Table, pa.Table]:
    """The sessions and projects tables from every task's ``groups``, the ``titles`` found
    (``titles_of``) and the session of each summary's leaf message."""
    groups = pa.concat_tables(groups) if groups else GROUP_SCHEMA.empty_table()
    found = _sessions(groups)
    ids = found.column("session_id").to_pylist()
    keys = found.column("session_key").to_pylist()
    best = _titles(titles, set(ids), leaves)
    sessions = pa.table(
        {
            "id": ids,
            "project_id": [project_id(p) for p in found.column("project").to_pylist()],
            "external_id": keys,
            "title": [best.get(sid) for sid in ids],
            "model": found.column("model"),
            "git_branch": found.column("git_branch"),
            "is_sidechain": ["/" in k for k in keys],
            "message_count": found.column("n"),
            "created_at": found.column("lo"),
            "updated_at": found.column("hi"),
        },
        schema=schema.arrow_schema("sessions"),
    )
    # per project: its first activity, and the working folder most used is its path
    first = groups.group_by("project", use_threads=False).aggregate([("lo", "min")])
    best = _most_frequent(groups.filter(pc.not_equal(groups.column("cwd"), "")), "project", "cwd")
    cwds = dict(zip(best.column("project").to_pylist(), best.column("cwd").to_pylist(), strict=True))
    projects = []
    for project, created in zip(*(first.column(c).to_pylist() for c in ("project", "lo_min")), strict=True):
        path = cwds.get(project, project)
        name = re.split(r"[\\/]", path.rstrip("\\/"))[-1] or path
        projects.append((project_id(project), name, path, created))
    projects.sort()
    names = schema.arrow_schema("projects")
    frame = pa.table({c: [p[i] for p in projects] for i, c in enumerate(names.names)}, schema=names)
    return sessions, frame


def _titles(found: list[tuple], known: set[int], leaves: dict[str, int]) -> dict[int, str]:
    """Titles of the ``known`` sessions: the last custom-title, else the last ai-title, else
    the last summary. A title names its session by sessionId, or a summary by its leafUuid
    (``leaves``: the session of each message uuid a summary names)."""
    best: dict[int, tuple[int, int, str]] = {}
    for order, (rank, session, leaf, title) in enumerate(found):
        sid = session_id(session) if session is not None else None
        if sid not in known:
            sid = leaves.get(leaf) if leaf is not None else None
        if sid is None:
            continue
        if sid not in best or (rank, -order) < (best[sid][0], -best[sid][1]):
            best[sid] = (rank, order, title)
    return {sid: title for sid, (_, _, title) in best.items()}


def windows(rows: dict[str, np.ndarray], won: np.ndarray) -> pa.Table:
    """``window_rows`` over every session's messages; only the winning copies count tokens."""
    order = np.lexsort((rows["stamp"], rows["session"]))  # stable: ties keep file order
    tokens = np.where(won, rows["total"], 0)
    return pa.table(window_rows(rows["session"][order], rows["stamp"][order], tokens[order]))


def _sessions(groups: pa.Table) -> pa.Table:
    """One row per session, by id, from per-task groups: its key, project, first and last
    message, count, and its model and git branch the ones with the most messages (the
    assistant's model, ``<synthetic>`` and empty values aside)."""
    s = groups.group_by("session_id", use_threads=False).aggregate(
        [("session_key", "min"), ("project", "min"), ("lo", "min"), ("hi", "max"), ("n", "sum")]
    )
    role, model, branch = groups.column("role"), groups.column("model"), groups.column("git_branch")
    counted = {  # nulls compare to null, which the filter drops
        "model": pc.and_(
            pc.and_(pc.equal(role, "assistant"), pc.not_equal(model, "<synthetic>")), pc.not_equal(model, "")
        ),
        "git_branch": pc.not_equal(branch, ""),
    }
    for column, mask in counted.items():
        s = s.join(
            _most_frequent(groups.filter(mask), "session_id", column), "session_id", join_type="left outer"
        )
    columns = [
        "session_id",
        "session_key_min",
        "project_min",
        "lo_min",
        "hi_max",
        "n_sum",
        "model",
        "git_branch",
    ]
    return (
        s.select(columns)
        .rename_columns(SESSION_SCHEMA.names)
        .cast(SESSION_SCHEMA)
        .sort_by("session_id")
        .combine_chunks()
    )


def _most_frequent(groups: pa.Table, key: str, column: str) -> pa.Table:
    """Per ``key``, the value of ``column`` with the most messages ``n`` (ties: the smallest)."""
    counts = groups.group_by([key, column], use_threads=False).aggregate([("n", "sum")])
    counts = counts.sort_by([(key, "ascending"), ("n_sum", "descending"), (column, "ascending")])
    keys = counts.column(key).to_numpy(zero_copy_only=False)
    return counts.filter(np.r_[True, keys[1:] != keys[:-1]] if len(keys) else np.zeros(0, bool)).select(
        [key, column]
    )


def project_id(project: str) -> int:
    return hash63("project\x00" + project)

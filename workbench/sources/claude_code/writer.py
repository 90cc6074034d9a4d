"""Write a Dataset's conversations as a Claude Code transcript tree (the inverse of ingest).

Layout and lines follow the real format (fixtures' FORMAT.md): ``<root>/projects/
<encoded-cwd>/<session>.jsonl``, sidechain sessions as ``<session>/subagents/
agent-<id>.jsonl``; compact JSON, ``...Z`` millisecond timestamps, a uuid/parentUuid
chain, one line per content block. Consecutive assistant rows form one API response
(a new response starts where a second row with usage would join): its chunks share
``message.id``/``requestId`` and repeat the usage, with a preliminary, smaller
``output_tokens`` on earlier chunks as Claude Code writes them. Re-ingesting gives the
same sessions, message counts and token totals.
"""

from __future__ import annotations

import os
import random
import re
import uuid as uuidlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from workbench.dataset import Dataset
from workbench.windows import TOKEN_COLUMNS

VERSION = "2.1.114"
DEFAULT_MODEL = "claude-sonnet-4-5-20250929"
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_BATCH_MESSAGES = 200_000


def encode_cwd(path: str) -> str:
    """Claude Code's project folder name: every character outside [A-Za-z0-9] becomes ``-``."""
    return re.sub(r"[^A-Za-z0-9]", "-", path)


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


class _Ids:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def uuid(self) -> str:
        return str(uuidlib.UUID(int=self.rng.getrandbits(128), version=4))

    def token(self, prefix: str, n: int = 24) -> str:
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz123456789"
        return prefix + "".join(self.rng.choice(alphabet) for _ in range(n))


def _block(kind: str, content: str, ids: _Ids) -> list[dict[str, Any]]:
    """Content blocks for a message row (JSON content from an ingest is restored as is)."""
    if kind != "text" and content[:1] in "{[":
        try:
            parsed = orjson.loads(content)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return [parsed]
        if isinstance(parsed, list) and all(isinstance(b, dict) for b in parsed):
            return parsed
    if kind == "tool_use":
        return [
            {"type": "tool_use", "id": ids.token("toolu_01"), "name": "Bash", "input": {"command": content}}
        ]
    if kind == "tool_result":
        return [{"type": "tool_result", "tool_use_id": ids.token("toolu_01"), "content": content}]
    if kind == "thinking":
        return [{"type": "thinking", "thinking": content, "signature": ""}]
    if kind == "image":
        source = {"type": "base64", "media_type": "image/png", "data": content}
        return [{"type": "image", "source": source}]
    if kind == "mixed":
        return [{"type": "text", "text": content}, {"type": "thinking", "thinking": "", "signature": ""}]
    return [{"type": "text", "text": content}]


def _responses(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Group a session's rows: each user row alone, consecutive assistant rows per response."""
    group: list[dict[str, Any]] = []
    for row in rows:
        has_usage = row["input_tokens"] is not None
        joins = (
            group
            and row["role"] == "assistant"
            and group[-1]["role"] == "assistant"
            and not (has_usage and any(r["input_tokens"] is not None for r in group))
        )
        if not joins and group:
            yield group
            group = []
        group.append(row)
    if group:
        yield group


def write_transcripts(dataset: Dataset, root: str | os.PathLike[str], *, seed: int = 0) -> dict[str, int]:
    """Write ``dataset``'s sessions as a Claude Code tree under ``root`` (``root/projects/...``).

    Returns counts of files, lines and bytes written. Deterministic for a seed.
    """
    root = Path(root)
    ids = _Ids(seed)
    projects = {r["id"]: r for r in dataset.read("projects").iter_rows(named=True)}
    sessions = dataset.read("sessions").sort("id")
    stats = {"files": 0, "lines": 0, "bytes": 0}
    batch: list[int] = []
    size = 0
    for sid, count in zip(sessions["id"], sessions["message_count"], strict=True):
        batch.append(sid)
        size += count
        if size >= _BATCH_MESSAGES:
            _write_batch(dataset, sessions, projects, batch, root, ids, stats)
            batch, size = [], 0
    if batch:
        _write_batch(dataset, sessions, projects, batch, root, ids, stats)
    return stats


def _write_batch(dataset, sessions, projects, batch, root: Path, ids: _Ids, stats: dict[str, int]) -> None:
    messages = (
        dataset.scan("messages")
        .filter(pl.col("session_id").is_in(pl.Series(batch).implode()))
        .sort("session_id", "timestamp", "id")
        .collect()
    )
    by_session = messages.partition_by("session_id", as_dict=True, maintain_order=True)
    for session in sessions.filter(pl.col("id").is_in(batch)).iter_rows(named=True):
        part = by_session.get((session["id"],))
        rows = part.to_dicts() if part is not None else []
        _write_session(session, projects.get(session["project_id"]), rows, root, ids, stats)


def _session_path(session: dict[str, Any], cwd: str, root: Path, ids: _Ids) -> tuple[Path, str, str | None]:
    external = session["external_id"]
    parent, _, agent = external.partition("/")
    parent = parent if _UUID.match(parent) else ids.uuid()
    folder = root / "projects" / encode_cwd(cwd)
    if not session["is_sidechain"]:
        return folder / f"{parent}.jsonl", parent, None
    agent = agent.removeprefix("agent-") if agent else f"a{ids.rng.getrandbits(64):016x}"
    return folder / parent / "subagents" / f"agent-{agent}.jsonl", parent, agent


def _write_session(session, project, rows, root: Path, ids: _Ids, stats: dict[str, int]) -> None:
    cwd = project["path"] if project else "/unknown"
    path, sid, agent = _session_path(session, cwd, root, ids)
    path.parent.mkdir(parents=True, exist_ok=True)
    envelope = {
        "isSidechain": agent is not None,
        "userType": "external",
        "cwd": cwd,
        "sessionId": sid,
        "version": VERSION,
        "gitBranch": session["git_branch"] or "",
    }
    if agent:
        envelope["agentId"] = agent
    lines: list[bytes] = []
    parent: str | None = None
    leaf: str | None = None
    for n, group in enumerate(_responses(rows)):
        head = group[0]
        if head["role"] == "user":
            u = head["external_id"] if _UUID.match(head["external_id"]) else ids.uuid()
            if n == 0 and agent is None:
                snap = {"messageId": u, "trackedFileBackups": {}, "timestamp": _iso(head["timestamp"])}
                lines.append(
                    orjson.dumps(
                        {
                            "type": "file-history-snapshot",
                            "messageId": u,
                            "snapshot": snap,
                            "isSnapshotUpdate": False,
                        }
                    )
                )
            kind, content = head["type"], head["content"]
            body: Any = content if kind == "text" else _block(kind, content, ids)
            line = {
                "parentUuid": parent,
                **envelope,
                "type": "user",
                "message": {"role": "user", "content": body},
                "uuid": u,
                "timestamp": _iso(head["timestamp"]),
            }
            lines.append(orjson.dumps(line))
            parent = leaf = u
            continue
        used = next((r for r in group if r["input_tokens"] is not None), None)
        usage = None
        if used is not None:
            usage = {c: used[c] or 0 for c in TOKEN_COLUMNS}
        model = next((r["model"] for r in group if r["model"]), None) or session["model"] or DEFAULT_MODEL
        mid, rid = ids.token("msg_01"), ids.token("req_011C")
        for i, row in enumerate(group):
            u = row["external_id"] if _UUID.match(row["external_id"]) else ids.uuid()
            message: dict[str, Any] = {
                "model": model,
                "id": mid,
                "type": "message",
                "role": "assistant",
                "content": _block(row["type"], row["content"], ids),
                "stop_reason": None,
                "stop_sequence": None,
            }
            if usage is not None:
                final = i == len(group) - 1
                output = usage["output_tokens"] if final else min(usage["output_tokens"], 1 + i)
                message["usage"] = {
                    "input_tokens": usage["input_tokens"],
                    "cache_creation_input_tokens": usage["cache_creation_tokens"],
                    "cache_read_input_tokens": usage["cache_read_tokens"],
                    "cache_creation": {
                        "ephemeral_5m_input_tokens": usage["cache_creation_tokens"],
                        "ephemeral_1h_input_tokens": 0,
                    },
                    "output_tokens": output,
                    "service_tier": "standard",
                }
            line = {
                "parentUuid": parent,
                **envelope,
                "message": message,
                "requestId": rid,
                "type": "assistant",
                "uuid": u,
                "timestamp": _iso(row["timestamp"]),
            }
            lines.append(orjson.dumps(line))
            parent = leaf = u
        if n % 8 == 7:
            system = {
                "parentUuid": parent,
                **envelope,
                "type": "system",
                "subtype": "turn_duration",
                "durationMs": 1000 * len(group),
                "messageCount": len(group),
                "uuid": ids.uuid(),
                "timestamp": _iso(group[-1]["timestamp"]),
                "isMeta": False,
            }
            lines.append(orjson.dumps(system))
            parent = system["uuid"]
    if session["title"] and leaf is not None:
        lines.append(orjson.dumps({"type": "summary", "summary": session["title"], "leafUuid": leaf}))
    data = b"\n".join(lines) + b"\n" if lines else b""
    with path.open("ab") as f:
        f.write(data)
    stats["files"] += 1
    stats["lines"] += len(lines)
    stats["bytes"] += len(data)

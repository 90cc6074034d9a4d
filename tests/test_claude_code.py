"""Claude Code transcript source: real fixtures, bad input, updates, ccusage, writer round trip.

The fixture tree under tests/fixtures/claude-code is four real transcripts laid out as
Claude Code writes them (see its SOURCES.md); the expected counts below come from the
facts listed there.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import polars as pl
import pyarrow.parquet as pq
import pytest

from workbench import schema
from workbench.dataset import Dataset, DatasetWriter
from workbench.errors import DatasetError, WorkbenchError
from workbench.sources.claude_code import (
    block_usage,
    ccusage_frame,
    daily_usage,
    find_ccusage,
    ingest,
    pipeline,
    pool,
    run_ccusage,
    session_usage,
    write_transcripts,
)
from workbench.sources.claude_code.usage import CcusageMissing

FIXTURES = Path(__file__).parent / "fixtures" / "claude-code"
EF = "ef958aa1-0e93-49f0-bb71-150f63befcd1"
AGENT = f"{EF}/agent-a36efb2a1231c41e2"
C3 = "326189cf-5676-4237-8cde-1ce80aae4a9f"
C4 = "2b4ed4c0-b905-41de-9238-273db3ec737a"
TOKENS = ["input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens"]


#: The rows the fixture ingests must give, one per line (tests/fixtures/claude-code/expected):
#: the output may change only on purpose. Regenerate with WORKBENCH_WRITE_EXPECTED=1.
EXPECTED = FIXTURES / "expected"
LONG = 60  # characters of text kept as they are; longer text is shown cut, with its length and hash


def _readable(value: object) -> object:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and len(value) > LONG:
        digest = hashlib.blake2b(value.encode(), digest_size=6).hexdigest()
        return f"{value[:LONG]}... [{len(value)} chars, {digest}]"
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _rows(path: Path) -> list[dict]:
    """Every table's and side file's rows, quarantine records included (an unreadable
    file's detail names a temporary path, so it is left out)."""
    rows = []
    for name in [*sorted(schema.TABLES), "raw_entries", "message_lines"]:
        for row in pq.read_table(path / f"{name}.parquet").to_pylist():
            rows.append({"table": name, **{k: _readable(v) for k, v in row.items()}})
    for line in (path / "quarantine.jsonl").read_bytes().splitlines():
        record = orjson.loads(line)
        if record["reason"] == "unreadable-file":
            del record["detail"]
        rows.append({"table": "quarantine", **{k: _readable(v) for k, v in record.items()}})
    return rows


def _check_rows(path: Path, name: str) -> None:
    expected = EXPECTED / f"{name}.jsonl"
    got = _rows(path)
    if os.environ.get("WORKBENCH_WRITE_EXPECTED") == "1":
        expected.parent.mkdir(exist_ok=True)
        expected.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in got))
    assert got == [orjson.loads(line) for line in expected.read_bytes().splitlines()]


@pytest.fixture(scope="module")
def fixture_ds(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return ingest([FIXTURES], tmp_path_factory.mktemp("cc") / "ds", progress=False).dataset


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    shutil.copytree(FIXTURES / "projects", root / "projects")
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return root


def _usage_by_session(ds: Dataset) -> pl.DataFrame:
    return (
        ds.read("messages")
        .join(ds.read("sessions").select(session_id="id", session="external_id"), on="session_id")
        .group_by("session")
        .agg(pl.len().alias("messages"), *[pl.col(c).cast(pl.Int64).sum() for c in TOKENS])
        .sort("session")
    )


def test_real_fixtures(fixture_ds: Dataset) -> None:
    ds = fixture_ds
    _check_rows(ds.path, "fixtures")
    sessions = {r["external_id"]: r for r in ds.read("sessions").iter_rows(named=True)}
    assert set(sessions) == {EF, AGENT, C3, C4}
    # user + assistant lines per file (SOURCES.md): 45+62, 8+10, 18+20, 10+12
    assert {k: s["message_count"] for k, s in sessions.items()} == {EF: 107, AGENT: 18, C3: 38, C4: 22}
    assert sessions[AGENT]["is_sidechain"] and not sessions[EF]["is_sidechain"]
    assert sessions[AGENT]["project_id"] == sessions[EF]["project_id"]
    assert sessions[EF]["model"] == "claude-opus-4-7" and sessions[C3]["model"] == "claude-sonnet-4-20250514"
    assert sessions[EF]["git_branch"] == "master" and sessions[C4]["git_branch"] is None
    assert sessions[C4]["created_at"] == datetime(2026, 1, 23, 17, 13, 37, 933000)
    assert sessions[EF]["updated_at"] == datetime(2026, 4, 18, 15, 9, 30, 93000)
    messages = ds.read("messages")
    usage = messages.filter(pl.col("input_tokens").is_not_null())
    per_session = usage.join(ds.read("sessions").select(session_id="id", s="external_id"), on="session_id")
    # distinct (message.id, requestId) responses: 17, 6, 15, 10
    assert dict(per_session.group_by("s").len().iter_rows()) == {EF: 17, AGENT: 6, C3: 15, C4: 10}
    counts = ds.manifest["ingest"]
    assert counts["duplicates_collapsed"] == 104 - 48
    assert counts["entries"] == {
        "assistant": 104, "user": 81, "attachment": 49, "file-history-snapshot": 3, "last-prompt": 7,
        "permission-mode": 8, "progress": 1, "queue-operation": 1, "summary": 4, "system": 18,
    }  # fmt: skip
    assert counts["quarantined"] == {} and (ds.path / "quarantine.jsonl").read_bytes() == b""
    kinds = dict(messages.group_by("role", "type").len().map_rows(lambda r: (f"{r[0]}:{r[1]}", r[2])).rows())
    assert kinds == {
        "user:text": 5 + 1 + 4 + 1, "user:tool_result": 40 + 7 + 14 + 9,
        "assistant:thinking": 14, "assistant:text": 8 + 3 + 6 + 3, "assistant:tool_use": 40 + 7 + 14 + 9,
    }  # fmt: skip
    thinking = messages.filter(pl.col("type") == "thinking")["content"][0]
    assert orjson.loads(thinking)["type"] == "thinking"
    projects = ds.read("projects").sort("name")
    assert projects["name"].to_list() == ["claude-code-log", "claude_p", "worktrees"]
    assert "/Users/dain/workspace/claude-code-log" in projects["path"].to_list()
    assert ds.counts["jobs"] == 0 and ds.counts["session_windows"] == 4
    raw = pl.read_parquet(ds.path / "raw_entries.parquet")
    assert raw.height == 276 - 185 and raw.filter(pl.col("type") == "summary").height == 4
    assert messages["id"].n_unique() == messages.height


def _older_layout(tmp_path: Path) -> Path:
    """A tree as Claude Code 2.0.x wrote it (fixtures' FORMAT.md): the subagent's transcript
    ``agent-<8 hex>.jsonl`` beside the session files, not under ``<session>/subagents/``."""
    project = FIXTURES / "projects" / "-experiments-worktrees"
    dest = tmp_path / "older" / "projects" / project.name
    dest.mkdir(parents=True)
    shutil.copy(project / f"{EF}.jsonl", dest)
    agent = (project / EF / "subagents" / "agent-a36efb2a1231c41e2.jsonl").read_bytes()
    (dest / "agent-a36efb2a.jsonl").write_bytes(agent.replace(b"a36efb2a1231c41e2", b"a36efb2a"))
    return tmp_path / "older"


def test_ccusage_agreement(fixture_ds: Dataset, tmp_path: Path, in_ci: bool) -> None:
    """Daily, session and 5-hour block totals equal ccusage's, on the fixtures and on a tree
    of the older layout, where ccusage gives the subagent's file a session row of its own."""
    try:
        binary = find_ccusage()
    except CcusageMissing as e:
        if in_ci:
            pytest.fail(f"ccusage is required in CI: {e}")
        pytest.skip(f"ccusage agreement not checked: {e}")
    older = _older_layout(tmp_path)
    older_ds = ingest([older], tmp_path / "older-ds", progress=False).dataset
    assert set(session_usage(older_ds)["session"]) == {EF, "agent-a36efb2a"}
    assert set(session_usage(fixture_ds)["session"]) == {EF, C3, C4}
    for tree, ds in ((FIXTURES, fixture_ds), (older, older_ds)):
        for command, ours in (("daily", daily_usage), ("session", session_usage), ("blocks", block_usage)):
            theirs = ccusage_frame(command, run_ccusage(command, tree, binary))
            mine = ours(ds).select(theirs.columns).cast(theirs.schema)
            assert mine.equals(theirs), (tree, command, mine, theirs)


def test_ingest_leaves_the_process_as_it_found_it(tmp_path: Path) -> None:
    """No process-wide setting changes: Arrow's memory pool, the garbage collector."""
    import gc

    import pyarrow as pa

    before = (pa.default_memory_pool().backend_name, gc.isenabled(), gc.get_threshold())
    ingest([FIXTURES], tmp_path / "ds", progress=False, workers=0)
    assert (pa.default_memory_pool().backend_name, gc.isenabled(), gc.get_threshold()) == before


def test_reingest_is_idempotent(fixture_ds: Dataset, tmp_path: Path) -> None:
    again = ingest([FIXTURES], tmp_path / "again", progress=False)
    assert again.dataset.content_hash == fixture_ds.content_hash
    update = ingest([FIXTURES], tmp_path / "again", progress=False)
    assert update.mode == "incremental" and update.files["unchanged"] == 4 and update.lines_read == 0
    assert update.dataset.content_hash == fixture_ds.content_hash


def test_states_of_an_earlier_version_are_read_again(fixture_ds: Dataset, tmp_path: Path) -> None:
    """A dataset whose file states hold another hash (SHA-256, before XXH3) is updated by
    reading every file again, not by trusting or rejecting its states."""
    dest = tmp_path / "old"
    ingest([FIXTURES], dest, progress=False)
    manifest = orjson.loads((dest / "manifest.json").read_bytes())
    for state in manifest["ingest"]["file_states"]:
        state["sha256"] = "0" * 64
        del state["xxh3_128"]
    (dest / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    update = ingest([FIXTURES], dest, progress=False)
    assert update.mode == "incremental" and update.files["reread"] == 4 and update.files["unchanged"] == 0
    assert update.dataset.content_hash == fixture_ds.content_hash


def test_grown_tree_equals_full_ingest(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    files = sorted(root.rglob("*.jsonl"))
    full = {p: p.read_bytes() for p in files}
    new_file, changed = files[0], files[1]
    new_file.unlink()
    for p in files[1:]:
        lines = full[p].splitlines(keepends=True)
        p.write_bytes(b"".join(lines[: len(lines) // 2]) + lines[len(lines) // 2][:40])  # cut mid-line
    first = ingest([root], tmp_path / "ds", progress=False)
    assert first.quarantined == {"truncated-line": 3}
    for p in files:
        p.write_bytes(full[p])
    changed.write_bytes(full[changed].replace(b'"userType":"external"', b'"userType":"externaL"', 1))
    update = ingest([root], tmp_path / "ds", progress=False)
    assert update.mode == "incremental"
    assert update.files == {
        "new": 1, "grown": 2, "unchanged": 0, "reread": 1, "removed": 0, "empty": 0, "unreadable": 0,
    }  # fmt: skip
    assert update.bytes_read < sum(map(len, full.values()))
    fresh = ingest([root], tmp_path / "fresh", progress=False)
    assert update.dataset.content_hash == fresh.dataset.content_hash
    for side in ("quarantine.jsonl",):
        assert (update.dataset.path / side).read_bytes() == (fresh.dataset.path / side).read_bytes()
    for side in ("raw_entries.parquet", "message_lines.parquet"):
        assert pl.read_parquet(update.dataset.path / side).equals(pl.read_parquet(fresh.dataset.path / side))
    assert update.entries == fresh.entries and update.quarantined == fresh.quarantined == {}
    assert update.duplicates_collapsed == fresh.duplicates_collapsed == 56


def test_bad_input_is_quarantined(tmp_path: Path, fixture_ds: Dataset) -> None:
    root = _tree(tmp_path)
    target = root / "projects" / "-src-experiments-claude-p" / f"{C4}.jsonl"
    good = target.read_bytes().splitlines(keepends=True)
    user = orjson.loads(good[2])
    assistant = orjson.loads(next(line for line in good if b'"type":"assistant"' in line))
    bad = {
        "malformed-json": b'{"type":"user","message":\n',
        "invalid-utf8": b'{"type":"user","x":"\xff\xfe"}\n',
        "not-an-object": b"[1,2,3]\n",
        "blank-line": b"\n",
        "bad-field:message": orjson.dumps({**user, "message": "hello"}) + b"\n",
        "bad-field:timestamp": orjson.dumps({**user, "timestamp": 12}) + b"\n",
        "bad-field:message.content": orjson.dumps({**user, "message": {"role": "user", "content": 5}})
        + b"\n",
        "bad-field:message.usage": orjson.dumps(
            {**assistant, "message": {**assistant["message"], "usage": {"input_tokens": "many"}}}
        )
        + b"\n",
        "bad-field:sessionId": orjson.dumps({**user, "sessionId": 7}) + b"\n",
    }
    body = [*good[:3], *bad.values(), *good[3:]]
    target.write_bytes(b"".join(body) + b'{"type":"assistant","mess')  # truncated last line
    (target.parent / "empty.jsonl").write_bytes(b"")
    (target.parent / "dangling.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
    (target.parent / "a-folder.jsonl").mkdir()
    report = ingest([root], tmp_path / "ds", progress=False)
    expected = {reason: 1 for reason in bad} | {"truncated-line": 1, "unreadable-file": 2}
    assert report.quarantined == expected
    records = [
        orjson.loads(line) for line in (report.dataset.path / "quarantine.jsonl").read_bytes().splitlines()
    ]
    key = f"-src-experiments-claude-p/{C4}.jsonl"
    lines = {r["reason"]: r["line"] for r in records if r["file"] == key}
    assert lines == {reason: 4 + i for i, reason in enumerate(bad)} | {"truncated-line": len(body) + 1}
    assert {r["file"] for r in records if r["reason"] == "unreadable-file"} == {
        "-src-experiments-claude-p/dangling.jsonl", "-src-experiments-claude-p/a-folder.jsonl",
    }  # fmt: skip
    invalid = next(r for r in records if r["reason"] == "invalid-utf8")
    assert invalid["raw"].startswith('{"type":"user"') and "\\xff" in invalid["raw"]
    _check_rows(report.dataset.path, "bad-input")
    # every valid entry still arrives, with the same tokens
    assert _usage_by_session(report.dataset).equals(_usage_by_session(fixture_ds))
    assert report.entries == fixture_ds.manifest["ingest"]["entries"]
    assert report.files["empty"] == 1 and report.files["unreadable"] == 2 and report.unterminated_lines == 1


def test_errors_name_the_value_and_the_fix(tmp_path: Path, fixture_ds: Dataset) -> None:
    with pytest.raises(WorkbenchError, match=r"'/no/such/place' does not exist"):
        ingest(["/no/such/place"], tmp_path / "x", progress=False)
    other = tmp_path / "other"
    with DatasetWriter(other, source={"kind": "synthetic"}) as w:
        for t in schema.TABLES:
            w.write(t, pl.DataFrame(schema=schema.polars_schema(t)))
    with pytest.raises(DatasetError, match="pass overwrite=True"):
        ingest([FIXTURES], other, progress=False)
    assert (
        ingest([FIXTURES], other, progress=False, overwrite=True).dataset.content_hash
        == fixture_ds.content_hash
    )


def test_writer_round_trip_of_real_fixtures(fixture_ds: Dataset, tmp_path: Path) -> None:
    stats = write_transcripts(fixture_ds, tmp_path / "tree", seed=3)
    assert stats["files"] == 4
    back = ingest([tmp_path / "tree"], tmp_path / "back", progress=False).dataset
    assert _usage_by_session(back).equals(_usage_by_session(fixture_ds))
    assert back.manifest["ingest"]["duplicates_collapsed"] > 0  # streamed chunks were written
    assert (tmp_path / "tree" / "projects" / "-experiments-worktrees" / EF / "subagents").is_dir()


def test_writer_round_trip_of_a_built_dataset(tmp_path: Path) -> None:
    t0 = datetime(2026, 3, 1, 9, 0)
    projects = pl.DataFrame({"id": [1], "name": ["app"], "path": ["/home/me/my_app"], "created_at": [t0]})
    sessions = pl.DataFrame(
        {
            "id": [10, 11], "project_id": [1, 1], "external_id": ["s-1", "s-2"], "title": ["Fix login", None],
            "model": ["claude-opus-4-5", None], "git_branch": ["main", None], "is_sidechain": [False, True],
            "message_count": [5, 2], "created_at": [t0, t0], "updated_at": [t0, t0],
        }
    )  # fmt: skip
    roles = ["user", "assistant", "assistant", "user", "assistant", "user", "assistant"]
    messages = pl.DataFrame(
        {
            "id": range(1, 8), "session_id": [10] * 5 + [11] * 2, "external_id": [f"m{i}" for i in range(7)],
            "role": roles, "type": ["text", "thinking", "tool_use", "tool_result", "text", "text", "text"],
            "content": ["hi", "hmm", "ls", "a b", "done", "go", "ok"],
            "timestamp": [t0 + timedelta(minutes=i * 70) for i in range(7)],
            "model": [None, *["claude-opus-4-5"] * 2, None, "claude-opus-4-5", None, "claude-haiku-4-5"],
            "input_tokens": [None, 10, 3, None, 5, None, 7], "output_tokens": [None, 20, 4, None, 6, None, 8],
            "cache_creation_tokens": [None, 1, 0, None, 0, None, 0],
            "cache_read_tokens": [None, 100, 200, None, 300, None, 0],
        }
    )  # fmt: skip
    with DatasetWriter(tmp_path / "built", source={"kind": "test"}) as w:
        w.write_all({"projects": projects, "sessions": sessions, "messages": messages})
        w.write("session_windows", pl.DataFrame(schema=schema.polars_schema("session_windows")))
        w.write("jobs", pl.DataFrame(schema=schema.polars_schema("jobs")))
    write_transcripts(w.dataset, tmp_path / "tree", seed=1)
    assert (tmp_path / "tree" / "projects" / "-home-me-my-app").is_dir()
    back = ingest([tmp_path / "tree"], tmp_path / "back", progress=False).dataset
    got = _usage_by_session(back).drop("session")
    want = _usage_by_session(w.dataset).drop("session")
    assert sorted(got.rows()) == sorted(want.rows())
    rows = back.read("sessions").sort("is_sidechain")
    assert rows["title"].to_list() == ["Fix login", None] and rows["is_sidechain"].to_list() == [False, True]
    assert back.read("projects")["name"].to_list() == ["my_app"]


def _outputs(ds: Dataset) -> dict[str, bytes]:
    """Every file of a Dataset, and its manifest's content hash and ingest record."""
    files = {p.name: p.read_bytes() for p in sorted(ds.path.iterdir()) if p.name != "manifest.json"}
    return files | {"hash": ds.content_hash, "ingest": orjson.dumps(ds.manifest["ingest"])}


def test_parallel_parsing_writes_the_same_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fixture_ds: Dataset
) -> None:
    """Worker processes (with this process parsing beside them) and tiny tasks (several per
    file tree) change nothing, byte for byte, in full and incremental ingests."""
    monkeypatch.setattr(pool, "TASK_BYTES", 4096)
    root = _tree(tmp_path)
    for copy in range(3):  # more tasks than workers keep in flight
        for project in list((root / "projects").iterdir()):
            if not project.name.endswith("-copy"):
                shutil.copytree(project, root / "projects" / f"{project.name}-{copy}-copy")
    files = sorted(root.rglob("*.jsonl"))
    full = {p: p.read_bytes() for p in files}
    for p in files:  # first ingest sees each file cut mid-line
        p.write_bytes(full[p][: len(full[p]) // 2])
    runs = {}
    for name, workers in (("one", 0), ("two", 1), ("three", 2)):
        first = ingest([root], tmp_path / name, progress=False, workers=workers)
        assert first.quarantined == {"truncated-line": len(files)}
        runs[name] = first
    assert _outputs(runs["one"].dataset) == _outputs(runs["two"].dataset) == _outputs(runs["three"].dataset)
    for p in files:
        p.write_bytes(full[p])
    updates = {
        "one": ingest([root], tmp_path / "one", progress=False, workers=0),
        "two": ingest([root], tmp_path / "two", progress=False, workers=2),
    }
    assert updates["two"].files["grown"] == len(files) == 16
    assert _outputs(updates["one"].dataset) == _outputs(updates["two"].dataset)
    fresh = ingest([root], tmp_path / "fresh", progress=False, workers=1)
    assert _outputs(fresh.dataset) | {"ingest": b""} == _outputs(updates["two"].dataset) | {"ingest": b""}


def test_many_small_files_give_the_same_dataset_with_any_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fixture_ds: Dataset
) -> None:
    """The fixtures cut into files of two lines each, spread over 40 project folders (the
    shape of a real ~/.claude: many small files): 0, 1 and 2 workers write the same bytes,
    and every session keeps its messages and tokens."""
    monkeypatch.setattr(pool, "TASK_BYTES", 32 << 10)  # tasks of many files
    root = tmp_path / "tree" / "projects"
    n = 0
    for src in sorted((FIXTURES / "projects").rglob("*.jsonl")):
        lines = src.read_bytes().splitlines(keepends=True)
        for i in range(0, len(lines), 2):
            target = root / f"-project-{n % 40}" / f"{src.stem}-{i:04d}.jsonl"  # agent-* stay subagents
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"".join(lines[i : i + 2]))
            n += 1
    runs = {w: ingest([root], tmp_path / f"w{w}", progress=False, workers=w) for w in (0, 1, 2)}
    assert runs[0].files["new"] == n > 100
    assert _outputs(runs[0].dataset) == _outputs(runs[1].dataset) == _outputs(runs[2].dataset)
    assert _usage_by_session(runs[0].dataset).equals(_usage_by_session(fixture_ds))
    assert runs[0].entries == fixture_ds.manifest["ingest"]["entries"]


def test_titles_find_their_session_by_id_or_by_leaf(tmp_path: Path) -> None:
    """A custom-title beats a summary; a title names its session by sessionId (a subagent's
    by its external id) or, for a summary, by the message its leafUuid points at; a title
    of a session without messages is dropped."""
    stamp = "2026-01-01T00:00:0{}.000Z"
    lines = [
        {"type": "user", "sessionId": "s", "timestamp": stamp.format(0), "uuid": "u1",
         "message": {"role": "user", "content": "hi"}},
        {"type": "user", "sessionId": "s", "timestamp": stamp.format(1), "uuid": "u2",
         "message": {"role": "user", "content": "again"}},
        {"type": "user", "sessionId": "s", "isSidechain": True, "agentId": "q", "timestamp": stamp.format(2),
         "uuid": "u3", "message": {"role": "user", "content": "sub"}},
        {"type": "user", "sessionId": "t", "timestamp": stamp.format(3), "uuid": "u4",
         "message": {"role": "user", "content": "other"}},
        {"type": "summary", "summary": "from-leaf", "leafUuid": "u2"},
        {"type": "summary", "summary": "t-from-leaf", "leafUuid": "u4"},
        {"type": "custom-title", "sessionId": "s", "customTitle": "by-sid"},
        {"type": "ai-title", "sessionId": "s/agent-q", "aiTitle": "sub-title"},
        {"type": "custom-title", "sessionId": "nobody", "customTitle": "lost"},
    ]  # fmt: skip
    folder = tmp_path / "tree" / "projects" / "-w"
    folder.mkdir(parents=True)
    (folder / "s.jsonl").write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    report = ingest([tmp_path / "tree"], tmp_path / "ds", progress=False, workers=0)
    titles = dict(report.dataset.read("sessions").select("external_id", "title").iter_rows())
    assert titles == {"s": "by-sid", "s/agent-q": "sub-title", "t": "t-from-leaf"}


def test_session_figures_add_up_over_the_tasks_a_session_spans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session's figures add up over the files and tasks it spans; its model is the
    assistant's most frequent (ties: the smallest; empty, missing and <synthetic> not
    counted), its branch likewise over every message; a project's path is its most
    frequent working folder."""
    monkeypatch.setattr(pool, "TASK_BYTES", 1)  # one task per file

    def line(session: str, role: str, hour: int, model: str | None, branch: str | None, cwd: str) -> dict:
        message = {"role": role, "content": "x", **({"model": model} if model is not None else {})}
        return {"type": role, "sessionId": session, "timestamp": f"2026-01-01T{hour:02d}:00:00.000Z",
                "gitBranch": branch, "cwd": cwd, "message": message}  # fmt: skip

    files = {
        "p/a.jsonl": [
            line("s7", "assistant", 5, "b-model", "main", "/w"),
            line("s7", "assistant", 3, "a-model", "", "/w"),
            line("s7", "user", 4, "z-model", None, "/v"),  # a user's model does not count
            line("s9", "assistant", 1, "<synthetic>", "dev", "/v"),
        ],
        "p/b.jsonl": [
            line("s7", "assistant", 9, "", "main", "/w"),
            line("s9", "assistant", 2, None, "dev", "/v"),
            line("s3", "assistant", 6, "c-model", "dev", "/w"),
        ],
    }
    for name, lines in files.items():
        path = tmp_path / "tree" / "projects" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    ds = ingest([tmp_path / "tree"], tmp_path / "ds", progress=False, workers=0).dataset
    got = ds.read("sessions").sort("external_id")
    assert got.select("external_id", "message_count", "model", "git_branch").rows() == [
        ("s3", 1, "c-model", "dev"), ("s7", 4, "a-model", "main"), ("s9", 2, None, "dev"),
    ]  # fmt: skip
    assert [(r["created_at"].hour, r["updated_at"].hour) for r in got.iter_rows(named=True)] == [
        (6, 6), (3, 9), (1, 2),
    ]  # fmt: skip
    assert ds.read("projects").select("name", "path", "created_at").rows() == [
        ("w", "/w", datetime(2026, 1, 1, 1))
    ]


def test_workers_default_to_one_beside_this_process_on_two_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    for cpus, expected in ((set(), 0), ({0}, 0), ({0, 1}, 1), (set(range(64)), 1)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda _pid, cpus=cpus: cpus, raising=False)
        assert pool.default_workers() == expected, cpus


def test_workers_import_this_package_whatever_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fixture_ds: Dataset
) -> None:
    """An ingest run from a folder holding another ``workbench`` package (another
    checkout) parses with this one in its workers too."""
    decoy = tmp_path / "elsewhere" / "workbench"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise ImportError('the decoy package was imported')\n")
    monkeypatch.chdir(decoy.parent)
    monkeypatch.setattr(pool, "TASK_BYTES", 4096)  # tasks for the worker to take
    report = ingest([FIXTURES], tmp_path / "ds", progress=False, workers=1)
    assert report.dataset.content_hash == fixture_ds.content_hash


def test_a_parser_process_that_dies_stops_the_ingest_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ingest does not hang or write a partial Dataset when a worker is killed."""
    import psutil

    monkeypatch.setattr(pool, "TASK_BYTES", 4096)

    class KillWorkers(pipeline.tqdm):  # this process reports progress while the worker parses
        def update(self, n: float | None = 1) -> bool | None:
            for child in psutil.Process().children():
                if "spawn_main" in " ".join(child.cmdline()):
                    child.kill()
            return super().update(n)

    monkeypatch.setattr(pipeline, "tqdm", KillWorkers)

    def hung(*_: object) -> None:
        raise TimeoutError("the ingest hung on a dead worker")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(120)  # a hang fails the test instead of stalling CI
    try:
        with pytest.raises(pool.ParseError, match="stopped .* re-run with --workers 0"):
            ingest([FIXTURES], tmp_path / "ds", progress=False, workers=1)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert list(tmp_path.iterdir()) == []  # no Dataset, no scratch folder left behind


def _variants(user: dict, assistant: dict) -> dict[str, bytes]:
    """Valid lines off the common shape, and bad ones: each must reach the general parser."""
    msg, dumps = assistant["message"], orjson.dumps
    usage = msg["usage"]
    return {
        "offset timestamp": dumps({**user, "timestamp": "2025-06-01T12:00:00.5+02:00"}),
        "no sessionId": dumps({k: v for k, v in user.items() if k != "sessionId"}),
        "empty sessionId": dumps({**user, "sessionId": ""}),
        "sidechain not a bool": dumps({**user, "isSidechain": "yes"}),
        "uuid a number": dumps({**user, "uuid": 5}),
        "user with odd usage": dumps({**user, "message": {**user["message"], "usage": "n/a"}}),
        "usage without cache": dumps(
            {**assistant, "message": {**msg, "usage": {"input_tokens": 3, "output_tokens": 4}}}
        ),
        "usage null": dumps({**assistant, "message": {**msg, "usage": None}}),
        "usage a bool": dumps({**assistant, "message": {**msg, "usage": {**usage, "output_tokens": True}}}),
        "usage too big": dumps({**assistant, "message": {**msg, "usage": {**usage, "input_tokens": 2**31}}}),
        "content empty": dumps({**user, "message": {"role": "user", "content": []}}),
        "content two texts": dumps(
            {
                **user,
                "message": {
                    "role": "user",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                },
            }
        ),
        "content mixed": dumps(
            {
                **user,
                "message": {
                    "role": "user",
                    "content": [{"type": "text", "text": "a"}, {"type": "image", "source": {}}],
                },
            }
        ),
        "content untyped block": dumps({**user, "message": {"role": "user", "content": [{"text": "a"}]}}),
        "content a string block": dumps({**user, "message": {"role": "user", "content": ["a"]}}),
        "model a number": dumps({**assistant, "message": {**msg, "model": 4}}),
        "raw with a numeric type": dumps({"type": 3, "sessionId": "s"}),
        "raw without type": dumps({"sessionId": "s", "timestamp": 1}),
        "raw with odd message": dumps({"type": "progress", "message": "text"}),
        "invalid utf-8 in a skipped field": dumps(user)[:-1] + b',"toolUseResult":"\xff"}',
        "lone surrogate": dumps(user)[:-1] + b',"x":"\\ud800"}',
        "malformed": b'{"type":"user","message":',
        "not an object": b"[1]",
        "timestamp a number": dumps({**user, "timestamp": 12}),
        "deeply nested skipped field": dumps(user)[:-1]
        + b',"toolUseResult":'
        + b"[" * 1010
        + b"]" * 1010
        + b"}",
        "number overflowing a double": dumps(user)[:-1] + b',"x":1e400}',
        "integer beyond 64 bits": dumps(user)[:-1] + b',"x":100000000000000000000}',
        "duplicate keys": dumps(user)[:-1] + b',"uuid":"second"}',
        "block type a list": dumps({**user, "message": {"role": "user", "content": [{"type": [1]}]}}),
        "block types not strings": dumps(
            {**user, "message": {"role": "user", "content": [{"type": 5}, {"type": 6}]}}
        ),
        "spaced and escaped block": dumps(user).replace(
            b'"content":', b'"content": [{"type": "tool_result", "content": "caf\\u00e9 \\/ 1e3"}],"_":', 1
        ),
    }


#: How each variant is read: the reason it is quarantined, or (role or "raw", type, content).
VARIANTS = {
    "offset timestamp": ("user", "text", "Search if claude -p can make use of WebSearch and Task tool."),
    "no sessionId": ("user", "text", "Search if claude -p can make use of WebSearch and Task tool."),
    "empty sessionId": "bad-field:sessionId",
    "sidechain not a bool": ("user", "text", "Search if claude -p can make use of WebSearch and Task tool."),
    "uuid a number": ("user", "text", "Search if claude -p can make use of WebSearch and Task tool."),
    "user with odd usage": ("user", "text", "Search if claude -p can make use of WebSearch and Task tool."),
    "usage without cache": (
        "assistant",
        "text",
        "I'll search for information about Claude Code's `-p` flag an",
    ),
    "usage null": ("assistant", "text", "I'll search for information about Claude Code's `-p` flag an"),
    "usage a bool": "bad-field:message.usage",
    "usage too big": "bad-field:message.usage",
    "content empty": ("user", "text", "[]"),
    "content two texts": ("user", "text", "a\n\nb"),
    "content mixed": ("user", "mixed", b'[{"type":"text","text":"a"},{"type":"image","source":{}}]'),
    "content untyped block": ("user", "other", b'{"text":"a"}'),
    "content a string block": ("user", "other", b'"a"'),
    "model a number": ("assistant", "text", "I'll search for information about Claude Code's `-p` flag an"),
    "raw with a numeric type": ("raw", "<invalid>", "s"),
    "raw without type": ("raw", "<none>", "s"),
    "raw with odd message": ("raw", "progress", None),
    "invalid utf-8 in a skipped field": "invalid-utf8",
    "lone surrogate": "malformed-json",
    "malformed": "malformed-json",
    "not an object": "not-an-object",
    "timestamp a number": "bad-field:timestamp",
    "deeply nested skipped field": "malformed-json",
    "number overflowing a double": (
        "user",
        "text",
        "Search if claude -p can make use of WebSearch and Task tool.",
    ),
    "integer beyond 64 bits": (
        "user",
        "text",
        "Search if claude -p can make use of WebSearch and Task tool.",
    ),
    "duplicate keys": ("user", "text", "Search if claude -p can make use of WebSearch and Task tool."),
    "block type a list": ("user", "other", b'{"type":[1]}'),
    "block types not strings": ("user", "other", b'[{"type":5},{"type":6}]'),
    "spaced and escaped block": (
        "user",
        "tool_result",
        b'{"type": "tool_result", "content": "caf\\u00e9 \\/ 1e3"}',
    ),
}


def test_each_line_is_a_row_or_a_reason() -> None:
    """Valid lines off the common shape become rows (a message's blocks kept as written,
    spacing and escapes included); bad ones get the reason they are quarantined for."""
    from workbench.sources.claude_code.reader import Bad, LineParser, find_files

    lines = (FIXTURES / "projects" / "-src-experiments-claude-p" / f"{C4}.jsonl").read_bytes().splitlines()
    user = orjson.loads(lines[2])
    assistant = orjson.loads(next(line for line in lines if b'"type":"assistant"' in line))
    parser = LineParser(find_files([FIXTURES / "projects"])[0])
    got = {}
    for name, line in _variants(user, assistant).items():
        try:
            row = parser.parse(line, 1)
        except Bad as e:
            got[name] = e.reason
        else:
            got[name] = ("raw", row[2], row[3]) if len(row) == 6 else (row[7], row[8], row[9][:60])
    assert got == VARIANTS
    tokens = {
        name: parser.parse(_variants(user, assistant)[name], 1)[-4:]
        for name in ("usage without cache", "usage null")
    }
    assert tokens == {"usage without cache": (3, 4, 0, 0), "usage null": (None, None, None, None)}
    with pytest.raises(Bad) as cut:  # a last line without its newline
        parser.parse(b'{"type":"user","message":', 1, complete=False)
    assert cut.value.reason == "truncated-line"

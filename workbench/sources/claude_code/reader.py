"""Find transcript files and parse their lines into Arrow tables.

Files are read line by line, so a 3 GB file is never held whole. ``user``/``assistant``
lines become message rows, every other entry type becomes a raw row (kept verbatim), and
a line that cannot be used becomes a quarantine record with file, line number and reason.
``parse_task`` runs on a worker process too: this module imports no polars.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import xxhash

from workbench.errors import WorkbenchError

#: Bytes of a bad line kept in the quarantine record.
RAW_PREFIX = 4096

ENTRY_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("line", pa.int64()),
        ("project", pa.string()),
        ("session_key", pa.string()),
        ("session_id", pa.int64()),
        ("id", pa.int64()),
        ("uuid", pa.string()),
        ("role", pa.string()),
        ("type", pa.string()),
        ("content", pa.large_string()),
        ("timestamp", pa.timestamp("us")),
        ("model", pa.string()),
        ("message_id", pa.string()),
        ("request_id", pa.string()),
        ("is_sidechain", pa.bool_()),
        ("cwd", pa.string()),
        ("git_branch", pa.string()),
        ("version", pa.string()),
        ("input_tokens", pa.int32()),
        ("output_tokens", pa.int32()),
        ("cache_creation_tokens", pa.int32()),
        ("cache_read_tokens", pa.int32()),
    ]
)

RAW_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("line", pa.int64()),
        ("type", pa.string()),
        ("session", pa.string()),
        ("timestamp", pa.string()),
        ("json", pa.large_string()),
    ]
)

_INT32 = 2**31 - 1
#: Message id = (63-bit hash of the file + line x an odd constant) mod 2**63: distinct
#: within a file and as collision-free across files as a hash.
_ID_STEP, _ID_MASK = 0x9E3779B97F4A7C15, 2**63 - 1
_BLOCK_TYPES = {"text", "tool_use", "tool_result", "thinking", "image"}


class SourceError(WorkbenchError):
    """A transcript root is missing or is not a folder."""


def hash63(text: str) -> int:
    """A stable, non-negative 63-bit id for ``text`` (BLAKE2b)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") >> 1


def session_id(key: str) -> int:
    """The id of the session with external id ``key`` (a sessionId, or ``<sessionId>/agent-<id>``)."""
    return hash63("session\x00" + key)


def default_roots() -> list[Path]:
    """The ``projects`` folders ccusage reads: ~/.claude, ~/.config/claude, $CLAUDE_CONFIG_DIR."""
    home = Path.home()
    candidates = [home / ".claude", home / ".config" / "claude"]
    candidates += [Path(p.strip()).expanduser() for p in os.environ.get("CLAUDE_CONFIG_DIR", "").split(",")]
    roots = []
    for base in candidates:
        if str(base) not in ("", ".") and (base / "projects").is_dir():
            roots.append((base / "projects").resolve())
    return list(dict.fromkeys(roots))


def resolve_roots(paths: Sequence[str | os.PathLike[str]] | None) -> list[Path]:
    """Absolute transcript roots: a ``projects`` folder, or a config folder holding one."""
    if paths is None:
        roots = default_roots()
        if not roots:
            raise SourceError(
                "No Claude Code transcripts found in ~/.claude/projects, ~/.config/claude/projects "
                "or $CLAUDE_CONFIG_DIR: pass the transcript folder explicitly"
            )
        return roots
    roots = []
    for p in paths:
        path = Path(p).expanduser()
        if not path.exists():
            raise SourceError(f"Transcript path {str(path)!r} does not exist: pass a projects folder")
        if not path.is_dir():
            raise SourceError(f"Transcript path {str(path)!r} is not a folder: pass its projects folder")
        roots.append((path / "projects" if (path / "projects").is_dir() else path).resolve())
    return list(dict.fromkeys(roots))


@dataclass(frozen=True)
class SourceFile:
    """One transcript file: its stable key (relative path), project folder and location."""

    key: str
    project: str
    path: Path
    session_hint: str
    agent_file: bool


def find_files(roots: Sequence[Path]) -> list[SourceFile]:
    """Every ``*.jsonl`` under the roots, sorted by key (second and later roots are prefixed).

    Symlinked folders are not entered (no cycles). A folder named ``*.jsonl`` is listed too,
    so that it is reported as unreadable rather than passed over in silence."""
    files: dict[str, SourceFile] = {}
    for i, root in enumerate(roots):
        for folder, subfolders, names in os.walk(root):
            here = Path(folder)
            parts = here.relative_to(root).parts
            for name in (*names, *subfolders):
                if not os.path.normcase(name).endswith(".jsonl"):  # any case on Windows, as glob
                    continue
                rel = "/".join((*parts, name))
                key = rel if i == 0 else f"{i}:{rel}"
                path = here / name
                agent = path.stem.startswith("agent-")
                # <session>/subagents/agent-*.jsonl belong to <session>
                hint = here.parent.name if agent and here.name == "subagents" else path.stem
                files[key] = SourceFile(key, parts[0] if parts else root.name, path, hint, agent)
    return [files[k] for k in sorted(files)]


@dataclass
class FileState:
    """What was consumed of a file: complete lines only, and a hash of those bytes (XXH3-128:
    it detects an edited transcript; it is not built to resist forged ones)."""

    key: str
    path: str
    size: int
    consumed: int
    lines: int
    xxh3_128: str | None

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> FileState:
        """A state as ``to_json`` wrote it. One an earlier version wrote (with a SHA-256,
        not this hash) has no hash: its file is read again, whole."""
        fields = {name: state[name] for name in cls.__dataclass_fields__ if name in state}
        return cls(**{"xxh3_128": None, **fields})


def resume_point(f, old: FileState | None) -> tuple[int, int, Any]:
    """(offset, line number, hasher) to continue ``f`` from, after checking its consumed prefix."""
    hasher = xxhash.xxh3_128()
    if old is None or old.consumed == 0 or old.xxh3_128 is None:
        return 0, 0, hasher
    left = old.consumed
    while left and (block := f.read(min(left, 1 << 20))):
        hasher.update(block)
        left -= len(block)
    if left == 0 and hasher.hexdigest() == old.xxh3_128:
        return old.consumed, old.lines, hasher
    f.seek(0)
    return 0, 0, xxhash.xxh3_128()


class Bad(Exception):
    """A line that cannot become a row: ``reason`` and detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class _Usage(msgspec.Struct):
    input_tokens: Any = None
    output_tokens: Any = None
    cache_creation_input_tokens: Any = None
    cache_read_input_tokens: Any = None


#: Any JSON value but an object: a field that must be an object (a struct) can be any of
#: these too, so that one decode reads every line and the row says what was wrong.
_NOT_OBJECT = list | str | int | float | bool | None


class _Message(msgspec.Struct):
    content: str | list[msgspec.Raw] | dict | int | float | bool | None = None  # blocks as written
    id: Any = None
    model: Any = None
    usage: _Usage | _NOT_OBJECT = None


class _Line(msgspec.Struct):
    """The fields of a transcript line that become columns; the others are skipped unparsed."""

    type: Any = None
    sessionId: Any = msgspec.UNSET
    timestamp: Any = None
    uuid: Any = None
    isSidechain: Any = None
    agentId: Any = None
    requestId: Any = None
    cwd: Any = None
    gitBranch: Any = None
    version: Any = None
    message: _Message | _NOT_OBJECT = None


class _Block(msgspec.Struct):
    type: Any = None
    text: Any = None


def _decoder(kind: Any):
    # float_hook: a number beyond a double's range (valid JSON) is inf where the type is Any
    return msgspec.json.Decoder(kind, float_hook=float).decode


_decode_line, _decode_block, _decode_any = _decoder(_Line), _decoder(_Block), _decoder(Any)


def _str(value: Any) -> str | None:
    return value if type(value) is str else None


class LineParser:
    """One file's lines to rows: an entry row (``ENTRY_SCHEMA``) for user/assistant lines,
    a raw row (``RAW_SCHEMA``) for any other object, or ``Bad`` saying why neither."""

    def __init__(self, src: SourceFile) -> None:
        self.src = src
        self.id_seed = hash63("message\x00" + src.key)
        self.session_ids: dict[str, int] = {}

    def parse(self, line: bytes, lineno: int, complete: bool = True) -> tuple:
        try:
            if not line.isascii():
                line.decode()  # msgspec does not check the UTF-8 of the fields it skips
            e = _decode_line(line)
        except msgspec.ValidationError as error:  # not an object, or a field's number beyond a double
            field = str(error).partition("- at `$.")[2].rstrip("`")
            raise Bad(f"bad-field:{field}", str(error)) if field else _why_not(line, complete) from None
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            raise _why_not(line, complete) from None
        if e.type == "user" or e.type == "assistant":
            return self._message_row(e, lineno)
        kind = "<none>" if e.type is None else e.type if type(e.type) is str else "<invalid>"
        return self.src.key, lineno, kind, _str(e.sessionId), _str(e.timestamp), line.rstrip(b"\r")

    def _message_row(self, e: _Line, lineno: int) -> tuple:
        msg = e.message
        if type(msg) is not _Message:
            raise Bad("bad-field:message", f"message is {type(msg).__name__}, expected an object")
        ts = _timestamp(e.timestamp)
        kind, text = _content(msg.content)
        sid = self.src.session_hint if e.sessionId is msgspec.UNSET else e.sessionId
        if type(sid) is not str or not sid:
            raise Bad("bad-field:sessionId", f"sessionId is {sid!r}, expected a non-empty string")
        tokens = (None, None, None, None)
        if e.type == "assistant" and msg.usage is not None:
            tokens = _tokens(msg.usage)
        sidechain = e.isSidechain is True
        uuid = e.uuid if type(e.uuid) is str else f"{self.src.key}:{lineno}"
        return (
            *self._ident(lineno, sid, sidechain, e.agentId), uuid, e.type, kind, text, ts,
            _str(msg.model), _str(msg.id), _str(e.requestId), sidechain,
            _str(e.cwd), _str(e.gitBranch), _str(e.version), *tokens,
        )  # fmt: skip

    def _ident(self, lineno: int, sid: str, sidechain: bool, agent: Any) -> tuple:
        """The identifying columns of a message row: file .. message id. A subagent's rows
        form a session of their own, ``<sessionId>/agent-<agentId>``."""
        named = type(agent) is str and agent
        if self.src.agent_file:
            skey = f"{sid}/agent-{agent}" if named else f"{sid}/{hint_agent(self.src.key)}"
        elif sidechain and named:
            skey = f"{sid}/agent-{agent}"
        else:
            skey = sid
        if skey not in self.session_ids:
            self.session_ids[skey] = session_id(skey)
        ident = (self.id_seed + lineno * _ID_STEP) & _ID_MASK
        return self.src.key, lineno, self.src.project, skey, self.session_ids[skey], ident


def _why_not(line: bytes, complete: bool) -> Bad:
    """Why a line that failed to decode is not an object we can read."""
    try:
        obj = _decode_any(line)
    except RecursionError:
        return Bad("malformed-json", "nested deeper than the JSON parser allows")
    except (msgspec.DecodeError, UnicodeDecodeError) as e:
        if not line.strip():
            reason = "blank-line"
        elif not complete:
            reason = "truncated-line"
        else:
            try:
                line.decode()
                reason = "malformed-json"
            except UnicodeDecodeError:
                reason = "invalid-utf8"
        return Bad(reason, str(e))
    return Bad("not-an-object", f"a JSON {type(obj).__name__}, expected an object")


def _timestamp(value: Any) -> datetime:
    """An ISO-8601 timestamp; one with an offset stays aware (Arrow stores it as UTC, the
    column's naive time)."""
    if not isinstance(value, str):
        raise Bad("bad-field:timestamp", f"timestamp is {type(value).__name__}, expected an ISO string")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise Bad("bad-field:timestamp", f"timestamp {value[:40]!r} is not ISO-8601") from None


def _content(content: Any) -> tuple[str, str | bytes]:
    """(type, content) of a message's content: text as it is; a list of blocks as their text
    when all are text blocks, else their JSON as written in the file (the block, or the list
    of several). JSON stays UTF-8 bytes, which Arrow takes as they are."""
    if type(content) is str:
        return "text", content
    if type(content) is not list:
        raise Bad("bad-field:message.content", f"content is {type(content).__name__}, expected text or list")
    if not content:
        return "text", "[]"
    heads = [_block_head(block) for block in content]
    kinds = {kind for kind, _ in heads}
    if kinds == {"text"} and all(type(text) is str for _, text in heads):
        return "text", "\n\n".join(text for _, text in heads)
    if len(content) == 1:
        return _block_kind(heads[0][0]), bytes(content[0])
    kind = _block_kind(next(iter(kinds))) if len(kinds) == 1 else "mixed"
    return kind, b"[" + b",".join(content) + b"]"


def _block_head(raw: msgspec.Raw) -> tuple[str | None, Any]:
    """A block's type (None unless a string, or if the block is not an object) and text."""
    try:
        block = _decode_block(raw)
    except msgspec.ValidationError:
        return None, None
    return _str(block.type), block.text


def _block_kind(kind: str | None) -> str:
    kind = "thinking" if kind == "redacted_thinking" else kind
    return kind if kind in _BLOCK_TYPES else "other"


def _tokens(u: Any) -> tuple[int, int, int, int]:
    """The four token counts of a message's ``usage`` (cache counts absent or null: 0)."""
    if type(u) is not _Usage:
        raise Bad("bad-field:message.usage", f"usage is {type(u).__name__}, expected an object")
    cache_creation, cache_read = u.cache_creation_input_tokens, u.cache_read_input_tokens
    counts = {
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cache_creation_input_tokens": 0 if cache_creation is None else cache_creation,
        "cache_read_input_tokens": 0 if cache_read is None else cache_read,
    }
    for name, v in counts.items():
        if type(v) is not int or not 0 <= v <= _INT32:
            raise Bad("bad-field:message.usage", f"usage.{name} is {v!r}, expected a count")
    return tuple(counts.values())


def hint_agent(key: str) -> str:
    """``agent-<id>`` from a subagent file key."""
    return key.rsplit("/", 1)[-1].removesuffix(".jsonl")


def _quarantine(key: str, lineno: int | None, reason: str, detail: str, line: bytes, size: int) -> dict:
    raw = line[:RAW_PREFIX].decode("utf-8", "backslashreplace").rstrip("\r\n")
    return {"file": key, "line": lineno, "reason": reason, "detail": detail, "bytes": size, "raw": raw}


@dataclass
class Parsed:
    """What parsing some files gave: rows in Arrow IPC files, and the rest in memory."""

    entries: Path
    raw: Path
    states: list[tuple[FileState, bool]] = field(default_factory=list)  # (state, prefix reused)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    tally: Counter[str] = field(default_factory=Counter)  # lines, bytes_read, unterminated


#: Rows per Arrow batch written while parsing, and bytes of lines behind them at most.
BATCH_ROWS, BATCH_BYTES = 4_096, 1 << 20
#: Read buffer: lines are split out of reads this large (docs/BENCHMARKS.md).
READ_BYTES = 1 << 20


def parse_files(
    files: Sequence[SourceFile],
    old: Sequence[FileState | None],
    stem: Path,
    progress: Callable[[int], None] | None = None,
) -> Parsed:
    """Parse ``files`` (each from where its ``old`` state left off, if that prefix is
    unchanged) into IPC files named after ``stem``."""
    out = Parsed(stem.with_suffix(".entries.arrow"), stem.with_suffix(".raw.arrow"))
    with (
        pa.ipc.new_file(str(out.entries), ENTRY_SCHEMA) as entries_file,
        pa.ipc.new_file(str(out.raw), RAW_SCHEMA) as raw_file,
    ):
        sinks = [(ENTRY_SCHEMA, entries_file, []), (RAW_SCHEMA, raw_file, [])]
        held = 0  # bytes of the lines the rows came from

        def flush() -> None:
            for schema, sink, rows in sinks:
                if rows:
                    columns = zip(*rows, strict=True)
                    sink.write_table(
                        pa.table([pa.array(c, f.type) for c, f in zip(columns, schema, strict=True)], schema)
                    )
                    rows.clear()

        for src, state in zip(files, old, strict=True):
            for row, size in _read_file(src, state, out, progress):
                sinks[len(row) != len(ENTRY_SCHEMA)][2].append(row)
                held += size
                if held >= BATCH_BYTES or len(sinks[0][2]) + len(sinks[1][2]) >= BATCH_ROWS:
                    flush()
                    held = 0
        flush()
    return out


def _read_file(
    src: SourceFile, old: FileState | None, out: Parsed, progress: Callable[[int], None] | None
) -> Iterator[tuple]:
    """(row, bytes of its line) for ``src``'s lines; its state, quarantined lines and tallies
    go to ``out``."""
    try:
        f = src.path.open("rb", buffering=READ_BYTES)
        size = os.fstat(f.fileno()).st_size
    except OSError as e:
        out.quarantine.append(_quarantine(src.key, None, "unreadable-file", str(e), b"", 0))
        out.states.append((FileState(src.key, str(src.path), -1, 0, 0, xxhash.xxh3_128().hexdigest()), False))
        return
    with f:
        offset, lineno, hasher = resume_point(f, old)
        consumed, lines, first, parser = offset, lineno, lineno, LineParser(src)
        try:
            for line in f:
                lineno += 1
                complete = line.endswith(b"\n")
                if complete:
                    hasher.update(line)
                    consumed += len(line)
                    lines = lineno
                else:
                    out.tally["unterminated"] += 1
                try:
                    yield parser.parse(line.removesuffix(b"\n"), lineno, complete), len(line)
                except Bad as e:
                    out.quarantine.append(_quarantine(src.key, lineno, e.reason, str(e), line, len(line)))
        except OSError as e:
            out.quarantine.append(_quarantine(src.key, lineno + 1, "unreadable-file", str(e), b"", 0))
        out.tally["lines"] += lineno - first
        out.tally["bytes_read"] += max(0, size - offset)
        if progress is not None:
            progress(max(0, size - offset))
    out.states.append(
        (FileState(src.key, str(src.path), size, consumed, lines, hasher.hexdigest()), offset > 0)
    )

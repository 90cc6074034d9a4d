"""Find transcript files and stream their lines into columnar row buffers.

Files are read in binary blocks split into lines, so neither a 3 GB file nor a 12 MB
line is ever held whole. ``user``/``assistant`` lines become message rows, every other
entry type becomes a raw row (kept verbatim), and a line that cannot be used becomes a
quarantine record with file, line number and reason. Each line is first decoded by
msgspec straight into typed structs that skip the fields no column needs; a line off
that common shape goes to the general parser (dicts), which alone decides quarantine
reasons (``LineParser``). A message's non-text content is kept as its JSON as written.
"""

from __future__ import annotations

import gc
import hashlib
import os
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

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
#: within a file, as collision-free across files as a hash, and no hashing per line.
_ID_STEP, _ID_MASK = 0x9E3779B97F4A7C15, 2**63 - 1
_fromiso = datetime.fromisoformat
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
class Tally:
    """Counters for one ingest run."""

    lines: int = 0
    bytes_read: int = 0
    unterminated: int = 0

    def merge(self, other: Tally) -> None:
        self.lines += other.lines
        self.bytes_read += other.bytes_read
        self.unterminated += other.unterminated


class Bad(Exception):
    """A line that is valid JSON but cannot become a row: ``reason`` and detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _timestamp(value: Any) -> datetime:
    if type(value) is str and value[-1:] == "Z":  # fast path: naive UTC straight from "...Z"
        try:
            ts = _fromiso(value[:-1])
        except ValueError:
            pass
        else:
            if ts.tzinfo is None:
                return ts
    if not isinstance(value, str):
        raise Bad("bad-field:timestamp", f"timestamp is {type(value).__name__}, expected an ISO string")
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise Bad("bad-field:timestamp", f"timestamp {value[:40]!r} is not ISO-8601") from None
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts


def _tokens(usage: Any) -> tuple[int, int, int, int]:
    if not isinstance(usage, dict):
        raise Bad("bad-field:message.usage", f"usage is {type(usage).__name__}, expected an object")
    get = usage.get
    a, b = get("input_tokens"), get("output_tokens")
    c, d = get("cache_creation_input_tokens"), get("cache_read_input_tokens")
    if c is None:
        c = 0
    if d is None:
        d = 0
    for name, v in (
        ("input_tokens", a),
        ("output_tokens", b),
        ("cache_creation_input_tokens", c),
        ("cache_read_input_tokens", d),
    ):
        if type(v) is not int or not 0 <= v <= _INT32:
            raise Bad("bad-field:message.usage", f"usage.{name} is {v!r}, expected a count")
    return a, b, c, d


class Buffers:
    """Row buffers; ``flush`` hands full batches to the sinks as Arrow tables."""

    def __init__(
        self,
        on_entries: Callable[[pa.Table], None],
        on_raw: Callable[[pa.Table], None],
        max_rows: int = 4_096,
        max_bytes: int = 2 << 20,
    ) -> None:
        self.entries: list[tuple] = []
        self.raw: list[tuple] = []
        self.size = 0
        self.on_entries, self.on_raw = on_entries, on_raw
        self.max_rows, self.max_bytes = max_rows, max_bytes

    def flush(self) -> None:
        if self.entries:
            self.on_entries(_table(self.entries, ENTRY_SCHEMA))
            self.entries = []
        if self.raw:
            self.on_raw(_table(self.raw, RAW_SCHEMA))
            self.raw = []
        self.size = 0


def _table(rows: list[tuple], schema: pa.Schema) -> pa.Table:
    columns = list(zip(*rows, strict=True))
    return pa.Table.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
    )


@dataclass
class FileState:
    """What was consumed of a file: complete lines only, and a hash of those bytes
    (XXH3-128: collisions by accident are as unlikely as with a cryptographic hash, which
    is what an edited transcript risks; it is not built to resist forged ones, and
    SHA-256 took 7% of an ingest's CPU)."""

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
    while left:
        block = f.read(min(left, 1 << 20))
        if not block:
            break
        hasher.update(block)
        left -= len(block)
    if left == 0 and hasher.hexdigest() == old.xxh3_128:
        return old.consumed, old.lines, hasher
    f.seek(0)
    return 0, 0, xxhash.xxh3_128()


def read_file(
    src: SourceFile,
    buffers: Buffers,
    quarantine: Callable[[dict[str, Any]], None],
    tally: Tally,
    old: FileState | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[FileState, bool]:
    """Stream ``src`` (from where ``old`` left off if its prefix is unchanged) into ``buffers``.

    Returns the new state and whether the old prefix was reused (its rows are then the
    caller's to put first).
    """
    key = src.key
    try:
        f = src.path.open("rb")
        size = os.fstat(f.fileno()).st_size
    except OSError as e:
        _quarantine(quarantine, key, None, "unreadable-file", str(e), b"")
        return FileState(key, str(src.path), -1, 0, 0, xxhash.xxh3_128().hexdigest()), False
    with f:
        offset, lineno, hasher = resume_point(f, old)
        consumed, lines, first = offset, lineno, lineno
        entries, raw = buffers.entries, buffers.raw
        parser = LineParser(src)
        pending = 0
        try:
            for block, complete, utf8 in _blocks(f, hasher, size - offset):
                # lines are views into the block: no copy of each line, as splitting made
                view, find, start, end = memoryview(block), block.find, 0, len(block)
                while start < end:
                    stop = find(b"\n", start)
                    if stop < 0:  # the last line of a file without a final newline
                        stop = end
                    line = view[start:stop]
                    n = stop + complete - start  # as in the file, with its newline
                    start = stop + 1
                    lineno += 1
                    try:
                        row = parser.fast(line, lineno, utf8)
                        if row is None:
                            row = parser.general(line, lineno, complete)
                    except Bad as e:
                        _quarantine(quarantine, key, lineno, e.reason, str(e), bytes(line[:RAW_PREFIX]), n)
                        continue
                    (entries if len(row) == _ENTRY_WIDTH else raw).append(row)
                    buffers.size += n
                    if buffers.size >= buffers.max_bytes or len(entries) + len(raw) >= buffers.max_rows:
                        buffers.flush()
                        entries, raw = buffers.entries, buffers.raw
                pending += end
                if complete:
                    consumed += end
                    lines = lineno
                else:
                    tally.unterminated += 1
                if pending >= 1 << 20 and progress is not None:
                    progress(pending)
                    pending = 0
        except OSError as e:
            _quarantine(quarantine, key, lineno + 1, "unreadable-file", str(e), b"")
        if progress is not None and pending:
            progress(pending)
        tally.lines += lineno - first
        tally.bytes_read += max(0, size - offset)
    return FileState(key, str(src.path), size, consumed, lines, hasher.hexdigest()), offset > 0


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cycle collector while files are parsed and their rows taken: rows are
    tuples of plain values, which make no cycles, but while thousands of them are alive
    each collection scans them all again (10-15% of an ingest's CPU)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


#: Bytes read at a time; lines are split out of each block.
BLOCK_BYTES = 1 << 20


def _blocks(f, hasher, left: int = -1) -> Iterator[tuple[bytes, bool, bool]]:
    """``(block, True, utf8)`` per block of whole lines, each ending with its newline
    (bytes hashed; ``utf8``: the whole block is valid UTF-8), then ``(last, False, False)``
    if the file ends without a newline. A line longer than a read is gathered in pieces,
    joined once. ``left``, the bytes expected (-1: unknown), sizes the reads: a small file
    does not allocate (and fragment the heap with) a whole block."""
    parts: list[bytes] = []
    read = f.read
    while block := read(left + 1 if 0 <= left < BLOCK_BYTES else BLOCK_BYTES):
        left -= len(block)
        cut = block.rfind(b"\n") + 1
        if not cut:
            parts.append(block)
            continue
        if parts:
            parts.append(block[:cut])
            data = b"".join(parts)
            parts = []
        else:
            data = block[:cut] if cut < len(block) else block
        if cut < len(block):
            parts.append(block[cut:])
        hasher.update(data)
        yield data, True, _utf8(data)
    if parts:
        yield b"".join(parts), False, False


def _utf8(data: bytes) -> bool:
    """Whether ``data`` is valid UTF-8, checked by Arrow (vectorized) without decoding it:
    under a third of the cost of decoding its non-ASCII lines one by one."""
    value = pa.Array.from_buffers(
        pa.large_string(), 1, [None, pa.py_buffer(_OFFSETS.pack(0, len(data))), pa.py_buffer(data)]
    )
    try:
        value.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


_OFFSETS = struct.Struct("<qq")


def _bad_reason(line: bytes, complete: bool) -> str:
    if not line.strip():
        return "blank-line"
    if not complete:
        return "truncated-line"
    try:
        line.decode()
    except UnicodeDecodeError:
        return "invalid-utf8"
    return "malformed-json"


def _quarantine(
    sink,
    key: str,
    lineno: int | None,
    reason: str,
    detail: str,
    line: bytes,
    size: int | None = None,
) -> None:
    sink(
        {
            "file": key,
            "line": lineno,
            "reason": reason,
            "detail": detail,
            "bytes": len(line) if size is None else size,
            "raw": line[:RAW_PREFIX].decode("utf-8", "backslashreplace").rstrip("\r\n"),
        }
    )


#: An entry row's width (a raw row is shorter).
_ENTRY_WIDTH = len(ENTRY_SCHEMA)

_Count = Annotated[int, msgspec.Meta(ge=0, le=_INT32)]


class _Usage(msgspec.Struct):
    input_tokens: _Count
    output_tokens: _Count
    cache_creation_input_tokens: _Count | None = None
    cache_read_input_tokens: _Count | None = None


class _Message(msgspec.Struct):
    content: str | list[msgspec.Raw]
    id: str | None = None
    model: str | None = None
    usage: _Usage | None = None


class _Entry(msgspec.Struct):
    """The fields of a transcript line that become columns, in the types the common case has."""

    type: str | None = None
    sessionId: str | msgspec.UnsetType = msgspec.UNSET
    timestamp: str | None = None
    message: _Message | None = None
    uuid: str | None = None
    isSidechain: bool | None = None
    agentId: str | None = None
    requestId: str | None = None
    cwd: str | None = None
    gitBranch: str | None = None
    version: str | None = None


class _Block(msgspec.Struct):
    type: Any = None
    text: Any = None


class _RawMessage(msgspec.Struct):
    content: list[msgspec.Raw]


class _RawContent(msgspec.Struct):
    message: _RawMessage


_decode_entry = msgspec.json.Decoder(_Entry).decode
_decode_block = msgspec.json.Decoder(_Block).decode
_decode_raw_content = msgspec.json.Decoder(_RawContent).decode
#: float_hook: a number beyond a double's range (valid JSON) is inf, as the typed decoder's
#: skipping takes it, not a reason to quarantine the line.
_decode_any = msgspec.json.Decoder(float_hook=float).decode
_NOT_FAST = (msgspec.DecodeError, ValueError, RecursionError)


class LineParser:
    """One file's lines to rows: an entry row for user/assistant lines, else a raw row.

    ``fast`` decodes straight into typed structs, skipping the fields no column needs,
    and answers None for any line that is not exactly the common shape; ``general``
    decodes into dicts, takes every line, and alone decides quarantine reasons. Both use
    msgspec's JSON parser (so they accept the same lines) and ``_list_content`` (so a
    message's blocks are stored the same way: as written in the file). For a line both
    take they give the same row; tests check this on the real fixtures and variants.
    """

    def __init__(self, src: SourceFile) -> None:
        self.key, self.project, self.hint, self.agent_file = (
            src.key,
            src.project,
            src.session_hint,
            src.agent_file,
        )
        self.id_seed = hash63("message\x00" + src.key)
        self.session_ids: dict[str, int] = {}

    def _ident(self, lineno: int, sid: str, sidechain: bool, agent: Any) -> tuple:
        """The identifying columns of a message row: file .. message id."""
        if self.agent_file:
            skey = f"{sid}/agent-{agent}" if type(agent) is str and agent else f"{sid}/{hint_agent(self.key)}"
        elif sidechain and type(agent) is str and agent:
            skey = f"{sid}/agent-{agent}"
        else:
            skey = sid
        ident = self.session_ids.get(skey)
        if ident is None:
            ident = self.session_ids[skey] = session_id(skey)
        return self.key, lineno, self.project, skey, ident, (self.id_seed + lineno * _ID_STEP) & _ID_MASK

    def fast(self, line: bytes | memoryview, lineno: int, utf8: bool = False) -> tuple | None:
        """The row of a line in the common shape; None hands the line to ``general``.
        ``utf8``: the line is known to be valid UTF-8 (else it is checked here)."""
        try:
            e = _decode_entry(line)
            if not utf8:  # msgspec does not check the UTF-8 of the fields it skips
                line = bytes(line)
                if not line.isascii():
                    line.decode()
        except _NOT_FAST:
            return None
        kind = e.type
        if kind != "user" and kind != "assistant":
            if kind is None:
                return None
            sid = e.sessionId
            sid = None if sid is msgspec.UNSET else sid
            return (self.key, lineno, kind, sid, e.timestamp, bytes(line).rstrip(b"\r"))
        msg, stamp, sid = e.message, e.timestamp, e.sessionId
        if sid is msgspec.UNSET:
            sid = self.hint
        if msg is None or stamp is None or stamp[-1:] != "Z" or not sid:
            return None
        try:
            ts = _fromiso(stamp[:-1])
            content = msg.content
            content = ("text", content) if type(content) is str else _list_content(content)
        except _NOT_FAST:
            return None
        if ts.tzinfo is not None:
            return None
        sidechain = e.isSidechain is True
        usage = msg.usage
        if kind == "assistant" and usage is not None:
            tokens: tuple[Any, ...] = (
                usage.input_tokens,
                usage.output_tokens,
                usage.cache_creation_input_tokens or 0,
                usage.cache_read_input_tokens or 0,
            )
        else:
            tokens = (None, None, None, None)
        uuid = e.uuid
        return (
            *self._ident(lineno, sid, sidechain, e.agentId),
            uuid if uuid is not None else f"{self.key}:{lineno}",
            kind,
            *content,
            ts,
            msg.model,
            msg.id,
            e.requestId,
            sidechain,
            e.cwd,
            e.gitBranch,
            e.version,
            *tokens,
        )

    def general(self, line: bytes | memoryview, lineno: int, complete: bool) -> tuple:
        """The row for any line, or ``Bad`` saying why it cannot be one."""
        line = bytes(line)
        try:
            obj = _decode_any(line)
        except (msgspec.DecodeError, UnicodeDecodeError) as e:
            raise Bad(_bad_reason(line, complete), str(e)) from None
        except RecursionError:
            raise Bad("malformed-json", "nested deeper than the JSON parser allows") from None
        if type(obj) is not dict:
            raise Bad("not-an-object", f"a JSON {type(obj).__name__}, expected an object")
        kind = obj.get("type")
        if kind == "user" or kind == "assistant":
            return self._message_row(obj, kind, lineno, line)
        sid, ts = obj.get("sessionId"), obj.get("timestamp")
        return (
            self.key,
            lineno,
            "<none>" if kind is None else kind if type(kind) is str else "<invalid>",
            sid if type(sid) is str else None,
            ts if type(ts) is str else None,
            line.rstrip(b"\r"),  # valid UTF-8: msgspec checked every string in it
        )

    def _message_row(self, obj: dict, role: str, lineno: int, line: bytes) -> tuple:
        msg = obj.get("message")
        if type(msg) is not dict:
            raise Bad("bad-field:message", f"message is {type(msg).__name__}, expected an object")
        ts = _timestamp(obj.get("timestamp"))
        content = msg.get("content")
        if isinstance(content, str):
            kind, text = "text", content
        elif isinstance(content, list):
            kind, text = _list_content(_decode_raw_content(line).message.content)
        else:
            detail = f"content is {type(content).__name__}, expected text or list"
            raise Bad("bad-field:message.content", detail)
        sid = obj.get("sessionId", self.hint)
        if type(sid) is not str or not sid:
            raise Bad("bad-field:sessionId", f"sessionId is {sid!r}, expected a non-empty string")
        sidechain = obj.get("isSidechain") is True
        uuid = obj.get("uuid")
        if type(uuid) is not str:
            uuid = f"{self.key}:{lineno}"
        model = msg.get("model")
        mid = msg.get("id")
        rid = obj.get("requestId")
        tokens: tuple[Any, ...] = (None, None, None, None)
        if role == "assistant" and "usage" in msg and msg["usage"] is not None:
            tokens = _tokens(msg["usage"])
        cwd, branch, version = obj.get("cwd"), obj.get("gitBranch"), obj.get("version")
        return (
            *self._ident(lineno, sid, sidechain, obj.get("agentId")),
            uuid,
            role,
            kind,
            text,
            ts,
            model if type(model) is str else None,
            mid if type(mid) is str else None,
            rid if type(rid) is str else None,
            sidechain,
            cwd if type(cwd) is str else None,
            branch if type(branch) is str else None,
            version if type(version) is str else None,
            *tokens,
        )


def _list_content(blocks: list[msgspec.Raw]) -> tuple[str, str | bytes]:
    """(type, content) of a message's list of content blocks: their text when all are text
    blocks, else their JSON as written in the file (the block, or the list of several).
    The JSON stays UTF-8 bytes, which Arrow takes as they are (checking them) for the
    string column: decoding it to ``str`` only for Arrow to encode it back cost 0.05 s
    per 200 MB (``bench_parse``-style timing, medians of 5)."""
    if len(blocks) == 1:  # the common case, as the rule below has it for one block
        kind, text = _block_head(blocks[0])
        if kind == "text" and type(text) is str:
            return "text", text
        return _block_kind(kind), bytes(blocks[0])
    if not blocks:
        return "text", "[]"
    heads = [_block_head(raw) for raw in blocks]
    kinds = {kind for kind, _ in heads}
    if kinds == {"text"} and all(type(text) is str for _, text in heads):
        return "text", "\n\n".join(text for _, text in heads)
    kind = _block_kind(next(iter(kinds))) if len(kinds) == 1 else "mixed"
    return kind, b"[" + b",".join(blocks) + b"]"


def _block_head(raw: msgspec.Raw) -> tuple[str | None, Any]:
    """A block's type (None unless a string, or if the block is not an object) and text."""
    try:
        block = _decode_block(raw)
    except msgspec.ValidationError:
        return None, None
    return (block.type if type(block.type) is str else None), block.text


def _block_kind(kind: str | None) -> str:
    kind = "thinking" if kind == "redacted_thinking" else kind
    return kind if kind in _BLOCK_TYPES else "other"


def hint_agent(key: str) -> str:
    """``agent-<id>`` from a subagent file key."""
    return key.rsplit("/", 1)[-1].removesuffix(".jsonl")

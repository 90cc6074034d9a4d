"""One transcript line -> one message row, with three JSON decoders.

The log-sync job keeps ``user`` and ``assistant`` lines (one row each, as the ingest's
``messages`` table does); every other entry type is skipped and counted. A line that
cannot be used becomes an :class:`Issue` with file, line and reason, never an exception.

Decoders: ``json`` (the standard library, bytes decoded to ``str`` first), ``orjson``
(bytes in, dicts out) and ``msgspec`` (typed structs that skip the fields no column
needs). All three give the same rows; only ``content`` of block lists may differ in
JSON spacing between libraries (compact for all three here).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson

from workbench.errors import WorkbenchError

#: The sync target's columns, in row order.
COLUMNS: tuple[str, ...] = (
    "uuid",
    "session_id",
    "file",
    "line",
    "role",
    "type",
    "content",
    "timestamp",
    "model",
    "input_tokens",
    "output_tokens",
)
MESSAGE_TYPES = frozenset({"user", "assistant"})
DECODERS = ("json", "orjson", "msgspec")
#: Characters of a bad line kept in its issue record.
RAW_PREFIX = 200

Row = tuple


class ProcessingError(WorkbenchError):
    """A processing option or input that cannot work, named with the fix."""


@dataclass(frozen=True)
class Issue:
    """A line or file that produced no row: where, and why."""

    file: str
    line: int | None
    reason: str
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "reason": self.reason, "detail": self.detail}


class Skip(Exception):
    """Raised by a decoder for a line that is valid JSON but not a message (not an issue)."""


class BadLine(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason, self.detail = reason, detail


# ---- the row, from a decoded dict (json and orjson) -------------------------------------
def _block_kind(content: list) -> str:
    kinds = {b.get("type") if isinstance(b, dict) else None for b in content}
    if len(kinds) == 1:
        (kind,) = kinds
        return kind if isinstance(kind, str) else "other"
    return "mixed" if kinds else "empty"


def _row_from_dict(d: Any, file: str, line: int, dumps: Callable[[Any], str]) -> Row:
    if not isinstance(d, dict):
        raise BadLine("not an object", type(d).__name__)
    kind = d.get("type")
    if kind not in MESSAGE_TYPES:
        raise Skip
    msg = d.get("message")
    uuid, session, ts = d.get("uuid"), d.get("sessionId"), d.get("timestamp")
    for name, value in (("uuid", uuid), ("sessionId", session), ("timestamp", ts)):
        if not isinstance(value, str) or not value:
            raise BadLine("missing field", name)
    if not isinstance(msg, dict):
        raise BadLine("missing field", "message")
    content = msg.get("content")
    if isinstance(content, str):
        block, text = "text", content
    elif isinstance(content, list):
        block, text = _block_kind(content), dumps(content)
    else:
        raise BadLine("missing field", "message.content")
    usage = msg.get("usage") if isinstance(msg.get("usage"), dict) else {}
    return (
        uuid,
        session,
        file,
        line,
        msg.get("role") or kind,
        block,
        text,
        ts,
        msg.get("model"),
        _int(usage.get("input_tokens")),
        _int(usage.get("output_tokens")),
    )


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _json_dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _orjson_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def decode_json(raw: bytes, file: str, line: int) -> Row:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadLine("invalid UTF-8", str(e)) from None
    try:
        d = json.loads(text)
    except ValueError as e:
        raise BadLine("malformed JSON", str(e)) from None
    return _row_from_dict(d, file, line, _json_dumps)


def decode_orjson(raw: bytes, file: str, line: int) -> Row:
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        reason = "invalid UTF-8" if "UTF-8" in str(e) else "malformed JSON"
        raise BadLine(reason, str(e)) from None
    return _row_from_dict(d, file, line, _orjson_dumps)


# ---- msgspec: typed structs, unknown fields skipped --------------------------------------
class _Line(msgspec.Struct):
    type: Any = None
    uuid: Any = None
    sessionId: Any = None  # noqa: N815 (the file's spelling)
    timestamp: Any = None
    message: Any = None


_line_decoder = msgspec.json.Decoder(_Line)
_encode = msgspec.json.encode


def decode_msgspec(raw: bytes, file: str, line: int) -> Row:
    try:
        d = _line_decoder.decode(raw)
    except msgspec.ValidationError as e:  # valid JSON, but not an object
        raise BadLine("not an object", str(e)) from None
    except msgspec.DecodeError as e:
        reason = "invalid UTF-8" if "UTF-8" in str(e) else "malformed JSON"
        raise BadLine(reason, str(e)) from None
    kind = d.type
    if kind not in MESSAGE_TYPES:
        raise Skip
    for name, value in (("uuid", d.uuid), ("sessionId", d.sessionId), ("timestamp", d.timestamp)):
        if not isinstance(value, str) or not value:
            raise BadLine("missing field", name)
    if not isinstance(d.message, dict):
        raise BadLine("missing field", "message")
    # The message was decoded as a dict (cheap for its few keys); content decides the rest.
    msg = d.message
    content = msg.get("content")
    if isinstance(content, str):
        block, text = "text", content
    elif isinstance(content, list):
        block, text = _block_kind(content), _encode(content).decode()
    else:
        raise BadLine("missing field", "message.content")
    usage = msg.get("usage") if isinstance(msg.get("usage"), dict) else {}
    return (
        d.uuid,
        d.sessionId,
        file,
        line,
        msg.get("role") or kind,
        block,
        text,
        d.timestamp,
        msg.get("model"),
        _int(usage.get("input_tokens")),
        _int(usage.get("output_tokens")),
    )


_DECODERS: dict[str, Callable[[bytes, str, int], Row]] = {
    "json": decode_json,
    "orjson": decode_orjson,
    "msgspec": decode_msgspec,
}


def decoder(name: str) -> Callable[[bytes, str, int], Row]:
    """The line decoder ``name``: ``decode(raw_line, file, line_no) -> row``."""
    try:
        return _DECODERS[name]
    except KeyError:
        raise ProcessingError(f"Unknown decoder {name!r}: expected one of {', '.join(DECODERS)}") from None


@dataclass
class MessageRow:
    """A row as a per-row object (what the plan's object pools would recycle)."""

    uuid: str
    session_id: str
    file: str
    line: int
    role: str
    type: str
    content: str
    timestamp: str
    model: str | None
    input_tokens: int | None
    output_tokens: int | None

    def astuple(self) -> Row:
        return (
            self.uuid,
            self.session_id,
            self.file,
            self.line,
            self.role,
            self.type,
            self.content,
            self.timestamp,
            self.model,
            self.input_tokens,
            self.output_tokens,
        )

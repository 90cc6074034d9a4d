"""Reading a transcript tree the ways the plan and a Python engineer would.

Line readers (each line then goes through a decoder from :mod:`.decode`):

- ``whole``: the plan's "before" (``os.ReadFile``): the file read into memory, split
  into lines, then decoded line by line. Memory grows with the file.
- ``stream``: the plan's "after": one line at a time (``readline`` with a length limit).
- ``chunked``: a reader thread reads fixed-size blocks and hands lists of lines to the
  decoder through a bounded queue, so a slow consumer stops the reader (backpressure).

Library readers ("use a library"): ``polars`` (``scan_ndjson``, one file at a time,
collected) and ``duckdb`` (``read_json``, fetched as Arrow record batches).

Every reader reports what it could not use as :class:`~.decode.Issue` records (file,
line, reason): malformed JSON, invalid UTF-8, a truncated last line, a line over
``max_line_bytes``, a message missing a field, an unreadable file, and keeps going. A
library stops at a file's first unparseable line without saying which, so when it
refuses a file, the ``stream`` line reader (with the ``decode`` asked for) reads the
rest of that file, line by line: the bad lines are quarantined and the valid ones kept,
none read twice. Libraries number records, skipping blank lines: in a file with blank
lines their line numbers run behind the file's.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from workbench.processing.decode import (
    COLUMNS,
    BadLine,
    Issue,
    ProcessingError,
    Row,
    Skip,
    decoder,
)

LINE_READERS = ("whole", "stream", "chunked")
TREE_READERS = ("polars", "duckdb")
READERS = LINE_READERS + TREE_READERS
#: Lines longer than this are reported, not decoded (the longest real line seen is ~1 MB).
MAX_LINE_BYTES = 64 * 2**20
CHUNK_BYTES = 2**20
QUEUE_CHUNKS = 4


@dataclass
class ReadStats:
    """What a read saw: files, lines, rows produced, lines skipped (not messages), issues."""

    files: int = 0
    bytes: int = 0
    lines: int = 0
    rows: int = 0
    skipped: int = 0
    issues: list[Issue] = field(default_factory=list)
    #: Files a library reader refused, finished by the line reader.
    fallbacks: int = 0


def find_files(root: str | os.PathLike[str]) -> list[tuple[str, Path]]:
    """Every ``*.jsonl`` under ``root`` as (key relative to root, path), sorted by key."""
    base = Path(root)
    if not base.exists():
        raise ProcessingError(f"Transcript folder {str(base)!r} does not exist: pass a projects folder")
    if base.is_file():
        return [(base.name, base)]
    return sorted((p.relative_to(base).as_posix(), p) for p in base.rglob("*.jsonl"))


# ---- line readers: yield (line number, raw bytes or None when too long, ends with newline)
Line = tuple[int, bytes | None, bool]


def _whole(path: Path, max_line: int, **_: object) -> Iterator[Line]:
    data = path.read_bytes()
    lines = data.split(b"\n")
    last = len(lines) - 1
    for i, raw in enumerate(lines):
        if i == last and not raw:
            break
        yield i + 1, (raw if len(raw) <= max_line else None), i < last


def _stream(path: Path, max_line: int, **_: object) -> Iterator[Line]:
    with open(path, "rb") as f:
        n = 0
        while raw := f.readline(max_line + 1):
            n += 1
            if raw.endswith(b"\n"):
                yield n, raw[:-1], True
            elif len(raw) <= max_line:
                yield n, raw, False  # the last line, without its newline
            else:
                while (rest := f.readline(CHUNK_BYTES)) and not rest.endswith(b"\n"):
                    pass  # skip the rest of the over-long line without holding it
                yield n, None, bool(rest)


def _chunked(
    path: Path, max_line: int, chunk_bytes: int = CHUNK_BYTES, queue_chunks: int = QUEUE_CHUNKS
) -> Iterator[Line]:
    q: queue.Queue = queue.Queue(maxsize=queue_chunks)
    stop = threading.Event()
    done = object()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            with open(path, "rb") as f:
                n, parts, size, too_long = 0, [], 0, False
                while block := f.read(chunk_bytes):
                    out: list[Line] = []
                    start = 0
                    while (end := block.find(b"\n", start)) >= 0:
                        n += 1
                        piece = block[start:end]
                        if too_long or size + len(piece) > max_line:
                            out.append((n, None, True))
                        else:
                            out.append((n, b"".join(parts) + piece if parts else piece, True))
                        parts, size, too_long, start = [], 0, False, end + 1
                    tail = block[start:]
                    if tail:
                        size += len(tail)
                        if size > max_line:
                            too_long, parts = True, []
                        elif not too_long:
                            parts.append(tail)
                    if out and not put(out):
                        return
                if size:
                    put([(n + 1, None if too_long else b"".join(parts), False)])
            put(done)
        except BaseException as e:  # handed to the consumer, raised there
            put(e)

    thread = threading.Thread(target=produce, name=f"chunked-reader:{path.name}", daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()
        thread.join()


_LINE_READERS = {"whole": _whole, "stream": _stream, "chunked": _chunked}


def check_reader(name: str) -> str:
    if name not in READERS:
        raise ProcessingError(f"Unknown reader {name!r}: expected one of {', '.join(READERS)}")
    return name


def read_rows(
    root: str | os.PathLike[str],
    *,
    reader: str = "stream",
    decode: str = "orjson",
    stats: ReadStats | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[Row]:
    """Every message row of the tree at ``root`` (a folder or one file), in file and line order.

    Problems go to ``stats.issues``; valid lines are never dropped.
    """
    check_reader(reader)
    stats = stats if stats is not None else ReadStats()
    files = find_files(root)
    parse = decoder(decode)
    if reader in TREE_READERS:
        yield from _tree_rows(reader, files, stats, parse, max_line_bytes)
        return
    for key, path in files:
        if not _counted(key, path, stats):
            continue
        lines = _LINE_READERS[reader](path, max_line_bytes, chunk_bytes=chunk_bytes)
        yield from _line_rows(key, lines, parse, stats, max_line_bytes)


def _unreadable(key: str, e: OSError) -> Issue:
    return Issue(key, None, "unreadable file", f"{type(e).__name__}: {e.strerror or e}")


def _counted(key: str, path: Path, stats: ReadStats) -> bool:
    """Count the file in ``stats``; False (and an issue) when it cannot be opened."""
    stats.files += 1
    try:
        with open(path, "rb"):
            stats.bytes += path.stat().st_size
        return True
    except OSError as e:
        stats.issues.append(_unreadable(key, e))
        return False


def _line_rows(
    key: str,
    lines: Iterator[Line],
    parse: Callable[[bytes, str, int], Row],
    stats: ReadStats,
    max_line_bytes: int,
    done: Callable[[int], bool] | None = None,
) -> Iterator[Row]:
    """The rows of one file's ``lines``, its problems counted in ``stats``; lines whose
    record number (non-blank lines, from 1) ``done`` accepts were read already and pass."""
    record = 0
    try:
        for n, raw, complete in lines:
            if done is not None and (raw is None or raw.strip()):
                record += 1
                if done(record):
                    continue
            stats.lines += 1
            if raw is None:
                stats.issues.append(Issue(key, n, "line too long", f"over {max_line_bytes:,} bytes"))
                continue
            if not raw.strip():
                stats.skipped += 1
                continue
            try:
                row = parse(raw, key, n)
            except Skip:
                stats.skipped += 1
                continue
            except BadLine as e:
                reason = e.reason if complete or e.reason != "malformed JSON" else "truncated last line"
                stats.issues.append(Issue(key, n, reason, e.detail[:200]))
                continue
            stats.rows += 1
            yield row
    except OSError as e:
        stats.issues.append(_unreadable(key, e))


def batched(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    """Lists of at most ``size`` rows."""
    if size < 1:
        raise ProcessingError(f"Batch size {size} is too small: use 1 or more")
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# ---- library readers ---------------------------------------------------------------------
#: What a library reader yields per record: (record number, status, row without the file).
#: Status None is a message row, "skip" a valid line that is no message, anything else
#: the name of the message's missing field.
Record = tuple[int, str | None, tuple]


class _Done:
    """Which record numbers a library has handed over, held as a prefix 1..n plus the few
    that came out of order (a library that streams may not keep order)."""

    def __init__(self) -> None:
        self.prefix, self.ahead = 0, set()

    def add(self, n: int) -> None:
        self.ahead.add(n)
        while self.prefix + 1 in self.ahead:
            self.prefix += 1
            self.ahead.remove(self.prefix)

    def __call__(self, n: int) -> bool:
        return n <= self.prefix or n in self.ahead


def _tree_rows(
    reader: str,
    files: Sequence[tuple[str, Path]],
    stats: ReadStats,
    parse: Callable[[bytes, str, int], Row],
    max_line_bytes: int,
) -> Iterator[Row]:
    records = _LIBRARY_READERS[reader]
    for key, path in files:
        if not _counted(key, path, stats):
            continue
        done = _Done()
        try:
            for n, status, row in records(path):
                done.add(n)
                stats.lines += 1
                if status is None:
                    stats.rows += 1
                    yield (row[0], row[1], key, n, *row[2:])
                elif status == "skip":
                    stats.skipped += 1
                else:
                    stats.issues.append(Issue(key, n, "missing field", status))
        except Exception:  # the library refused the file: the line reader says which lines
            stats.fallbacks += 1
            lines = _stream(path, max_line_bytes)
            yield from _line_rows(key, lines, parse, stats, max_line_bytes, done=done)


def _polars_records(path: Path) -> Iterator[Record]:
    import polars as pl

    usage = pl.Struct({"input_tokens": pl.Int64, "output_tokens": pl.Int64})
    message = pl.Struct({"role": pl.String, "content": pl.String, "model": pl.String, "usage": usage})
    schema = {
        "type": pl.String,
        "uuid": pl.String,
        "sessionId": pl.String,
        "timestamp": pl.String,
        "message": message,
    }
    msg = pl.col("message").struct
    status = pl.when(pl.col("type").is_in(["user", "assistant"]).not_() | pl.col("type").is_null())
    status = status.then(pl.lit("skip"))
    for name in ("uuid", "sessionId", "timestamp"):
        status = status.when(pl.col(name).fill_null("") == "").then(pl.lit(name))
    status = status.when(pl.col("message").is_null()).then(pl.lit("message"))
    status = status.when(msg.field("content").is_null()).then(pl.lit("message.content"))
    frame = (
        pl.scan_ndjson(path, schema=schema, row_index_name="line", row_index_offset=1)
        .select(
            "line",
            status.otherwise(pl.lit(None, pl.String)).alias("status"),
            "uuid",
            pl.col("sessionId").alias("session_id"),
            pl.coalesce(msg.field("role"), "type").alias("role"),
            pl.when(msg.field("content").str.starts_with("["))
            .then(pl.lit("blocks"))
            .otherwise(pl.lit("text"))
            .alias("kind"),
            msg.field("content").alias("content"),
            "timestamp",
            msg.field("model").alias("model"),
            msg.field("usage").struct.field("input_tokens").alias("input_tokens"),
            msg.field("usage").struct.field("output_tokens").alias("output_tokens"),
        )
        .collect()
    )
    for n, state, *row in frame.iter_rows():
        yield n, state, tuple(row)


def _duckdb_records(path: Path) -> Iterator[Record]:
    import duckdb

    con = duckdb.connect()
    try:
        columns = (
            "{type: 'VARCHAR', uuid: 'VARCHAR', sessionId: 'VARCHAR', timestamp: 'VARCHAR', message: 'JSON'}"
        )
        rel = con.sql(
            "SELECT ordinality :: BIGINT,"
            " CASE WHEN type IS NULL OR type NOT IN ('user', 'assistant') THEN 'skip'"
            " WHEN coalesce(uuid, '') = '' THEN 'uuid'"
            " WHEN coalesce(sessionId, '') = '' THEN 'sessionId'"
            " WHEN coalesce(timestamp, '') = '' THEN 'timestamp'"
            " WHEN message IS NULL OR json_type(message) <> 'OBJECT' THEN 'message'"
            " WHEN coalesce(json_type(message->'$.content'), 'NULL') NOT IN ('VARCHAR', 'ARRAY')"
            " THEN 'message.content' END,"
            " uuid, sessionId, coalesce(message->>'$.role', type),"
            " CASE WHEN json_type(message->'$.content') = 'VARCHAR' THEN 'text' ELSE 'blocks' END,"
            " message->>'$.content', timestamp, message->>'$.model',"
            " (message->'$.usage.input_tokens')::BIGINT, (message->'$.usage.output_tokens')::BIGINT"
            f" FROM read_json($file, format = 'newline_delimited', columns = {columns}) WITH ORDINALITY",
            params={"file": str(path)},
        )
        for batch in rel.arrow():  # a lazy record-batch reader: streamed, not materialised
            for n, state, *row in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                yield n, state, tuple(row)
    finally:
        con.close()


_LIBRARY_READERS: dict[str, Callable[[Path], Iterator[Record]]] = {
    "polars": _polars_records,
    "duckdb": _duckdb_records,
}


assert len(COLUMNS) == 11

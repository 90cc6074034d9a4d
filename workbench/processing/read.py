"""Reading a transcript tree the ways the plan and a Python engineer would.

Line readers (each line then goes through a decoder from :mod:`.decode`):

- ``whole``: the plan's "before" (``os.ReadFile``): the file read into memory, split
  into lines, then decoded line by line. Memory grows with the file.
- ``stream``: the plan's "after": one line at a time (``readline`` with a length limit).
- ``chunked``: a reader thread reads fixed-size blocks and hands lists of lines to the
  decoder through a bounded queue, so a slow consumer stops the reader (backpressure).

Whole-tree readers ("use a library"): ``polars`` (``scan_ndjson`` over every file,
collected) and ``duckdb`` (``read_json``, fetched as Arrow record batches).

Every reader reports what it could not use as :class:`~.decode.Issue` records (file,
line, reason): malformed JSON, invalid UTF-8, a truncated last line, a line over
``max_line_bytes``, an unreadable file. Line readers keep going after each; the
library readers refuse a bad tree as a whole (they cannot say which line), with an
error that names the file and the fix.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator, Sequence
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
    if reader in TREE_READERS:
        yield from _tree_rows(reader, files, stats)
        return
    parse = decoder(decode)
    lines = _LINE_READERS[reader]
    for key, path in files:
        stats.files += 1
        try:
            stats.bytes += path.stat().st_size
            for n, raw, complete in lines(path, max_line_bytes, chunk_bytes=chunk_bytes):
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
            stats.issues.append(Issue(key, None, "unreadable file", f"{type(e).__name__}: {e.strerror or e}"))


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


# ---- whole-tree readers -------------------------------------------------------------------
def _readable(files: Sequence[tuple[str, Path]], stats: ReadStats) -> list[tuple[str, Path]]:
    ok = []
    for key, path in files:
        stats.files += 1
        try:
            with open(path, "rb"):
                stats.bytes += path.stat().st_size
            ok.append((key, path))
        except OSError as e:
            stats.issues.append(Issue(key, None, "unreadable file", f"{type(e).__name__}: {e.strerror or e}"))
    return ok


def _tree_rows(reader: str, files: Sequence[tuple[str, Path]], stats: ReadStats) -> Iterator[Row]:
    files = _readable(files, stats)
    if not files:
        return
    keys = {str(p): k for k, p in files}
    try:
        rows = _polars_rows(files) if reader == "polars" else _duckdb_rows(files)
        for row in rows:
            stats.rows += 1
            yield (row[0], row[1], keys.get(row[2], row[2]), *row[3:])
    except ProcessingError:
        raise
    except Exception as e:
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise ProcessingError(
            f"The {reader} reader cannot read this tree ({first}): it stops at the first bad line "
            "without saying which; use --reader stream (or chunked), which reports bad lines and keeps going"
        ) from None


def _polars_rows(files: Sequence[tuple[str, Path]]) -> Iterator[Row]:
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
    frame = (
        pl.scan_ndjson([p for _, p in files], schema=schema, include_file_paths="file")
        .with_columns(line=pl.int_range(1, pl.len() + 1).over("file"))
        .filter(pl.col("type").is_in(["user", "assistant"]))
        .filter(pl.all_horizontal(pl.col("uuid", "sessionId", "timestamp", "message").is_not_null()))
        .select(
            "uuid",
            pl.col("sessionId").alias("session_id"),
            "file",
            "line",
            pl.coalesce(pl.col("message").struct.field("role"), "type").alias("role"),
            pl.when(pl.col("message").struct.field("content").str.starts_with("["))
            .then(pl.lit("blocks"))
            .otherwise(pl.lit("text"))
            .alias("type"),
            pl.col("message").struct.field("content").alias("content"),
            "timestamp",
            pl.col("message").struct.field("model").alias("model"),
            pl.col("message").struct.field("usage").struct.field("input_tokens").alias("input_tokens"),
            pl.col("message").struct.field("usage").struct.field("output_tokens").alias("output_tokens"),
        )
        .collect()
    )
    yield from frame.iter_rows()


def _duckdb_rows(files: Sequence[tuple[str, Path]]) -> Iterator[Row]:
    import duckdb

    con = duckdb.connect()
    try:
        columns = (
            "{type: 'VARCHAR', uuid: 'VARCHAR', sessionId: 'VARCHAR', timestamp: 'VARCHAR', message: 'JSON'}"
        )
        rel = con.sql(
            "SELECT uuid, sessionId, filename,"
            " row_number() OVER (PARTITION BY filename) :: BIGINT,"
            " coalesce(message->>'$.role', type),"
            " CASE WHEN json_type(message->'$.content') = 'VARCHAR' THEN 'text' ELSE 'blocks' END,"
            " message->>'$.content', timestamp, message->>'$.model',"
            " (message->'$.usage.input_tokens')::BIGINT, (message->'$.usage.output_tokens')::BIGINT"
            f" FROM read_json($files, format = 'newline_delimited', columns = {columns}, filename = true)"
            " WHERE type IN ('user', 'assistant') AND uuid IS NOT NULL AND sessionId IS NOT NULL"
            " AND timestamp IS NOT NULL AND message IS NOT NULL",
            params={"files": [str(p) for _, p in files]},
        )
        for batch in rel.arrow():  # a lazy record-batch reader: streamed, not materialised
            yield from zip(*(c.to_pylist() for c in batch.columns), strict=True)
    finally:
        con.close()


assert len(COLUMNS) == 11

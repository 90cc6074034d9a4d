"""Ingest transcript trees into a Dataset: parse, deduplicate, derive tables.

The ingest makes two passes. The first parses the files in tasks (``pool``: on worker
processes and here), takes each task's rows in file order and keeps what the tables need
per message (``dedup.per_message``, ``tables.groups``, titles) as arrays; the rows
themselves wait in scratch Arrow files. The second writes the messages table from those
files, tokens kept by the copies the dedup chose (``dedup.winners``), then the sessions,
projects and windows (``tables``). Bytes written do not depend on how the work was split.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from workbench import schema
from workbench.dataset import MANIFEST, Dataset, DatasetWriter
from workbench.errors import DatasetError
from workbench.sources.claude_code import dedup, pool, tables
from workbench.sources.claude_code.reader import (
    ENTRY_SCHEMA,
    RAW_SCHEMA,
    FileState,
    Parsed,
    SourceFile,
    find_files,
    resolve_roots,
)
from workbench.windows import TOKEN_COLUMNS

KIND = "claude-code"
#: Rows per Parquet row group of the messages table and side files. Fixed, so that a
#: full ingest and an incremental one write byte-identical files.
CHUNK_ROWS = 8_192
#: Rows per row group of the raw entries' side file: a chunk of raw lines is held whole
#: (re-sliced, then written) and raw lines can be large, so its chunks are smaller.
RAW_CHUNK_ROWS = 2_048
FILE_STATUSES = ("new", "grown", "unchanged", "reread", "removed", "empty", "unreadable")
LINE_COLUMNS = (
    "file", "line", "project", "session_key", "message_id", "request_id", "is_sidechain",
    "cwd", "git_branch", "version", *TOKEN_COLUMNS,
)  # fmt: skip
MESSAGE_SOURCE = ("id", "session_id", "uuid", "role", "type", "content", "timestamp", "model", *TOKEN_COLUMNS)
MESSAGE_COLUMNS = tuple(schema.arrow_schema("messages").names)
LINES_SCHEMA = pa.schema([ENTRY_SCHEMA.field(c) for c in LINE_COLUMNS])


@dataclass
class IngestReport:
    """What an ingest read, kept, quarantined and wrote."""

    dataset: Dataset
    mode: str
    roots: list[str]
    files: dict[str, int]
    lines_read: int
    bytes_read: int
    entries: dict[str, int]
    quarantined: dict[str, int]
    duplicates_collapsed: int
    unterminated_lines: int
    counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """A few human-readable lines (what the CLI prints)."""
        files = ", ".join(f"{n} {k}" for k, n in self.files.items() if n)
        quarantined = sum(self.quarantined.values())
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(self.quarantined.items()))
        lines = [
            f"Dataset {self.dataset.path} ({self.mode} ingest of {len(self.roots)} root(s)): "
            f"{files or 'no files'}",
            f"  read {self.lines_read:,} lines, {self.bytes_read / 1e6:,.1f} MB this run",
            "  rows: " + ", ".join(f"{t} {n:,}" for t, n in self.counts.items()),
            "  entries: " + ", ".join(f"{t} {n:,}" for t, n in sorted(self.entries.items())),
            f"  streamed duplicates collapsed: {self.duplicates_collapsed:,}",
            f"  quarantined: {quarantined:,}"
            + (f" ({reasons}) -> {self.dataset.path / 'quarantine.jsonl'}" if quarantined else ""),
        ]
        return "\n".join(lines)


def ingest(
    paths: Sequence[str | os.PathLike[str]] | None,
    dest: str | os.PathLike[str],
    *,
    progress: bool = True,
    overwrite: bool = False,
    update: bool = True,
    workers: int | None = None,
) -> IngestReport:
    """Ingest Claude Code transcript trees at ``paths`` (default: ccusage's roots) into ``dest``.

    If ``dest`` already holds a claude-code Dataset of the same roots, only new files and
    the appended bytes of grown files are read (``update=False`` re-reads everything); the
    result equals a full ingest. Any other existing dataset is replaced only with
    ``overwrite=True``. ``workers`` parser processes run beside this one, which parses too
    whenever the result it needs next is not ready (default: one if this process may run
    on two or more CPUs, else none; 0 parses here only, with the least memory); the
    Dataset is the same either way. Scratch files (about the size of the transcripts
    read) live beside ``dest`` until the end.
    """
    roots = resolve_roots(paths)
    dest = Path(dest)
    source = {"kind": KIND, "roots": [str(r) for r in roots]}
    previous = _previous(dest, source, overwrite) if update else None
    workers = pool.default_workers() if workers is None else workers
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{dest.name}.work.", dir=dest.parent) as work:
        run = _Run(Path(work), previous)
        with DatasetWriter(dest, source=source, overwrite=dest.exists()) as writer:
            run.stream(find_files(roots), writer, progress, workers)
            extra = run.finalize(writer)
            writer.extra = {"ingest": extra}
    return IngestReport(dataset=writer.dataset, **{k: v for k, v in extra.items() if k != "file_states"})


def _previous(dest: Path, source: dict[str, Any], overwrite: bool) -> Dataset | None:
    """The claude-code Dataset of the same roots at ``dest`` to update, if any."""
    if not (dest / MANIFEST).exists():
        return None
    try:
        ds = Dataset.open(dest)
    except DatasetError:
        ds, what = None, "a broken dataset"
    else:
        if ds.manifest.get("source") == source and "ingest" in ds.manifest:
            return None if overwrite else ds
        what = f"a {ds.manifest.get('source', {}).get('kind')!r} dataset of other roots"
    if overwrite:
        return None
    raise DatasetError(
        f"{str(dest)!r} holds {what}: pass overwrite=True (--overwrite) to replace it, or choose another path"
    )


class _Rechunker:
    """Re-slices a stream of tables into tables of exactly ``size`` rows (the last shorter),
    each one Arrow chunk: the bytes written must not depend on how the rows were batched."""

    def __init__(self, size: int, emit) -> None:
        self.size, self.emit, self.buf, self.n = size, emit, [], 0

    def add(self, table: pa.Table) -> None:
        self.buf.append(table)
        self.n += table.num_rows
        while self.n >= self.size:
            whole = pa.concat_tables(self.buf)
            self.emit(whole.slice(0, self.size).combine_chunks())
            rest = whole.slice(self.size)
            self.buf, self.n = [rest], rest.num_rows

    def close(self) -> None:
        if self.n:
            self.emit(pa.concat_tables(self.buf).combine_chunks())
        self.buf, self.n = [], 0


class _FileRows:
    """Reads row tables sorted by file, handing out one file's rows (up to a line) at a time."""

    def __init__(self, tables: Iterator[pa.Table]) -> None:
        self.tables, self.buf = tables, None

    def take(self, key: str, max_line: int) -> list[pa.Table]:
        out = []
        while True:
            if self.buf is None or self.buf.num_rows == 0:
                self.buf = next(self.tables, None)
                if self.buf is None:
                    return out
            files = self.buf.column("file")
            mine = pc.equal(files, key)
            out.append(self.buf.filter(pc.and_(mine, pc.less_equal(self.buf.column("line"), max_line))))
            later = pc.greater(files, key)
            if pc.any(later).as_py():
                self.buf = self.buf.filter(later)
                return out
            self.buf = None


class _Previous:
    """The previous Dataset's rows of each file, read in file order as an update needs them."""

    def __init__(self, ds: Dataset) -> None:
        self.entries = _FileRows(self._entries(ds))
        raw = pq.ParquetFile(ds.path / "raw_entries.parquet")
        self.raw = _FileRows(raw.read_row_group(i).cast(RAW_SCHEMA) for i in range(raw.num_row_groups))
        self.quarantine: dict[str, list[dict[str, Any]]] = {}
        if (ds.path / "quarantine.jsonl").exists():
            for line in (ds.path / "quarantine.jsonl").read_bytes().splitlines():
                rec = orjson.loads(line)
                self.quarantine.setdefault(rec["file"], []).append(rec)

    @staticmethod
    def _entries(ds: Dataset) -> Iterator[pa.Table]:
        """The message rows rebuilt as entry rows (the two files' row groups are aligned)."""
        messages = pq.ParquetFile(ds.file("messages"))
        lines = pq.ParquetFile(ds.path / "message_lines.parquet")
        for i in range(messages.num_row_groups):
            cols = {n: c for n, c in zip(LINE_COLUMNS, lines.read_row_group(i).columns, strict=True)}
            m = messages.read_row_group(i, columns=[c for c in MESSAGE_COLUMNS if c not in TOKEN_COLUMNS])
            cols.update(zip(m.column_names, m.columns, strict=True))
            cols["uuid"] = cols.pop("external_id")
            yield pa.table({f.name: cols[f.name].cast(f.type) for f in ENTRY_SCHEMA}, schema=ENTRY_SCHEMA)


def _merged(
    parsed: Parsed, task: pool.Task, previous: _Previous
) -> tuple[Path, pa.Table, pa.Table, list[dict]]:
    """A task's entry rows (and the scratch file they are written to), raw rows and quarantine
    records, each file's kept prefix (from the previous Dataset) before its new rows."""
    new_entries = _read(parsed.entries)
    new_raw = _read(parsed.raw)
    entries, raw, quarantine = [ENTRY_SCHEMA.empty_table()], [RAW_SCHEMA.empty_table()], []
    for src, old, (_, reused) in zip(task.files, task.old, parsed.states, strict=True):
        if reused:
            entries += previous.entries.take(src.key, old.lines)
            raw += previous.raw.take(src.key, old.lines)
            quarantine += [
                r
                for r in previous.quarantine.get(src.key, [])
                if r["line"] is not None and r["line"] <= old.lines
            ]
        entries.append(new_entries.filter(pc.equal(new_entries.column("file"), src.key)))
        raw.append(new_raw.filter(pc.equal(new_raw.column("file"), src.key)))
        quarantine += [r for r in parsed.quarantine if r["file"] == src.key]
    merged, segment = pa.concat_tables(entries), parsed.entries.with_suffix(".merged.arrow")
    with pa.ipc.new_file(str(segment), ENTRY_SCHEMA) as out:
        out.write_table(merged)
    return segment, merged, pa.concat_tables(raw), quarantine


def _read(path: Path) -> pa.Table:
    """An Arrow IPC file, memory-mapped: the columns never used are never read."""
    return pa.ipc.open_file(pa.memory_map(str(path))).read_all()


class _Run:
    """One ingest: the parsing pass (scratch files, per-message arrays), then the tables."""

    def __init__(self, work: Path, previous: Dataset | None) -> None:
        self.work, self.previous = work, previous
        states = previous.manifest["ingest"]["file_states"] if previous else []
        self.old_states = {s["key"]: FileState.from_json(s) for s in states}
        self.tally: Counter[str] = Counter()
        self.files: Counter[str] = Counter()
        self.states: list[FileState] = []
        self.quarantined: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        # (rank: 0 custom-title, 1 ai-title, 2 summary; sessionId; leafUuid; title), in file order
        self.titles: list[tuple[int, str | None, str | None, str]] = []
        self.segments: list[Path] = []  # the message rows, in order
        # dedup and window inputs, per task
        self.per_message: list[dict[str, np.ndarray]] = [
            {k: np.zeros(0, t) for k, t in dedup.PER_MESSAGE.items()}
        ]
        self.groups: list[pa.Table] = []  # per-session partial figures, per task

    def stream(self, files: list[SourceFile], w: DatasetWriter, progress: bool, workers: int) -> None:
        """Parse the files and take their rows in file order."""
        tasks = pool.make_tasks(files, self.old_states)
        previous = _Previous(self.previous) if self.previous else None
        raw_file = pq.ParquetWriter(w.side_file("raw_entries.parquet"), RAW_SCHEMA, compression="zstd")
        raw = _Rechunker(RAW_CHUNK_ROWS, lambda t: self._take_raw(t, raw_file))
        bar = tqdm(
            total=sum(t.nbytes for t in tasks), unit="B", unit_scale=True, disable=not progress, desc="ingest"
        )
        with raw_file, bar, w.side_file("quarantine.jsonl").open("wb") as qfile:
            for task, parsed in zip(
                tasks, pool.parse_tasks(tasks, self.work, workers, bar.update), strict=True
            ):
                if any(reused for _, reused in parsed.states):
                    segment, entries, raw_rows, quarantine = _merged(parsed, task, previous)
                else:
                    segment, entries, raw_rows = parsed.entries, _read(parsed.entries), _read(parsed.raw)
                    quarantine = parsed.quarantine
                self.segments.append(segment)
                self._take_entries(entries.drop_columns(["content"]))
                raw.add(raw_rows)
                for rec in quarantine:
                    self.quarantined[rec["reason"]] += 1
                    qfile.write(orjson.dumps(rec) + b"\n")
                for old, (state, reused) in zip(task.old, parsed.states, strict=True):
                    self._count_file(old, state, reused)
                self.tally.update(parsed.tally)
                parsed.raw.unlink()
                # unmapped now, not while the next task is parsed here
                del entries, raw_rows
            raw.close()
        self.files["removed"] = len(set(self.old_states) - {f.key for f in files})

    def _take_entries(self, t: pa.Table) -> None:
        """A task's message rows in final order: what dedup, windows and sessions need of them."""
        self.counts.update(t.column("role").to_pylist())
        self.per_message.append(dedup.per_message(t))
        self.groups.append(tables.groups(t))

    def _take_raw(self, t: pa.Table, raw_file: pq.ParquetWriter) -> None:
        """A chunk of ``RAW_CHUNK_ROWS`` raw entries, in final order: side file, counts, titles."""
        raw_file.write_table(t, row_group_size=RAW_CHUNK_ROWS)
        self.counts.update(t.column("type").to_pylist())
        self.titles += tables.titles_of(t)

    def _count_file(self, old: FileState | None, state: FileState, reused: bool) -> None:
        self.states.append(state)
        grown = "grown" if old and state.size > old.consumed else "unchanged"
        self.files["new" if old is None else grown if reused else "reread"] += 1
        self.files["empty"] += state.size == 0
        self.files["unreadable"] += state.size < 0

    def finalize(self, w: DatasetWriter) -> dict[str, Any]:
        rows = {k: np.concatenate([p[k] for p in self.per_message]) for k in dedup.PER_MESSAGE}
        self.per_message = []
        won = np.zeros(len(rows["session"]), bool)
        won[dedup.winners(**{k: rows[k] for k in ("usage", "keyed", "key", "mid", "total", "side")})] = True
        windows = tables.windows(rows, won)
        usage_rows = int(rows["usage"].sum())
        del rows
        leaves = self._write_messages(w, won, {leaf for _, _, leaf, _ in self.titles if leaf is not None})
        sessions, projects = tables.sessions_projects(self.groups, self.titles, leaves)
        w.write_arrow("projects", projects)
        w.write_arrow("sessions", sessions)
        w.write_arrow("session_windows", windows)
        w.write_arrow("jobs", schema.arrow_schema("jobs").empty_table())
        return {
            "mode": "incremental" if self.previous else "full",
            "roots": w.source["roots"],
            "files": {k: self.files[k] for k in FILE_STATUSES},
            "lines_read": self.tally["lines"],
            "bytes_read": self.tally["bytes_read"],
            "entries": {k: int(v) for k, v in sorted(self.counts.items())},
            "quarantined": dict(sorted(self.quarantined.items())),
            "duplicates_collapsed": usage_rows - int(won.sum()),
            "unterminated_lines": self.tally["unterminated"],
            "counts": {"projects": projects.num_rows, "sessions": sessions.num_rows, "messages": len(won)},
            "file_states": [s.to_json() for s in self.states],
        }

    def _segments(self, columns: Sequence[str]) -> Iterator[pa.Table]:
        for path in self.segments:
            reader = pa.ipc.open_file(pa.memory_map(str(path)))
            for i in range(reader.num_record_batches):
                yield pa.Table.from_batches([reader.get_batch(i)]).select(list(columns))

    def _write_messages(self, w: DatasetWriter, won: np.ndarray, leaves: set[str]) -> dict[str, int]:
        """The messages table and its side file of source lines, in chunks of ``CHUNK_ROWS``
        rows; only the winning copy of a streamed response keeps its tokens. Returns the
        session of the first message with each uuid in ``leaves``. A chunk of messages is
        encoded on a thread while the next is prepared (Arrow releases the GIL for both)."""
        offset, wanted, found, encoded = 0, pa.array(sorted(leaves), pa.string()), {}, None
        lines_file = w.side_file("message_lines.parquet")
        with (
            pq.ParquetWriter(lines_file, LINES_SCHEMA, compression="zstd") as lines,
            ThreadPoolExecutor(1) as encoder,
        ):

            def write(t: pa.Table) -> None:
                nonlocal offset, encoded
                lines.write_table(t.select(list(LINE_COLUMNS)), row_group_size=CHUNK_ROWS)
                hit = t.filter(pc.is_in(t.column("uuid"), wanted))
                for u, sid in zip(
                    hit.column("uuid").to_pylist(), hit.column("session_id").to_pylist(), strict=True
                ):
                    found.setdefault(u, sid)
                keep = pa.array(won[offset : offset + t.num_rows])
                offset += t.num_rows
                for c in TOKEN_COLUMNS:
                    col = t.column(c)
                    t = t.set_column(
                        t.schema.get_field_index(c), c, pc.if_else(keep, col, pa.nulls(len(col), col.type))
                    )
                if encoded is not None:
                    encoded.result()
                messages = t.select(list(MESSAGE_SOURCE)).rename_columns(list(MESSAGE_COLUMNS))
                encoded = encoder.submit(w.write_arrow, "messages", messages)

            chunker = _Rechunker(CHUNK_ROWS, write)
            for t in self._segments(ENTRY_SCHEMA.names):
                chunker.add(t)
            chunker.close()
            if encoded is not None:
                encoded.result()
        if offset == 0:
            empty = pa.schema([ENTRY_SCHEMA.field(c) for c in MESSAGE_SOURCE]).empty_table()
            w.write_arrow("messages", empty.rename_columns(list(MESSAGE_COLUMNS)))
        return found

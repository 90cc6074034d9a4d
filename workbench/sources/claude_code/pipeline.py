"""Ingest transcript trees into a Dataset: parse in parallel, deduplicate, derive tables."""

from __future__ import annotations

import bisect
import ctypes
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
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
from workbench.sources.claude_code import parallel
from workbench.sources.claude_code.reader import (
    ENTRY_SCHEMA,
    RAW_SCHEMA,
    FileState,
    SourceFile,
    Tally,
    find_files,
    gc_paused,
    hash63,
    resolve_roots,
    session_id,
)
from workbench.windows import TOKEN_COLUMNS, window_rows

KIND = "claude-code"
#: Rows per Parquet row group of the messages table and side files. Fixed, so that a
#: full ingest and an incremental one write byte-identical files.
CHUNK_ROWS = 8_192
#: Message rows (all but their content) pooled before the per-chunk work (side file,
#: dedup keys, aggregates); a few MB.
POOL_ROWS = 16_384
FILE_STATUSES = ("new", "grown", "unchanged", "reread", "removed", "empty", "unreadable")
TITLE_TYPES = ("custom-title", "ai-title", "summary")
LINE_COLUMNS = (
    "file", "line", "project", "session_key", "message_id", "request_id", "is_sidechain",
    "cwd", "git_branch", "version", *TOKEN_COLUMNS,
)  # fmt: skip
MESSAGE_COLUMNS = tuple(schema.arrow_schema("messages").names)


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

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "dataset"}
        out["dataset"] = str(self.dataset.path)
        return out

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
    ``overwrite=True``. ``workers`` parser processes run beside this one, which parses
    too whenever it would wait (default: one if this process may run on two or more
    CPUs, else none; 0 parses only here, with the least memory; see docs/BENCHMARKS.md);
    the Dataset is the same either way. Scratch files (about half the size of the
    transcripts read) live beside ``dest`` until the end.
    """
    roots = resolve_roots(paths)
    dest = Path(dest)
    source = {"kind": KIND, "roots": [str(r) for r in roots]}
    previous = _previous(dest, source, overwrite)
    if not update:
        previous = None
    states = previous.manifest["ingest"]["file_states"] if previous else []
    old_states = {s["key"]: FileState.from_json(s) for s in states}
    # Arrow's default pool (mimalloc) keeps freed chunks; the system allocator returns
    # them, which keeps peak RSS flat (about 70 MB less on a 100 MB tree). This covers
    # the arrays built here; Arrow's own buffers (IPC, Parquet) come from the pool Arrow
    # chose when first imported: ARROW_POOL in the CLI and the workers.
    memory_pool = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        with (
            gc_paused(),
            tempfile.TemporaryDirectory(prefix=f".{dest.name}.work.", dir=_parent(dest)) as work,
            parallel.started(
                Path(work), parallel.default_workers() if workers is None else workers
            ) as parsers,
        ):
            files = find_files(roots)
            run = _Run(Path(work), previous, old_states)
            writer = DatasetWriter(dest, source=source, overwrite=dest.exists())
            with writer as w:
                run.stream(files, w, progress, parsers)
                extra = run.finalize(w)
                writer.extra = {"ingest": extra}
    finally:
        pa.set_memory_pool(memory_pool)
    return IngestReport(dataset=writer.dataset, **{k: v for k, v in extra.items() if k != "file_states"})


def _parent(dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    return dest.parent


def _previous(dest: Path, source: dict[str, Any], overwrite: bool) -> Dataset | None:
    """The claude-code Dataset of the same roots at ``dest`` to update, if any."""
    if not (dest / MANIFEST).exists():
        return None
    try:
        ds = Dataset.open(dest)
    except DatasetError:
        return None if overwrite else _raise_other(dest, "a broken dataset")
    if ds.manifest.get("source") == source and "ingest" in ds.manifest:
        return None if overwrite else ds
    if overwrite:
        return None
    return _raise_other(dest, f"a {ds.manifest.get('source', {}).get('kind')!r} dataset of other roots")


def _raise_other(dest: Path, what: str) -> None:
    raise DatasetError(
        f"{str(dest)!r} holds {what}: pass overwrite=True (--overwrite) to replace it, or choose another path"
    )


def _trim() -> None:
    """Hand the heap's free pages back to the OS between phases (glibc's ``malloc_trim``,
    as Dask's workers do): each phase frees most of what the one before allocated, but
    glibc keeps freed pages mapped, and the next phase's peak would stack on them."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)


@cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None)  # the C library this process runs on
    except (OSError, TypeError):  # TypeError: Windows cannot open "no library"
        return None


class _Rechunker:
    """Re-slices a stream of tables into tables of exactly ``size`` rows (the last shorter)."""

    def __init__(self, size: int, emit: Callable[[pa.Table], None]) -> None:
        self.size, self.emit, self.buf, self.n = size, emit, [], 0

    def add(self, table: pa.Table) -> None:
        self.buf.append(table)
        self.n += table.num_rows
        while self.n >= self.size:
            whole = pa.concat_tables(self.buf)
            # one Arrow chunk per emitted table: the bytes written must not depend on how
            # the input was batched (buffer sizes, resumed rows of an incremental ingest)
            self.emit(whole.slice(0, self.size).combine_chunks())
            rest = whole.slice(self.size)
            self.buf, self.n = [rest], rest.num_rows

    def close(self) -> None:
        if self.n:
            self.emit(pa.concat_tables(self.buf).combine_chunks())
        self.buf, self.n = [], 0


class _Pooled:
    """Pools tables until ``size`` rows, then hands their concatenation to ``take``."""

    def __init__(self, size: int, take: Callable[[pa.Table], None]) -> None:
        self.size, self.take, self.buf, self.n = size, take, [], 0

    def add(self, table: pa.Table) -> None:
        if table.num_rows:
            self.buf.append(table)
            self.n += table.num_rows
            if self.n >= self.size:
                self.close()

    def close(self) -> None:
        if self.buf:
            table = pa.concat_tables(self.buf)
            self.buf, self.n = [], 0
            self.take(table)


class _FileRows:
    """Reads row tables sorted by file, handing out one file's rows (up to a line) at a time."""

    def __init__(self, tables: Iterator[pa.Table]) -> None:
        self.tables, self.buf, self.files = tables, None, []

    def take(self, key: str, max_line: int | None = None) -> list[pa.Table]:
        out = []
        while True:
            if self.buf is None:
                nxt = next(self.tables, None)
                if nxt is None:
                    return out
                self.buf, self.files = nxt, nxt.column("file").to_pylist()
            lo = bisect.bisect_left(self.files, key)
            hi = bisect.bisect_right(self.files, key)
            if hi > lo:
                part = self.buf.slice(lo, hi - lo)
                if max_line is not None:
                    part = part.filter(pc.less_equal(part.column("line"), max_line))
                out.append(part)
            if hi < len(self.files):
                self.buf, self.files = self.buf.slice(hi), self.files[hi:]
                return out
            self.buf = None


def _old_entries(ds: Dataset) -> Iterator[pa.Table]:
    """The previous dataset's message rows rebuilt as entry rows (row groups are aligned)."""
    messages = pq.ParquetFile(ds.file("messages"))
    lines = pq.ParquetFile(ds.path / "message_lines.parquet")
    for i in range(messages.num_row_groups):
        m = messages.read_row_group(
            i, columns=["id", "session_id", "external_id", "role", "type", "content", "timestamp", "model"]
        )
        li = lines.read_row_group(i)
        cols = {n: li.column(n) for n in LINE_COLUMNS}
        cols.update({n: m.column(n) for n in m.column_names})
        cols["uuid"] = cols.pop("external_id")
        yield pa.table({f.name: cols[f.name].cast(f.type) for f in ENTRY_SCHEMA}, schema=ENTRY_SCHEMA)


def _old_raw(ds: Dataset) -> Iterator[pa.Table]:
    raw = pq.ParquetFile(ds.path / "raw_entries.parquet")
    for i in range(raw.num_row_groups):
        yield raw.read_row_group(i).cast(RAW_SCHEMA)


#: Partitions of the per-row dedup and window state: 1/16 of it is in memory at a time.
PARTITIONS = 16
DEDUP_SCHEMA = pa.schema(
    [("row", pa.int64()), ("keyed", pa.bool_()), ("key", pa.int64()), ("mid", pa.int64()),
     ("total", pa.int64()), ("side", pa.bool_())]
)  # fmt: skip
WINDOW_SCHEMA = pa.schema(
    [("row", pa.int64()), ("session", pa.int64()), ("stamp", pa.int64()), ("total", pa.int64())]
)


class _Partitions:
    """Rows hash-partitioned into scratch files, read back one partition at a time: what
    dedup, the windows and the session figures keep per row (about 60 bytes a message,
    a few hundred a session) does not have to fit in memory at once, so peak memory does
    not grow with the tree (Grace hash partitioning; every group a computation needs lies
    in one partition)."""

    def __init__(self, path: Path, schema_: pa.Schema, count: int) -> None:
        self.schema = schema_
        self.paths = [path.with_name(f"{path.name}-{i:02d}.arrow") for i in range(count)]
        self.writers = [pa.ipc.new_stream(str(p), schema_) for p in self.paths]

    def add(self, by: np.ndarray, rows: pa.RecordBatch | pa.Table) -> None:
        """Append ``rows`` (of the partitions' schema); ``by``, 64-bit integers, one per row,
        picks each row's partition."""
        part = by.view(np.uint64) % np.uint64(len(self.writers))
        order = np.argsort(part, kind="stable")  # keeps row order within a partition
        bounds = np.r_[0, np.cumsum(np.bincount(part, minlength=len(self.writers)))]
        for i, writer in enumerate(self.writers):
            if bounds[i + 1] > bounds[i]:
                writer.write(rows.take(order[bounds[i] : bounds[i + 1]]))

    def read(self) -> Iterator[pa.Table]:
        """Each non-empty partition (its rows in the order they were added), then its file is removed."""
        for writer in self.writers:
            writer.close()
        for path in self.paths:
            with pa.OSFile(str(path)) as f:
                table = pa.ipc.open_stream(f).read_all()
            path.unlink()
            if table.num_rows:
                yield table


def _numpy(table: pa.Table) -> dict[str, np.ndarray]:
    return {name: table.column(name).to_numpy() for name in table.column_names}


class _Dedup:
    """ccusage's dedup of streamed copies, fed chunk by chunk in row order.

    Copies sharing (message.id, requestId) collapse to the one with the largest token total
    (first in file order on a tie). Then, among survivors sharing a message.id with
    different requestIds, sidechain copies are duplicates: a non-sidechain copy wins,
    else the largest sidechain copy. Only usage rows are kept, as 34 bytes each, the keys
    as 64-bit hashes (Python's SipHash of the strings, within this process), partitioned
    by message.id: every group the rule looks at lies in one partition.
    """

    def __init__(self, work: Path) -> None:
        self.parts = _Partitions(work / "dedup", DEDUP_SCHEMA, PARTITIONS)
        self.usage_rows = 0

    def add(self, t: pa.Table, offset: int, total: pa.ChunkedArray) -> None:
        """The usage rows of ``t`` (whose first row is row ``offset``); ``total`` is each row's token sum."""
        has = pc.is_valid(t.column("input_tokens"))
        if not pc.any(has).as_py():
            return
        u = t.filter(has)
        rows = np.flatnonzero(has.to_numpy(zero_copy_only=False)).astype(np.int64) + offset
        mids, rids = u.column("message_id").to_pylist(), u.column("request_id").to_pylist()
        keyed = np.array([m is not None and r is not None for m, r in zip(mids, rids, strict=True)], bool)
        key = np.array([hash((m, r)) for m, r in zip(mids, rids, strict=True)], np.int64)
        mid = np.array([hash(m) for m in mids], np.int64)
        total = total.filter(has).to_numpy().astype(np.int64)
        side = u.column("is_sidechain").to_numpy().astype(bool)
        columns = {"row": rows, "keyed": keyed, "key": key, "mid": mid, "total": total, "side": side}
        self.parts.add(mid, pa.record_batch(columns, schema=DEDUP_SCHEMA))
        self.usage_rows += len(rows)

    def winners(self) -> np.ndarray:
        """The rows whose tokens count, sorted."""
        found = [_winners(**_numpy(part)) for part in self.parts.read()]
        return np.sort(np.concatenate(found)) if found else np.zeros(0, np.int64)


def _winners(
    row: np.ndarray, keyed: np.ndarray, key: np.ndarray, mid: np.ndarray, total: np.ndarray, side: np.ndarray
) -> np.ndarray:
    """``_Dedup``'s rule on one partition's usage rows: the rows that keep their tokens."""
    loose = row[~keyed]
    rows, key, mid, total, side = row[keyed], key[keyed], mid[keyed], total[keyed], side[keyed]
    # per key: largest total, then first row
    order = np.lexsort((rows, -total, key))
    first = np.ones(len(order), bool)
    first[1:] = key[order][1:] != key[order][:-1]
    pick = order[first]
    rows, mid, total, side = rows[pick], mid[pick], total[pick], side[pick]
    # per message.id: the non-sidechain copies, else the best sidechain copy
    order = np.lexsort((rows, -total, mid))
    m = mid[order]
    starts = np.flatnonzero(np.r_[True, m[1:] != m[:-1]])
    has_main = np.logical_or.reduceat(~side[order], starts) if len(order) else np.zeros(0, bool)
    group = np.cumsum(np.r_[True, m[1:] != m[:-1]]) - 1 if len(order) else np.zeros(0, np.int64)
    is_first = np.zeros(len(order), bool)
    is_first[starts] = True
    keep = np.where(has_main[group], ~side[order], is_first)
    return np.concatenate([rows[order][keep], loose])


#: One row per group of a chunk's message rows: the session figures' partial sums.
GROUP_KEYS = ("session_id", "session_key", "project", "role", "model", "git_branch", "cwd")
GROUP_SCHEMA = pa.schema(
    [*(ENTRY_SCHEMA.field(k) for k in GROUP_KEYS), ("lo", pa.timestamp("us")), ("hi", pa.timestamp("us")),
     ("n", pa.int64())]
)  # fmt: skip


class _Aggregates:
    """Per-session and per-project figures. Each chunk's rows are grouped (a few groups per
    session) and the groups spilled to partitions by session, merged one partition at a
    time at the end, so no per-session state is held while the tree is read. Per-project
    state (first activity, working folders) is a few entries per project and stays here."""

    def __init__(self, work: Path) -> None:
        self.groups = _Partitions(work / "sessions", GROUP_SCHEMA, PARTITIONS)
        self.cwds: Counter[tuple[str, str]] = Counter()
        self.projects: dict[str, Any] = {}

    def add(self, t: pa.Table) -> None:
        # One grouping per chunk (each group_by has a fixed cost): a few rows per session.
        g = t.group_by(list(GROUP_KEYS), use_threads=False).aggregate(
            [("timestamp", "min"), ("timestamp", "max"), ("line", "count")]
        )
        g = g.select([*GROUP_KEYS, "timestamp_min", "timestamp_max", "line_count"])
        g = g.rename_columns(GROUP_SCHEMA.names)
        self.groups.add(g.column("session_id").to_numpy(), g)
        p = g.group_by(["project", "cwd"], use_threads=False).aggregate([("lo", "min"), ("n", "sum")])
        columns = (p.column(c).to_pylist() for c in ("project", "cwd", "lo_min", "n_sum"))
        for project, cwd, lo, n in zip(*columns, strict=True):
            first = self.projects.get(project)
            self.projects[project] = lo if first is None else min(first, lo)
            if cwd:
                self.cwds[(project, cwd)] += n

    def cwds_by_project(self) -> dict[str, str]:
        """Per project, the working folder with the most messages (ties: the smallest)."""
        keys = list(self.cwds)
        counts = pa.table(
            {
                "project": pa.array([project for project, _ in keys], pa.string()),
                "cwd": pa.array([cwd for _, cwd in keys], pa.string()),
                "n": pa.array(list(self.cwds.values()), pa.int64()),
            }
        )
        best = _most_frequent(counts, "project", "cwd").to_pydict()
        return dict(zip(best["project"], best["cwd"], strict=True))

    def sessions(self) -> pa.Table:
        """One row per session, by id: ``SESSION_SCHEMA``'s figures, its model and git
        branch the ones with the most messages (the assistant's, ``<synthetic>`` aside)."""
        parts = [SESSION_SCHEMA.empty_table()]
        for g in self.groups.read():
            s = g.group_by("session_id", use_threads=False).aggregate(
                [("session_key", "min"), ("project", "min"), ("lo", "min"), ("hi", "max"), ("n", "sum")]
            )
            role, model, branch = g.column("role"), g.column("model"), g.column("git_branch")
            counted = {  # nulls compare to null, which the filter drops
                "model": pc.and_(
                    pc.and_(pc.equal(role, "assistant"), pc.not_equal(model, "<synthetic>")),
                    pc.not_equal(model, ""),
                ),
                "git_branch": pc.not_equal(branch, ""),
            }
            for column, mask in counted.items():
                frequent = _most_frequent(g.filter(mask), "session_id", column)
                s = s.join(frequent, "session_id", join_type="left outer")
            parts.append(s.select(_SESSION_COLUMNS).rename_columns(SESSION_SCHEMA.names))
        # one chunk, as the lists it replaced: the Parquet bytes must not depend on the partitions
        return pa.concat_tables(parts).cast(SESSION_SCHEMA).sort_by("session_id").combine_chunks()


#: A partition's session table as its group_by and joins name the columns, and as returned.
_SESSION_COLUMNS = [
    "session_id", "session_key_min", "project_min", "lo_min", "hi_max", "n_sum", "model", "git_branch",
]  # fmt: skip
SESSION_SCHEMA = pa.schema(
    [("session_id", pa.int64()), ("session_key", pa.string()), ("project", pa.string()),
     ("lo", pa.timestamp("us")), ("hi", pa.timestamp("us")), ("n", pa.int64()),
     ("model", pa.string()), ("git_branch", pa.string())]
)  # fmt: skip


def _most_frequent(groups: pa.Table, key: str, column: str) -> pa.Table:
    """Per ``key``, the value of ``column`` with the most messages ``n`` (ties: the smallest)."""
    counts = groups.group_by([key, column], use_threads=False).aggregate([("n", "sum")])
    counts = counts.sort_by([(key, "ascending"), ("n_sum", "descending"), (column, "ascending")])
    keys = counts.column(key).to_numpy(zero_copy_only=False)
    first = np.ones(len(keys), bool)
    first[1:] = keys[1:] != keys[:-1]
    return counts.filter(first).select([key, column])


MESSAGE_SOURCE = ("id", "session_id", "uuid", "role", "type", "content", "timestamp", "model", *TOKEN_COLUMNS)
#: What the streaming phase reads of each entry row: everything but the content.
META_COLUMNS = tuple(n for n in ENTRY_SCHEMA.names if n != "content")
LINES_SCHEMA = pa.schema([ENTRY_SCHEMA.field(c) for c in LINE_COLUMNS])


class _Run:
    """One ingest: streaming phase (side files, spill, aggregates, dedup keys) then the tables."""

    def __init__(self, work: Path, previous: Dataset | None, old_states: dict[str, FileState]) -> None:
        self.work = work
        self.previous = previous
        self.old_states = old_states
        self.tally = Tally()
        self.quarantined: Counter[str] = Counter()
        self.states: list[FileState] = []
        self.files: Counter[str] = Counter()
        self.rows = 0
        self.dedup = _Dedup(work)
        self.agg = _Aggregates(work)
        self.counts: Counter[str] = Counter()
        self.titles: list[tuple[str, str | None, str]] = []
        self.windows_input = _Partitions(work / "windows", WINDOW_SCHEMA, PARTITIONS)
        # parse batches (a few thousand rows) pooled until a chunk is worth the per-chunk work
        self.entries = _Pooled(POOL_ROWS, self._take_entries)
        self.segments: list[parallel.EntryFile] = []  # the message rows, in order

    def _open(self, w: DatasetWriter) -> None:
        self.lines_file = pq.ParquetWriter(
            w.side_file("message_lines.parquet"), LINES_SCHEMA, compression="zstd"
        )
        self.lines = _Rechunker(
            CHUNK_ROWS, lambda t: self.lines_file.write_table(t, row_group_size=CHUNK_ROWS)
        )
        self.raw_file = pq.ParquetWriter(w.side_file("raw_entries.parquet"), RAW_SCHEMA, compression="zstd")
        self.raw = _Rechunker(CHUNK_ROWS, self._take_raw)
        self.uuids_path = self.work / "uuids.arrow"
        uuid_schema = pa.schema([ENTRY_SCHEMA.field("uuid"), ENTRY_SCHEMA.field("session_id")])
        self.uuids = pa.ipc.new_stream(str(self.uuids_path), uuid_schema)

    def _take_entries(self, t: pa.Table) -> None:
        """Message rows (``META_COLUMNS``) in final order; their full rows are in ``segments``."""
        self.lines.add(t.select(list(LINE_COLUMNS)))
        # one batch per pooled chunk (not one per parse batch): _titles looks them up batch by batch
        self.uuids.write_table(t.select(["uuid", "session_id"]).combine_chunks())
        total = _total(t)
        self.dedup.add(t, self.rows, total)
        self.agg.add(t)
        for role, n in zip(*_value_counts(t.column("role")), strict=True):
            self.counts[role] += n
        sessions = t.column("session_id").to_numpy()
        columns = {
            "row": np.arange(self.rows, self.rows + t.num_rows, dtype=np.int64),
            "session": sessions,
            "stamp": t.column("timestamp").cast(pa.int64()).to_numpy(),
            "total": total.fill_null(0).to_numpy(),
        }
        self.windows_input.add(sessions, pa.record_batch(columns, schema=WINDOW_SCHEMA))
        self.rows += t.num_rows

    def _take_raw(self, t: pa.Table) -> None:
        """A chunk of ``CHUNK_ROWS`` raw entries, in final order: side file, counts, titles."""
        self.raw_file.write_table(t, row_group_size=CHUNK_ROWS)
        for kind, n in zip(*_value_counts(t.column("type")), strict=True):
            self.counts[kind] += n
        titles = t.filter(pc.is_in(t.column("type"), pa.array(TITLE_TYPES)))
        if titles.num_rows:
            self.titles.extend(
                zip(*(titles.column(c).to_pylist() for c in ("type", "session", "json")), strict=True)
            )

    def stream(
        self, files: list[SourceFile], w: DatasetWriter, progress: bool, workers: list[parallel.Worker]
    ) -> None:
        """Parse the files (here and on the ``workers``) and take their rows in file order."""
        self._open(w)
        resume = self.previous is not None
        old_entries = _FileRows(_old_entries(self.previous)) if resume else None
        old_raw = _FileRows(_old_raw(self.previous)) if resume else None
        old_quarantine: dict[str, list[dict[str, Any]]] = {}
        if resume and (self.previous.path / "quarantine.jsonl").exists():
            with (self.previous.path / "quarantine.jsonl").open("rb") as f:
                for line in f:
                    rec = orjson.loads(line)
                    old_quarantine.setdefault(rec["file"], []).append(rec)
        # bytes still to read per file: a file's unchanged prefix is only hashed
        sizes = [
            max(0, _size(f.path) - (s.consumed if (s := self.old_states.get(f.key)) else 0)) for f in files
        ]
        tasks = parallel.plan(files, self.old_states, sizes)
        bar = tqdm(total=sum(sizes), unit="B", unit_scale=True, disable=not progress, desc="ingest")
        qfile = w.side_file("quarantine.jsonl").open("wb")

        def quarantine(rec: dict[str, Any]) -> None:
            self.quarantined[rec["reason"]] += 1
            qfile.write(orjson.dumps(rec) + b"\n")

        try:
            for result in parallel.parse(tasks, self.work, workers, bar.update):
                if any(done.reused for done in result.files):
                    self._take_resumed(result, old_entries, old_raw, old_quarantine, quarantine)
                else:
                    self.segments.append(result.entries)
                    for t in result.entry_tables(META_COLUMNS):
                        self.entries.add(t)
                    for t in result.raw_tables():
                        self.raw.add(t)
                    for rec in result.quarantine_records():
                        quarantine(rec)
                for old, done in zip(result.task.old, result.files, strict=True):
                    self._count_file(old, done)
                self.tally.merge(result.tally)
                result.remove(entries=False)
            self.entries.close()
        finally:
            qfile.close()
            bar.close()
            self.lines.close()
            self.lines_file.close()
            self.raw.close()
            self.raw_file.close()
            self.uuids.close()
        self.files["removed"] = len(set(self.old_states) - {f.key for f in files})

    def _take_resumed(self, result, old_entries, old_raw, old_quarantine, quarantine) -> None:
        """A task's rows, file by file, with each resumed file's unchanged prefix first.

        The merged rows become a new segment (the task's own entry file is dropped).
        """
        new_entries = _FileRows(result.entry_tables())
        new_raw = _FileRows(result.raw_tables())
        new_quarantine: dict[str, list[dict[str, Any]]] = {}
        for rec in result.quarantine_records():
            new_quarantine.setdefault(rec["file"], []).append(rec)
        segment = parallel.EntryFile(result.entries.path.with_suffix(".merged.arrow"))
        with segment.writer() as write:

            def add(t: pa.Table) -> None:
                write(t)
                self.entries.add(t.select(list(META_COLUMNS)))

            for src, old, done in zip(result.task.files, result.task.old, result.files, strict=True):
                key = src.key
                if done.reused:  # the rows of the unchanged prefix, from the previous Dataset
                    for t in old_entries.take(key, old.lines):
                        add(t)
                    for t in old_raw.take(key, old.lines):
                        self.raw.add(t)
                    for rec in old_quarantine.get(key, []):
                        if rec["line"] is not None and rec["line"] <= old.lines:
                            quarantine(rec)
                for t in new_entries.take(key):
                    add(t)
                for t in new_raw.take(key):
                    self.raw.add(t)
                for rec in new_quarantine.get(key, []):
                    quarantine(rec)
        result.entries.unlink()
        self.segments.append(segment)

    def _count_file(self, old: FileState | None, done: parallel.FileResult) -> None:
        state = done.state
        self.states.append(state)
        if old is None:
            status = "new"
        elif not done.reused:
            status = "reread"
        else:
            status = "grown" if state.size > old.consumed else "unchanged"
        self.files[status] += 1
        self.files["empty"] += state.size == 0
        self.files["unreadable"] += state.size < 0

    def finalize(self, w: DatasetWriter) -> dict[str, Any]:
        winners = self.dedup.winners()
        _trim()
        self._write_messages(w, winners)
        _trim()
        sessions, projects = self._sessions_projects()
        w.write_arrow("projects", projects)
        w.write_arrow("sessions", sessions)
        _trim()
        w.write_arrow("session_windows", self._windows(winners))
        w.write_arrow("jobs", schema.arrow_schema("jobs").empty_table())
        return {
            "mode": "incremental" if self.previous else "full",
            "roots": w.source["roots"],
            "files": {k: self.files[k] for k in FILE_STATUSES},
            "lines_read": self.tally.lines,
            "bytes_read": self.tally.bytes_read,
            "entries": {k: int(v) for k, v in sorted(self.counts.items())},
            "quarantined": dict(sorted(self.quarantined.items())),
            "duplicates_collapsed": self.dedup.usage_rows - len(winners),
            "unterminated_lines": self.tally.unterminated,
            "counts": {
                "projects": projects.num_rows,
                "sessions": sessions.num_rows,
                "messages": self.rows,
            },
            "file_states": [s.to_json() for s in self.states],
        }

    def _write_messages(self, w: DatasetWriter, winners: np.ndarray) -> None:
        """The messages table, in chunks of ``CHUNK_ROWS`` rows; each chunk is read and
        prepared on a thread while the one before is encoded (both are Arrow work, which
        releases the GIL)."""
        for t in _ahead(self._message_chunks(winners)):
            w.write_arrow("messages", t)
        if self.rows == 0:
            empty = pa.schema([ENTRY_SCHEMA.field(c) for c in MESSAGE_SOURCE]).empty_table()
            w.write_arrow("messages", empty.rename_columns(list(MESSAGE_COLUMNS)))

    def _message_chunks(self, winners: np.ndarray) -> Iterator[pa.Table]:
        """The message rows in chunks of ``CHUNK_ROWS``, tokens kept by the winners only."""
        offset = 0
        for t in self._entry_chunks():
            keep = pa.array(_among(np.arange(offset, offset + t.num_rows, dtype=np.int64), winners))
            offset += t.num_rows
            for c in TOKEN_COLUMNS:
                i = t.schema.get_field_index(c)
                col = t.column(i)
                t = t.set_column(i, c, pc.if_else(keep, col, pa.nulls(len(col), col.type)))
            yield t.rename_columns(list(MESSAGE_COLUMNS))

    def _entry_chunks(self) -> Iterator[pa.Table]:
        """The entry files' message columns, in order, rechunked to ``CHUNK_ROWS`` rows."""
        chunks: list[pa.Table] = []
        chunker = _Rechunker(CHUNK_ROWS, chunks.append)
        for segment in self.segments:
            for t in segment.tables(MESSAGE_SOURCE):
                chunker.add(t)
                yield from chunks
                chunks.clear()
            segment.unlink()
        chunker.close()
        yield from chunks

    def _windows(self, winners: np.ndarray) -> pa.Table:
        """``window_rows`` per partition of whole sessions, ids renumbered in (session, start)
        order; the window rows themselves are few (a handful per session)."""
        parts = []
        for part in self.windows_input.read():
            p = _numpy(part)
            # only the winning copy of a streamed response counts its tokens
            won = _among(p["row"], winners)
            order = np.lexsort((p["stamp"], p["session"]))  # stable: ties keep file order
            parts.append(
                window_rows(p["session"][order], p["stamp"][order], np.where(won, p["total"], 0)[order])
            )
        if not parts:
            parts = [window_rows(*(np.zeros(0, np.int64) for _ in range(3)))]
        columns = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        order = np.lexsort((columns["start_time"], columns["session_id"]))
        columns = {k: v[order] for k, v in columns.items()}
        columns["id"] = np.arange(1, len(order) + 1, dtype=np.int64)
        return pa.table(columns)

    def _sessions_projects(self) -> tuple[pa.Table, pa.Table]:
        agg = self.agg
        found = agg.sessions()
        ids = found.column("session_id").to_pylist()
        keys = found.column("session_key").to_pylist()
        titles = self._titles(found.column("session_id"))
        sessions = pa.table(
            {
                "id": ids,
                "project_id": [_project_id(p) for p in found.column("project").to_pylist()],
                "external_id": keys,
                "title": [titles.get(sid) for sid in ids],
                "model": found.column("model"),
                "git_branch": found.column("git_branch"),
                "is_sidechain": ["/" in k for k in keys],
                "message_count": found.column("n"),
                "created_at": found.column("lo"),
                "updated_at": found.column("hi"),
            },
            schema=schema.arrow_schema("sessions"),
        )
        cwds = agg.cwds_by_project()
        projects = []
        for project, created in agg.projects.items():
            path = cwds.get(project, project)
            name = re.split(r"[\\/]", path.rstrip("\\/"))[-1] or path
            projects.append((_project_id(project), name, path, created))
        projects.sort()
        names = schema.arrow_schema("projects")
        frame = pa.table({c: [p[i] for p in projects] for i, c in enumerate(names.names)}, schema=names)
        return sessions, frame

    def _titles(self, sessions: pa.ChunkedArray) -> dict[int, str]:
        """Titles of the ``sessions`` (ids): the last custom-title, else the last ai-title,
        else the last summary."""
        found: list[tuple[int, str | None, str | None, str]] = []
        for kind, session, text in self.titles:
            try:
                obj = orjson.loads(text)
            except orjson.JSONDecodeError:
                continue
            field_ = {"custom-title": "customTitle", "ai-title": "aiTitle", "summary": "summary"}[kind]
            title = obj.get(field_) or obj.get("title")
            leaf = obj.get("leafUuid")
            if isinstance(title, str) and title:
                found.append(
                    (TITLE_TYPES.index(kind), session, leaf if isinstance(leaf, str) else None, title)
                )
        if not found:
            return {}
        wanted = {leaf for _, _, leaf, _ in found if leaf is not None}
        leaves: dict[str, int] = {}
        if wanted:
            targets = pa.array(sorted(wanted), pa.string())
            with pa.OSFile(str(self.uuids_path)) as f:
                for batch in pa.ipc.open_stream(f):
                    hit = pc.is_in(batch.column(0), targets)
                    if pc.any(hit).as_py():
                        part = batch.filter(hit)
                        for u, sid in zip(
                            part.column(0).to_pylist(), part.column(1).to_pylist(), strict=True
                        ):
                            leaves.setdefault(u, sid)
        known = set(sessions.to_pylist())
        best: dict[int, tuple[int, int, str]] = {}
        for order, (rank, session, leaf, title) in enumerate(found):
            sid = session_id(session) if session is not None else None
            if sid not in known:
                sid = None
            if sid is None and leaf is not None:
                sid = leaves.get(leaf)
            if sid is None:
                continue
            cur = best.get(sid)
            if cur is None or (rank, -order) < (cur[0], -cur[1]):
                best[sid] = (rank, order, title)
        return {sid: title for sid, (_, _, title) in best.items()}


_DONE = object()


def _ahead(items: Iterator[Any]) -> Iterator[Any]:
    """``items``, each one computed on a thread while the caller works on the one before."""
    with ThreadPoolExecutor(1, thread_name_prefix="ahead") as pool:
        coming = pool.submit(next, items, _DONE)
        while (item := coming.result()) is not _DONE:
            coming = pool.submit(next, items, _DONE)
            yield item


def _among(rows: np.ndarray, winners: np.ndarray) -> np.ndarray:
    """Which of ``rows`` are in ``winners`` (sorted)."""
    if not len(winners):
        return np.zeros(len(rows), bool)
    at = np.minimum(np.searchsorted(winners, rows), len(winners) - 1)
    return winners[at] == rows


def _total(t: pa.Table) -> pa.ChunkedArray:
    """Sum of the four token columns as Int64 (null where there is no usage)."""
    a, b, c, d = (t.column(n).cast(pa.int64()) for n in TOKEN_COLUMNS)
    return pc.add(pc.add(a, b), pc.add(c, d))


def _value_counts(column: pa.ChunkedArray) -> tuple[list[str], list[int]]:
    vc = pc.value_counts(column)
    return vc.field("values").to_pylist(), vc.field("counts").to_pylist()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _project_id(project: str) -> int:
    return hash63("project\x00" + project)

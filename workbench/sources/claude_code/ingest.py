"""Ingest transcript trees into a Dataset: stream, spill, deduplicate, derive tables."""

from __future__ import annotations

import bisect
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from workbench import schema
from workbench.dataset import MANIFEST, Dataset, DatasetWriter
from workbench.errors import DatasetError
from workbench.sources.claude_code.reader import (
    ENTRY_SCHEMA,
    RAW_SCHEMA,
    Buffers,
    FileState,
    SourceFile,
    Tally,
    find_files,
    hash63,
    read_file,
    resolve_roots,
)
from workbench.windows import TOKEN_COLUMNS, windows

KIND = "claude-code"
#: Rows per Parquet row group of the messages table and side files. Fixed, so that a
#: full ingest and an incremental one write byte-identical files.
CHUNK_ROWS = 8_192
FILE_STATUSES = ("new", "grown", "unchanged", "reread", "removed", "empty", "unreadable")
TITLE_TYPES = ("custom-title", "ai-title", "summary")
LINE_COLUMNS = (
    "file", "line", "project", "session_key", "message_id", "request_id", "is_sidechain",
    "cwd", "git_branch", "version", *TOKEN_COLUMNS,
)  # fmt: skip
MESSAGE_COLUMNS = tuple(schema.polars_schema("messages"))


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
) -> IngestReport:
    """Ingest Claude Code transcript trees at ``paths`` (default: ccusage's roots) into ``dest``.

    If ``dest`` already holds a claude-code Dataset of the same roots, only new files and
    the appended bytes of grown files are read (``update=False`` re-reads everything); the
    result equals a full ingest. Any other existing dataset is replaced only with
    ``overwrite=True``.
    """
    roots = resolve_roots(paths)
    dest = Path(dest)
    source = {"kind": KIND, "roots": [str(r) for r in roots]}
    previous = _previous(dest, source, overwrite)
    if not update:
        previous = None
    files = find_files(roots)
    states = previous.manifest["ingest"]["file_states"] if previous else []
    old_states = {s["key"]: FileState(**s) for s in states}
    # Arrow's default pool (mimalloc) keeps freed chunks; the system allocator returns
    # them, which keeps peak RSS flat (about 70 MB less on a 100 MB tree).
    pool = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        with tempfile.TemporaryDirectory(prefix=f".{dest.name}.work.", dir=_parent(dest)) as work:
            run = _Run(Path(work), previous, old_states)
            writer = DatasetWriter(dest, source=source, overwrite=dest.exists())
            with writer as w:
                run.stream(files, w, progress)
                extra = run.finalize(w)
                writer.extra = {"ingest": extra}
    finally:
        pa.set_memory_pool(pool)
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


class _Parts:
    """Temp Parquet files holding rows in final order."""

    def __init__(self, folder: Path, prefix: str) -> None:
        self.folder, self.prefix, self.paths, self.rows = folder, prefix, [], 0

    def add(self, table: pa.Table) -> None:
        if table.num_rows:
            path = self.folder / f"{self.prefix}-{len(self.paths):06d}.parquet"
            pq.write_table(table, path, compression="lz4")
            self.paths.append(path)
            self.rows += table.num_rows

    def scan(self, schema_: pa.Schema, row_index: bool = False) -> pl.LazyFrame:
        if not self.paths:
            frame = pl.from_arrow(schema_.empty_table()).lazy()
            return frame.with_row_index("row") if row_index else frame
        return pl.scan_parquet(self.paths, row_index_name="row" if row_index else None)

    def tables(self) -> Iterator[pa.Table]:
        for path in self.paths:
            yield pq.read_table(path)


class _Rechunker:
    """Re-slices a stream of tables into tables of exactly ``size`` rows (the last shorter)."""

    def __init__(self, size: int, emit: Callable[[pa.Table], None]) -> None:
        self.size, self.emit, self.buf, self.n = size, emit, [], 0

    def add(self, table: pa.Table) -> None:
        self.buf.append(table)
        self.n += table.num_rows
        while self.n >= self.size:
            whole = pa.concat_tables(self.buf)
            self.emit(whole.slice(0, self.size))
            rest = whole.slice(self.size)
            self.buf, self.n = [rest], rest.num_rows

    def close(self) -> None:
        if self.n:
            self.emit(pa.concat_tables(self.buf))
        self.buf, self.n = [], 0


class _OldRows:
    """Merge-reads a previous side table in file order, handing out one file's rows at a time."""

    def __init__(self, tables: Iterator[pa.Table]) -> None:
        self.tables, self.buf, self.files = tables, None, []

    def take(self, key: str, max_line: int) -> list[pa.Table]:
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
                keep = np.asarray(part.column("line").to_numpy()) <= max_line
                out.append(part.filter(pa.array(keep)))
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


class _Run:
    """One ingest: streaming phase then table derivation."""

    def __init__(self, work: Path, previous: Dataset | None, old_states: dict[str, FileState]) -> None:
        self.work = work
        self.previous = previous
        self.old_states = old_states
        self.entries = _Parts(work, "entries")
        self.raw = _Parts(work, "raw")
        self.tally = Tally()
        self.quarantined: Counter[str] = Counter()
        self.states: list[FileState] = []
        self.files: Counter[str] = Counter()

    def stream(self, files: list[SourceFile], w: DatasetWriter, progress: bool) -> None:
        old_entries = _OldRows(_old_entries(self.previous)) if self.previous else None
        old_raw = _OldRows(_old_raw(self.previous)) if self.previous else None
        old_quarantine: dict[str, list[dict[str, Any]]] = {}
        if self.previous and (self.previous.path / "quarantine.jsonl").exists():
            with (self.previous.path / "quarantine.jsonl").open("rb") as f:
                for line in f:
                    rec = orjson.loads(line)
                    old_quarantine.setdefault(rec["file"], []).append(rec)
        buffers = Buffers(self.entries.add, self.raw.add)
        total = sum(_size(f.path) for f in files) - sum(
            s.consumed for k, s in self.old_states.items() if k in {f.key for f in files}
        )
        bar = tqdm(total=max(total, 0), unit="B", unit_scale=True, disable=not progress, desc="ingest")
        qfile = w.side_file("quarantine.jsonl").open("wb")
        seen = set()

        def quarantine(rec: dict[str, Any]) -> None:
            self.quarantined[rec["reason"]] += 1
            qfile.write(orjson.dumps(rec) + b"\n")

        try:
            for src in files:
                seen.add(src.key)
                old = self.old_states.get(src.key)

                def resumed(lines: int, key: str = src.key) -> None:
                    buffers.flush()
                    for t in old_entries.take(key, lines):
                        self.entries.add(t)
                    for t in old_raw.take(key, lines):
                        self.raw.add(t)
                    for rec in old_quarantine.get(key, []):
                        if rec["line"] is not None and rec["line"] <= lines:
                            quarantine(rec)

                state, reused = read_file(
                    src,
                    buffers,
                    quarantine,
                    self.tally,
                    old,
                    bar.update,
                    on_resume=resumed if old_entries else None,
                )
                self.states.append(state)
                status = (
                    "new"
                    if old is None
                    else ("reread" if not reused else ("grown" if state.size > old.consumed else "unchanged"))
                )
                self.files[status] += 1
                self.files["empty"] += state.size == 0
                self.files["unreadable"] += state.size < 0
            buffers.flush()
        finally:
            qfile.close()
            bar.close()
        self.files["removed"] = len(set(self.old_states) - seen)

    def finalize(self, w: DatasetWriter) -> dict[str, Any]:
        entries = self.entries.scan(ENTRY_SCHEMA, row_index=True)
        winners, usage_rows = _winners(entries)
        self._write_messages(w, winners)
        self._write_raw(w)
        sessions, projects = _sessions_projects(entries, self.raw.scan(RAW_SCHEMA))
        w.write("projects", projects)
        w.write("sessions", sessions)
        tokens = [
            pl.when(pl.col("row").is_in(pl.Series(winners).implode())).then(pl.col(c)).alias(c)
            for c in TOKEN_COLUMNS
        ]
        frame = entries.select("session_id", "timestamp", *tokens).collect()
        w.write("session_windows", windows(frame))
        del frame
        w.write("jobs", pl.DataFrame(schema=schema.polars_schema("jobs")))
        by_role = entries.group_by("role").len().collect()
        by_raw = self.raw.scan(RAW_SCHEMA).group_by("type").len().collect()
        entry_counts = dict(zip(by_role["role"], by_role["len"], strict=True))
        entry_counts.update(dict(zip(by_raw["type"], by_raw["len"], strict=True)))
        return {
            "mode": "incremental" if self.previous else "full",
            "roots": w.source["roots"],
            "files": {k: self.files[k] for k in FILE_STATUSES},
            "lines_read": self.tally.lines,
            "bytes_read": self.tally.bytes_read,
            "entries": {k: int(v) for k, v in sorted(entry_counts.items())},
            "quarantined": dict(sorted(self.quarantined.items())),
            "duplicates_collapsed": usage_rows - len(winners),
            "unterminated_lines": self.tally.unterminated,
            "counts": {
                "projects": projects.height,
                "sessions": sessions.height,
                "messages": self.entries.rows,
            },
            "file_states": [s.to_json() for s in self.states],
        }

    def _write_messages(self, w: DatasetWriter, winners: np.ndarray) -> None:
        lines = pq.ParquetWriter(
            w.side_file("message_lines.parquet"),
            pa.schema([ENTRY_SCHEMA.field(c) for c in LINE_COLUMNS]),
            compression="zstd",
        )
        renamed = [c if c != "uuid" else "external_id" for c in ENTRY_SCHEMA.names]

        def emit(t: pa.Table) -> None:
            lines.write_table(t.select(list(LINE_COLUMNS)), row_group_size=CHUNK_ROWS)
            rows = t.column("row").to_numpy()
            at = np.minimum(np.searchsorted(winners, rows), max(len(winners) - 1, 0))
            keep = pl.Series((winners[at] == rows) if len(winners) else np.zeros(len(rows), bool))
            frame = pl.from_arrow(t.drop_columns(["row"]).rename_columns(renamed))
            masked = [pl.when(keep).then(pl.col(c)).alias(c) for c in TOKEN_COLUMNS]
            w.write("messages", frame.with_columns(masked).select(MESSAGE_COLUMNS))

        chunker = _Rechunker(CHUNK_ROWS, emit)
        offset = 0
        for t in self.entries.tables():
            rows = pa.array(np.arange(offset, offset + t.num_rows, dtype=np.int64))
            chunker.add(t.append_column("row", rows))
            offset += t.num_rows
        chunker.close()
        lines.close()
        if offset == 0:
            w.write("messages", pl.DataFrame(schema=schema.polars_schema("messages")))

    def _write_raw(self, w: DatasetWriter) -> None:
        raw = pq.ParquetWriter(w.side_file("raw_entries.parquet"), RAW_SCHEMA, compression="zstd")
        chunker = _Rechunker(CHUNK_ROWS, lambda t: raw.write_table(t, row_group_size=CHUNK_ROWS))
        for t in self.raw.tables():
            chunker.add(t.cast(RAW_SCHEMA))
        chunker.close()
        raw.close()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _winners(entries: pl.LazyFrame) -> tuple[np.ndarray, int]:
    """Row numbers of the usage rows that count (ccusage's dedup), and the number of usage rows.

    Copies sharing (message.id, requestId) collapse to the one with the largest token total
    (first in file order on a tie). Then, among survivors sharing a message.id with
    different requestIds, sidechain copies are duplicates: a non-sidechain copy wins,
    else the largest sidechain copy.
    """
    total = pl.sum_horizontal(pl.col(c).cast(pl.Int64) for c in TOKEN_COLUMNS).alias("total")
    usage = (
        entries.filter(pl.col("input_tokens").is_not_null())
        .select("row", "message_id", "request_id", "is_sidechain", total)
        .collect()
    )
    keyed = usage.filter(pl.col("message_id").is_not_null() & pl.col("request_id").is_not_null())
    loose = usage.filter(pl.col("message_id").is_null() | pl.col("request_id").is_null())["row"]
    order = [pl.col("total"), pl.col("row")]
    first = keyed.sort(order, descending=[True, False]).unique(["message_id", "request_id"], keep="first")
    side = pl.col("is_sidechain")
    group = first.with_columns(
        n=pl.len().over("message_id"),
        has_main=(~side).any().over("message_id"),
        rank=pl.struct(pl.col("total").neg(), "row").rank("ordinal").over("message_id"),
    )
    kept = group.filter(
        (pl.col("n") == 1)
        | ~side.any().over("message_id")
        | (~side & pl.col("has_main"))
        | (side & ~pl.col("has_main") & (pl.col("rank") == 1))
    )["row"]
    rows = np.sort(np.concatenate([kept.to_numpy(), loose.to_numpy()]).astype(np.int64))
    return rows, usage.height


def _most_common(frame: pl.LazyFrame, by: str, value: str, name: str) -> pl.LazyFrame:
    """Per ``by``, the most frequent non-empty ``value`` (ties: the smallest)."""
    return (
        frame.filter(pl.col(value).is_not_null() & (pl.col(value) != ""))
        .group_by(by, value)
        .len()
        .sort([by, "len", value], descending=[False, True, False])
        .group_by(by, maintain_order=True)
        .first()
        .select(by, pl.col(value).alias(name))
    )


def _project_id(project: str) -> int:
    return hash63("project\x00" + project)


def _sessions_projects(entries: pl.LazyFrame, raw: pl.LazyFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    base = entries.select(
        "project", "session_key", "session_id", "role", "timestamp", "model", "cwd", "git_branch", "uuid"
    )
    sessions = base.group_by("session_id").agg(
        external_id=pl.col("session_key").first(),
        project=pl.col("project").min(),
        created_at=pl.col("timestamp").min(),
        updated_at=pl.col("timestamp").max(),
        message_count=pl.len().cast(pl.Int32),
    )
    models = _most_common(
        base.filter((pl.col("role") == "assistant") & (pl.col("model") != "<synthetic>")),
        "session_id",
        "model",
        "model",
    )
    branches = _most_common(base, "session_id", "git_branch", "git_branch")
    sessions = (
        sessions.join(models, on="session_id", how="left")
        .join(branches, on="session_id", how="left")
        .with_columns(
            id=pl.col("session_id"),
            project_id=pl.col("project").map_elements(_project_id, return_dtype=pl.Int64),
            is_sidechain=pl.col("external_id").str.contains("/", literal=True),
        )
        .collect()
    )
    titles = _titles(raw, entries)
    sessions = sessions.join(titles, on="session_id", how="left")
    cwd = _most_common(base, "project", "cwd", "path")
    projects = (
        base.group_by("project")
        .agg(created_at=pl.col("timestamp").min())
        .join(cwd, on="project", how="left")
        .with_columns(path=pl.coalesce("path", "project"))
        .with_columns(
            id=pl.col("project").map_elements(_project_id, return_dtype=pl.Int64),
            name=pl.col("path").str.replace(r"[\\/]+$", "").str.extract(r"([^\\/]*)$", 1),
        )
        .with_columns(name=pl.when(pl.col("name") == "").then(pl.col("path")).otherwise(pl.col("name")))
        .sort("id")
        .collect()
    )
    return schema.conform("sessions", sessions.sort("id")), schema.conform("projects", projects)


def _titles(raw: pl.LazyFrame, entries: pl.LazyFrame) -> pl.DataFrame:
    """Session titles: the last custom-title, else the last ai-title, else the last summary."""
    rows = raw.filter(pl.col("type").is_in(TITLE_TYPES)).select("type", "session", "json").collect()
    found: list[tuple[str, str | None, str | None, str]] = []
    for kind, session, text in rows.iter_rows():
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue
        field_ = {"custom-title": "customTitle", "ai-title": "aiTitle", "summary": "summary"}[kind]
        title = obj.get(field_) or obj.get("title")
        leaf = obj.get("leafUuid")
        if isinstance(title, str) and title:
            found.append((kind, session, leaf if isinstance(leaf, str) else None, title))
    empty = pl.DataFrame(schema={"session_id": pl.Int64, "title": pl.String})
    if not found:
        return empty
    frame = pl.DataFrame(
        found, schema=dict.fromkeys(("kind", "session", "leaf", "title"), pl.String), orient="row"
    ).with_row_index("order")
    leaves = (
        entries.filter(pl.col("uuid").is_in(frame["leaf"].drop_nulls().implode()))
        .select(leaf="uuid", leaf_session="session_id")
        .unique("leaf", keep="first")
        .collect()
    )
    keys = (
        entries.filter(pl.col("session_key").is_in(frame["session"].drop_nulls().implode()))
        .select(session="session_key", key_session="session_id")
        .unique("session")
        .collect()
    )
    frame = (
        frame.join(leaves, on="leaf", how="left")
        .join(keys, on="session", how="left")
        .with_columns(
            session_id=pl.coalesce("key_session", "leaf_session"),
            rank=pl.col("kind").replace_strict(
                {k: i for i, k in enumerate(TITLE_TYPES)}, return_dtype=pl.Int32
            ),
        )
        .filter(pl.col("session_id").is_not_null())
        .sort(["session_id", "rank", "order"], descending=[False, False, True])
        .unique("session_id", keep="first")
        .select("session_id", "title")
    )
    return frame if frame.height else empty

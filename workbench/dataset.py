"""Dataset: one Parquet file per table plus ``manifest.json``.

A Dataset is immutable. Sources write one through :class:`DatasetWriter`, which
writes into a hidden temp folder beside the destination and renames it into place
only when every table and the manifest are complete, so an interrupted run never
leaves half a dataset. :meth:`Dataset.sample` makes a new Dataset.

>>> import tempfile
>>> from workbench.sources.synthetic import generate
>>> folder = tempfile.mkdtemp()
>>> ds = Dataset.open(generate(f"{folder}/tiny", "tiny", seed=7).path)
>>> ds.counts["sessions"], ds.counts["messages"]
(60, 3000)
>>> part = ds.sample(f"{folder}/tiny-10pct", fraction=0.1, seed=1)
>>> part.counts["sessions"]
6
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:  # Polars is imported where it is used: writing and ingesting need none
    import polars as pl

from workbench import schema
from workbench.errors import DatasetError

MANIFEST = "manifest.json"
FORMAT = "workbench-dataset"


def _manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The manifest as indented JSON (UTF-8). orjson writes an ingest's thousands of file
    states in milliseconds where the standard library's indenting encoder, pure Python,
    takes a tenth of a second; that one writes the integers beyond 64 bits orjson refuses."""
    try:
        return orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    except orjson.JSONEncodeError:
        return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Dataset:
    """An opened, validated dataset folder."""

    path: Path
    manifest: dict[str, Any]

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, verify: bool = False) -> Dataset:
        """Open ``path`` and check it is complete: manifest, every table, row counts.

        ``verify=True`` also recomputes every file's SHA-256 against the manifest.
        """
        path = Path(path)
        fix = "regenerate it (workbench generate PATH) or point at another dataset"
        if not path.is_dir():
            raise DatasetError(f"Dataset folder {str(path)!r} does not exist: {fix}")
        manifest_path = path / MANIFEST
        try:
            manifest = json.loads(manifest_path.read_bytes())
        except FileNotFoundError:
            raise DatasetError(f"{str(manifest_path)!r} is missing: {fix}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DatasetError(f"{str(manifest_path)!r} is not valid JSON ({e}): {fix}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise DatasetError(f"{str(manifest_path)!r} is not a workbench manifest: {fix}")
        if manifest.get("schema_version") != schema.SCHEMA_VERSION:
            raise DatasetError(
                f"{str(path)!r} has schema version {manifest.get('schema_version')!r}, "
                f"this workbench reads {schema.SCHEMA_VERSION}: {fix}"
            )
        for name in schema.TABLES:
            file = path / f"{name}.parquet"
            expected = manifest.get("files", {}).get(name, {})
            try:
                meta = pq.read_metadata(file)
            except FileNotFoundError:
                raise DatasetError(f"{str(file)!r} is missing: {fix}") from None
            except (pa.ArrowException, OSError) as e:
                raise DatasetError(f"{str(file)!r} is not a readable Parquet file ({e}): {fix}") from None
            if meta.num_rows != expected.get("rows"):
                raise DatasetError(
                    f"{str(file)!r} has {meta.num_rows} rows, the manifest says {expected.get('rows')}: {fix}"
                )
            columns = meta.schema.to_arrow_schema().names
            if columns != schema.arrow_schema(name).names:
                raise DatasetError(f"{str(file)!r} has columns {columns}, not the schema's: {fix}")
            if verify and _sha256(file) != expected.get("sha256"):
                raise DatasetError(f"{str(file)!r} does not match its checksum: {fix}")
        return cls(path, manifest)

    @property
    def counts(self) -> dict[str, int]:
        """Row count per table."""
        return {name: f["rows"] for name, f in self.manifest["files"].items()}

    @property
    def content_hash(self) -> str:
        return self.manifest["content_hash"]

    @property
    def name(self) -> str:
        return self.path.name

    def file(self, table: str) -> Path:
        schema.columns(table)  # validates the name
        return self.path / f"{table}.parquet"

    def scan(self, table: str) -> pl.LazyFrame:
        import polars as pl

        return pl.scan_parquet(self.file(table))

    def read(self, table: str) -> pl.DataFrame:
        import polars as pl

        return pl.read_parquet(self.file(table))

    def session_stats(self) -> pl.DataFrame:
        """One row per session: message count, first/last message, span, windows, tokens."""
        import polars as pl

        per_session = (
            self.scan("messages")
            .group_by("session_id")
            .agg(
                messages=pl.len(),
                first=pl.col("timestamp").min(),
                last=pl.col("timestamp").max(),
                tokens=pl.sum_horizontal(
                    pl.col("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens")
                    .cast(pl.Int64)
                    .fill_null(0)
                ).sum(),
            )
        )
        windows = self.scan("session_windows").group_by("session_id").agg(windows=pl.len())
        return (
            self.scan("sessions")
            .select(session_id="id", project_id="project_id")
            .join(per_session, on="session_id", how="left")
            .join(windows, on="session_id", how="left")
            .with_columns(
                pl.col("messages", "windows").fill_null(0),
                span_minutes=(pl.col("last") - pl.col("first")).dt.total_seconds() / 60,
            )
            .sort("session_id")
            .collect()
        )

    def sample(
        self,
        dest: str | os.PathLike[str],
        *,
        fraction: float | None = None,
        sessions: int | None = None,
        seed: int = 0,
        stratify: bool = True,
        overwrite: bool = False,
    ) -> Dataset:
        """Cluster-sample by session into a new Dataset at ``dest``.

        A sampled session keeps all its messages, windows and jobs, so joins stay
        meaningful. With ``stratify`` sessions are drawn per size class (powers of
        two of their message count) in proportion to the class sizes, and the class of
        the largest sessions always keeps one, so the heavy tail survives. Jobs without
        a session are sampled at the same fraction. Reproducible for a seed.
        """
        import polars as pl

        total = self.counts["sessions"]
        check_sample_size(fraction, sessions)
        if fraction is not None and not 0 < fraction <= 1:
            raise DatasetError(f"Sample fraction {fraction!r} is out of range: use 0 < fraction <= 1")
        if sessions is not None and not 0 < sessions <= total:
            raise DatasetError(f"Sample size {sessions!r} is out of range: use 1..{total} sessions")
        source = {
            "kind": "sample",
            "parent": {
                "name": self.name,
                "content_hash": self.content_hash,
                "source": self.manifest["source"],
            },
            "fraction": fraction,
            "sessions": sessions,
            "stratified": stratify,
        }
        if not overwrite and (found := existing(dest, source, seed)):
            return found
        overwrite = overwrite or (Path(dest) / MANIFEST).exists()
        target = sessions if sessions is not None else max(1, round(fraction * total))
        keep = _choose_sessions(self.session_stats(), target, seed, stratify)
        share = target / total
        rng = np.random.default_rng([seed, 1])
        kept = pl.DataFrame({"session_id": keep}, schema={"session_id": pl.Int64})
        jobs = self.scan("jobs").with_columns(_u=pl.Series(rng.random(self.counts["jobs"])))
        jobs = jobs.filter(
            pl.col("session_id").is_in(kept["session_id"].implode())
            | (pl.col("session_id").is_null() & (pl.col("_u") < share))
        ).drop("_u")
        ids = kept.lazy()
        sessions_lf = self.scan("sessions").join(ids.rename({"session_id": "id"}), on="id", how="semi")
        projects_lf = self.scan("projects").join(
            sessions_lf.select(pl.col("project_id").alias("id")).unique(), on="id", how="semi"
        )
        with DatasetWriter(dest, source=source, seed=seed, overwrite=overwrite) as w:
            w.write("projects", projects_lf.sort("id").collect())
            w.write("sessions", sessions_lf.sort("id").collect())
            w.write("jobs", jobs.sort("id").collect())
            for table in ("messages", "session_windows"):
                # Row order is part of the content hash: keep the parent's order.
                part = self.scan(table).join(ids, on="session_id", how="semi", maintain_order="left")
                w.write_lazy(table, part)
        return w.dataset


def check_sample_size(
    fraction: float | None, sessions: int | None, error: type[Exception] = DatasetError
) -> None:
    """Refuse (with ``error``) a sample asked for by both or neither of ``fraction`` and ``sessions``."""
    if (fraction is None) == (sessions is None):
        raise error("Give exactly one of fraction (0 < f <= 1) or sessions (a count)")


def allocate(sizes: list[int], target: int) -> list[int]:
    """Split ``target`` over strata of ``sizes`` (ordered by session size) proportionally.

    The largest size class always keeps at least one session (the heavy tail is what
    matters most for per-session query costs); leftover slots go first to classes that
    would otherwise be empty, largest sessions first, then by largest remainder.
    """
    total = sum(sizes)
    exact = [n * target / total for n in sizes]
    take = [int(e) for e in exact]
    top = len(sizes) - 1
    take[top] = max(take[top], 1)
    while sum(take) > target:
        take[take.index(max(take))] -= 1
    order = sorted(
        (i for i in range(len(sizes)) if take[i] < sizes[i]),
        key=lambda i: (take[i] > 0, -i if take[i] == 0 else 0, -(exact[i] - take[i])),
    )
    for i in order[: target - sum(take)]:
        take[i] += 1
    return take


def existing(dest: str | os.PathLike[str], source: Mapping[str, Any], seed: int | None) -> Dataset | None:
    """The dataset at ``dest`` if it was made from the same source and seed, else None.

    Raises when ``dest`` holds a different dataset, so nothing is replaced by accident.
    """
    if not (Path(dest) / MANIFEST).exists():
        return None
    try:
        found = Dataset.open(dest)
    except DatasetError:
        return None  # broken: the caller replaces it
    if found.manifest["source"] == json.loads(json.dumps(source)) and found.manifest["seed"] == seed:
        return found
    raise DatasetError(
        f"{str(dest)!r} holds a different dataset ({found.manifest['source'].get('kind')}, "
        f"seed {found.manifest['seed']}): pass overwrite=True (--overwrite) to replace it, "
        "or choose another path"
    )


def _choose_sessions(stats: pl.DataFrame, target: int, seed: int, stratify: bool) -> list[int]:
    """Session ids to keep: ``target`` of them, proportionally per size stratum."""
    import polars as pl

    rng = np.random.default_rng([seed, 0])
    frame = stats.select("session_id", "messages").with_columns(
        _u=pl.Series(rng.random(stats.height)),
        stratum=(pl.col("messages").clip(1).log(2).floor().cast(pl.Int32) if stratify else pl.lit(0)),
    )
    sizes = frame.group_by("stratum").len().sort("stratum")
    take = allocate(sizes["len"].to_list(), target)
    quota = sizes.with_columns(take=pl.Series(take, dtype=pl.Int64))
    chosen = (
        frame.join(quota.select("stratum", "take"), on="stratum")
        .sort("stratum", "_u")
        .filter(pl.int_range(pl.len()).over("stratum") < pl.col("take"))
    )
    return sorted(chosen["session_id"].to_list())


class DatasetWriter:
    """Write a Dataset atomically: tables stream into a temp folder, renamed on success.

    Used as a context manager: ``write(table, frame)`` once per chunk, every table written;
    the folder appears only when the block ends without an error.
    """

    def __init__(
        self,
        dest: str | os.PathLike[str],
        *,
        source: Mapping[str, Any],
        seed: int | None = None,
        overwrite: bool = False,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.dest = Path(dest)
        self.source = dict(source)
        self.seed = seed
        self.extra = dict(extra or {})
        if self.dest.exists() and not self.dest.is_dir():
            raise DatasetError(f"{str(self.dest)!r} is a file, not a dataset folder: choose another path")
        if self.dest.exists() and not overwrite:
            raise DatasetError(
                f"{str(self.dest)!r} already exists: choose another path, or pass --overwrite"
                " (only a folder holding a workbench dataset is replaced)"
            )
        if self.dest.exists() and any(self.dest.iterdir()) and not (self.dest / MANIFEST).exists():
            raise DatasetError(
                f"{str(self.dest)!r} is a non-empty folder that is not a workbench dataset:"
                " the workbench will not overwrite it; choose another path"
            )
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._rows: dict[str, int] = {}
        self.dataset: Dataset | None = None

    def __enter__(self) -> DatasetWriter:
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.dest.name}.", dir=self.dest.parent))
        return self

    def _writer(self, table: str) -> pq.ParquetWriter:
        if table not in self._writers:
            self._writers[table] = pq.ParquetWriter(
                self.tmp / f"{table}.parquet", schema.arrow_schema(table), compression="zstd"
            )
            self._rows[table] = 0
        return self._writers[table]

    def write(self, table: str, frame: pl.DataFrame) -> None:
        """Append one chunk to ``table`` (cast strictly to the schema)."""
        frame = schema.conform(table, frame)
        writer = self._writer(table)
        writer.write_table(frame.to_arrow().cast(writer.schema), row_group_size=256_000)
        self._rows[table] += frame.height

    def write_arrow(self, table: str, data: pa.Table) -> None:
        """Append one Arrow chunk to ``table`` (cast strictly to the schema, no polars round trip)."""
        writer = self._writer(table)
        missing = [c for c in writer.schema.names if c not in data.column_names]
        if missing:
            raise DatasetError(f"Table {table!r} is missing columns {missing}")
        data = data.select(writer.schema.names).cast(writer.schema, safe=True)
        writer.write_table(data, row_group_size=256_000)
        self._rows[table] += data.num_rows

    def write_lazy(self, table: str, frame: pl.LazyFrame, batch_rows: int = 250_000) -> None:
        """Stream a lazy query into ``table`` in bounded batches."""
        for batch in frame.collect_batches(chunk_size=batch_rows):
            self.write(table, batch)
        self._writer(table)  # an empty result still makes an (empty) file

    def side_file(self, name: str) -> Path:
        """Path for an extra file (quarantine, raw entries, ...) renamed in with the tables."""
        if "/" in name or name == MANIFEST or name.endswith(".parquet") and name[:-8] in schema.TABLES:
            raise DatasetError(f"Side file name {name!r} is reserved or not a plain file name")
        return self.tmp / name

    def write_all(self, tables: Mapping[str, pl.DataFrame | Iterable[pl.DataFrame]]) -> None:
        import polars as pl

        for table, frames in tables.items():
            for frame in [frames] if isinstance(frames, pl.DataFrame) else frames:
                self.write(table, frame)

    def __exit__(self, exc_type, exc, tb) -> None:
        for writer in self._writers.values():
            writer.close()
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        try:
            missing = [t for t in schema.TABLES if t not in self._writers]
            if missing:
                raise DatasetError(f"Dataset writer closed without tables {missing}")
            files = {
                t: {"rows": self._rows[t], "sha256": _sha256(self.tmp / f"{t}.parquet")}
                for t in schema.TABLES
            }
            content = hashlib.sha256(
                json.dumps({t: f["sha256"] for t, f in files.items()}, sort_keys=True).encode()
            ).hexdigest()
            manifest = {
                "format": FORMAT,
                "schema_version": schema.SCHEMA_VERSION,
                "source": self.source,
                "seed": self.seed,
                "counts": {t: f["rows"] for t, f in files.items()},
                "content_hash": content,
                "files": files,
                **self.extra,
            }
            (self.tmp / MANIFEST).write_bytes(_manifest_bytes(manifest))
            _replace_dir(self.tmp, self.dest)
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        self.dataset = Dataset.open(self.dest)


def _replace_dir(src: Path, dest: Path) -> None:
    """Move ``src`` to ``dest``; an existing ``dest`` is swapped out, then removed."""
    if not dest.exists():
        os.replace(src, dest)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old.", dir=dest.parent))
    os.replace(dest, trash / dest.name)
    os.replace(src, dest)
    shutil.rmtree(trash, ignore_errors=True)

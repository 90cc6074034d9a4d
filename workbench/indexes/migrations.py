"""Recommended indexes as golang-migrate pairs, one folder per dialect.

``<out>/migrations/<engine>/NNNNNN_<name>.up.sql`` and ``.down.sql``: one statement per
file. On PostgreSQL the statements are ``CREATE INDEX CONCURRENTLY IF NOT EXISTS`` and
``DROP INDEX CONCURRENTLY IF EXISTS``: ``CONCURRENTLY`` does not block writes but cannot run
inside a transaction block, and several statements in one file run as one implicit
transaction, so each file holds exactly one. SQLite and DuckDB get the plain forms
(DuckDB without ``DESC``, which its ART indexes do not use). Every file opens with a
comment carrying its evidence (queries helped with speedups and intervals, size, write
cost). Drops of redundant indexes are pairs of their own (up drops, down re-creates).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from workbench.engines.base import Engine, identifier
from workbench.indexes.candidates import IndexSpec

DIALECTS = ("postgres", "sqlite", "duckdb")


@dataclass(frozen=True)
class Change:
    """One migration: create ``spec`` (``drop=False``) or drop the existing index ``name``."""

    spec: IndexSpec
    evidence: str
    drop: bool = False
    name: str | None = None  # an existing index's own name (drops)

    @property
    def index_name(self) -> str:
        return self.name or self.spec.name


def _create(change: Change, dialect: str) -> str:
    sql = change.spec.sql(dialect, concurrently=dialect == "postgres")
    if change.name:
        sql = sql.replace(identifier(change.spec.name), identifier(change.name), 1)
    return sql


def _drop(change: Change, dialect: str) -> str:
    conc = "CONCURRENTLY " if dialect == "postgres" else ""
    return f"DROP INDEX {conc}IF EXISTS {identifier(change.index_name)}"


def _comment(text: str) -> str:
    # A ":name" in a comment would look like a bind parameter to some runners: keep colons apart.
    text = re.sub(r":(?=\w)", ": ", text)
    return "\n".join("-- " + line if line else "--" for line in text.splitlines())


def write(out_dir: str | Path, changes: Sequence[Change], dialects: Sequence[str] = DIALECTS) -> list[Path]:
    """Write the pairs under ``out_dir/migrations/<dialect>/``; return the files written.

    Earlier files of these folders are removed first, so the folder is exactly this set.
    """
    written = []
    for dialect in dialects:
        folder = Path(out_dir) / "migrations" / dialect
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.sql"):
            old.unlink()
        for i, change in enumerate(changes, 1):
            action = "drop" if change.drop else "create"
            stem = f"{i:06d}_{action}_{change.index_name}"
            up = _drop(change, dialect) if change.drop else _create(change, dialect)
            down = _create(change, dialect) if change.drop else _drop(change, dialect)
            head = _comment(f"{action} {change.spec.label} ({dialect})\n{change.evidence}")
            for kind, stmt in (("up", up), ("down", down)):
                path = folder / f"{stem}.{kind}.sql"
                path.write_text(f"{head}\n{stmt};\n")
                written.append(path)
    return written


def files(folder: str | Path, direction: str) -> list[Path]:
    """The ``up`` files in order, or the ``down`` files in reverse order (as migrate applies them)."""
    found = sorted(Path(folder).glob(f"*.{direction}.sql"))
    return found if direction == "up" else found[::-1]


def apply(engine: Engine, folder: str | Path, direction: str = "up") -> list[str]:
    """Run every file of ``folder`` in ``direction`` on ``engine``, one file per statement, as
    golang-migrate would (outside a transaction); return the file names run."""
    engine.check_writable()
    done = []
    for path in files(folder, direction):
        body = "\n".join(line for line in path.read_text().splitlines() if not line.startswith("--"))
        engine._write(body.strip().rstrip(";"))
        done.append(path.name)
    return done


def exported(out_dir: str | Path, dialect: str = "postgres") -> Path:
    """The folder of migrations notebook 03 exported for ``dialect`` under ``out_dir``
    (``apply(engine, exported(out))`` gives a database 03's recommended set).

    ``out_dir`` is the report folder (03 writes ``<out>/03_indexes/migrations/<dialect>/``) or
    a migrations folder itself. This is the one index list the other labs apply (05's
    database gets exactly 03's recommended set); when 03 has not run there is none, and
    the error says so rather than falling back to a second list.
    """
    from workbench.errors import WorkbenchError

    if dialect not in DIALECTS:
        raise WorkbenchError(f"Unknown dialect {dialect!r}: expected one of {', '.join(DIALECTS)}")
    base = Path(out_dir)
    for folder in (
        base / "03_indexes" / "migrations" / dialect,
        base / "migrations" / dialect,
        base / dialect,
    ):
        if folder.is_dir() and files(folder, "up"):
            return folder
    raise WorkbenchError(
        f"No index migrations for {dialect} under {str(base)!r}: run notebook 03_indexes first "
        "(it exports the recommended set), or `workbench advise --out DIR`"
    )

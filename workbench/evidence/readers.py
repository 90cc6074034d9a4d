"""Readers of PostgreSQL's logs (jsonlog, csvlog, stderr) and pg_stat_statements exports.

Every reader streams: a line (a row) at a time from a binary file, so memory stays flat
whatever the file's size, with a progress bar over the file's bytes (tqdm; off when
``WORKBENCH_PROGRESS=0``). A line that cannot be read goes to the :class:`Quarantine`
with file, line and reason; everything valid is kept.

>>> detect_format_of_line(b'{"timestamp": "2026-12-06 09:15:26.123 UTC"}', "x.json")
'jsonlog'
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
from tqdm.auto import tqdm

from workbench.errors import WorkbenchError
from workbench.evidence.prefix import DEFAULT, LinePrefix
from workbench.evidence.records import Assembler, Quarantine, Statement, timestamp

FORMATS = ("jsonlog", "csvlog", "stderr", "pg_stat_statements")
#: csvlog's columns (PostgreSQL 13+): time, session, vxid, severity, message, detail, application.
CSV_TIME, CSV_SESSION, CSV_VXID, CSV_SEVERITY, CSV_MESSAGE, CSV_DETAIL, CSV_APP = 0, 5, 9, 11, 13, 14, 22
CSV_COLUMNS = 23
_EVERY = 8192  # lines between progress-bar updates
csv.field_size_limit(1 << 26)


class EvidenceError(WorkbenchError):
    """A log or export cannot be read; the message names the file and the fix."""


@dataclass
class Aggregate:
    """One pg_stat_statements row: a statement's calls and total time."""

    file: str
    line: int
    sql: str
    calls: int
    total_ms: float | None


def progress_enabled(progress: bool | None = None) -> bool:
    return progress if progress is not None else os.environ.get("WORKBENCH_PROGRESS", "1") != "0"


def _bar(path: Path, progress: bool | None) -> tqdm:
    return tqdm(
        total=path.stat().st_size,
        unit="B",
        unit_scale=True,
        desc=path.name,
        disable=not progress_enabled(progress),
        leave=False,
    )


def detect_format_of_line(first: bytes, name: str) -> str:
    """The format a file's first non-empty line suggests (its name when the line cannot tell)."""
    text = first.lstrip()
    if text.startswith(b"{"):
        return "jsonlog"
    try:
        row = next(csv.reader([text.decode(errors="replace")]))
    except csv.Error:
        row = []
    if "query" in row and "calls" in row:
        return "pg_stat_statements"
    if len(row) >= CSV_COLUMNS or (len(row) > 1 and _is_time(row[0])):
        return "csvlog"  # a csvlog record's first field is its time alone (its message may span lines)
    return "stderr"


def _is_time(text: str) -> bool:
    """``text`` is a time stamp and nothing else (date, time, zone)."""
    if len(text.split()) > 3:
        return False
    try:
        timestamp(text)
    except ValueError:
        return False
    return True


def detect_format(path: str | Path) -> str:
    path = Path(path)
    with path.open("rb") as f:
        for line in f:
            if line.strip():
                return detect_format_of_line(line, path.name)
    return "stderr"


def _open(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise EvidenceError(f"Log file {str(path)!r} does not exist: pass a PostgreSQL log or a CSV export")
    return path


# ---- jsonlog ---------------------------------------------------------------------------------
class _JsonRecord(msgspec.Struct):
    """The jsonlog keys a statement needs; the others are skipped while decoding."""

    message: str
    timestamp: str | None = None
    detail: str | None = None
    session_id: str | None = None
    vxid: str | None = None
    application_name: str | None = None


_DECODE = msgspec.json.Decoder(_JsonRecord).decode


def _step(raw: bytes) -> bool:
    """A ``parse``/``bind`` step's line (not an execution), told before decoding it.

    Exact: inside a JSON string a quote is escaped, so ``"message":"`` only starts the key.
    """
    i = raw.find(b'"message":"duration: ')
    if i < 0:
        return False
    j = raw.find(b" ms  ", i + 21, i + 60)
    return j > 0 and raw.startswith((b"bind ", b"parse "), j + 5)


def jsonlog(path: str | Path, quarantine: Quarantine, progress: bool | None = None) -> Iterator[Statement]:
    """Statements of a ``log_destination = jsonlog`` file (one JSON object a line)."""
    path = _open(path)
    name, assembler = str(path), Assembler()
    add = assembler.add
    with path.open("rb") as f, _bar(path, progress) as bar:
        done = 0
        for number, raw in enumerate(f, 1):
            done += len(raw)
            if not number % _EVERY:
                bar.update(done)
                done = 0
            if _step(raw):
                continue
            try:
                record = _DECODE(raw)
            except msgspec.DecodeError as e:
                if raw.strip():
                    quarantine.add(name, number, f"not a jsonlog record ({e})")
                continue
            text = record.message
            if not text.startswith(("duration", "statement", "execute")):
                continue  # connections, checkpoints, errors: no statement
            stamp = record.timestamp
            try:
                end = timestamp(stamp) if stamp else None
            except ValueError:
                quarantine.add(name, number, f"time stamp {stamp[:40]!r} is not a log time")
                continue
            yield from add(
                name,
                number,
                end,
                text,
                record.detail,
                record.session_id,
                record.vxid,
                record.application_name,
            )
        bar.update(done)
    yield from assembler.finish()


# ---- csvlog ----------------------------------------------------------------------------------
def csvlog(path: str | Path, quarantine: Quarantine, progress: bool | None = None) -> Iterator[Statement]:
    """Statements of a ``log_destination = csvlog`` file (a quoted field may span lines)."""
    path = _open(path)
    name, assembler = str(path), Assembler()
    with path.open("rb") as raw, _bar(path, progress) as bar:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        reader = csv.reader(text)
        start, seen = 1, 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                quarantine.add(name, start, f"not CSV ({e})")
                start = reader.line_num + 1
                continue
            number, start = start, reader.line_num + 1
            seen += 1
            if not seen % _EVERY:
                bar.update(raw.tell() - bar.n)
            if len(row) < CSV_COLUMNS:
                if row:
                    quarantine.add(
                        name, number, f"{len(row)} columns, a csvlog line has at least {CSV_COLUMNS}"
                    )
                continue
            message = row[CSV_MESSAGE]
            if not message.startswith(("duration", "statement", "execute")):
                continue
            try:
                end = timestamp(row[CSV_TIME]) if row[CSV_TIME] else None
            except ValueError:
                quarantine.add(name, number, f"time stamp {row[CSV_TIME][:40]!r} is not a log time")
                continue
            yield from assembler.add(
                name,
                number,
                end,
                message,
                row[CSV_DETAIL] or None,
                row[CSV_SESSION] or None,
                row[CSV_VXID] or None,
                row[CSV_APP] or None,
            )
        bar.update(raw.tell() - bar.n)
    yield from assembler.finish()


# ---- stderr ----------------------------------------------------------------------------------
def _stderr_step(line: str) -> bool:
    """A ``parse``/``bind`` step's first line, told before parsing its prefix: the first
    ``LOG:  `` of the line is its severity (a prefix holds none), then ``duration: N ms  bind``."""
    i = line.find("LOG:  duration: ")
    if i < 0 or line.find("LOG:  ") != i:
        return False
    j = line.find(" ms  ", i + 16, i + 40)
    return j > 0 and line.startswith(("bind ", "parse "), j + 5)


def stderr(
    path: str | Path, quarantine: Quarantine, prefix: str = DEFAULT, progress: bool | None = None
) -> Iterator[Statement]:
    """Statements of a stderr log written under ``log_line_prefix = prefix``.

    A message's later lines start with a tab; its ``DETAIL:`` (the bound parameters)
    follows on the next prefixed line of the same process. Without ``%c`` in the prefix
    the process id stands for the session.
    """
    path = _open(path)
    parser = LinePrefix(prefix)
    name, assembler = str(path), Assembler()
    current: dict | None = None  # the entry being read: fields, first line, message lines, detail
    skipping = False

    def flush() -> Iterator[Statement]:
        nonlocal current
        if current is None:
            return
        entry, current = current, None
        fields = entry["fields"]
        text = "\n".join(entry["lines"])
        if not text.startswith(("duration", "statement", "execute")):
            return
        stamp = fields.get("time")
        try:
            end = timestamp(stamp) if stamp else (float(fields["epoch"]) if fields.get("epoch") else None)
        except ValueError:
            quarantine.add(name, entry["line"], f"time stamp {stamp!r} is not a log time")
            return
        session = fields.get("session") or fields.get("pid")
        detail = "\n".join([entry["detail"], *entry["detail_lines"]]) if entry["detail"] else None
        yield from assembler.add(
            name, entry["line"], end, text, detail, session, fields.get("vxid"), fields.get("app")
        )

    with path.open("rb") as f, _bar(path, progress) as bar:
        done = 0
        for number, raw in enumerate(f, 1):
            done += len(raw)
            if not number % _EVERY:
                bar.update(done)
                done = 0
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if skipping:  # a parse/bind step: its continuation and DETAIL lines go with it
                if line.startswith("\t"):
                    continue
                fields = parser.match(line)
                if fields is not None and fields["severity"] == "DETAIL":
                    continue
                skipping = False
            if _stderr_step(line):
                yield from flush()
                skipping = True
                continue
            if line.startswith("\t"):
                if current is not None:
                    (current["detail_lines"] if current["in_detail"] else current["lines"]).append(line[1:])
                elif line.strip():
                    quarantine.add(name, number, "a continuation line (tab) with no message before it")
                continue
            if not line.strip():
                continue
            fields = parser.match(line)
            if fields is None:
                quarantine.add(name, number, f"does not start with the log_line_prefix {prefix!r}")
                continue
            severity = fields["severity"]
            same = current is not None and (fields.get("session") or fields.get("pid")) == (
                current["fields"].get("session") or current["fields"].get("pid")
            )
            if severity in ("DETAIL", "HINT", "CONTEXT", "STATEMENT", "QUERY", "LOCATION") and same:
                if severity == "DETAIL":
                    current["detail"] = fields["message"]
                    current["in_detail"] = True
                continue
            yield from flush()
            current = {
                "fields": fields,
                "line": number,
                "lines": [fields["message"]],
                "detail": None,
                "detail_lines": [],
                "in_detail": False,
            }
        bar.update(done)
    yield from flush()
    yield from assembler.finish()


# ---- pg_stat_statements ------------------------------------------------------------------------
def pg_stat_statements(
    path: str | Path, quarantine: Quarantine, progress: bool | None = None
) -> Iterator[Aggregate]:
    """Rows of a pg_stat_statements CSV export (``query``, ``calls``, ``total_exec_time``)."""
    path = _open(path)
    name = str(path)
    with path.open("rb") as raw, _bar(path, progress) as bar:
        reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline=""))
        missing = {"query", "calls"} - set(reader.fieldnames or [])
        if missing:
            raise EvidenceError(
                f"{name} has no {', '.join(sorted(missing))} column: export it with "
                "\\copy (SELECT * FROM pg_stat_statements) TO 'file.csv' CSV HEADER"
            )
        start = 2
        for row in reader:
            number, start = start, reader.line_num + 1
            total = row.get("total_exec_time") or row.get("total_time")
            try:
                calls = int(row["calls"])
                total_ms = float(total) if total else None
                if not row["query"]:
                    raise ValueError("empty query")
            except (TypeError, ValueError) as e:
                quarantine.add(name, number, f"not a pg_stat_statements row ({e})")
                continue
            yield Aggregate(name, number, row["query"], calls, total_ms)
        bar.update(raw.tell() - bar.n)


def statements(
    paths: Iterable[str | Path],
    quarantine: Quarantine,
    format: str | None = None,
    prefix: str = DEFAULT,
    progress: bool | None = None,
) -> Iterator[Statement | Aggregate]:
    """Every statement (or pg_stat_statements row) of ``paths``, each file in its format."""
    if format is not None and format not in FORMATS:
        raise EvidenceError(f"Unknown log format {format!r}: expected one of {', '.join(FORMATS)}")
    for path in paths:
        kind = format or detect_format(_open(path))
        if kind == "jsonlog":
            yield from jsonlog(path, quarantine, progress)
        elif kind == "csvlog":
            yield from csvlog(path, quarantine, progress)
        elif kind == "stderr":
            yield from stderr(path, quarantine, prefix, progress)
        else:
            yield from pg_stat_statements(path, quarantine, progress)


def pg_stat_statements_url(url: str) -> Iterator[Aggregate]:
    """The rows of a live server's pg_stat_statements, read in a read-only transaction."""
    import psycopg

    from workbench.engines.postgres import mask_secrets, mask_url

    try:
        con = psycopg.connect(url, connect_timeout=10)
    except psycopg.Error as e:
        raise EvidenceError(
            f"Cannot connect to {mask_url(url)}: {mask_secrets(str(e).strip(), url)}"
        ) from None
    with con:
        con.read_only = True
        try:
            rows = con.execute("SELECT query, calls, total_exec_time FROM pg_stat_statements").fetchall()
        except psycopg.Error as e:
            raise EvidenceError(
                f"{mask_url(url)} has no readable pg_stat_statements ({str(e).strip().splitlines()[0]}): "
                "add it to shared_preload_libraries and CREATE EXTENSION pg_stat_statements, "
                "or pass an export (\\copy (SELECT * FROM pg_stat_statements) TO 'f.csv' CSV HEADER)"
            ) from None
    where = mask_url(url)
    for i, (query, calls, total) in enumerate(rows, 1):
        if query:
            yield Aggregate(where, i, query, int(calls), float(total))

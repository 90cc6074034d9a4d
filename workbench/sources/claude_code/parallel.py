"""Parse transcript files on worker processes; hand the results back in file order.

Parsing (JSON, row building) is pure Python per line, so with ``--workers N`` it runs
on N processes beside the parent (which deduplicates and writes, and parses too when it
would otherwise wait). Consecutive files are grouped into tasks of about ``TASK_BYTES``;
a task's lines stream through ``read_file`` into Arrow IPC files in the ingest's scratch
folder (so a 3 GB file never has to fit in memory, and results waiting their turn sit on
disk, not in RAM). A message's content goes to a file of its own (``EntryFile``): the
streaming phase takes every other column and never reads it back. The IPC files are
uncompressed: compressing them (lz4) cost 1-20% of an ingest's CPU, and the entry files
stay only until the messages table is written (scratch space is about half the size of
the transcripts read). ``parse`` yields the tasks' results strictly in order (each
worker two tasks ahead at most; this process may run further ahead while a worker is
slow, its results waiting on disk), so the Dataset does not depend on how many workers
ran.

This module must stay light to import: it is what each worker process loads.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from workbench.errors import WorkbenchError
from workbench.sources.claude_code import ARROW_POOL
from workbench.sources.claude_code.reader import (
    ENTRY_SCHEMA,
    RAW_SCHEMA,
    Buffers,
    FileState,
    SourceFile,
    Tally,
    gc_paused,
    read_file,
)

#: Bytes of transcripts per task: big enough that per-task costs vanish, small enough
#: that the last tasks balance across workers.
TASK_BYTES = 16 << 20
_SOURCE_ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Task:
    """Consecutive files for one worker, with their previous states (None: read all)."""

    index: int
    files: list[SourceFile]
    old: list[FileState | None]
    nbytes: int


@dataclass
class FileResult:
    state: FileState
    reused: bool


#: Entry rows on disk: every column but ``content`` in one stream, ``content`` in another.
META_SCHEMA = pa.schema([f for f in ENTRY_SCHEMA if f.name != "content"])
CONTENT_SCHEMA = pa.schema([ENTRY_SCHEMA.field("content")])


@dataclass(frozen=True)
class EntryFile:
    """Entry rows as two Arrow IPC streams written batch by batch in lockstep: ``path``
    holds every column but ``content``, the file beside it ``content``. Reading columns
    without ``content`` reads (and keeps in memory) none of it: a stream is read a whole
    batch at a time, and the columns taken from a batch keep all of its bytes alive."""

    path: Path

    @property
    def content(self) -> Path:
        return self.path.with_suffix(".content.arrow")

    @contextlib.contextmanager
    def writer(self) -> Iterator[Callable[[pa.Table], None]]:
        """A function that appends a table of ``ENTRY_SCHEMA`` rows."""
        meta_names, content_names = META_SCHEMA.names, CONTENT_SCHEMA.names
        with (
            pa.ipc.new_stream(str(self.path), META_SCHEMA) as meta,
            pa.ipc.new_stream(str(self.content), CONTENT_SCHEMA) as content,
        ):

            def write(table: pa.Table) -> None:
                for batch in table.to_batches():  # the same batches in both streams
                    meta.write_batch(batch.select(meta_names))
                    content.write_batch(batch.select(content_names))

            yield write

    def tables(self, columns: Sequence[str] | None = None) -> Iterator[pa.Table]:
        """The rows, one table per batch written, with only ``columns`` (in that order)."""
        names = list(ENTRY_SCHEMA.names if columns is None else columns)
        meta = read_tables(self.path, [c for c in names if c != "content"])
        if "content" not in names:
            yield from meta
            return
        schema = pa.schema([ENTRY_SCHEMA.field(n) for n in names])
        for m, c in zip(meta, read_tables(self.content), strict=True):
            arrays = [c.column(0) if n == "content" else m.column(n) for n in names]
            yield pa.Table.from_arrays(arrays, schema=schema)

    def unlink(self) -> None:
        self.path.unlink(missing_ok=True)
        self.content.unlink(missing_ok=True)


@dataclass
class TaskResult:
    """Where a task's rows are (Arrow IPC streams, JSONL quarantine) and what it read."""

    task: Task
    files: list[FileResult]
    entries: EntryFile
    raw: Path
    quarantine: Path
    tally: Tally = field(default_factory=Tally)

    def entry_tables(self, columns: Sequence[str] | None = None) -> Iterator[pa.Table]:
        yield from self.entries.tables(columns)

    def raw_tables(self) -> Iterator[pa.Table]:
        yield from read_tables(self.raw)

    def quarantine_records(self) -> list[dict[str, Any]]:
        with self.quarantine.open("rb") as f:
            return [orjson.loads(line) for line in f]

    def remove(self, entries: bool = True) -> None:
        if entries:
            self.entries.unlink()
        self.raw.unlink(missing_ok=True)
        self.quarantine.unlink(missing_ok=True)


def plan(
    files: Sequence[SourceFile],
    old_states: dict[str, FileState],
    sizes: Sequence[int],
) -> list[Task]:
    """Group consecutive files into tasks of about ``TASK_BYTES`` bytes to read."""
    tasks: list[Task] = []
    group: list[SourceFile] = []
    nbytes = 0
    for i, (src, size) in enumerate(zip(files, sizes, strict=True)):
        group.append(src)
        nbytes += size
        if nbytes >= TASK_BYTES or i == len(files) - 1:
            tasks.append(Task(len(tasks), group, [old_states.get(f.key) for f in group], nbytes))
            group, nbytes = [], 0
    return tasks


def default_workers() -> int:
    """Parser processes when the caller does not say: one if this process may run on two
    or more CPUs, else none (CPU quotas and load are not looked at). On two cores one
    worker is the fastest setting (this process parses too), and with it the ingest
    stays within its memory target (docs/BENCHMARKS.md); each further worker adds about
    70 MiB."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return 1 if cores >= 2 else 0


@contextlib.contextmanager
def started(work: Path, workers: int) -> Iterator[list[Worker]]:
    """``workers`` parser processes, started now so that their start-up overlaps the
    caller's (finding the files, planning); closed on exit if ``parse`` has not."""
    pool: list[Worker] = []
    try:
        pool.extend(Worker(work, i) for i in range(workers))
        yield pool
    finally:
        for worker in pool:
            worker.close()


def parse(
    tasks: Sequence[Task], work: Path, workers: list[Worker], progress: Callable[[int], None]
) -> Iterator[TaskResult]:
    """Each task's result, in task order, parsed here and by the ``workers`` (from
    :func:`started`; none: here only). Workers with no task to take (the last task stays
    here) are stopped at once; the rest are closed once every task is parsed, so the
    final tables have their memory.

    This process parses too: whenever the result it needs next is not ready, it runs the
    next task nobody has started, so no core idles while the workers catch up (and with
    one worker, both cores of a 2-core machine parse). ``progress(bytes)`` hears of bytes
    read: per read block here, per task from workers.

    Workers are plain ``python -m`` subprocesses fed task files over a pipe, rather than
    a multiprocessing pool: spawn would re-run the caller's ``__main__`` script in every
    worker, and fork is unsafe once polars or Arrow have started their thread pools.
    """
    takers = max(len(tasks) - 1, 0)
    pool, idle = workers[:takers], workers[takers:]
    for worker in idle:
        worker.stop()
    if not pool:
        for task in tasks:
            yield run_task(task, work, progress)
        return
    queue = deque(tasks)  # not started yet
    owner: dict[int, Worker] = {}
    done: dict[int, TaskResult] = {}  # parsed here, waiting their turn (on disk)

    def feed() -> None:
        # One task each before anyone gets a second (two ahead is cheap: results waiting
        # their turn sit on disk); the last task stays here, so this process has work too.
        for depth in (1, 2):
            for worker in pool:
                if len(worker.pending) < depth and len(queue) > 1:
                    task = queue.popleft()
                    worker.send(task)
                    owner[task.index] = worker

    try:
        feed()
        for task in tasks:
            while task.index not in done:
                worker = owner.get(task.index)
                if worker is not None and (worker.ready() or not queue):
                    result = worker.receive()
                    progress(result.task.nbytes)
                    done[result.task.index] = result
                else:  # the next task nobody has started (this one, if nobody has)
                    mine = queue.popleft()
                    done[mine.index] = run_task(mine, work, progress)
                feed()
            yield done.pop(task.index)
    finally:
        for worker in pool:
            worker.close()


class Worker:
    """One parser process: task file paths in on stdin, result file paths out on stdout."""

    def __init__(self, work: Path, n: int) -> None:
        self.work, self.log = work, work / f"worker-{n}.log"
        self.pending: deque[Path] = deque()  # result files of the tasks sent, in order
        path = os.pathsep.join([str(_SOURCE_ROOT), os.environ.get("PYTHONPATH", "")])
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                # -P: not the current folder first on sys.path, where another checkout of
                # the package would be imported instead of this process's own
                [sys.executable, "-P", "-m", __name__, str(work)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env={**ARROW_POOL, **os.environ, "PYTHONPATH": path},
            )

    def send(self, task: Task) -> None:
        path = self.work / f"task-{task.index:06d}.pickle"
        path.write_bytes(pickle.dumps(task))
        self.pending.append(path.with_suffix(".result"))
        try:
            self.proc.stdin.write(f"{path}\n".encode())
            self.proc.stdin.flush()
        except OSError:  # BrokenPipeError; EINVAL on Windows
            raise self._stopped() from None

    def ready(self) -> bool:
        """Whether the oldest task sent is done (its result file is renamed in when whole)."""
        return self.pending[0].exists()

    def receive(self) -> TaskResult:
        if not self.proc.stdout.readline():
            raise self._stopped()
        path = self.pending.popleft()
        outcome = pickle.loads(path.read_bytes())
        path.unlink()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _stopped(self) -> ParseError:
        self.proc.wait()
        detail = self.log.read_text(errors="replace").strip().splitlines()[-5:]
        return ParseError(
            f"A parser process stopped (exit code {self.proc.returncode}): "
            + (" / ".join(detail) or "no output")
            + ". Re-run with --workers 0 to parse in one process."
        )

    def stop(self) -> None:
        """End a worker that holds no task, without waiting for it to start up."""
        self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


class ParseError(WorkbenchError):
    """A parser worker process died."""


def _serve(work: Path) -> None:
    """Worker main loop: run each task named on stdin, answer with its result's path."""
    for line in sys.stdin.buffer:
        task_path = Path(line.decode().rstrip("\n"))
        task = pickle.loads(task_path.read_bytes())
        task_path.unlink()
        try:
            outcome: TaskResult | BaseException = run_task(task, work)
        except Exception as e:  # handed to the parent, which raises it
            outcome = e
        out = task_path.with_suffix(".result")
        partial = out.with_suffix(".partial")
        partial.write_bytes(pickle.dumps(outcome))
        partial.replace(out)  # whole or absent: the parent polls for it
        sys.stdout.write(f"{out}\n")
        sys.stdout.flush()


def run_task(task: Task, work: Path, progress: Callable[[int], None] | None = None) -> TaskResult:
    """Worker side: stream the task's files into IPC files under ``work``."""
    stem = work / f"task-{task.index:06d}"
    result = TaskResult(
        task,
        [],
        EntryFile(stem.with_suffix(".entries.arrow")),
        stem.with_suffix(".raw.arrow"),
        stem.with_suffix(".quarantine.jsonl"),
    )
    with (
        gc_paused(),
        result.entries.writer() as write_entries,
        pa.ipc.new_stream(str(result.raw), RAW_SCHEMA) as raw,
        result.quarantine.open("wb") as qfile,
    ):
        buffers = Buffers(write_entries, raw.write_table)

        def quarantine(rec: dict[str, Any]) -> None:
            qfile.write(orjson.dumps(rec) + b"\n")

        for src, old in zip(task.files, task.old, strict=True):
            state, reused = read_file(src, buffers, quarantine, result.tally, old, progress)
            result.files.append(FileResult(state, reused))
        buffers.flush()
    return result


def read_tables(path: Path, columns: Sequence[str] | None = None) -> Iterator[pa.Table]:
    """The tables of an IPC stream file, one per batch; only ``columns`` (in that order) are read."""
    with pa.OSFile(str(path)) as f:
        reader = pa.ipc.open_stream(f)
        if columns is not None:
            names = reader.schema.names
            fields = [names.index(c) for c in columns]
            f.seek(0)
            reader = pa.ipc.open_stream(f, options=pa.ipc.IpcReadOptions(included_fields=fields))
        for batch in reader:
            t = pa.Table.from_batches([batch])
            yield t if columns is None else t.select(list(columns))


if __name__ == "__main__":  # a worker: use the module by its name, so results unpickle in the parent
    from workbench.sources.claude_code import parallel

    parallel._serve(Path(sys.argv[1]))

"""The process pool: transcript files grouped into tasks, parsed on worker processes and here.

Tasks are consecutive files of about ``TASK_BYTES`` bytes still to read; ``parse_tasks``
yields each task's ``Parsed`` rows in task order, whoever parsed them.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.sources.claude_code.reader import FileState, Parsed, SourceFile, parse_files

#: Bytes of transcripts parsed as one task: per-task costs vanish, the last tasks balance.
TASK_BYTES = 16 << 20


class ParseError(WorkbenchError):
    """A parser process died."""


def default_workers() -> int:
    """Parser processes beside this one (which parses too): one if this process may run on
    two or more CPUs, else none."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return int(cpus >= 2)


@dataclass
class Task:
    """Consecutive files parsed together, with their previous states (None: read all)."""

    index: int
    files: list[SourceFile]
    old: list[FileState | None]
    nbytes: int


def make_tasks(files: Sequence[SourceFile], old_states: dict[str, FileState]) -> list[Task]:
    """Consecutive files grouped into tasks of about ``TASK_BYTES`` bytes still to read
    (a file's unchanged prefix is only hashed)."""
    tasks: list[Task] = []
    group: list[SourceFile] = []
    nbytes = 0
    for i, src in enumerate(files):
        old = old_states.get(src.key)
        group.append(src)
        nbytes += max(0, _size(src.path) - (old.consumed if old else 0))
        if nbytes >= TASK_BYTES or i == len(files) - 1:
            tasks.append(Task(len(tasks), group, [old_states.get(f.key) for f in group], nbytes))
            group, nbytes = [], 0
    return tasks


def parse_tasks(
    tasks: list[Task], work: Path, workers: int, progress: Callable[[int], object]
) -> Iterator[Parsed]:
    """Each task's rows, in task order. A pool of ``workers`` processes parses ahead (four
    tasks each at most); whenever the result this process needs is not ready, it parses the
    last task nobody has started, so the pool never waits for it and with one worker both
    cores of a 2-core machine parse."""

    def here(task: Task) -> Parsed:
        return parse_files(task.files, task.old, work / f"task-{task.index:06d}", progress)

    if workers == 0 or len(tasks) < 2:
        yield from map(here, tasks)
        return
    queue = deque(tasks)  # not started yet
    started: dict[int, Future | Parsed] = {}
    # spawn: a fresh interpreter per worker (fork is unsafe once Arrow's threads run); the
    # workers are ours, so their cycle collector is off (their rows make no cycles)
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=spawn, initializer=gc.disable) as pool:

        def feed() -> None:  # the last task stays here, so this process has work too
            running = sum(isinstance(s, Future) and not s.done() for s in started.values())
            for _ in range(min(4 * workers - running, len(queue) - 1)):
                task = queue.popleft()
                stem = work / f"task-{task.index:06d}"
                started[task.index] = pool.submit(parse_files, task.files, task.old, stem)

        for task in tasks:
            feed()
            while queue and not _ready(started.get(task.index)):
                mine = queue.popleft() if task.index not in started else queue.pop()
                started[mine.index] = here(mine)
                feed()
            result = started.pop(task.index)
            if isinstance(result, Future):
                try:
                    result = result.result()
                except BrokenProcessPool as e:
                    raise ParseError(f"A parser process stopped ({e}): re-run with --workers 0") from None
                progress(task.nbytes)
            if not queue and not any(isinstance(s, Future) for s in started.values()):
                pool.shutdown()  # the rest was parsed here: the workers' memory goes now
            yield result


def _ready(started: Future | Parsed | None) -> bool:
    return started is not None and (not isinstance(started, Future) or started.done())


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0

"""Where the load generator, the service and PostgreSQL run: CPU placement, applied and said.

On a small machine the generator, the service and PostgreSQL compete for the same cores,
and a run's latency says as much about that contention as about the service. A
:class:`Placement` gives the generator its own CPU and the servers (service and
PostgreSQL) the others; :func:`pinned` applies it with ``sched_setaffinity`` to every
thread of the processes given (a process's affinity is per thread on Linux; new threads
and forked children inherit it, so PostgreSQL's backends started later follow its
postmaster) and restores what each had on exit. Other work on the machine is not
moved: the page says so (:meth:`Placement.describe`).

>>> p = Placement(generator=(1,), servers=(0,))
>>> p.describe()
'generator on CPU 1; service and PostgreSQL on CPU 0 (other work on the machine not moved)'
>>> Placement.shared().describe()
'generator, service and PostgreSQL share every CPU (no pinning)'
>>> Placement.split(cpus=[0]).pins
False
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Placement:
    """CPUs for the generator's threads and for the servers' processes (empty: not pinned)."""

    generator: tuple[int, ...] = ()
    servers: tuple[int, ...] = ()

    @classmethod
    def shared(cls) -> Placement:
        return cls()

    @classmethod
    def split(cls, cpus: Iterable[int] | None = None) -> Placement:
        """The generator on the highest CPU this process may use, the servers on the rest;
        shared (no pinning) when there is only one CPU."""
        allowed = sorted(cpus if cpus is not None else available())
        if len(allowed) < 2:
            return cls()
        return cls(generator=(allowed[-1],), servers=tuple(allowed[:-1]))

    @classmethod
    def named(cls, name: str | None) -> Placement:
        """``"split"`` or ``"shared"`` (a notebook parameter, a CLI option); None is shared."""
        if name in (None, "", "shared"):
            return cls.shared()
        if name == "split":
            return cls.split()
        raise ValueError(f"placement {name!r}: choose 'split' (generator on its own CPU) or 'shared'")

    @property
    def pins(self) -> bool:
        return bool(self.generator and self.servers)

    def describe(self) -> str:
        if not self.pins:
            return "generator, service and PostgreSQL share every CPU (no pinning)"
        return (
            f"generator on CPU {_cpus(self.generator)}; service and PostgreSQL on CPU "
            f"{_cpus(self.servers)} (other work on the machine not moved)"
        )

    def as_dict(self) -> dict[str, str]:
        """What a run's context records (``run.settings["placement"]``)."""
        return {"placement": self.describe()}


def _cpus(cpus: tuple[int, ...]) -> str:
    return ",".join(str(c) for c in cpus)


def available() -> set[int]:
    """The CPUs this process may run on (all of them where affinity is not supported)."""
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return set(range(os.cpu_count() or 1))


def threads(pid: int) -> list[int]:
    """Every thread id of process ``pid`` (itself alone where /proc lacks them)."""
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return [pid]


@contextlib.contextmanager
def pinned(pids: Iterable[int], cpus: Iterable[int]) -> Iterator[list[int]]:
    """Every thread of ``pids`` on ``cpus`` until exit, then each back on what it had; yields
    the threads moved (a process that is gone, or not ours to move, is skipped)."""
    cpus = set(cpus)
    before: dict[int, set[int]] = {}
    if cpus:
        for pid in pids:
            for tid in threads(pid):
                try:
                    old = os.sched_getaffinity(tid)
                    os.sched_setaffinity(tid, cpus)
                except OSError:  # gone meanwhile, or not permitted
                    continue
                before[tid] = old
    try:
        yield list(before)
    finally:
        for tid, old in before.items():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, old)


@contextlib.contextmanager
def this_thread(cpus: Iterable[int]) -> Iterator[None]:
    """The calling thread (and threads it starts meanwhile: the generator's) on ``cpus``."""
    cpus = set(cpus)
    if not cpus:
        yield
        return
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, old)

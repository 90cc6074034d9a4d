"""When each request is meant to be sent: constant, step and ramp arrival profiles.

An open-loop generator sends request *i* at its intended time whatever happened to the
requests before it (wrk2's and k6's arrival-rate executors): a slow response delays no
later send, so queueing in the service shows up as latency instead of silently lowering
the offered load (coordinated omission). The schedule is computed up front and is
bounded both in count (``max_requests``) and in time (``max_seconds``).

>>> p = Profile.steps([50, 100], seconds=2)
>>> times, stages = p.intended()
>>> len(times), float(times[50]), int(stages[-1])
(300, 1.0, 1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from workbench.errors import WorkbenchError

#: Hard bounds of one run: nothing the tool schedules exceeds them.
MAX_REQUESTS = 2_000_000
MAX_SECONDS = 3600.0


class LoadError(WorkbenchError):
    """A load run cannot start (bad rate, duration, URL, target): the message names the value."""


@dataclass(frozen=True)
class Stage:
    """``seconds`` of arrivals whose rate goes linearly from ``rate`` to ``end_rate`` (req/s)."""

    rate: float
    seconds: float
    end_rate: float | None = None

    def __post_init__(self) -> None:
        for name, value in (("rate", self.rate), ("end rate", self.end_rate)):
            if value is not None and (not math.isfinite(value) or value <= 0):
                raise LoadError(f"Arrival {name} {value!r} req/s: it must be a positive number (e.g. 50)")
        if not math.isfinite(self.seconds) or self.seconds <= 0:
            raise LoadError(f"Duration {self.seconds!r} s: it must be a positive number of seconds")

    @property
    def requests(self) -> float:
        end = self.rate if self.end_rate is None else self.end_rate
        return (self.rate + end) / 2 * self.seconds

    def offsets(self) -> np.ndarray:
        """Send offsets within the stage: request k at the time the cumulative rate reaches k."""
        n = int(math.floor(self.requests + 1e-9))
        k = np.arange(n, dtype=float)
        if self.end_rate is None or self.end_rate == self.rate:
            return k / self.rate
        # N(t) = r0 t + (r1 - r0) t² / (2 D); solve N(t) = k for t >= 0.
        a = (self.end_rate - self.rate) / (2 * self.seconds)
        return (-self.rate + np.sqrt(self.rate**2 + 4 * a * k)) / (2 * a)


@dataclass(frozen=True)
class Profile:
    """Stages run one after the other; ``intended()`` gives every send time and its stage."""

    stages: tuple[Stage, ...]
    max_requests: int = MAX_REQUESTS
    max_seconds: float = MAX_SECONDS

    def __post_init__(self) -> None:
        if not self.stages:
            raise LoadError("A load profile needs at least one stage (a rate and a duration)")
        if self.max_requests < 1:
            raise LoadError(f"max_requests {self.max_requests}: it must be at least 1")
        total = sum(s.seconds for s in self.stages)
        if total > self.max_seconds:
            raise LoadError(
                f"The profile lasts {total:g} s, over the bound of {self.max_seconds:g} s: shorten it"
            )

    @classmethod
    def constant(cls, rate: float, seconds: float, **bounds: float) -> Profile:
        return cls((Stage(rate, seconds),), **bounds)

    @classmethod
    def steps(cls, rates: list[float], seconds: float, **bounds: float) -> Profile:
        if not rates:
            raise LoadError("A step profile needs at least one rate")
        return cls(tuple(Stage(r, seconds) for r in rates), **bounds)

    @classmethod
    def ramp(cls, start: float, stop: float, seconds: float, **bounds: float) -> Profile:
        return cls((Stage(start, seconds, stop),), **bounds)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    def describe(self) -> str:
        parts = []
        for s in self.stages:
            rate = f"{s.rate:g}" if s.end_rate is None else f"{s.rate:g}->{s.end_rate:g}"
            parts.append(f"{rate} req/s x {s.seconds:g} s")
        return ", ".join(parts)

    def intended(self) -> tuple[np.ndarray, np.ndarray]:
        """(send offsets in seconds from the start, stage index of each), at most ``max_requests``."""
        times, stages, start = [], [], 0.0
        for i, stage in enumerate(self.stages):
            offsets = stage.offsets() + start
            times.append(offsets)
            stages.append(np.full(offsets.size, i, dtype=np.int32))
            start += stage.seconds
        t, s = np.concatenate(times), np.concatenate(stages)
        return t[: self.max_requests], s[: self.max_requests]

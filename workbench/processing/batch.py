"""The plan's batch processor: fixed-size batches, a pause between them, progress,
retries, and a dead-letter file, so a failing batch costs neither rows nor duplicates.

Each batch is written atomically (see :mod:`.write`). A batch that fails is retried
``retries`` times with exponential backoff and full jitter (tenacity's
``wait_random_exponential``: before retry *n* a random wait of up to ``BACKOFF`` x 2^n
seconds, capped at ``MAX_BACKOFF``), so a struggling database gets room instead of an
immediate second hit, and many workers do not retry in step. If it still fails, its
rows go to the dead-letter file (JSON lines, one record per batch: the file/line
range, the reason, the attempts and the rows themselves) and the job goes on with the
next batch. :func:`replay` loads a
dead-letter file once its cause is fixed. Counting invariant, checked by the tests:
``rows read = rows written + rows dead-lettered``.

Pauses: :class:`FixedSleep` (the plan: sleep after every batch), :class:`NoSleep`, and
:class:`AdaptivePause` (sleep only while the target lags: when a batch took longer than
the target latency). Time is read from an injectable clock and slept through an
injectable ``sleep`` (pauses and backoff alike), so the tests drive them without waiting.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tenacity

from workbench.processing.decode import COLUMNS, Issue, ProcessingError, Row
from workbench.processing.read import ReadStats, batched, read_rows
from workbench.processing.write import Sink

Clock = Callable[[], float]
#: Backoff before retry n: a random wait of up to BACKOFF x 2^n seconds, at most MAX_BACKOFF.
BACKOFF = 0.05
MAX_BACKOFF = 5.0


def backoff(initial: float = BACKOFF, maximum: float = MAX_BACKOFF) -> Any:
    """Exponential backoff with full jitter, as tenacity's wait strategy."""
    return tenacity.wait_random_exponential(multiplier=initial, max=maximum)


class FixedSleep:
    """The plan's pacing: ``seconds`` after every batch, whatever the target does."""

    def __init__(self, seconds: float) -> None:
        if seconds < 0:
            raise ProcessingError(f"Sleep {seconds} s is negative: use 0 or more")
        self.seconds = seconds

    def pause(self, batch_seconds: float) -> float:
        return self.seconds

    def __repr__(self) -> str:
        return f"fixed {self.seconds * 1000:g} ms"


class NoSleep(FixedSleep):
    def __init__(self) -> None:
        super().__init__(0.0)

    def __repr__(self) -> str:
        return "none"


class AdaptivePause:
    """Pause only when the target lags: a batch slower than ``target_seconds`` earns a pause
    as long as its excess (capped at ``max_seconds``); a batch on time earns none."""

    def __init__(self, target_seconds: float, max_seconds: float = 1.0) -> None:
        self.target_seconds, self.max_seconds = target_seconds, max_seconds

    def pause(self, batch_seconds: float) -> float:
        return min(max(0.0, batch_seconds - self.target_seconds), self.max_seconds)

    def __repr__(self) -> str:
        return f"adaptive (target {self.target_seconds * 1000:g} ms)"


@dataclass
class Progress:
    """Handed to the progress callback after every batch."""

    batch: int
    rows_written: int
    rows_dead: int
    seconds: float


@dataclass
class SyncReport:
    """What a sync did, counted: rows in = rows written + rows dead-lettered."""

    rows_in: int = 0
    rows_written: int = 0
    rows_dead: int = 0
    batches: int = 0
    failed_batches: int = 0
    retries: int = 0
    backoff_seconds: float = 0.0
    slept_seconds: float = 0.0
    seconds: float = 0.0
    issues: list[Issue] = field(default_factory=list)
    dead_letter: Path | None = None
    read: ReadStats | None = None
    #: Each batch's write time (retries and their backoff included) and the pause after it.
    batch_seconds: list[float] = field(default_factory=list)
    pause_seconds: list[float] = field(default_factory=list)
    #: True when ``max_seconds`` ran out before the rows did.
    cut: bool = False

    @property
    def rows_per_second(self) -> float:
        return self.rows_written / self.seconds if self.seconds > 0 else float("nan")

    def summary(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "rows_written": self.rows_written,
            "rows_dead": self.rows_dead,
            "batches": self.batches,
            "failed_batches": self.failed_batches,
            "retries": self.retries,
            "backoff_s": round(self.backoff_seconds, 6),
            "issues": len(self.issues),
            "slept_s": round(self.slept_seconds, 6),
            "seconds": round(self.seconds, 6),
        }

    def issues_frame(self) -> Any:
        """The issues as a Polars frame: file, line, reason, detail."""
        import polars as pl

        schema = {"file": pl.String, "line": pl.Int64, "reason": pl.String, "detail": pl.String}
        return pl.DataFrame([i.as_dict() for i in self.issues], schema=schema)


def ranges(rows: Iterable[Row]) -> list[dict[str, Any]]:
    """The (file, first line, last line) spans a batch covers, in order."""
    out: list[dict[str, Any]] = []
    for r in rows:
        file, line = r[2], r[3]
        if out and out[-1]["file"] == file:
            out[-1]["last_line"] = line
        else:
            out.append({"file": file, "first_line": line, "last_line": line})
    return out


def process(
    rows: Iterable[Row],
    sink: Sink,
    *,
    batch_size: int = 1000,
    writer: str = "executemany",
    pacer: FixedSleep | AdaptivePause | None = None,
    retries: int = 2,
    dead_letter: str | os.PathLike[str] | None = None,
    progress: Callable[[Progress], Any] | None = None,
    clock: Clock = time.perf_counter,
    sleep: Callable[[float], Any] = time.sleep,
    report: SyncReport | None = None,
    max_seconds: float | None = None,
    wait: Any = None,
) -> SyncReport:
    """Write ``rows`` into ``sink`` in batches; failed batches are retried, then dead-lettered.

    A batch is dead-lettered only when a dead-letter path is given; without one, the
    job stops at the first batch that still fails (nothing written twice either way).
    ``max_seconds`` stops the job after the batch that ends past it (``report.cut``);
    the rows not yet read stay unread. ``wait`` is the backoff between attempts, a tenacity
    wait strategy (default :func:`backoff`); it is slept through ``sleep``.
    """
    report = report or SyncReport()

    def before_sleep(state: tenacity.RetryCallState) -> None:
        report.retries += 1
        report.backoff_seconds += state.upcoming_sleep

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(retries + 1),
        wait=wait if wait is not None else backoff(),
        retry=tenacity.retry_if_exception_type(Exception),  # a driver error: constraint, lost connection
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    report.dead_letter = Path(dead_letter) if dead_letter is not None else None
    pacer = pacer or NoSleep()
    started = clock()
    dead = None
    try:
        for batch in batched(iter(rows), batch_size):
            report.rows_in += len(batch)
            report.batches += 1
            t0 = clock()
            error: BaseException | None = None
            try:
                if retries:
                    retrying(sink.write, batch, writer)
                else:  # no retry policy: no retrying machinery (about 30 us a batch)
                    sink.write(batch, writer)
            except Exception as e:  # still failing after every attempt
                error = e
            if error is None:
                report.rows_written += len(batch)
            else:
                report.failed_batches += 1
                if report.dead_letter is None:
                    raise ProcessingError(
                        f"Batch {report.batches} ({_describe(ranges(batch))}) failed after "
                        f"{retries + 1} attempts: {_reason(error)}. Pass a dead-letter file to keep going"
                    ) from error
                if dead is None:
                    report.dead_letter.parent.mkdir(parents=True, exist_ok=True)
                    dead = open(report.dead_letter, "a", encoding="utf-8")  # noqa: SIM115 (opened on the first failure only)
                record = {
                    "batch": report.batches,
                    "ranges": ranges(batch),
                    "rows": len(batch),
                    "reason": _reason(error),
                    "attempts": retries + 1,
                    "records": [dict(zip(COLUMNS, r, strict=True)) for r in batch],
                }
                dead.write(json.dumps(record, ensure_ascii=False) + "\n")
                dead.flush()
                report.rows_dead += len(batch)
            took = clock() - t0
            pause = pacer.pause(took)
            if pause > 0:
                sleep(pause)
                report.slept_seconds += pause
            report.batch_seconds.append(took)
            report.pause_seconds.append(pause)
            if progress is not None:
                progress(Progress(report.batches, report.rows_written, report.rows_dead, clock() - started))
            if max_seconds is not None and clock() - started >= max_seconds:
                report.cut = True
                break
        sink.finish()
    finally:
        if dead is not None:
            dead.close()
        report.seconds = clock() - started
    return report


def sync(
    root: str | os.PathLike[str],
    sink: Sink,
    *,
    reader: str = "stream",
    decode: str = "orjson",
    **options: Any,
) -> SyncReport:
    """The log-sync job: read the transcript tree at ``root`` and write its messages into ``sink``."""
    stats = ReadStats()
    report = SyncReport(read=stats)
    process(read_rows(root, reader=reader, decode=decode, stats=stats), sink, report=report, **options)
    report.issues = stats.issues
    return report


def dead_rows(path: str | os.PathLike[str]) -> Iterator[Row]:
    """The rows of a dead-letter file, in the order they were written."""
    p = Path(path)
    if not p.exists():
        raise ProcessingError(f"Dead-letter file {str(p)!r} does not exist: nothing to replay")
    with open(p, encoding="utf-8") as f:
        for n, text in enumerate(f, 1):
            try:
                record = json.loads(text)
                yield from (tuple(r[c] for c in COLUMNS) for r in record["records"])
            except (ValueError, KeyError, TypeError) as e:
                raise ProcessingError(f"{p}:{n} is not a dead-letter record ({e}): was it edited?") from None


def replay(path: str | os.PathLike[str], sink: Sink, **options: Any) -> SyncReport:
    """Load a dead-letter file's rows (after the cause was fixed); still-failing batches go to
    ``options['dead_letter']`` if given."""
    return process(dead_rows(path), sink, **options)


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}"[:500]


def _describe(spans: list[dict[str, Any]]) -> str:
    return "; ".join(f"{s['file']} lines {s['first_line']}-{s['last_line']}" for s in spans)

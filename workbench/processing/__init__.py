"""The backend's log-sync and batch jobs, written the ways its plan describes (notebook 04).

The job reads a Claude Code transcript tree and writes its messages into an engine:

- :mod:`.decode`: one line -> one row, with ``json``, ``orjson`` or ``msgspec``;
- :mod:`.read`: whole file / line streaming / chunked with a bounded queue, and the
  Polars and DuckDB whole-tree readers; bad lines become issues with file, line, reason;
- :mod:`.write`: row by row, ``executemany``, multi-row ``VALUES``, the engine's bulk path;
- :mod:`.batch`: the batch processor (pause, progress, retries, dead-letter file, replay);
- :mod:`.experiments`: the comparisons as tidy Polars frames.
"""

from workbench.processing.batch import (
    AdaptivePause,
    FixedSleep,
    NoSleep,
    Progress,
    SyncReport,
    dead_rows,
    process,
    replay,
    sync,
)
from workbench.processing.decode import COLUMNS, DECODERS, Issue, ProcessingError
from workbench.processing.read import LINE_READERS, READERS, TREE_READERS, ReadStats, batched, read_rows
from workbench.processing.write import TABLE, WRITERS, Sink

__all__ = [
    "COLUMNS",
    "DECODERS",
    "LINE_READERS",
    "READERS",
    "TABLE",
    "TREE_READERS",
    "WRITERS",
    "AdaptivePause",
    "FixedSleep",
    "Issue",
    "NoSleep",
    "ProcessingError",
    "Progress",
    "ReadStats",
    "Sink",
    "SyncReport",
    "batched",
    "dead_rows",
    "process",
    "read_rows",
    "replay",
    "sync",
]

"""The backend's log-sync and batch jobs, written the ways its plan describes (notebook 04).

The job reads a Claude Code transcript tree and writes its messages into an engine:

- :mod:`.decode`: one line -> one row, with ``json``, ``orjson`` or ``msgspec``;
- :mod:`.read`: whole file / line streaming / chunked with a bounded queue, and the
  Polars and DuckDB readers (a file they refuse is finished line by line); bad lines
  become issues with file, line, reason;
- :mod:`.write`: row by row, ``executemany``, multi-row ``VALUES``, the engine's bulk path;
- :mod:`.batch`: the batch processor (pause, progress, retries, dead-letter file, replay);
- :mod:`.experiments`: the comparisons as tidy Polars frames.
"""

from workbench.lazy import lazy_exports

# Imported lazily (PEP 562): the one-variant child processes of the file-size experiment
# import only the readers, so their peak RSS is the reader's, not polars' or the drivers'.
__getattr__, __all__ = lazy_exports(
    __name__,
    {
        "batch": (
            "AdaptivePause",
            "FixedSleep",
            "NoSleep",
            "Progress",
            "SyncReport",
            "dead_rows",
            "process",
            "replay",
            "sync",
        ),
        "decode": ("COLUMNS", "DECODERS", "Issue", "ProcessingError"),
        "read": ("LINE_READERS", "READERS", "TREE_READERS", "ReadStats", "batched", "read_rows"),
        "write": ("TABLE", "WRITERS", "Sink"),
    },
)

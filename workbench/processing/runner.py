"""One read of the file-size experiment, run in its own process so its peak RSS is its own.

``python -m workbench.processing.runner VARIANT PATH [SCRATCH]`` prints one JSON line:
variant, rows, seconds and the process's peak RSS (``VmHWM``, KiB). Only the reader
and its decoder are imported (``baseline`` imports them and reads nothing).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from workbench.processing.read import read_rows


def run_variant(
    variant: str, path: str | os.PathLike[str], scratch: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """Read the transcript file or tree at ``path`` with ``variant`` (``reader/decoder``, a
    whole-tree reader, ``ingest`` or ``baseline``), counting message rows."""
    started = time.perf_counter()
    if variant == "baseline":
        rows = 0
    elif variant == "ingest":
        from workbench.sources.claude_code import ingest

        root = Path(path)
        dest = Path(scratch or root.parent) / "ingest-ds"
        report = ingest([root], dest, progress=False, overwrite=True, update=False, workers=0)
        rows = report.dataset.counts["messages"]
    else:
        reader, _, decode = variant.partition("/")
        rows = sum(1 for _ in read_rows(path, reader=reader, decode=decode or "orjson"))
    return {"variant": variant, "rows": rows, "seconds": time.perf_counter() - started}


def peak_rss_kib() -> int:
    """This process's peak RSS in KiB: ``VmHWM`` (its own address space; ``ru_maxrss`` would
    carry the parent's peak over fork and exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv: Sequence[str]) -> None:
    result = run_variant(argv[0], argv[1], argv[2] if len(argv) > 2 else None)
    result["self_peak_rss_kib"] = peak_rss_kib()
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])

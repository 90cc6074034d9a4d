"""What the two embedded engines share: a database file, replaced atomically on load."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from workbench.dataset import Dataset
from workbench.errors import EngineError


class EmbeddedFile:
    """Mixin for engines whose target is a file path.

    A load fills a hidden sibling file and renames it over the target only when it
    is complete, so an interrupted load never leaves a half-written database.
    """

    con: Any

    def __init__(self, target: str) -> None:
        self.target = target
        self.path = Path(target)
        if self.path.is_dir():
            raise EngineError(f"{target!r} is a folder: give a database file path for {self.name}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = self._connect(str(self.path))

    def close(self) -> None:
        self.con.close()

    def _connect(self, path: str) -> Any:
        raise NotImplementedError

    def _fill_file(self, path: str, dataset: Dataset, report: Any, progress: bool) -> None:
        """Create and fill a new database file at ``path`` (``Engine._fill`` on its connection)."""
        raise NotImplementedError

    def _bulk_load(self, dataset: Dataset, report: Any, progress: bool) -> None:
        tmp = self.path.with_name(f".{self.path.name}.loading-{os.getpid()}")
        _remove(tmp)
        try:
            self._fill_file(str(tmp), dataset, report, progress)
        except BaseException:
            _remove(tmp)
            raise
        self.con.close()
        os.replace(tmp, self.path)
        _remove(self.path.with_name(self.path.name + ".wal"))
        self.con = self._connect(str(self.path))


def _remove(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".wal"), path.with_name(path.name + "-journal")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()

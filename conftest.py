"""Loaded for every pytest run, including nbval on a single notebook (``pytest notebooks/x.ipynb``).

The session runs with ``WORKBENCH_DATA_DIR`` and ``WORKBENCH_OUT_DIR`` pointing at temporary
folders (nbval's and papermill's kernels inherit them), so notebooks run by the tests never
write into ``data/`` or ``reports/``; the session fails if either changed all the same.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
GUARDED = ("data", "reports")  # what only `make data` / `make report` may write
_scratch: list[Path] = []
_before: dict[str, dict[str, tuple[int, int]]] = {}


def tree_state(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: relative path -> (size, mtime in ns)."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def pytest_configure(config: pytest.Config) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="workbench-tests-"))
    _scratch.append(scratch)
    os.environ["WORKBENCH_DATA_DIR"] = str(scratch / "data")
    os.environ["WORKBENCH_OUT_DIR"] = str(scratch / "reports")
    _before.update({name: tree_state(ROOT / name) for name in GUARDED})


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    changed = []
    for name in GUARDED:
        before, after = _before.get(name, {}), tree_state(ROOT / name)
        changed += [
            f"{name}/{path}"
            for path in sorted(set(before) | set(after))
            if before.get(path) != after.get(path)
        ]
    if changed:
        writer = session.config.get_terminal_writer()
        writer.line()
        writer.line(
            f"FAILED: the tests wrote into the repository: {', '.join(changed[:5])}"
            f"{' ...' if len(changed) > 5 else ''}. Tests must write only to temporary folders "
            "(notebooks: data_dir = None, out_dir = None, resolved by lab.data_dir/lab.out_dir).",
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config: pytest.Config) -> None:
    for folder in _scratch:
        shutil.rmtree(folder, ignore_errors=True)

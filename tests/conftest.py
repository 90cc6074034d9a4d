"""Shared fixtures: datasets generated once per run, and a real PostgreSQL server.

PostgreSQL comes from ``WORKBENCH_POSTGRES_URL`` or, without it, a throwaway cluster
started from the system's binaries. On a laptop without PostgreSQL its tests skip with
a visible reason; in CI (``CI=true``) they fail instead, so they can never skip there.

The repository's ``conftest.py`` points ``WORKBENCH_DATA_DIR`` and ``WORKBENCH_OUT_DIR``
at temporary folders for the whole session (``scratch_dirs``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from workbench.dataset import Dataset
from workbench.engines.server import PostgresServer
from workbench.errors import EngineError
from workbench.sources.synthetic import generate

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def scratch_dirs() -> tuple[Path, Path]:
    """The session's ``WORKBENCH_DATA_DIR`` and ``WORKBENCH_OUT_DIR`` (temporary folders)."""
    return Path(os.environ["WORKBENCH_DATA_DIR"]), Path(os.environ["WORKBENCH_OUT_DIR"])


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """The ``tiny`` synthetic dataset (seed 7), shared read-only by every test."""
    return generate(tmp_path_factory.mktemp("datasets") / "tiny", scale="tiny", seed=7)


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    if url := os.environ.get("WORKBENCH_POSTGRES_URL"):
        yield url
        return
    try:
        server = PostgresServer.start()
    except EngineError as e:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but could not start: {e}")
        pytest.skip(f"PostgreSQL tests skipped, no server could be started: {e}")
    with server:
        yield server.url


@pytest.fixture(scope="session")
def pg_bindir() -> str:
    """The PostgreSQL server binaries: skipped without them on a laptop, failed in CI."""
    from workbench.engines.server import find_bindir

    try:
        return str(find_bindir())
    except EngineError as e:
        if IN_CI:
            pytest.fail(f"PostgreSQL binaries are required in CI: {e}")
        pytest.skip(f"PostgreSQL tests skipped: {e}")


@pytest.fixture
def in_ci() -> bool:
    return IN_CI


@pytest.fixture
def chromium_dom(tmp_path: Path) -> Callable[..., str]:
    """``dump(page, budget_ms)``: the DOM of an HTML file after headless Chromium ran its
    scripts, offline (no host name resolves, so anything fetched from the network fails).

    Chromium writes its profile under ``tmp_path``, never $HOME. Without Chromium the test
    skips on a laptop and fails in CI (``make system-deps`` installs it).
    """
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        if IN_CI:
            pytest.fail("chromium is required in CI (make system-deps installs it)")
        pytest.skip("chromium not installed: apt-get install chromium (make system-deps)")

    def dump(page: Path, budget_ms: int = 15000) -> str:
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
        flags += ["--disable-background-networking", "--disable-component-update"]
        flags += ["--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp_path / 'chromium'}"]
        home = {k: str(tmp_path) for k in ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")}
        return subprocess.run(
            [chromium, *flags, f"--virtual-time-budget={budget_ms}", "--dump-dom", page.as_uri()],
            capture_output=True,
            text=True,
            timeout=60 + budget_ms // 100,
            env={**os.environ, **home},
        ).stdout

    return dump


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database on the test server, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    base = postgres_server_url.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(postgres_server_url, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

"""Shared fixtures: datasets generated once per run, and a real PostgreSQL server.

PostgreSQL comes from ``WORKBENCH_POSTGRES_URL`` or, without it, a throwaway cluster
started from the system's binaries. On a laptop without PostgreSQL its tests skip with
a visible reason; in CI (``CI=true``) they fail instead, so they can never skip there.

The repository's ``conftest.py`` points ``WORKBENCH_DATA_DIR`` and ``WORKBENCH_OUT_DIR``
at temporary folders for the whole session (``scratch_dirs``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
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
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database on the test server, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    base = postgres_server_url.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(postgres_server_url, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

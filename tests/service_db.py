"""A database with the tiny dataset and the access-path indexes, shared by the service tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from workbench import strategies
from workbench.engines import open_engine


@pytest.fixture(scope="module")
def loaded_url(postgres_server_url: str, tiny) -> Iterator[str]:
    """One database per test module with the tiny dataset and the access-path indexes."""
    name = f"svc_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    url = postgres_server_url.rsplit("/", 1)[0] + "/" + name
    with open_engine("postgres", url) as engine:
        engine.load(tiny)
        strategies.ensure_indexes(engine)
    yield url
    with psycopg.connect(postgres_server_url, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

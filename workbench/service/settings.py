"""What one service run is configured with, and the names the rest of the service lab shares.

:class:`Settings` is one configuration of the comparison (loading strategy, pool, query
cache, worker processes); it travels to uvicorn's worker processes as JSON in
``$WORKBENCH_SERVICE_SETTINGS``. ``ENDPOINTS`` are the read endpoints by name (the
``endpoint`` label of the metrics and the load mix's keys); they are the production
profile's (:data:`workbench.profile.ENDPOINTS`), so there is one list.

>>> Settings(database_url="postgresql://localhost/db", strategy="batch", pool_size=8).label
'batch pool=8'
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from workbench.errors import WorkbenchError
from workbench.profile import ENDPOINTS

__all__ = ["ENDPOINTS", "MULTIPROC_ENV", "SETTINGS_ENV", "ServiceError", "Settings"]

SETTINGS_ENV = "WORKBENCH_SERVICE_SETTINGS"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class ServiceError(WorkbenchError):
    """The service cannot start with these settings."""


@dataclass(frozen=True)
class Settings:
    """What one service run is configured with (one configuration of the comparison).

    ``pool_size``: database connections (and handler threads) per worker process.
    ``max_waiting``: requests allowed to wait for a connection; beyond it ``503`` at once.
    ``pool_timeout``: seconds a request may wait for a connection before ``503``.
    ``workers``: uvicorn worker processes. ``debug_routes``: add ``/_fail`` and ``/_sleep?ms=`` (tests).
    ``cache_seconds``: keep read answers this long (0: no query cache); ``cache_size``: at most
    this many answers (least recently used go first).
    ``request_timeout``: seconds a request may take before ``504``, its statement cancelled in
    PostgreSQL (0: no deadline; a client that goes away cancels it either way).
    ``trace_sql``: append each request's ``traceparent`` to its statements as a SQL comment
    (off by default: every statement's text is then new, so none is prepared, and a batched
    ``/recent`` took 1.25x as long: docs/BENCHMARKS.md).
    """

    database_url: str
    strategy: str = "n_plus_one"
    pool_size: int = 4
    max_waiting: int = 64
    pool_timeout: float = 0.5
    workers: int = 1
    debug_routes: bool = False
    cache_seconds: float = 0.0
    cache_size: int = 4096
    request_timeout: float = 5.0
    trace_sql: bool = False

    def __post_init__(self) -> None:
        from workbench.strategies import strategy

        strategy(self.strategy)  # unknown names fail here, with the list
        for name in ("pool_size", "workers"):
            if getattr(self, name) < 1:
                raise ServiceError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.max_waiting < 0 or self.pool_timeout < 0:
            raise ServiceError(
                f"max_waiting ({self.max_waiting}) and pool_timeout ({self.pool_timeout}) must be >= 0"
            )
        if self.request_timeout < 0:
            raise ServiceError(f"request_timeout ({self.request_timeout}) must be >= 0 (0: no deadline)")
        if self.cache_seconds < 0 or self.cache_size < 1:
            raise ServiceError(
                f"cache_seconds ({self.cache_seconds}) must be >= 0 (0: no cache) and cache_size "
                f"({self.cache_size}) at least 1"
            )
        if not self.database_url.startswith(("postgresql", "postgres:")):
            raise ServiceError(
                f"The service runs over PostgreSQL, not {self.database_url.split(':')[0]!r}: the backend "
                "under study uses it, and the embedded engines' connections are bound to one thread. "
                "Pass a postgresql:// URL (workbench pg start gives one)."
            )

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Settings:
        return cls(**json.loads(text))

    @property
    def label(self) -> str:
        """Short name in tables: strategy and pool, then workers and cache where not the default."""
        text = f"{self.strategy} pool={self.pool_size}"
        if self.workers != 1:
            text += f" workers={self.workers}"
        return text + (f" cache={self.cache_seconds:g}s" if self.cache_seconds else "")

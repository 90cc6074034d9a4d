"""The service's instruments: Prometheus metrics for ``/metrics``, HDR histograms for ``/stats``.

Every request is timed by endpoint and status, every 5xx counted by kind (``pool_queue``
and ``pool_timeout`` for the 503s of a full pool, ``timeout`` for a 504), every request
given up counted by reason, every SQL statement timed by endpoint (recorded by
:class:`~workbench.service.context.RequestEngine`), and the pool's size, lent connections
and waiters are gauges.

>>> m = Instruments(pool_size=2)
>>> m.statement("recent", 0.004)
>>> m.stats()["db_statements"]
1
"""

from __future__ import annotations

import collections
import os
import threading
from typing import Any

from hdrh.histogram import HdrHistogram
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from workbench.service.settings import MULTIPROC_ENV

#: Latency buckets (seconds): dense around the SLO thresholds (50 ms, 100 ms, 200 ms).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2, 5, 10)


class Instruments:
    """The service's Prometheus metrics, plus HDR histograms for ``/stats``.

    With ``$PROMETHEUS_MULTIPROC_DIR`` set (several worker processes), prometheus-client
    writes every process's values to that folder and ``/metrics`` sums them; its process
    collector (CPU seconds, resident memory) has no multiprocess mode, so with several
    workers those two SLIs come from the load tool's psutil sampling only.
    """

    def __init__(self, pool_size: int) -> None:
        self.multiproc = bool(os.environ.get(MULTIPROC_ENV))
        self.registry = None if self.multiproc else CollectorRegistry()
        reg = {"registry": self.registry} if self.registry is not None else {}
        live = {"multiprocess_mode": "livesum"} if self.multiproc else {}
        self.requests = Histogram(
            "workbench_http_request_duration_seconds",
            "Time from the request reaching the app to its response, by endpoint and status.",
            ["endpoint", "status"],
            buckets=BUCKETS,
            **reg,
        )
        self.errors = Counter(
            "workbench_http_errors",
            "Requests answered 5xx, by endpoint and kind.",
            ["endpoint", "kind"],
            **reg,
        )
        self.cancelled = Counter(
            "workbench_http_cancelled",
            "Requests given up before their work finished, by endpoint and reason (timeout: the "
            "request deadline; disconnect: the client went away); the running statement is "
            "cancelled in PostgreSQL.",
            ["endpoint", "reason"],
            **reg,
        )
        self.in_flight = Gauge("workbench_http_in_flight", "Requests being handled.", **reg, **live)
        self.pool_in_use = Gauge("workbench_pool_in_use", "Connections lent to handlers.", **reg, **live)
        self.pool_size = Gauge("workbench_pool_size", "Connections in the pool.", **reg, **live)
        self.pool_waiting = Gauge(
            "workbench_pool_waiting", "Requests waiting for a connection.", **reg, **live
        )
        self.pool_wait = Histogram(
            "workbench_pool_wait_seconds", "Time waiting for a connection.", buckets=BUCKETS, **reg
        )
        self.db = Histogram(
            "workbench_db_statement_seconds",
            "Time of each SQL statement, by endpoint.",
            ["endpoint"],
            buckets=BUCKETS,
            **reg,
        )
        self.cache = Counter(
            "workbench_cache_requests",
            "Read requests looked up in the query cache, by endpoint and result (hit or miss).",
            ["endpoint", "result"],
            **reg,
        )
        self.pool_size.set(pool_size)
        if self.registry is not None:  # CPU seconds and resident memory of this process
            from prometheus_client import ProcessCollector

            ProcessCollector(registry=self.registry)
        self._lock = threading.Lock()
        self.db_hdr = HdrHistogram(1, 60_000_000, 3)  # microseconds, 1 µs .. 60 s
        self.wait_hdr = HdrHistogram(1, 60_000_000, 3)
        self.counts: collections.Counter[str] = collections.Counter()
        self.cache_counts: collections.Counter[str] = collections.Counter()

    def cached(self, endpoint: str, hit: bool) -> None:
        result = "hit" if hit else "miss"
        self.cache.labels(endpoint, result).inc()
        self.cache_counts[result] += 1  # on the event loop only: no lock needed

    def statement(self, endpoint: str, seconds: float) -> None:
        self.db.labels(endpoint).observe(seconds)
        with self._lock:
            self.db_hdr.record_value(max(1, int(seconds * 1e6)))

    def waiting(self, delta: int) -> None:
        self.pool_waiting.inc(delta)

    def lent(self, delta: int) -> None:
        self.pool_in_use.inc(delta)

    def waited(self, seconds: float) -> None:
        self.pool_wait.observe(seconds)
        with self._lock:
            self.wait_hdr.record_value(max(1, int(seconds * 1e6)))

    def exposition(self) -> bytes:
        if not self.multiproc:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)

    def stats(self, reset: bool = False) -> dict[str, Any]:
        """Statement timings, pool waits and answers since start (or the last reset)."""
        with self._lock:
            out = {
                "pid": os.getpid(),
                "db_statements": self.db_hdr.get_total_count(),
                "db_p50_ms": self.db_hdr.get_value_at_percentile(50) / 1000,
                "db_p99_ms": self.db_hdr.get_value_at_percentile(99) / 1000,
                "db_max_ms": self.db_hdr.get_max_value() / 1000,
                "pool_waits": self.wait_hdr.get_total_count(),
                "pool_wait_p99_ms": self.wait_hdr.get_value_at_percentile(99) / 1000,
                "pool_wait_max_ms": self.wait_hdr.get_max_value() / 1000,
                "requests": dict(self.counts),
                "cache_hits": self.cache_counts["hit"],
                "cache_misses": self.cache_counts["miss"],
            }
            if reset:
                self.db_hdr.reset()
                self.wait_hdr.reset()
                self.counts.clear()
                self.cache_counts.clear()
            return out

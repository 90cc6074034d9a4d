"""The service lab: the backend's read API as a real HTTP service, driven by open-loop load.

* :mod:`workbench.service.app`: the ASGI app (Starlette on uvicorn) assembled from
  :mod:`~workbench.service.settings` (loading strategy, pool size, query cache, worker
  processes), :mod:`~workbench.service.pool` (psycopg_pool; backpressure: 503 when full),
  :mod:`~workbench.service.metrics` (``/metrics`` for Prometheus, ``/stats``),
  :mod:`~workbench.service.context` (trace ids into SQL comments, cancellation reaching
  PostgreSQL) and :mod:`~workbench.service.routes` (the endpoints), with per-request
  recovery, a deadline and disconnect handling.
* :mod:`workbench.service.process`: the service as a child process on a loopback port
  (what the load runs and tests measure), with its CPU and peak memory per run.
* :mod:`workbench.service.experiment`: the knee of each configuration (a ramp, then steady
  runs bisecting it) and the runs' tables.
* :mod:`workbench.service.statements`: pg_stat_statements reset and read per run.
* :mod:`workbench.service.load`: the open-loop load generator (intended send times, HDR
  histograms, endpoint mix from the dataset, step and ramp profiles, k6 import) and wrk
  for throughput at saturation.
* :mod:`workbench.service.slo`: the plan's SLOs, verdicts per configuration, the highest
  holding rate, what each change moves, error budget and the capacity a production
  machine needs.
* :mod:`workbench.service.monitoring`: a real Prometheus server scraping the service,
  its HTTP API, the PromQL of each SLO and the Grafana dashboard.
* :mod:`workbench.service.alerts`: Prometheus alerting rules for the SLOs (multiwindow
  burn-rate alerts on the error and latency budgets).
* :mod:`workbench.service.placement`: which CPUs the generator and the servers run on.
* :mod:`workbench.service.stress`: the plan's spike and soak.
"""

from workbench.service.app import ENDPOINTS, Settings, create_app

__all__ = ["ENDPOINTS", "Settings", "create_app"]

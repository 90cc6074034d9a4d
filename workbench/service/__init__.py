"""The service lab: the backend's read API as a real HTTP service, driven by open-loop load.

* :mod:`workbench.service.app`: the ASGI app (Starlette on uvicorn), its settings
  (loading strategy, pool size, worker processes), backpressure and per-request recovery,
  ``/metrics`` for Prometheus and ``/health``.
* :mod:`workbench.service.process`: the service as a child process on a loopback port
  (what the load runs and tests measure), with its CPU and memory sampled by psutil.
* :mod:`workbench.service.load`: the open-loop load generator (intended send times, HDR
  histograms, endpoint mix from the dataset, step and ramp profiles, k6 import).
* :mod:`workbench.service.slo`: the plan's SLOs, verdicts per configuration, the ramp's
  highest passing rate, error budget and the capacity a production machine needs.
* :mod:`workbench.service.monitoring`: a real Prometheus server scraping the service,
  its HTTP API, the Grafana dashboard and the PromQL of each SLO.
"""

from workbench.service.app import ENDPOINTS, Settings, create_app

__all__ = ["ENDPOINTS", "Settings", "create_app"]

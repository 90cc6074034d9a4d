"""Prometheus alerting rules for the SLOs: multiwindow, multi-burn-rate alerts on the budgets.

Two SLOs are budgets of bad requests, and alert as the Google SRE workbook does
("Alerting on SLOs", its recommended multiwindow, multi-burn-rate alerts):

* **errors**: at most ``error_percent`` of requests answered 5xx (the budget: that share);
* **latency**: P99 under ``p99_ms`` is 1% of the answered requests allowed slower than
  ``p99_ms`` (the budget: 1%; ``p99_ms`` must be one of the service's histogram buckets).

A burn rate is the bad share over a window divided by the budget (1 spends the budget
exactly over the SLO period). Each alert fires when both a long and a short window burn
faster than its factor: the long window makes it significant, the short one makes it
reset soon after the burning stops. The workbook's three, for a 30-day budget:

* page: 2% of the budget in 1 h (burn 14.4 over 1 h and 5 min);
* page: 5% in 6 h (burn 6 over 6 h and 30 min);
* ticket: 10% in 3 days (burn 1 over 3 d and 6 h).

:func:`rules` builds the rule groups (recording rules for each window's bad share, then
the alerts); :func:`export_rules` writes them beside the Grafana dashboard. Tests use
short windows (:class:`Window` with seconds) to fire an alert against a real service.

>>> [a["alert"] for a in rules(0.1, 200)["groups"][1]["rules"]][:2]
['WorkbenchErrorBudgetBurn', 'WorkbenchErrorBudgetBurn']
>>> rules(0.1, 200)["groups"][1]["rules"][0]["expr"]  # doctest: +NORMALIZE_WHITESPACE
'workbench:error_ratio:rate1h > (14.4 * 0.001) and workbench:error_ratio:rate5m > (14.4 * 0.001)'
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from workbench.service.metrics import BUCKETS
from workbench.service.settings import ServiceError

_REQ = "workbench_http_request_duration_seconds"
_OK = 'status!~"5.."'


@dataclass(frozen=True)
class Window:
    """One alert: ``severity``, its ``long`` and ``short`` windows (Prometheus durations), and the
    burn rate both must exceed."""

    severity: str
    long: str
    short: str
    burn: float


#: The SRE workbook's recommended windows and burn rates for a 30-day SLO period.
WORKBOOK = (
    Window("page", "1h", "5m", 14.4),
    Window("page", "6h", "30m", 6),
    Window("ticket", "3d", "6h", 1),
)


def error_ratio(window: str) -> str:
    """The share of requests answered 5xx over ``window`` (0 when none failed)."""
    return (
        f"(sum(rate(workbench_http_errors_total[{window}])) or vector(0)) / sum(rate({_REQ}_count[{window}]))"
    )


def slow_ratio(window: str, threshold_s: float) -> str:
    """The share of answered (non-5xx) requests slower than ``threshold_s`` over ``window``."""
    le = _le(threshold_s)
    fast = f'sum(rate({_REQ}_bucket{{{_OK}, le="{le}"}}[{window}]))'
    return f"1 - {fast} / sum(rate({_REQ}_count{{{_OK}}}[{window}]))"


def _le(threshold_s: float) -> str:
    """The bucket label of ``threshold_s`` as prometheus-client writes it, or an error naming the buckets."""
    for b in BUCKETS:
        if abs(b - threshold_s) < 1e-9:
            return repr(float(b))
    raise ServiceError(
        f"A latency alert at {threshold_s * 1000:g} ms needs that bucket in the service's histogram: "
        f"choose one of {', '.join(f'{b * 1000:g}' for b in BUCKETS)} ms, or add it to metrics.BUCKETS"
    )


def rules(error_percent: float, p99_ms: float, windows: tuple[Window, ...] = WORKBOOK) -> dict[str, Any]:
    """Prometheus rule groups: recording rules for the bad shares per window, then the burn-rate
    alerts on the error budget (``error_percent`` %) and the latency budget (1% slower than
    ``p99_ms``)."""
    if not 0 < error_percent < 100:
        raise ServiceError(f"error_percent {error_percent!r}: the error budget is a share in (0, 100) %")
    threshold = p99_ms / 1000
    _le(threshold)
    spans = sorted({w for win in windows for w in (win.long, win.short)}, key=_seconds)
    recording = []
    for span in spans:
        recording.append({"record": f"workbench:error_ratio:rate{span}", "expr": error_ratio(span)})
        recording.append({"record": f"workbench:slow_ratio:rate{span}", "expr": slow_ratio(span, threshold)})
    budgets = (
        (
            "WorkbenchErrorBudgetBurn",
            "error_ratio",
            error_percent / 100,
            f"5xx answers over {error_percent:g}%",
        ),
        (
            "WorkbenchLatencyBudgetBurn",
            "slow_ratio",
            0.01,
            f"more than 1% of answers slower than {p99_ms:g} ms",
        ),
    )
    alerts = []
    for name, ratio, budget, what in budgets:
        for w in windows:
            limit = f"({w.burn:g} * {budget:g})"
            alerts.append(
                {
                    "alert": name,
                    "expr": f"workbench:{ratio}:rate{w.long} > {limit} and "
                    f"workbench:{ratio}:rate{w.short} > {limit}",
                    "labels": {"severity": w.severity, "window": f"{w.long}/{w.short}"},
                    "annotations": {
                        "summary": f"The service burns its budget ({what}) {w.burn:g}x too fast "
                        f"over {w.long} and {w.short}",
                        "bad": f"{{{{ $value | humanizePercentage }}}} of requests over {w.long}",
                    },
                }
            )
    return {
        "groups": [
            {"name": "workbench-slo-ratios", "rules": recording},
            {"name": "workbench-slo-alerts", "rules": alerts},
        ]
    }


def _seconds(duration: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return float(duration[:-1]) * units[duration[-1]]


def write_rules(path: str | os.PathLike[str], groups: dict[str, Any]) -> Path:
    path = Path(path)
    path.write_text(yaml.safe_dump(groups, sort_keys=False, width=200))
    return path


def export_rules(out_dir: str | os.PathLike[str], error_percent: float, p99_ms: float) -> Path:
    """Write ``prometheus-alerts.yml`` (the workbook's windows) into ``out_dir``, beside the dashboard."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return write_rules(out / "prometheus-alerts.yml", rules(error_percent, p99_ms))

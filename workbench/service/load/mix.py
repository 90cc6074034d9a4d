"""What each request asks for: a weighted mix of endpoints, parameters drawn from the dataset.

Real traffic is skewed: a few busy projects get most of it (their pages are warm in the
database's cache) and a long tail of cold ones does not. :func:`targets` splits the
dataset's projects into hot (the largest by sessions, ``hot_fraction`` of them) and cold;
:func:`paths` draws each request's endpoint from the weights and its project from the
hot set with probability ``hot_share``, then a session of that project, a day with
messages, or a job status. Seeded: the same arguments give the same requests.

>>> t = targets(dataset)                                        # doctest: +SKIP
>>> paths(Mix(), t, 3, seed=1)                                  # doctest: +SKIP
[('recent', '/projects/3/recent?limit=20'), ('session', '/sessions/812'), ...]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from workbench.profile import ENDPOINTS
from workbench.service.load.schedule import LoadError

DEFAULT_WEIGHTS = {"sessions": 0.25, "recent": 0.3, "session": 0.25, "usage": 0.1, "jobs": 0.1}


@dataclass(frozen=True)
class Mix:
    """Endpoint weights and the hot/cold skew (shares of requests)."""

    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    hot_share: float = 0.8
    hot_fraction: float = 0.2
    page_limit: int = 20

    def __post_init__(self) -> None:
        unknown = sorted(set(self.weights) - set(ENDPOINTS))
        if unknown:
            raise LoadError(
                f"Unknown endpoint {unknown[0]!r} in the mix: expected some of {', '.join(ENDPOINTS)}"
            )
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise LoadError(f"Mix weights {self.weights} must be >= 0 with a positive sum")
        if not (0 <= self.hot_share <= 1 and 0 < self.hot_fraction <= 1):
            raise LoadError(
                f"hot_share {self.hot_share} must be in 0..1 and hot_fraction {self.hot_fraction} in (0, 1]"
            )


@dataclass
class Targets:
    """Parameters the requests are drawn from."""

    hot: list[int]
    cold: list[int]
    sessions: dict[int, list[int]]
    days: list[date]
    statuses: list[str]


def targets(dataset: Any, hot_fraction: float = 0.2) -> Targets:
    """Hot and cold projects, each project's sessions, days with messages, job statuses."""
    sessions = dataset.read("sessions").select("id", "project_id")
    by_project = sessions.group_by("project_id").agg(pl.col("id").sort()).sort("project_id")
    sizes = by_project.with_columns(n=pl.col("id").list.len()).sort(
        ["n", "project_id"], descending=[True, False]
    )
    order = sizes["project_id"].to_list()
    cut = max(1, round(len(order) * hot_fraction))
    days = dataset.scan("messages").select(pl.col("timestamp").dt.date().unique()).collect().to_series()
    statuses = dataset.read("jobs")["status"].unique().sort().to_list()
    return Targets(
        hot=order[:cut],
        cold=order[cut:] or order[:cut],
        sessions=dict(zip(by_project["project_id"], by_project["id"].to_list(), strict=True)),
        days=sorted(days.to_list()),
        statuses=statuses,
    )


def paths(mix: Mix, t: Targets, n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (endpoint, path) pairs drawn from ``mix`` over ``t`` (deterministic for ``seed``)."""
    rng = np.random.default_rng(seed)
    names = [e for e in ENDPOINTS if mix.weights.get(e, 0) > 0]
    p = np.array([mix.weights[e] for e in names], dtype=float)
    kinds = rng.choice(len(names), n, p=p / p.sum())
    hot = rng.random(n) < mix.hot_share
    pick = rng.random(n)
    out = []
    for k, is_hot, u in zip(kinds, hot, pick, strict=True):
        name = names[k]
        group = t.hot if is_hot else t.cold
        project = group[int(u * len(group))]
        if name == "sessions":
            out.append((name, f"/projects/{project}/sessions?limit={mix.page_limit}"))
        elif name == "recent":
            out.append((name, f"/projects/{project}/recent?limit={mix.page_limit}"))
        elif name == "session":
            ids = t.sessions.get(project) or [0]
            out.append((name, f"/sessions/{ids[int(rng.integers(len(ids)))]}"))
        elif name == "usage":
            out.append((name, f"/usage/{t.days[int(rng.integers(len(t.days)))].isoformat()}"))
        else:
            out.append((name, f"/jobs?status={t.statuses[int(rng.integers(len(t.statuses)))]}&limit=50"))
    return out

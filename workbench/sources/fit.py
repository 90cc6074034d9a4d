"""Fit the generator to a Dataset: a small JSON shape with no content and no identifiers.

:func:`fit` measures a Dataset (ingested transcripts, or a sample of a database) and keeps
only distributions: sessions per project as a share-by-rank curve, messages per session as
an empirical body with a Pareto tail above its 95th percentile (Hill's estimator), gaps
between a session's messages (which make its 5-hour windows), the daily and weekly rhythm
of session starts, message types, sizes and token counts by role and type, and the jobs'
status mix and durations. Every distribution is a quantile function on one fixed grid of
probabilities, so the file is a few kilobytes at any size and holds numbers only.

A :class:`Shape` is also the generator's model: :func:`workbench.sources.synthetic.generate_like`
draws from it at any number of sessions, deterministic for a seed.

>>> import tempfile
>>> from workbench.sources.synthetic import generate, generate_like
>>> folder = tempfile.mkdtemp()
>>> shape = fit(generate(f"{folder}/tiny", "tiny", seed=7))
>>> shape.sessions, sorted(shape.data["kinds"])
(60, ['assistant', 'user'])
>>> generate_like(f"{folder}/like", shape, seed=1, scale=2).counts["sessions"]
120
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.dataset import Dataset
    from workbench.sources.synthetic import Scale

FORMAT = "workbench-shape"
#: The shape file's schema; a file of another version is refused, naming both.
SHAPE_VERSION = 1
#: Probabilities every quantile function is stored at: dense in the tail, where it matters.
GRID = np.unique(
    np.round(
        np.concatenate([np.linspace(0, 0.9, 46), np.linspace(0.9, 0.99, 19), np.linspace(0.99, 1, 11)]), 6
    )
)
#: Fewer rows than this and a distribution is not fitted but refused (see :class:`ShapeError`).
MINIMUM = {"sessions": 30, "messages": 300, "jobs": 30}
#: Share of sessions (and fewest sessions) above the threshold where the fitted tail takes over
#: from the empirical body. On the replicated fixture tree a 5% tail puts the generated p99 9%
#: under the source's and a 10% tail 16% over it (Hill's estimator is biased on lognormal-like tails).
TAIL_SHARE, TAIL_POINTS = 0.05, 10
#: The fitted tail never draws more than this many times the largest session fitted on.
TAIL_CAP = 3
TOKENS = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens")
_CURVE_POINTS = 256  # at most this many relative project ranks in the share-by-rank curve


class ShapeError(WorkbenchError):
    """A Dataset too small to fit, or a shape file this workbench cannot read."""


def _quantiles(values: np.ndarray) -> list[float]:
    """``values``' quantile function on :data:`GRID`, rounded to 4 significant digits."""
    q = np.quantile(np.asarray(values, dtype=np.float64), GRID) if len(values) else np.zeros(len(GRID))
    return [float(f"{v:.4g}") for v in q]


def _draw(q: list[float], u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws from a stored quantile function, interpolated in log space."""
    return np.expm1(np.interp(u, GRID, np.log1p(np.maximum(np.asarray(q), 0))))


def _shares(values: np.ndarray, names: list[str] | None = None) -> dict[str, float]:
    names_, counts = np.unique(values, return_counts=True)
    return {str(k): round(float(c) / len(values), 6) for k, c in zip(names_, counts, strict=True)}


def _need(table: str, rows: int, what: str) -> None:
    if rows < MINIMUM[table]:
        raise ShapeError(
            f"Table {table!r} has {rows:,} rows: fitting {what} needs at least {MINIMUM[table]:,}; "
            "ingest more transcripts or sample a larger part of the database"
        )


def fit(ds: Dataset) -> Shape:
    """The shape of ``ds``: distributions only, no content and no identifiers.

    Raises :class:`ShapeError` naming the table and the minimum when ``ds`` is too small.
    A Dataset without jobs (ingested transcripts have none) keeps the generator's job mix.
    """
    import polars as pl

    sessions = ds.read("sessions").select("id", "project_id", "created_at")
    _need("sessions", sessions.height, "messages per session")
    _need("messages", ds.counts["messages"], "message sizes and gaps")
    messages = (
        ds.scan("messages")
        .select(
            "session_id",
            "timestamp",
            "role",
            "type",
            *TOKENS,
            length=pl.col("content").str.len_bytes(),
        )
        .sort("session_id", "timestamp", maintain_order=True)
        .collect()
    )
    per_session = (
        sessions.select(session_id="id")
        .join(messages.group_by("session_id").len(), on="session_id", how="left")
        .select(pl.col("len").fill_null(0))
        .to_series()
        .to_numpy()
    )
    per_session = per_session[per_session > 0]
    _need("sessions", len(per_session), "messages per session (sessions with messages)")
    per_session = np.sort(per_session)
    top = max(TAIL_POINTS, int(np.ceil(TAIL_SHARE * len(per_session))))
    threshold = float(per_session[-top - 1])
    tail = per_session[per_session > threshold]
    alpha = float(len(tail) / np.log(tail / threshold).sum()) if len(tail) else None

    ts = messages["timestamp"].to_numpy().astype("datetime64[us]").astype(np.int64)
    same = messages["session_id"].to_numpy()
    gaps = np.diff(ts)[same[1:] == same[:-1]] / 1e6

    starts = sessions["created_at"].to_numpy().astype("datetime64[us]")
    hour = (starts.astype("datetime64[h]").astype(np.int64)) % 24
    day = starts.astype("datetime64[D]").astype(np.int64)
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday: Monday is 0
    project_sizes = np.sort(sessions.group_by("project_id").len()["len"].to_numpy())[::-1]
    curve = np.interp(
        np.linspace(0, 1, min(len(project_sizes), _CURVE_POINTS) + 1),  # exact up to 256 projects
        np.arange(len(project_sizes) + 1) / len(project_sizes),
        np.concatenate(
            [[0], np.cumsum(project_sizes - 1) / max(1, project_sizes.sum() - len(project_sizes))]
        ),
    )  # of the sessions beyond each project's first, as Shape.project_sizes hands them out

    role = messages["role"].to_numpy()
    kinds: dict[str, Any] = {}
    for name in np.unique(role):
        mine = messages.filter(pl.col("role") == name)
        kinds[str(name)] = {
            "share": round(mine.height / messages.height, 6),
            "types": {
                str(t): {
                    "share": round(part.height / mine.height, 6),
                    "length": _quantiles(part["length"].to_numpy()),
                    **(
                        {
                            "usage_share": round(float(part["output_tokens"].is_not_null().mean()), 6),
                            **{c: _quantiles(part[c].drop_nulls().to_numpy()) for c in TOKENS},
                        }
                        if name == "assistant"
                        else {}
                    ),
                }
                for (t,), part in sorted(mine.group_by("type"), key=lambda g: str(g[0][0]))
            },
        }
    data = {
        "format": FORMAT,
        "version": SHAPE_VERSION,
        "source": {"sessions": len(per_session), "messages": messages.height, "projects": len(project_sizes)},
        "projects": {
            "per_session": len(project_sizes) / len(per_session),
            "curve": [round(float(c), 6) for c in curve],
        },
        "messages_per_session": {
            "body": _quantiles(per_session),
            "threshold": threshold,
            "tail_share": round(len(tail) / len(per_session), 6),
            "tail_alpha": None if alpha is None else round(alpha, 4),
            "max": int(per_session[-1]),
        },
        "gap_seconds": _quantiles(gaps),
        "rhythm": {
            "days": int(np.clip(day.max() - day.min() + 1, 7, 3_650)),
            "hour": (np.bincount(hour, minlength=24) + 0.5).round(1).tolist(),
            "weekday": (np.bincount(weekday, minlength=7) + 0.5).round(1).tolist(),
        },
        "kinds": kinds,
        "jobs": _fit_jobs(ds, len(per_session)),
    }
    return Shape(data)


def _fit_jobs(ds: Dataset, sessions: int) -> dict[str, Any] | None:
    n = ds.counts["jobs"]
    if n == 0:
        return None
    _need("jobs", n, "the jobs' status mix and durations")
    jobs = ds.read("jobs")

    def seconds(a: str, b: str) -> np.ndarray:
        d = (jobs[b] - jobs[a]).dt.total_microseconds().drop_nulls().to_numpy() / 1e6
        return np.maximum(d, 0)

    return {
        "per_session": n / sessions,
        "session_share": round(float(jobs["session_id"].is_not_null().mean()), 6),
        "status": _shares(jobs["status"].to_numpy()),
        "wait_seconds": _quantiles(seconds("created_at", "started_at")),
        "run_seconds": _quantiles(seconds("started_at", "finished_at")),
    }


@dataclass(frozen=True)
class Shape:
    """A fitted shape (the JSON document in ``data``) and the draws the generator makes from it."""

    data: dict[str, Any]
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    # --- the file -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.data, indent=1, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Shape:
        """Read a shape file; one from another schema version is refused, naming both versions."""
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ShapeError(
                f"Shape file {str(path)!r} does not exist: fit one with --like DATASET --save-shape FILE"
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ShapeError(f"Shape file {str(path)!r} is not valid JSON ({e})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ShapeError(f"{str(path)!r} is not a workbench shape file (format {FORMAT!r})")
        if data.get("version") != SHAPE_VERSION:
            raise ShapeError(
                f"Shape file {str(path)!r} has schema version {data.get('version')!r}, this workbench "
                f"reads version {SHAPE_VERSION}: refit it (generate --like DATASET --save-shape FILE)"
            )
        return cls(data)

    @property
    def digest(self) -> str:
        """A hash of the document (the generated Dataset's manifest names its shape by it)."""
        return hashlib.sha256(json.dumps(self.data, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def sessions(self) -> int:
        """Sessions in the Dataset the shape was fitted on."""
        return int(self.data["source"]["sessions"])

    # --- sizes ----------------------------------------------------------------------------
    def projects_for(self, sessions: int) -> int:
        return int(np.clip(round(sessions * self.data["projects"]["per_session"]), 1, sessions))

    def jobs_for(self, sessions: int) -> int:
        jobs = self.data["jobs"]
        return round(sessions * (jobs["per_session"] if jobs else 2_500 / 1_500))  # else: as the scales

    def project_sizes(self, scale: Scale) -> np.ndarray:
        """Sessions per project: the fitted share-by-rank curve at this many projects, one each at least."""
        p, extra = scale.projects, scale.sessions - scale.projects
        curve = self.data["projects"]["curve"]
        exact = np.diff(np.interp(np.arange(p + 1) / p, np.linspace(0, 1, len(curve)), curve)) * extra
        sizes = np.floor(exact).astype(np.int64)
        rest = extra - int(sizes.sum())
        sizes[np.argsort(-(exact - sizes), kind="stable")[:rest]] += 1
        return sizes + 1

    def draw_counts(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Messages per session: the empirical body, then the Pareto tail above the threshold."""
        fitted = self.data["messages_per_session"]
        u = rng.random(n)
        counts = _draw(fitted["body"], u)
        if fitted["tail_alpha"]:
            body = 1 - fitted["tail_share"]
            top = u >= body
            tail = fitted["threshold"] * ((1 - u[top]) / fitted["tail_share"]) ** (-1 / fitted["tail_alpha"])
            counts[top] = np.minimum(tail, TAIL_CAP * fitted["max"])
        return np.maximum(1, np.rint(counts)).astype(np.int64)

    # --- the generator's model (see synthetic._Default) -----------------------------------
    @property
    def days(self) -> int:
        return int(self.data["rhythm"]["days"])

    @property
    def origin(self) -> np.datetime64:
        from workbench.sources.synthetic import END

        return np.datetime64(END, "us") - np.timedelta64(self.days, "D")

    @property
    def hour_weight(self) -> np.ndarray:
        w = np.asarray(self.data["rhythm"]["hour"], dtype=np.float64)
        return w / w.sum()

    @property
    def session_job_share(self) -> float:
        jobs = self.data["jobs"]
        return jobs["session_share"] if jobs else 0.7

    def starts(self, rng: np.random.Generator, n: int) -> np.ndarray:
        origin = self.origin
        first = int((origin.astype("datetime64[D]").astype(np.int64) + 3) % 7)
        w = np.asarray(self.data["rhythm"]["weekday"], dtype=np.float64)[(np.arange(self.days) + first) % 7]
        day = rng.choice(self.days, n, p=w / w.sum())
        hour = rng.choice(24, n, p=self.hour_weight)
        seconds = day * 86_400 + hour * 3_600 + rng.integers(0, 3_600, n)
        return origin + seconds.astype("timedelta64[s]")

    def is_user(self, rng: np.random.Generator, position: np.ndarray) -> np.ndarray:
        share = self.data["kinds"].get("user", {}).get("share", 0.5)
        return (rng.random(len(position)) < share) | (position == 0)

    def gaps(self, rng: np.random.Generator, position: np.ndarray) -> np.ndarray:
        return _draw(self.data["gap_seconds"], rng.random(len(position)))

    def _types(self, role: str) -> tuple[list[str], np.ndarray, list[dict]]:
        if role not in self._cache:
            types = self.data["kinds"].get(role, {}).get("types") or {
                "text": {"share": 1.0, "length": [100.0] * len(GRID)}
            }
            share = np.array([t["share"] for t in types.values()])
            self._cache[role] = (list(types), share / share.sum(), list(types.values()))
        return self._cache[role]

    def kinds(self, rng: np.random.Generator, is_user: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kind = np.empty(len(is_user), dtype=object)
        length = np.empty(len(is_user))
        for mask, role in ((is_user, "user"), (~is_user, "assistant")):
            names, share, fitted = self._types(role)
            where = np.flatnonzero(mask)
            pick = rng.choice(len(names), len(where), p=share)
            kind[where] = np.array(names, dtype=object)[pick]
            u = rng.random(len(where))
            for i, f in enumerate(fitted):
                at = pick == i
                length[where[at]] = _draw(f["length"], u[at])
        return kind, length

    def _assistant_tokens(self, rng: np.random.Generator, kind: np.ndarray, column: str) -> np.ndarray:
        """One token column by type; -1 (written as null) where the message carries no usage."""
        names, _, fitted = self._types("assistant")
        out = np.zeros(len(kind), dtype=np.int64)
        u = rng.random(len(kind))
        share = np.ones(len(kind))
        for name, f in zip(names, fitted, strict=True):
            at = kind == name
            out[at] = np.rint(_draw(f[column], u[at])) if column in f else 0
            share[at] = f.get("usage_share", 1.0)
        if column == "cache_read_tokens":  # drawn first: decides which messages carry usage
            self._cache["no_usage"] = rng.random(len(kind)) >= share
        out[self._cache["no_usage"]] = -1
        return out

    def cache_read(self, rng: np.random.Generator, position: np.ndarray, kind: np.ndarray) -> np.ndarray:
        """Cache reads; also decides which messages carry usage (one API response's first block)."""
        return self._assistant_tokens(rng, kind, "cache_read_tokens")

    def tokens(self, rng: np.random.Generator, kind: np.ndarray) -> tuple[np.ndarray, ...]:
        """Input, output, cache creation tokens (after :meth:`cache_read`, which sets the usage mask)."""
        return tuple(self._assistant_tokens(rng, kind, c) for c in TOKENS[:3])

    def job_times(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        jobs = self.data["jobs"]
        if jobs is None:
            from workbench.sources.synthetic import _Default

            return _Default().job_times(rng, n)
        names = list(jobs["status"])
        share = np.array([jobs["status"][k] for k in names])
        status = np.array(names)[rng.choice(len(names), n, p=share / share.sum())]
        return status, _draw(jobs["wait_seconds"], rng.random(n)), _draw(jobs["run_seconds"], rng.random(n))

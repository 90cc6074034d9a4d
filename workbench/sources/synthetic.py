"""Synthetic chat history at any scale, deterministic for a seed.

The shape follows what real coding-assistant logs look like (see the fixtures'
FORMAT.md): messages per session are heavy-tailed with a few very large sessions,
sessions per project are Zipf-like with one dominant project, activity follows a daily and weekly rhythm,
sessions pause for hours and so span several 5-hour windows, assistant messages
carry token usage whose cache reads grow through a session, and tool results make
the long tail of message sizes.

Large scales are generated in chunks of sessions, so memory stays bounded: only the
per-session arrays (a few numbers per session) live for the whole run.

>>> import tempfile
>>> ds = generate(f"{tempfile.mkdtemp()}/tiny", scale="tiny", seed=7)
>>> ds.counts["messages"]
3000
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from workbench.dataset import MANIFEST, Dataset, DatasetWriter, existing
from workbench.errors import DatasetError, WorkbenchError
from workbench.sources.fit import Shape
from workbench.windows import windows

GENERATOR_VERSION = 2  # 2: sessions per project exact Zipf shares with exponent 2.2 (was drawn, 1.1)
#: Activity ends here (not "now"), so a seed always gives the same data.
END = datetime(2026, 11, 1)
DAYS = 180
CHUNK_MESSAGES = 100_000  # bounded memory; smaller chunks were also faster (cache)
#: Zipf exponent of sessions per project. Heavy users' trees are dominated by one project:
#: 1,166, 529 and 108 sessions in one reported tree (anthropics/claude-code#20429, see the
#: fixtures' FORMAT.md), 65% in the first. 2.2 gives the first of 25 projects 68%.
PROJECT_SKEW = 2.2


@dataclass(frozen=True)
class Scale:
    projects: int
    sessions: int
    messages: int
    jobs: int


SCALES: dict[str, Scale] = {
    "tiny": Scale(projects=4, sessions=60, messages=3_000, jobs=120),
    "small": Scale(projects=25, sessions=1_500, messages=75_000, jobs=2_500),
    "medium": Scale(projects=150, sessions=20_000, messages=1_000_000, jobs=30_000),
    "large": Scale(projects=800, sessions=200_000, messages=10_000_000, jobs=300_000),
}

MODELS = ["claude-sonnet-4-5-20250929", "claude-opus-4-5-20251101", "claude-haiku-4-5-20251001"]
MODEL_SHARE = [0.55, 0.30, 0.15]
BRANCHES = ["main", "master", "develop", "feature/cursor-pagination", "fix/n-plus-one", ""]
JOB_TYPES = ["sync_logs", "compute_windows", "cleanup", "reindex"]
JOB_STATUS = ["completed", "failed", "pending", "running", "cancelled"]
JOB_ERROR = "sync: read transcript: unexpected end of JSON input"
JOB_STATUS_SHARE = [0.88, 0.05, 0.03, 0.02, 0.02]
# Hour-of-day activity (UTC): quiet nights, a morning ramp, an afternoon peak.
HOUR_WEIGHT = np.array(
    [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 4, 6, 7, 7.5, 6, 7, 8, 8, 7.5, 6.5, 5, 4, 3.5, 3, 2.5, 1.6]
)
# Message kinds per role, with median content length in characters and spread.
USER_KINDS = {"text": (0.3, 140, 1.0), "tool_result": (0.7, 700, 1.6)}
ASSISTANT_KINDS = {"tool_use": (0.55, 220, 0.7), "text": (0.35, 450, 1.0), "thinking": (0.10, 650, 0.9)}
WORDS = [
    "the",
    "a",
    "to",
    "of",
    "and",
    "in",
    "is",
    "for",
    "that",
    "this",
    "with",
    "session",
    "message",
    "query",
    "index",
    "window",
    "token",
    "cache",
    "latency",
    "buffer",
    "commit",
    "rows",
    "join",
    "plan",
    "scan",
    "filter",
    "sort",
    "batch",
    "stream",
    "worker",
    "pool",
    "cursor",
    "page",
    "sync",
    "log",
    "file",
    "line",
    "parse",
    "error",
    "retry",
    "timeout",
    "request",
    "response",
    "handler",
    "test",
    "fix",
    "refactor",
    "function",
    "return",
    "value",
    "struct",
    "field",
    "type",
    "interface",
    "method",
    "call",
    "loop",
    "goroutine",
    "channel",
    "mutex",
]


def project_sizes(scale: Scale) -> np.ndarray:
    """Sessions per project: exact Zipf shares (exponent :data:`PROJECT_SKEW`), at least one each.

    Exact rather than drawn, so the busiest project's size is the same for every seed:
    at ``small`` it holds 1,002 of 1,500 sessions, enough to load 1 to 1,000 of them.
    """
    share = 1 / np.arange(1, scale.projects + 1) ** PROJECT_SKEW
    exact = share / share.sum() * (scale.sessions - scale.projects)  # one each comes on top
    sizes = np.floor(exact).astype(np.int64)
    rest = scale.sessions - scale.projects - int(sizes.sum())
    sizes[np.argsort(-(exact - sizes), kind="stable")[:rest]] += 1  # largest remainders
    return sizes + 1


def resolve_scale(scale: str | Scale, **overrides: int | None) -> Scale:
    """A named scale (tiny, small, medium, large) or explicit counts, with overrides."""
    if isinstance(scale, str):
        try:
            scale = SCALES[scale]
        except KeyError:
            raise WorkbenchError(
                f"Unknown scale {scale!r}: expected one of {', '.join(SCALES)}, "
                "or explicit counts (--sessions, --messages, ...)"
            ) from None
    scale = replace(scale, **{k: v for k, v in overrides.items() if v is not None})
    for field, value in asdict(scale).items():
        if value < 1 and field != "jobs":
            raise WorkbenchError(f"{field} must be at least 1, got {value}")
    if scale.messages < 2 * scale.sessions:
        raise WorkbenchError(
            f"{scale.messages} messages for {scale.sessions} sessions is fewer than two per "
            "session: raise --messages or lower --sessions"
        )
    if scale.projects > scale.sessions:
        raise WorkbenchError(f"{scale.projects} projects for {scale.sessions} sessions: use fewer projects")
    return scale


def generate(
    dest: str | os.PathLike[str],
    scale: str | Scale = "small",
    seed: int = 0,
    *,
    overwrite: bool = False,
    progress: bool = False,
    **overrides: int | None,
) -> Dataset:
    """Generate a Dataset at ``dest``; an identical one already there is reused.

    ``overrides`` (projects, sessions, messages, jobs) replace the scale's counts.
    """
    resolved = resolve_scale(scale, **overrides)
    source = {
        "kind": "synthetic",
        "scale": scale if isinstance(scale, str) else "custom",
        "counts": asdict(resolved),
        "generator_version": GENERATOR_VERSION,
    }
    return _write(
        dest, source, seed, lambda: _Generator(resolved, seed), overwrite=overwrite, progress=progress
    )


def generate_like(
    dest: str | os.PathLike[str],
    shape: Shape,
    seed: int = 0,
    *,
    sessions: int | None = None,
    scale: float | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> Dataset:
    """Generate a Dataset shaped like the one ``shape`` was fitted on (see :mod:`workbench.sources.fit`).

    Its size is ``sessions``, or ``scale`` times the fitted source's sessions (default 1);
    projects and jobs keep the source's ratios to sessions, messages follow the fitted
    messages per session.
    """
    if sessions is not None and scale is not None:
        raise WorkbenchError("Give one of --scale S and --sessions N, not both")
    if scale is not None and not scale > 0:
        raise WorkbenchError(f"Scale {scale!r} must be a positive factor, e.g. 1 or 10")
    n = sessions if sessions is not None else round((1.0 if scale is None else scale) * shape.sessions)
    if n < 1:
        raise WorkbenchError(f"{n} sessions asked for: use --sessions 1 or more, or a larger --scale")
    source = {
        "kind": "synthetic",
        "scale": "like",
        "shape": shape.digest,
        "sessions": n,
        "generator_version": GENERATOR_VERSION,
    }
    return _write(
        dest, source, seed, lambda: _Generator.like(shape, n, seed), overwrite=overwrite, progress=progress
    )


def _write(
    dest: str | os.PathLike[str],
    source: dict,
    seed: int,
    make: Callable[[], _Generator],
    *,
    overwrite: bool,
    progress: bool,
) -> Dataset:
    overwrite = overwrite or _outdated(dest, source, seed)
    if not overwrite and (found := existing(dest, source, seed)):
        return found
    overwrite = overwrite or (Path(dest) / MANIFEST).exists()  # only a broken dataset gets here
    from tqdm.auto import tqdm

    gen = make()
    with (
        DatasetWriter(dest, source=source, seed=seed, overwrite=overwrite) as writer,
        tqdm(
            total=gen.scale.messages, desc="generate", unit="msg", unit_scale=True, disable=not progress
        ) as bar,
    ):
        writer.write("projects", gen.projects())
        for messages, session_windows, jobs in gen.chunks():
            writer.write("messages", messages)
            writer.write("session_windows", session_windows)
            writer.write("jobs", jobs)
            bar.update(messages.height)
        writer.write("sessions", gen.sessions())  # needs each session's last message time
        writer.write("jobs", gen.standalone_jobs())
    return writer.dataset


def _outdated(dest: str | os.PathLike[str], source: dict, seed: int) -> bool:
    """True when ``dest`` holds this very request made by an older generator: regenerate it."""
    if not (Path(dest) / MANIFEST).exists():
        return False
    try:
        old = Dataset.open(dest).manifest
    except DatasetError:
        return False  # broken: generate() replaces it anyway
    previous = old.get("source", {})
    return (
        previous.get("kind") == "synthetic"
        and old.get("seed") == seed
        and previous.get("generator_version") != source["generator_version"]
        and {k: v for k, v in previous.items() if k != "generator_version"}
        == {k: v for k, v in json.loads(json.dumps(source)).items() if k != "generator_version"}
    )


class _Default:
    """The generator's built-in shape: the parametric draws described in the module docstring.

    :class:`workbench.sources.fit.Shape` has the same methods, drawing from a fitted shape.
    Each method consumes the random stream in a fixed order, so a seed gives the same data.
    """

    days = DAYS
    origin = np.datetime64(END - timedelta(days=DAYS), "us")
    hour_weight = HOUR_WEIGHT / HOUR_WEIGHT.sum()
    session_job_share = 0.7

    def project_sizes(self, scale: Scale) -> np.ndarray:
        return project_sizes(scale)

    def counts(self, rng: np.random.Generator, scale: Scale) -> np.ndarray:
        """Messages per session: lognormal body, a few "whale" sessions, scaled to the exact total."""
        n = scale.sessions
        raw = rng.lognormal(np.log(25), 1.1, n)
        whales = rng.random(n) < 0.003
        raw[whales] *= 25
        counts = np.maximum(2, np.floor(raw * (scale.messages / raw.sum()))).astype(np.int64)
        diff = scale.messages - int(counts.sum())
        order = np.argsort(-raw, kind="stable")
        if diff > 0:
            counts[order[: diff % n]] += 1
            counts += diff // n
        while diff < 0:  # rounding up to the minimum of 2 overshot: trim the largest
            take = order[: min(-diff, n)]
            take = take[counts[take] > 2]
            counts[take] -= 1
            diff += len(take)
        return counts

    def starts(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Session start times: more activity on weekdays and recently, a daily rhythm."""
        days = np.arange(DAYS)
        weekday = (END - timedelta(days=DAYS)).weekday()
        day_weight = np.where((days + weekday) % 7 >= 5, 0.35, 1.0) * np.linspace(0.6, 1.4, DAYS)
        day = rng.choice(DAYS, n, p=day_weight / day_weight.sum())
        hour = rng.choice(24, n, p=self.hour_weight)
        seconds = day * 86_400 + hour * 3_600 + rng.integers(0, 3_600, n)
        return self.origin + seconds.astype("timedelta64[s]")

    def is_user(self, rng: np.random.Generator, position: np.ndarray) -> np.ndarray:
        return position % 2 == 0

    def gaps(self, rng: np.random.Generator, position: np.ndarray) -> np.ndarray:
        """Seconds between replies and tool calls, now and then a pause of hours."""
        total = len(position)
        gaps = rng.lognormal(np.log(9), 1.0, total)
        pause = rng.random(total) < 0.012
        gaps[pause] = rng.lognormal(np.log(3 * 3_600), 0.9, int(pause.sum()))
        return gaps

    def kinds(self, rng: np.random.Generator, is_user: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each message's type and content length in characters."""
        total = len(is_user)
        kind = np.empty(total, dtype=object)
        length = np.empty(total)
        for mask, kinds in ((is_user, USER_KINDS), (~is_user, ASSISTANT_KINDS)):
            names = list(kinds)
            share = np.array([kinds[k][0] for k in names])
            pick = rng.choice(len(names), int(mask.sum()), p=share)
            kind[mask] = np.array(names, dtype=object)[pick]
            median = np.array([kinds[k][1] for k in names])[pick]
            sigma = np.array([kinds[k][2] for k in names])[pick]
            length[mask] = rng.lognormal(np.log(median), sigma)
        return kind, length

    def cache_read(self, rng: np.random.Generator, position: np.ndarray, kind: np.ndarray) -> np.ndarray:
        """Context grows through a session until compaction keeps it under ~180k tokens."""
        return np.minimum(12_000 + position * rng.lognormal(np.log(700), 0.4, len(position)), 180_000)

    def tokens(self, rng: np.random.Generator, kind: np.ndarray) -> tuple[np.ndarray, ...]:
        """Input, output and cache creation tokens of assistant messages of type ``kind``."""
        n = len(kind)
        return (
            rng.integers(1, 60, n),
            rng.lognormal(np.log(160), 1.1, n).astype(np.int64) + 1,
            rng.lognormal(np.log(1_500), 1.2, n).astype(np.int64),
        )

    def job_times(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Jobs' status names, seconds queued and seconds running."""
        status = np.array(JOB_STATUS)[rng.choice(len(JOB_STATUS), n, p=JOB_STATUS_SHARE)]
        return status, rng.lognormal(np.log(2), 1.0, n), rng.lognormal(np.log(1.5), 1.2, n)


class _Generator:
    """Per-session arrays up front, then messages/windows/jobs chunk by chunk."""

    def __init__(
        self,
        scale: Scale,
        seed: int,
        model: _Default | Shape | None = None,
        counts: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.scale = scale
        self.seed = seed
        self.model = model = model or _Default()
        rng = rng or np.random.default_rng([seed, 0])
        n = scale.sessions
        self.counts = counts = model.counts(rng, scale) if counts is None else counts
        self.first_message_id = np.concatenate([[1], np.cumsum(counts)[:-1] + 1])
        self.project = rng.permutation(
            np.repeat(np.arange(1, scale.projects + 1), model.project_sizes(scale))
        )
        self.start = model.starts(rng, n)
        self.model_index = rng.choice(len(MODELS), n, p=MODEL_SHARE)
        self.sidechain = rng.random(n) < 0.08
        self.branch = rng.choice(len(BRANCHES), n, p=[0.35, 0.15, 0.1, 0.15, 0.15, 0.1])
        self.corpus = _corpus(rng)
        self.last = np.empty(n, dtype="datetime64[us]")
        self.window_offset = 0
        self.job_offset = 0
        self.session_jobs = int(round(scale.jobs * model.session_job_share))

    @classmethod
    def like(cls, shape: Shape, sessions: int, seed: int) -> _Generator:
        """A generator drawing from a fitted ``shape``, ``sessions`` sessions in all."""
        rng = np.random.default_rng([seed, 0])
        counts = shape.draw_counts(rng, sessions)
        scale = Scale(
            projects=shape.projects_for(sessions),
            sessions=sessions,
            messages=int(counts.sum()),
            jobs=shape.jobs_for(sessions),
        )
        return cls(scale, seed, shape, counts, rng)

    def projects(self) -> pl.DataFrame:
        rng = np.random.default_rng([self.seed, 1])
        p = self.scale.projects
        first = (
            pl.DataFrame({"project": self.project, "start": self.start})
            .group_by("project")
            .agg(pl.col("start").min())
        )
        first = first.sort("project")["start"].to_numpy()
        names = [f"{WORDS[10 + i % 50]}-{WORDS[10 + (i * 7 + 3) % 50]}-{i + 1}" for i in range(p)]
        return pl.DataFrame(
            {
                "id": np.arange(1, p + 1),
                "name": names,
                "path": [f"/home/dev/src/{n}" for n in names],
                "created_at": first - rng.integers(0, 30 * 86_400, p).astype("timedelta64[s]"),
            }
        )

    def chunks(self) -> Iterator[tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]]:
        """Messages, windows and session jobs for consecutive ranges of sessions."""
        for number, (lo, hi) in enumerate(self._edges()):
            rng = np.random.default_rng([self.seed, 2, number])
            messages = self._messages(rng, lo, hi)
            win = windows(messages).with_columns(pl.col("id") + self.window_offset)
            self.window_offset += win.height
            yield messages, win, self._session_jobs(rng, lo, hi)

    def _messages(self, rng: np.random.Generator, lo: int, hi: int) -> pl.DataFrame:
        counts = self.counts[lo:hi]
        total = int(counts.sum())
        session = np.repeat(np.arange(lo, hi), counts)
        position = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        is_user = self.model.is_user(rng, position)
        gaps = self.model.gaps(rng, position)
        gaps[position == 0] = 0
        offsets = np.cumsum(gaps)
        offsets -= np.repeat(offsets[np.cumsum(counts) - counts], counts)
        timestamp = np.repeat(self.start[lo:hi], counts) + (offsets * 1e6).astype("timedelta64[us]")
        self.last[lo:hi] = timestamp[np.cumsum(counts) - 1]

        kind, length = self.model.kinds(rng, is_user)
        kind[position == 0] = "text"  # a session opens with a typed prompt
        length = np.clip(length, 1, 60_000).astype(np.int64)

        assistant = ~is_user

        def usage(values: np.ndarray) -> pl.Series:
            out = np.zeros(total, dtype=np.int64)
            out[assistant] = values
            return pl.Series(out).set(pl.Series(is_user | (out < 0)), None)  # < 0: no usage

        cache_read = self.model.cache_read(rng, position[assistant], kind[assistant])
        first_id = int(self.first_message_id[lo])
        external_id = _uuids(rng, total)
        content = _text(self.corpus, length, rng)
        input_tokens, output_tokens, cache_creation = self.model.tokens(rng, kind[assistant])
        return pl.DataFrame(
            {
                "id": np.arange(first_id, first_id + total),
                "session_id": session + 1,
                "external_id": external_id,
                "role": np.where(is_user, "user", "assistant"),
                "type": kind.astype(str),
                "content": content,
                "timestamp": timestamp,
                "model": pl.Series(np.array(MODELS)[np.repeat(self.model_index[lo:hi], counts)]).set(
                    pl.Series(is_user), None
                ),
                "input_tokens": usage(input_tokens),
                "output_tokens": usage(output_tokens),
                "cache_creation_tokens": usage(cache_creation),
                "cache_read_tokens": usage(np.asarray(cache_read).astype(np.int64)),
            }
        )

    def sessions(self) -> pl.DataFrame:
        """Session rows; call after :meth:`chunks`, which records each last message time."""
        n = self.scale.sessions
        rng = np.random.default_rng([self.seed, 3])
        titles = _text(self.corpus, rng.integers(24, 80, n), rng)
        return pl.DataFrame(
            {
                "id": np.arange(1, n + 1),
                "project_id": self.project,
                "external_id": _uuids(rng, n),
                "title": titles,
                "model": np.array(MODELS)[self.model_index],
                "git_branch": np.array(BRANCHES)[self.branch],
                "is_sidechain": self.sidechain,
                "message_count": self.counts,
                "created_at": self.start,
                "updated_at": self.last,
            }
        )

    def _edges(self) -> list[tuple[int, int]]:
        cum = np.cumsum(self.counts)
        bounds = np.searchsorted(cum, np.arange(CHUNK_MESSAGES, self.scale.messages, CHUNK_MESSAGES))
        edges = [0, *sorted({int(b) + 1 for b in bounds} - {0, self.scale.sessions}), self.scale.sessions]
        return list(zip(edges[:-1], edges[1:], strict=True))

    def _jobs(
        self, rng: np.random.Generator, n: int, created: np.ndarray, session: np.ndarray | None
    ) -> pl.DataFrame:
        name, wait, run = self.model.job_times(rng, n)
        started = created + (wait * 1e6).astype("timedelta64[us]")
        finished = started + (run * 1e6).astype("timedelta64[us]")
        types = rng.choice(2, n, p=[0.8, 0.2]) if session is not None else rng.choice([2, 3], n, p=[0.6, 0.4])
        ids = np.arange(self.job_offset + 1, self.job_offset + n + 1)
        self.job_offset += n
        return pl.DataFrame(
            {
                "id": ids,
                "session_id": pl.Series(session + 1 if session is not None else [None] * n, dtype=pl.Int64),
                "type": np.array(JOB_TYPES)[types],
                "status": name,
                "attempts": np.where(name == "failed", 3, 1 + (rng.random(n) < 0.05)),
                "error": pl.Series(np.where(name == "failed", JOB_ERROR, "")).replace("", None),
                "created_at": created,
                "started_at": pl.Series(started).set(pl.Series(name == "pending"), None),
                "finished_at": pl.Series(finished).set(
                    pl.Series(np.isin(name, ["pending", "running"])), None
                ),
            }
        )

    def _session_jobs(self, rng: np.random.Generator, lo: int, hi: int) -> pl.DataFrame:
        # Session jobs are spread over chunks in proportion to their sessions.
        n = round(self.session_jobs * hi / self.scale.sessions) - round(
            self.session_jobs * lo / self.scale.sessions
        )
        session = np.sort(rng.integers(lo, hi, n))
        created = self.last[session] + rng.integers(1, 600, n).astype("timedelta64[s]")
        return self._jobs(rng, n, created, session)

    def standalone_jobs(self) -> pl.DataFrame:
        rng = np.random.default_rng([self.seed, 4])
        n = self.scale.jobs - self.session_jobs
        days = rng.integers(0, self.model.days, n) * 86_400
        hours = rng.choice(24, n, p=self.model.hour_weight) * 3_600
        created = self.model.origin + (days + hours).astype("timedelta64[s]")
        return self._jobs(rng, n, np.sort(created), None)


def _corpus(rng: np.random.Generator, size: int = 1 << 20) -> bytes:
    """About ``size`` bytes of ASCII prose-like text made of the word list."""
    words = rng.choice(np.array(WORDS), size // 5)
    text = " ".join(words.tolist())
    return text.replace(" the ", ". The ", 2_000).encode()


def _text(corpus: bytes, lengths: np.ndarray, rng: np.random.Generator) -> pl.Series:
    """Strings of the given lengths, cut back to back from the repeated corpus.

    Built as one Arrow buffer with offsets, with no per-string Python object, which is
    what keeps ``medium`` (1M messages) within seconds.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    start = int(rng.integers(0, len(corpus)))
    total = int(lengths.sum())
    reps = (start + total) // len(corpus) + 1
    data = np.resize(np.frombuffer(corpus, dtype=np.uint8), reps * len(corpus))[start : start + total]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    array = pa.LargeStringArray.from_buffers(len(lengths), pa.py_buffer(offsets), pa.py_buffer(data))
    return pl.Series(pl.from_arrow(array)).cast(pl.String)


def _uuids(rng: np.random.Generator, n: int) -> pl.Series:
    """``n`` random version-4-shaped UUID strings."""
    raw = rng.bytes(16 * n).hex()
    hexes = pl.Series([raw[i : i + 32] for i in range(0, 32 * n, 32)])
    return pl.select(
        pl.concat_str(
            [
                hexes.str.slice(0, 8),
                pl.lit("-"),
                hexes.str.slice(8, 4),
                pl.lit("-4"),
                hexes.str.slice(13, 3),
                pl.lit("-a"),
                hexes.str.slice(17, 3),
                pl.lit("-"),
                hexes.str.slice(20, 12),
            ]
        )
    ).to_series()

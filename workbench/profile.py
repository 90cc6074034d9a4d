"""The production profile: the one set of conditions every lab measures its headline under.

A profile is a small TOML file (``profiles/default.toml``): the production engine, the
app-to-database round trip, page sizes, one traffic mix, the data, the service's hardware,
the SLO targets and the size of a log-sync day. ``workbench report --profile FILE`` runs
every notebook under it; notebooks read it through :func:`workbench.lab.profile`, and
their own parameters still override it for exploration.

A bad profile (an unknown key, a wrong type or unit, an impossible value) raises
:class:`ProfileError` naming the key and the fix, before anything runs.

>>> p = loads('name = "x"\\n[network]\\nrtt_ms = 2\\n')
>>> (p.engine, p.network.rtt_ms, p.pages.recent_sessions)
('postgres', 2.0, 20)
>>> loads('[network]\\nrtt = 2\\n')
Traceback (most recent call last):
...
workbench.profile.ProfileError: Unknown key 'network.rtt' in the profile: did you mean 'network.rtt_ms'?
"""

from __future__ import annotations

import difflib
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "profiles"
DEFAULT = PROFILES / "default.toml"
PROFILE_ENV = "WORKBENCH_PROFILE"
ENGINES = ("postgres", "duckdb", "sqlite")
ENDPOINTS = ("sessions", "recent", "session", "usage", "jobs")
SCALES = ("tiny", "small", "medium", "large")


class ProfileError(WorkbenchError):
    """A profile cannot be used; the message names the key and the fix."""


@dataclass(frozen=True)
class Network:
    """The round trip between the app and its database, and where that figure comes from."""

    rtt_ms: float = 0.5
    source: str = ""


@dataclass(frozen=True)
class Pages:
    """Sessions per list page, and sessions loaded with their messages for the "recent" view."""

    list_sessions: int = 20
    recent_sessions: int = 20


@dataclass(frozen=True)
class Traffic:
    """One traffic mix for every lab: endpoint weights and the share sent to hot projects."""

    weights: dict[str, float] = field(
        default_factory=lambda: {"sessions": 0.25, "recent": 0.3, "session": 0.25, "usage": 0.1, "jobs": 0.1}
    )
    hot_share: float = 0.8
    hot_fraction: float = 0.2

    def shares(self) -> dict[str, float]:
        """The weights normalised to shares that sum to 1."""
        total = sum(self.weights.values())
        return {k: v / total for k, v in self.weights.items()}


@dataclass(frozen=True)
class Data:
    """What the labs run on: a synthetic ``scale``, a Dataset ``path``, or a ``url`` sampled read-only."""

    scale: str = "small"
    seed: int = 7
    path: str = ""
    url: str = ""

    def source(self) -> str:
        """The source as :func:`workbench.lab.open_dataset` takes it."""
        return self.url or self.path or "synthetic"


@dataclass(frozen=True)
class Hardware:
    """The production service's machine, for capacity (how many cores the target rate needs)."""

    cores: int = 4
    memory_gb: float = 8.0


@dataclass(frozen=True)
class SLO:
    """The plan's targets."""

    p50_ms: float = 50.0
    p99_ms: float = 200.0
    rate_rps: float = 1000.0
    memory_mb: float = 500.0
    cpu_percent: float = 30.0
    db_p99_ms: float = 100.0
    error_percent: float = 0.1


@dataclass(frozen=True)
class LogSync:
    """The JSONL log sync: how many megabytes a day's logs hold (notebook 04 reads up to it)."""

    day_mb: float = 1024.0


@dataclass(frozen=True)
class Profile:
    """A production to judge the plan for. See the module docstring and ``profiles/*.toml``."""

    name: str = "default"
    description: str = ""
    engine: str = "postgres"
    network: Network = field(default_factory=Network)
    pages: Pages = field(default_factory=Pages)
    traffic: Traffic = field(default_factory=Traffic)
    data: Data = field(default_factory=Data)
    hardware: Hardware = field(default_factory=Hardware)
    slo: SLO = field(default_factory=SLO)
    log_sync: LogSync = field(default_factory=LogSync)
    file: str = ""  # where it was read from (set by load, not written in the TOML)

    def conditions(self, **extra: Any) -> dict[str, Any]:
        """What a verdict measured under this profile carries: name, engine, round trip, pages."""
        return {
            "profile": self.name,
            "engine": self.engine,
            "rtt_ms": self.network.rtt_ms,
            "recent_sessions": self.pages.recent_sessions,
            **extra,
        }

    def describe(self) -> str:
        """One sentence for the top of every page."""
        mix = ", ".join(f"{k} {v:.0%}" for k, v in self.traffic.shares().items())
        data = (
            self.data.url
            and "a read-only sample of a database"
            or self.data.path
            or (f"synthetic {self.data.scale} (seed {self.data.seed})")
        )
        where = f" ({self.file})" if self.file else ""
        return (
            f"Profile {self.name}{where}: {self.engine}, app-to-database round trip "
            f"{self.network.rtt_ms:g} ms, pages of {self.pages.list_sessions} sessions and "
            f"{self.pages.recent_sessions} with their messages; traffic {mix}, "
            f"{self.traffic.hot_share:.0%} to the hottest {self.traffic.hot_fraction:.0%} of projects; "
            f"data {data}; production {self.hardware.cores} cores, {self.hardware.memory_gb:g} GB."
        )


def _check(section: str, value: Any, hint: Any) -> Any:
    """``value`` as the field's type, or a :class:`ProfileError` naming ``section`` and the fix."""
    if is_dataclass(hint):
        if not isinstance(value, dict):
            raise ProfileError(f"'{section}' in the profile must be a table ([{section}]), not {value!r}")
        return _build(hint, value, section)
    origin = typing.get_origin(hint)
    if origin is dict:
        if not isinstance(value, dict):
            raise ProfileError(f"'{section}' in the profile must be a table of numbers, not {value!r}")
        return {str(k): _check(f"{section}.{k}", v, float) for k, v in value.items()}
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            unit = section.rsplit("_", 1)[-1] if "_" in section else ""
            fix = (
                f"a number of {_UNITS[unit]} (the unit is in the key's name)"
                if unit in _UNITS
                else "a number"
            )
            raise ProfileError(
                f"'{section}' = {value!r} in the profile: write {fix}, e.g. {section.split('.')[-1]} = 2"
            )
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProfileError(f"'{section}' = {value!r} in the profile: write a whole number")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ProfileError(f"'{section}' = {value!r} in the profile: write a string in quotes")
        return value
    raise AssertionError(f"unhandled profile type {hint!r}")  # pragma: no cover


_UNITS = {
    "ms": "milliseconds",
    "mb": "megabytes",
    "gb": "gigabytes",
    "rps": "requests per second",
    "percent": "%",
}


def _build(cls: type, table: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls) if not (cls is Profile and f.name == "file")]
    values = {}
    for key, value in table.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if key not in names:
            near = difflib.get_close_matches(key, names, n=1)
            known = [f"{prefix}.{n}" if prefix else n for n in near]
            fix = f"did you mean '{known[0]}'?" if known else f"expected one of {', '.join(names)}"
            raise ProfileError(f"Unknown key '{dotted}' in the profile: {fix}")
        hint = hints[key]
        if isinstance(hint, types.UnionType):  # pragma: no cover - no optional fields today
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        values[key] = _check(dotted, value, hint)
    return cls(**values)


def _validate(p: Profile) -> Profile:
    """Impossible values and unknown names, each named with the fix."""

    def bad(key: str, value: Any, fix: str) -> ProfileError:
        return ProfileError(f"'{key}' = {value!r} in the profile {p.name!r}: {fix}")

    if p.engine not in ENGINES:
        raise bad("engine", p.engine, f"expected one of {', '.join(ENGINES)}")
    if not 0 <= p.network.rtt_ms <= 1000:
        raise bad("network.rtt_ms", p.network.rtt_ms, "a round trip is between 0 and 1,000 ms")
    for key in ("list_sessions", "recent_sessions"):
        if not 1 <= (n := getattr(p.pages, key)) <= 1000:
            raise bad(f"pages.{key}", n, "a page holds 1 to 1,000 sessions")
    unknown = sorted(set(p.traffic.weights) - set(ENDPOINTS))
    if unknown:
        raise bad(
            f"traffic.weights.{unknown[0]}",
            p.traffic.weights[unknown[0]],
            f"endpoints are {', '.join(ENDPOINTS)}",
        )
    if any(w < 0 for w in p.traffic.weights.values()) or sum(p.traffic.weights.values()) <= 0:
        raise bad("traffic.weights", p.traffic.weights, "weights are >= 0 with a positive sum")
    if not 0 <= p.traffic.hot_share <= 1:
        raise bad("traffic.hot_share", p.traffic.hot_share, "a share between 0 and 1")
    if not 0 < p.traffic.hot_fraction <= 1:
        raise bad("traffic.hot_fraction", p.traffic.hot_fraction, "a fraction above 0, at most 1")
    if p.data.scale not in SCALES:
        raise bad("data.scale", p.data.scale, f"expected one of {', '.join(SCALES)}")
    if p.data.path and p.data.url:
        raise bad("data.path", p.data.path, "give data.path or data.url, not both")
    if p.data.url and "://" not in p.data.url:
        raise bad("data.url", p.data.url, "a database URL such as postgresql://user@host/db")
    if p.hardware.cores < 1 or p.hardware.memory_gb <= 0:
        raise bad("hardware", (p.hardware.cores, p.hardware.memory_gb), "at least 1 core and some memory")
    for f in fields(SLO):
        if (v := getattr(p.slo, f.name)) <= 0:
            raise bad(f"slo.{f.name}", v, "a target above 0")
    if p.slo.p50_ms > p.slo.p99_ms:
        raise bad("slo.p50_ms", p.slo.p50_ms, f"P50 cannot exceed P99 ({p.slo.p99_ms:g} ms)")
    if p.slo.error_percent >= 100 or p.slo.cpu_percent > 100:
        raise bad("slo", (p.slo.error_percent, p.slo.cpu_percent), "percentages are below 100")
    if p.log_sync.day_mb <= 0:
        raise bad("log_sync.day_mb", p.log_sync.day_mb, "a day's logs weigh more than 0 MB")
    return p


def loads(text: str, path: str = "") -> Profile:
    """A profile from TOML text (``path`` only for messages)."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(
            f"Profile {path or '<text>'} is not valid TOML ({e}): fix the line it names"
        ) from None
    profile = _build(Profile, table)
    return _validate(replace(profile, file=path))


def load(path: str | os.PathLike[str] | None = None) -> Profile:
    """The profile at ``path``, else ``$WORKBENCH_PROFILE``, else ``profiles/default.toml``.

    A bare name (``cross_zone``) is looked up in ``profiles/``.
    """
    path = path or os.environ.get(PROFILE_ENV) or DEFAULT
    p = Path(path)
    if not p.exists() and (PROFILES / f"{path}.toml").exists():
        p = PROFILES / f"{path}.toml"
    if not p.is_file():
        known = ", ".join(sorted(f.stem for f in PROFILES.glob("*.toml")))
        raise ProfileError(f"Profile {str(path)!r} not found: give a TOML file or one of {known}")
    shown = str(p.relative_to(ROOT)) if p.resolve().is_relative_to(ROOT) else str(p)
    return loads(p.read_text(encoding="utf-8"), shown)

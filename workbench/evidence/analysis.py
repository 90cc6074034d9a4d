"""One pass over production records: templates, requests, N+1 findings.

:func:`analyse` streams the files once. Per fingerprint it keeps calls, time and a
log-bucket histogram of durations (P50/P99 within ~3%); per request in flight its
statements; per N+1 pattern (source, repeated statement) its totals and the largest
occurrence as the example. Memory grows with distinct fingerprints and requests in
flight, not with the file.

>>> ev = analyse([])          # nothing read: empty frames with their columns
>>> ev.findings.columns[:4]
['rank', 'source', 'repeated', 'rewrite']
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from workbench.evidence.detect import SENTRY, Rule, Run, runs
from workbench.evidence.fingerprint import Fingerprints, batch_rewrite, split_comment
from workbench.evidence.grouping import GAP_MS, Group, Grouper
from workbench.evidence.prefix import DEFAULT
from workbench.evidence.readers import Aggregate, pg_stat_statements_url, statements
from workbench.evidence.records import Quarantine

_BUCKETS = 24  # histogram buckets per doubling: values within ~3%
EXAMPLE_EXECUTIONS = 1000


@dataclass
class Template:
    calls: int = 0
    total_ms: float = 0.0
    timed: int = 0
    buckets: Counter = field(default_factory=Counter)

    def quantile(self, q: float) -> float | None:
        if not self.timed:
            return None
        rank, seen = q * self.timed, 0
        for b in sorted(self.buckets):
            seen += self.buckets[b]
            if seen >= rank:
                return 2 ** ((b + 0.5) / _BUCKETS)
        return None


@dataclass
class Pattern:
    """One N+1 pattern across requests: a source statement, then a loop of another."""

    source: str
    repeated: str
    requests: int = 0
    executions: int = 0
    repeated_ms: float = 0.0
    batch_floor_ms: float = 0.0  # per request, the slowest single execution: a batch costs at least that
    max_per_request: int = 0
    kinds: Counter = field(default_factory=Counter)
    example: Run | None = None

    def add(self, run: Run) -> None:
        n = len(run.executions)
        self.requests += 1
        self.executions += n
        self.repeated_ms += run.total_ms
        self.batch_floor_ms += run.max_ms
        self.kinds[run.group.kind] += 1
        if n > self.max_per_request:
            self.max_per_request = n
            ex = run.executions[:EXAMPLE_EXECUTIONS]
            self.example = Run(Group(run.group.kind, run.group.key), run.source, ex)


@dataclass
class Evidence:
    """What the records show: templates, requests, N+1 findings, and what could not be read."""

    files: list[str]
    rule: Rule
    gap_ms: float
    statements: int
    quarantine: Quarantine
    templates: pl.DataFrame
    findings: pl.DataFrame
    requests: pl.DataFrame  # one row per grouping key kind: requests, statements per request
    mix: pl.DataFrame  # requests by their first statement
    patterns: list[Pattern]
    texts: dict[str, str]
    unparsed: int = 0

    def example(self, rank: int) -> Run | None:
        """The largest occurrence of finding ``rank`` (1 = the most saving)."""
        return self.patterns[rank - 1].example

    def keys(self) -> dict[str, int]:
        return dict(zip(self.requests["key"], self.requests["requests"], strict=True))


def analyse(
    paths: Iterable[str | Path],
    *,
    format: str | None = None,
    prefix: str = DEFAULT,
    rule: Rule = SENTRY,
    gap_ms: float = GAP_MS,
    progress: bool | None = None,
    urls: Sequence[str] = (),
) -> Evidence:
    """Read ``paths`` once (and the pg_stat_statements of ``urls``, read-only) and return
    the :class:`Evidence` (see the module docstring)."""
    paths = [str(p) for p in paths]
    quarantine = Quarantine()
    prints = Fingerprints()
    templates: dict[str, Template] = {}
    grouper = Grouper(gap_ms)
    patterns: dict[tuple[str, str], Pattern] = {}
    sizes: dict[str, Counter] = {}
    entries: Counter = Counter()
    count = unparsed = 0
    log2 = math.log2

    def close(group: Group) -> None:
        stmts = group.statements
        sizes.setdefault(group.kind, Counter())[len(stmts)] += 1
        entries[stmts[0].fp] += 1
        for run in runs(group, rule):
            src = run.source.fp if run.source is not None else ""
            key = (src or "", run.fp)
            p = patterns.get(key)
            if p is None:
                p = patterns[key] = Pattern(*key)
            p.add(run)

    records = itertools.chain(
        statements(paths, quarantine, format, prefix, progress),
        *(pg_stat_statements_url(u) for u in urls),
    )
    for s in records:
        if isinstance(s, Aggregate):
            fp = prints(split_comment(s.sql)[0])
            if fp is None:
                quarantine.add(s.file, s.line, "PostgreSQL's parser rejects the statement")
                continue
            t = templates.get(fp) or templates.setdefault(fp, Template())
            t.calls += s.calls
            t.total_ms += s.total_ms or 0.0
            continue
        sql = s.sql
        if sql.endswith("*/"):
            sql = split_comment(sql)[0]
        fp = prints(sql)
        if fp is None:
            unparsed += 1
            quarantine.add(s.file, s.line, f"PostgreSQL's parser rejects the statement {s.sql[:60]!r}")
            continue
        s.fp = fp
        count += 1
        t = templates.get(fp)
        if t is None:
            t = templates[fp] = Template()
        t.calls += 1
        d = s.duration_ms
        if d is not None:
            t.total_ms += d
            t.timed += 1
            t.buckets[int(log2(d if d > 0.001 else 0.001) * _BUCKETS)] += 1
        for group in grouper.add(s):
            close(group)
    for group in grouper.finish():
        close(group)
    ranked = sorted(patterns.values(), key=lambda p: -_saving(p, rule.rtt_ms))
    return Evidence(
        files=paths + [_masked(u) for u in urls],
        rule=rule,
        gap_ms=gap_ms,
        statements=count,
        quarantine=quarantine,
        templates=_templates(templates, prints.text),
        findings=_findings(ranked, prints.text, rule.rtt_ms),
        requests=_requests(sizes),
        mix=_mix(entries, prints.text),
        patterns=ranked,
        texts=dict(prints.text),
        unparsed=unparsed,
    )


def _masked(url: str) -> str:
    from workbench.engines.postgres import mask_url  # pyarrow and SQLAlchemy: ~100 MB, only for URLs

    return mask_url(url)


def _saving(p: Pattern, rtt_ms: float) -> float:
    """Time a batch would save: the loop's time less the batch's floor, plus the round trips."""
    return p.repeated_ms - p.batch_floor_ms + (p.executions - p.requests) * rtt_ms


def _templates(templates: dict[str, Template], texts: dict[str, str]) -> pl.DataFrame:
    total = sum(t.total_ms for t in templates.values()) or 1.0
    rows = [
        {
            "fingerprint": fp,
            "query": texts.get(fp, ""),
            "calls": t.calls,
            "total_ms": t.total_ms,
            "mean_ms": t.total_ms / t.calls if t.calls else None,
            "p50_ms": t.quantile(0.5),
            "p99_ms": t.quantile(0.99),
            "time_share": t.total_ms / total,
        }
        for fp, t in templates.items()
    ]
    schema = {
        "fingerprint": pl.String,
        "query": pl.String,
        "calls": pl.Int64,
        "total_ms": pl.Float64,
        "mean_ms": pl.Float64,
        "p50_ms": pl.Float64,
        "p99_ms": pl.Float64,
        "time_share": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema).sort("total_ms", descending=True)


FINDING_SCHEMA = {
    "rank": pl.Int64,
    "source": pl.String,
    "repeated": pl.String,
    "rewrite": pl.String,
    "requests": pl.Int64,
    "executions": pl.Int64,
    "per_request": pl.Float64,
    "max_per_request": pl.Int64,
    "repeated_ms": pl.Float64,
    "saving_ms": pl.Float64,
    "key": pl.String,
    "example": pl.String,
    "example_at": pl.String,
    "source_fingerprint": pl.String,
    "repeated_fingerprint": pl.String,
}


def _findings(patterns: Sequence[Pattern], texts: dict[str, str], rtt_ms: float) -> pl.DataFrame:
    rows = []
    for i, p in enumerate(patterns, 1):
        ex = p.example
        first = ex.executions[0] if ex else None
        rows.append(
            {
                "rank": i,
                "source": texts.get(p.source, ""),
                "repeated": texts.get(p.repeated, ""),
                "rewrite": batch_rewrite(texts.get(p.repeated, "")) or "",
                "requests": p.requests,
                "executions": p.executions,
                "per_request": p.executions / p.requests,
                "max_per_request": p.max_per_request,
                "repeated_ms": p.repeated_ms,
                "saving_ms": _saving(p, rtt_ms),
                "key": p.kinds.most_common(1)[0][0],
                "example": ex.group.key if ex else "",
                "example_at": f"{first.file}:{first.line}" if first else "",
                "source_fingerprint": p.source,
                "repeated_fingerprint": p.repeated,
            }
        )
    return pl.DataFrame(rows, schema=FINDING_SCHEMA)


def _quantile(counts: Counter, q: float) -> int:
    rank, seen = q * sum(counts.values()), 0
    for size in sorted(counts):
        seen += counts[size]
        if seen >= rank:
            return size
    return max(counts)


def _requests(sizes: dict[str, Counter]) -> pl.DataFrame:
    rows = [
        {
            "key": kind,
            "requests": sum(counts.values()),
            "statements": sum(size * n for size, n in counts.items()),
            "p50_statements": _quantile(counts, 0.5),
            "p99_statements": _quantile(counts, 0.99),
            "max_statements": max(counts),
        }
        for kind, counts in sizes.items()
    ]
    schema = {
        "key": pl.String,
        "requests": pl.Int64,
        "statements": pl.Int64,
        "p50_statements": pl.Int64,
        "p99_statements": pl.Int64,
        "max_statements": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema).sort("requests", descending=True)


def _mix(entries: Counter, texts: dict[str, str]) -> pl.DataFrame:
    total = sum(entries.values()) or 1
    rows = [
        {"fingerprint": fp, "query": texts.get(fp, ""), "requests": n, "share": n / total}
        for fp, n in entries.most_common()
    ]
    schema = {"fingerprint": pl.String, "query": pl.String, "requests": pl.Int64, "share": pl.Float64}
    return pl.DataFrame(rows, schema=schema)

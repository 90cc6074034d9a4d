"""What a Dataset looks like (notebook 01): its manifest, the shape of its sessions, a
sample against its source, and the conclusions drawn from those numbers."""

from __future__ import annotations

import polars as pl

from workbench.dataset import Dataset
from workbench.tables import format_value


def compare(source: Dataset, sample: Dataset, names: tuple[str, str] = ("source", "sample")) -> pl.DataFrame:
    """Side-by-side distribution summary of two datasets (a source and its sample by default).

    Rows: quantiles of messages per session and of session span, windows per
    session, tokens per message and the job status mix; columns ``metric``, the two
    ``names`` and ``ratio`` (second / first).
    """

    def summary(ds: Dataset) -> dict[str, float]:
        stats = ds.session_stats()
        out: dict[str, float] = {"sessions": float(stats.height)}
        for q in (0.1, 0.5, 0.9, 0.99):
            out[f"messages/session p{round(q * 100)}"] = float(stats["messages"].quantile(q, "nearest"))
        out["messages/session max"] = float(stats["messages"].max())
        for q in (0.5, 0.9):
            out[f"session span p{round(q * 100)} (minutes)"] = float(
                stats["span_minutes"].quantile(q, "nearest")
            )
        out["windows/session mean"] = float(stats["windows"].mean())
        out["tokens/message mean"] = float(stats["tokens"].sum() / max(1, stats["messages"].sum()))
        jobs = ds.read("jobs")["status"].value_counts(normalize=True, name="share").sort("status")
        for status, share in jobs.iter_rows():
            out[f"jobs {status} (% of jobs)"] = 100 * float(share)
        return out

    a, b = summary(source), summary(sample)
    metrics = list(dict.fromkeys([*a, *b]))
    return pl.DataFrame(
        {
            "metric": metrics,
            names[0]: [a.get(m) for m in metrics],
            names[1]: [b.get(m) for m in metrics],
        }
    ).with_columns(ratio=(pl.col(names[1]) / pl.col(names[0])).round(3))


def describe(ds: Dataset) -> pl.DataFrame:
    """A dataset's manifest as a small two-column table (for notebooks and reports)."""
    source = ds.manifest["source"]
    rows = [("path", ds.name), ("source", source.get("kind", "?"))]
    rows += [
        (f"source {k.replace('_', ' ')}", v if isinstance(v, str) else format_value(v))
        for k, v in source.items()
        if k not in {"kind", "parent"} and not (k == "counts" and _within(v, ds.counts))  # rows below say it
    ]
    rows += [("seed", str(ds.manifest.get("seed"))), ("content hash", ds.content_hash[:16])]
    rows += [(f"rows: {t}", f"{n:,}") for t, n in ds.counts.items()]
    return pl.DataFrame(rows, schema=["field", "value"], orient="row")


def _within(part: object, counts: dict[str, int]) -> bool:
    """Whether ``part`` is a mapping every entry of which ``counts`` holds too."""
    return isinstance(part, dict) and all(counts.get(k) == n for k, n in part.items())


def quantiles(stats: pl.DataFrame) -> pl.DataFrame:
    """Quantiles of the per-session numbers from :meth:`Dataset.session_stats`."""
    quantiles = {"p10": 0.1, "p50": 0.5, "p90": 0.9, "p99": 0.99}
    columns = {
        "messages": "messages per session",
        "windows": "windows per session",
        "span_minutes": "session span (minutes)",
        "tokens": "tokens per session",
    }
    return pl.DataFrame(
        [
            {
                "measure": label,
                **{k: float(stats[col].quantile(q, "nearest")) for k, q in quantiles.items()},
                "max": float(stats[col].max()),
            }
            for col, label in columns.items()
        ]
    ).with_columns(pl.exclude("measure").round(1))


def conclusions(ds: Dataset, stats: pl.DataFrame, comparison: pl.DataFrame) -> str:
    """The notebook's conclusions as sentences computed from the numbers."""
    messages = stats["messages"].sort(descending=True)
    top = max(1, round(0.01 * messages.len()))
    top_share = messages.head(top).sum() / max(1, messages.sum())
    median = float(messages.median())
    multi = float((stats["windows"] > 1).mean())
    metric = dict(zip(comparison["metric"], comparison["ratio"], strict=True))
    sample_sessions = comparison.filter(pl.col("metric") == "sessions")["sample"].item()
    lines = [
        f"{stats.height:,} sessions in {ds.counts['projects']:,} projects hold {ds.counts['messages']:,} "
        f"messages. The median session has {median:.0f} messages, the largest {messages[0]:,} "
        f"({messages[0] / median:.0f}x the median); the top 1% of sessions ({top}) hold {top_share:.0%} "
        "of all messages, so per-session query costs are dominated by a few sessions.",
        f"{multi:.0%} of sessions span more than one 5-hour window.",
        f"The sample keeps {sample_sessions:.0f} sessions; against the source its p50, p90 and p99 "
        f"messages per session are {metric['messages/session p50']:.2f}x, "
        f"{metric['messages/session p90']:.2f}x and {metric['messages/session p99']:.2f}x, "
        f"and its largest session is {metric['messages/session max']:.2f}x the source's largest.",
    ]
    return "\n".join(lines)

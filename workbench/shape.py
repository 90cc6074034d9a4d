"""What a Dataset looks like (notebook 01): its manifest, the shape of its sessions, a
sample against its source, and the conclusions drawn from those numbers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from workbench.dataset import Dataset
from workbench.tables import format_value

if TYPE_CHECKING:
    import plotly.graph_objects as go


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


# ---- the generator's fit (notebook 01's fit section) -------------------------------------
#: A generated distribution "fits" when its p50, p90 and p99 are within this share of the
#: real one's and the two-sample KS distance is at most :data:`FIT_KS`.
FIT_TOLERANCE = 0.15
FIT_KS = 0.1


def distributions(ds: Dataset) -> dict[str, np.ndarray]:
    """The distributions :func:`workbench.sources.fit.fit` fits, measured on ``ds`` (one array each)."""
    stats = ds.session_stats()
    messages = (
        ds.scan("messages")
        .select(
            "session_id",
            "timestamp",
            "role",
            size=pl.col("content").str.len_bytes(),
            output=pl.col("output_tokens").cast(pl.Int64),
        )
        .sort("session_id", "timestamp", maintain_order=True)
        .collect()
    )
    same = messages["session_id"].to_numpy()
    ts = messages["timestamp"].to_numpy().astype("datetime64[us]").astype(np.int64)
    out = {
        "messages per session": stats["messages"].to_numpy(),
        "windows per session": stats["windows"].to_numpy(),
        "sessions per project": ds.read("sessions").group_by("project_id").len()["len"].to_numpy(),
        "seconds between messages": np.diff(ts)[same[1:] == same[:-1]] / 1e6,
        "message size (bytes)": messages["size"].to_numpy(),
        "output tokens (assistant)": messages.filter(pl.col("role") == "assistant")["output"]
        .drop_nulls()
        .to_numpy(),
    }
    jobs = ds.read("jobs")
    if jobs.height:
        out["job run (seconds)"] = (
            jobs["finished_at"] - jobs["started_at"]
        ).dt.total_microseconds().drop_nulls().to_numpy() / 1e6
    return out


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov distance: the largest gap between the two ECDFs.

    >>> ks_distance(np.array([1, 2, 3]), np.array([1, 2, 3]))
    0.0
    >>> ks_distance(np.array([1, 2]), np.array([3, 4]))
    1.0
    """
    a, b = np.sort(a), np.sort(b)
    if not len(a) or not len(b):
        return float("nan")
    grid = np.concatenate([a, b])
    return float(
        np.abs(np.searchsorted(a, grid, "right") / len(a) - np.searchsorted(b, grid, "right") / len(b)).max()
    )


def fit_report(real: dict[str, np.ndarray], generated: dict[str, np.ndarray]) -> pl.DataFrame:
    """Per distribution: n, p50/p90/p99/max of both, the KS distance, and a verdict.

    The verdict is "fits" when p50, p90 and p99 are within :data:`FIT_TOLERANCE` and KS is at
    most :data:`FIT_KS`; otherwise it names what does not fit. The maximum is shown, not judged
    (one session).
    """
    rows = []
    for name, want in real.items():
        got = generated.get(name, np.array([]))
        row: dict[str, object] = {"distribution": name, "n real": len(want), "n generated": len(got)}
        misses = []
        for label, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)):
            r = float(np.quantile(want, q, method="nearest")) if len(want) else float("nan")
            g = float(np.quantile(got, q, method="nearest")) if len(got) else float("nan")
            row[f"{label} real"], row[f"{label} generated"] = r, g
            off = g / r - 1 if r else (0.0 if g == r else float("inf"))
            if label != "max" and not abs(off) <= FIT_TOLERANCE:
                misses.append(f"{label} {off:+.0%}")
        row["KS"] = round(ks_distance(want, got), 3)
        if not row["KS"] <= FIT_KS:
            misses.append(f"KS {row['KS']:.2f}")
        row["verdict"] = "fits" if not misses else "off: " + ", ".join(misses)
        rows.append(row)
    return pl.DataFrame(rows)


def _thin(curve: pl.DataFrame, per_decade: int = 50) -> pl.DataFrame:
    """A CCDF of positive values with at most ``per_decade`` points a decade of x (the first of
    each log-spaced bin, and the largest value): continuous data (sizes, gaps) has a point per
    distinct value, which makes a page heavy and draws no differently on log-log axes.

    >>> _thin(pl.DataFrame({"x": [1.0, 1.001, 1.002, 10.0], "share": [1.0, 0.75, 0.5, 0.25]}), 10).rows()
    [(1.0, 1.0), (10.0, 0.25)]
    """
    bins = (pl.col("x").log10() * per_decade).floor()
    thinned = curve.with_columns(bin=bins).unique("bin", keep="first", maintain_order=True).drop("bin")
    return pl.concat([thinned, curve.tail(1)]).unique(maintain_order=True)


def fit_figure(real: np.ndarray, generated: np.ndarray, name: str) -> go.Figure:
    """CCDFs of one distribution, real against generated, on log-log axes."""
    import plotly.graph_objects as go

    from workbench import figures

    fig = go.Figure()
    for label, values in (("real", real), ("generated", generated)):
        curve = _thin(figures.ccdf(pl.Series(values).filter(pl.Series(values) > 0)))
        fig.add_trace(
            go.Scatter(
                x=curve["x"],
                y=curve["share"],
                mode="lines",
                line=dict(shape="hv"),
                name=f"{label} (n={len(values):,})",
            )
        )
    figures.log_axis(fig, "x", f"{name} (log scale)")
    figures.log_axis(fig, "y", "share at least x (log scale)", tickformat="~%")
    fig.update_layout(title=f"Fit: {name}", template="plotly_white")
    return fig


def fit_conclusion(report: pl.DataFrame) -> str:
    """One sentence: which distributions fit within the stated tolerance, and which do not."""
    off = report.filter(pl.col("verdict") != "fits")
    head = (
        f"{report.height - off.height} of {report.height} distributions fit (p50, p90, p99 within "
        f"{FIT_TOLERANCE:.0%} and KS at most {FIT_KS})"
    )
    if off.height == 0:
        return head + "."
    return (
        head
        + "; not: "
        + "; ".join(f"{d} ({v[5:]})" for d, v in off.select("distribution", "verdict").iter_rows())
        + "."
    )

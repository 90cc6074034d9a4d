"""Plotly builders for the service lab (notebook 05); each takes frames, returns a figure."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import polars as pl

from workbench.figures import _layout, log_ticks
from workbench.service.slo import slo

_PCT_TICKS = [0.5, 0.9, 0.99, 0.999, 0.9999]


def _threshold(fig: go.Figure, y: float, text: str) -> None:
    """A dashed horizontal line at ``y`` on a log y axis, labelled at its right end (an
    annotation's y on a log axis is the exponent: plotly's add_hline label lands at 10^y)."""
    fig.add_hline(y=y, line=dict(color="grey", dash="dash"))
    fig.add_annotation(
        x=1,
        xref="x domain",
        y=math.log10(y),
        yref="y",
        text=text,
        showarrow=False,
        xanchor="right",
        yanchor="bottom",
    )


def latency_vs_load(
    summary: pl.DataFrame,
    maxima: pl.DataFrame | None = None,
    slices: pl.DataFrame | None = None,
    title: str | None = None,
    targets: dict[str, float] | None = None,
) -> go.Figure:
    """P99 and P50 against offered load, one panel per configuration (so three legend entries,
    not three per configuration): the ramp's P99 per slice as a thin line (where the knee
    shows), the steady runs as markers with 95% intervals (rounds a little apart, not on
    top of each other), the SLO thresholds dashed and the median knee as a dotted vertical."""
    from plotly.subplots import make_subplots

    labels = summary["label"].unique(maintain_order=True).to_list()
    cols = min(3, len(labels)) or 1
    rows = math.ceil(len(labels) / cols) or 1
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=labels,
        shared_yaxes=True,
        horizontal_spacing=0.04,
        vertical_spacing=0.14,
    )
    colors = {"ramp": "#7f7f7f", "p50": "#2ca02c", "p99": "#1f77b4"}
    for i, label in enumerate(labels):
        row, col = i // cols + 1, i % cols + 1
        if slices is not None and not slices.is_empty():
            ramp = slices.filter(pl.col("label") == label).sort("offered_rps")
            fig.add_trace(
                go.Scatter(
                    x=ramp["offered_rps"],
                    y=ramp["p99_ms"],
                    name="ramp: P99 per half-second slice",
                    mode="lines",
                    line=dict(color=colors["ramp"], width=1),
                    legendgroup="ramp",
                    showlegend=i == 0,
                ),
                row=row,
                col=col,
            )
        part = summary.filter(pl.col("label") == label).sort("offered_rps")
        if part.height:  # the steady runs' region, and the ramp's turn just past it
            fig.update_xaxes(range=[0, 1.5 * float(part["offered_rps"].max())], row=row, col=col)
        spread = (pl.col("round") - 1) * 0.015 if "round" in part.columns else pl.lit(0.0)
        x = part.select(pl.col("offered_rps") * (1 + spread)).to_series()  # rounds ±1.5% apart
        for q, symbol in (("p50", "circle-open"), ("p99", "circle")):
            y = part[f"{q}_ms"].to_numpy()
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=y,
                    name=f"steady run: {q.upper()} (95% interval)",
                    mode="markers",
                    marker=dict(color=colors[q], symbol=symbol, size=8),
                    legendgroup=q,
                    showlegend=i == 0,
                    customdata=part["offered_rps"],
                    hovertemplate=f"{q.upper()} %{{y:.1f}} ms at %{{customdata:,.0f}} req/s<extra></extra>",
                    error_y=dict(
                        type="data",
                        symmetric=False,
                        array=np.maximum(part[f"{q}_hi"].to_numpy() - y, 0),
                        arrayminus=np.maximum(y - part[f"{q}_lo"].to_numpy(), 0),
                        thickness=1,
                    ),
                ),
                row=row,
                col=col,
            )
        if maxima is not None:
            m = maxima.filter(pl.col("label") == label)
            if m.height and m["max_rate"][0] > 0:
                fig.add_vline(
                    x=m["max_rate"][0], line=dict(color="#d62728", width=1, dash="dot"), row=row, col=col
                )
        for name in ("p50", "p99"):
            target = (targets or {}).get(name, slo(name).target)
            fig.add_hline(y=target, line=dict(color="grey", dash="dash", width=1), row=row, col=col)
    fig.update_yaxes(type="log", tickvals=[1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000])
    fig.update_yaxes(title_text="latency (ms), log", col=1)
    fig.update_xaxes(title_text="offered load (req/s)", row=rows)
    return _layout(
        fig,
        title
        or "Latency against offered load per configuration: ramp (line), steady runs (markers); "
        "dashed: the P50 and P99 targets; dotted red: the median knee",
        legend=dict(orientation="h", y=-0.12),
    ).update_layout(height=330 * rows + 120)


def holding_rates(maxima: pl.DataFrame, title: str | None = None) -> go.Figure:
    """Where each configuration's knee lies, round by round: a segment from the highest rate
    that held every SLO (dot) to the lowest that failed above it (bar), or an arrow where
    nothing failed (the knee lies above), and a red tick at the median the verdicts use.
    Two configurations differ only where their segments do not overlap. Log x axis: a
    cached configuration runs several times faster."""
    fig = go.Figure()
    rows = maxima.to_dicts()
    labels = [r["label"] for r in rows]
    for row, r in enumerate(rows):
        held = r["round_rates"]
        for i, (h, f) in enumerate(zip(held, r["round_failed"], strict=True)):
            if not h:
                continue  # held at no rate: no place on a log axis (the verdicts say so in words)
            y = row + (i - (len(held) - 1) / 2) * 0.15  # rounds a little apart, not on top
            end = f if math.isfinite(f) else h * 1.25
            fig.add_trace(
                go.Scatter(
                    x=[h, end],
                    y=[y, y],
                    mode="lines+markers",
                    line=dict(color="#1f77b4", width=2),
                    marker=dict(
                        symbol=["circle", "line-ns" if math.isfinite(f) else "triangle-right"],
                        size=[9, 12],
                        color="#1f77b4",
                        line=dict(width=2, color="#1f77b4"),
                    ),
                    name="a round: held (dot) to failed (bar), ▶ none failed",
                    legendgroup="round",
                    showlegend=row == 0 and i == 0,
                    hovertemplate=f"{r['label']}, round {i + 1}: held {h:,.0f} req/s, "
                    + (f"failed {f:,.0f}" if math.isfinite(f) else "no failure above")
                    + "<extra></extra>",
                )
            )
        if r["max_rate"]:
            fig.add_trace(
                go.Scatter(
                    x=[r["max_rate"]],
                    y=[row],
                    mode="markers",
                    marker=dict(symbol="line-ns", size=30, line=dict(width=3, color="#d62728")),
                    name="median held rate (the verdicts' figure)",
                    legendgroup="median",
                    showlegend=row == 0,
                    hovertemplate=f"{r['label']}: median {r['max_rate']:,.0f} req/s<extra></extra>",
                )
            )
    fig = _layout(
        fig,
        title or "Where each configuration's knee lies, round by round",
        yaxis=dict(tickvals=list(range(len(labels))), ticktext=labels, autorange="reversed"),
        legend=dict(orientation="h", y=-0.25),
    ).update_layout(height=150 + 55 * len(labels))
    fig.update_xaxes(title="arrival rate (req/s), log scale")
    return log_ticks(fig, "x")


def distributions(latencies: pl.DataFrame, title: str | None = None) -> go.Figure:
    """Percentile plot of latency per configuration (HdrHistogram style: the x axis spreads
    the tail, 1/(1−q) on a log scale), at each configuration's rate in ``latencies``."""
    fig = go.Figure()
    for (label, rate), part in latencies.group_by("label", "offered_rps", maintain_order=True):
        v = np.sort(part["latency_ms"].to_numpy())
        if v.size < 2:
            continue
        q = (np.arange(v.size) + 0.5) / v.size
        fig.add_trace(go.Scatter(x=1 / (1 - q), y=v, mode="lines", name=f"{label} @ {rate:g} req/s"))
    ticks = [1 / (1 - p) for p in _PCT_TICKS]
    return _layout(
        fig,
        title or "Latency distribution (every request; the tail to the right)",
        xaxis=dict(
            title="percentile",
            type="log",
            tickvals=ticks,
            ticktext=[f"{p * 100:g}%" for p in _PCT_TICKS],
        ),
        yaxis=dict(title="latency (ms), log scale", type="log"),
    ).update_layout(height=420)


def prometheus_vs_tool(side: pl.DataFrame, title: str | None = None) -> go.Figure:
    """Each SLI as the load tool measured it and as Prometheus computed it, as ratios to the SLO
    target (1.0 = on the threshold)."""
    fig = go.Figure()
    for source, color in (("load_tool", "#1f77b4"), ("prometheus", "#ff7f0e")):
        ratios = [
            (v / t if v is not None and t and not math.isnan(v) else None)
            for v, t in zip(side[source], side["target"], strict=True)
        ]
        fig.add_trace(
            go.Bar(
                x=side["slo"],
                y=ratios,
                name=source.replace("_", " "),
                marker_color=color,
                text=side[f"{source}_shown"],
                textposition="outside",
            )
        )
    _threshold(fig, 1, "SLO threshold")
    return _layout(
        fig,
        title or "The load tool's figures beside Prometheus's (value / SLO target, log scale)",
        barmode="group",
        yaxis=dict(title="value / target", type="log"),
    ).update_layout(height=420)

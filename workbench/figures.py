"""Plotly figure builders. Each takes tidy frames and returns a ``go.Figure``.

Builders never compute measurements and never show anything; notebooks display what
they return. :func:`use_renderer` picks how figures are embedded: compact JSON
(``plotly_mimetype``) in committed notebooks, inline plotly.js (``notebook``) in
exported reports, so they render offline.
"""

from __future__ import annotations

import os

import plotly.graph_objects as go
import plotly.io as pio
import polars as pl

RENDERER_ENV = "WORKBENCH_PLOTLY_RENDERER"
TEMPLATE = "plotly_white"


def use_renderer(default: str = "plotly_mimetype") -> str:
    """Set plotly's renderer from ``$WORKBENCH_PLOTLY_RENDERER`` (reports set ``notebook``)."""
    pio.renderers.default = os.environ.get(RENDERER_ENV, default)
    pio.templates.default = TEMPLATE
    return pio.renderers.default


def _layout(fig: go.Figure, title: str, **kwargs: object) -> go.Figure:
    return fig.update_layout(title=title, template=TEMPLATE, height=380, margin=dict(t=60, b=40), **kwargs)


# ---- dataset shape (notebook 01) --------------------------------------------------------
def messages_per_session(stats: pl.DataFrame, title: str = "Messages per session") -> go.Figure:
    """Histogram of messages per session on log-log axes (the heavy tail is the point)."""
    counts = stats["messages"].filter(stats["messages"] > 0)
    edges = [2**i for i in range(0, int(counts.max()).bit_length() + 1)]
    hist = (
        pl.DataFrame({"n": counts})
        .with_columns(bin=pl.col("n").cut(edges[1:], labels=[str(e) for e in edges], left_closed=True))
        .group_by("bin")
        .len()
        .with_columns(lower=pl.col("bin").cast(pl.String).cast(pl.Int64))
        .sort("lower")
    )
    fig = go.Figure(go.Bar(x=hist["lower"], y=hist["len"], name="sessions", hovertemplate="≥%{x}: %{y}"))
    fig.update_xaxes(type="log", title="messages in session (bin lower edge, log scale)")
    fig.update_yaxes(type="log", title="sessions (log scale)")
    return _layout(fig, title)


def activity(messages: pl.DataFrame, title: str = "Activity over time") -> go.Figure:
    """Messages per day, with the hour-of-day profile as an inset bar chart."""
    daily = messages.group_by(day=pl.col("timestamp").dt.date()).len().sort("day")
    hourly = messages.group_by(hour=pl.col("timestamp").dt.hour()).len().sort("hour")
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=daily["day"], y=daily["len"], mode="lines", name="messages per day"))
    fig.add_trace(
        go.Bar(x=hourly["hour"], y=hourly["len"], name="by hour of day (UTC)", xaxis="x2", yaxis="y2")
    )
    fig.update_layout(
        xaxis=dict(domain=[0, 0.62], title="day"),
        yaxis=dict(title="messages"),
        xaxis2=dict(domain=[0.72, 1], anchor="y2", title="hour (UTC)"),
        yaxis2=dict(anchor="x2", title="messages"),
    )
    return _layout(fig, title)


def window_durations(windows: pl.DataFrame, title: str = "5-hour windows: active minutes") -> go.Figure:
    """Histogram of how long each window was actually used (last activity - start)."""
    minutes = windows.select(
        ((pl.col("last_activity") - pl.col("start_time")).dt.total_seconds() / 60).alias("minutes")
    )["minutes"]
    fig = go.Figure(go.Histogram(x=minutes, nbinsx=30, name="windows"))
    fig.update_xaxes(title="minutes from window start to last activity", range=[0, 300])
    fig.update_yaxes(title="windows")
    return _layout(fig, title)


def job_mix(jobs: pl.DataFrame, title: str = "Jobs by type and status") -> go.Figure:
    mix = jobs.group_by("type", "status").len().sort("type", "status")
    fig = go.Figure(
        [
            go.Bar(x=part["type"], y=part["len"], name=status)
            for (status,), part in mix.partition_by("status", as_dict=True).items()
        ]
    )
    fig.update_layout(barmode="stack")
    fig.update_yaxes(type="log", title="jobs (log scale)")
    return _layout(fig, title)


def sample_vs_source(source: pl.DataFrame, sample: pl.DataFrame, title: str | None = None) -> go.Figure:
    """Complementary CDFs of messages per session: does the sample keep the heavy tail?"""
    fig = go.Figure()
    for name, stats in (("source", source), ("sample", sample)):
        counts = stats["messages"].sort()
        share = 1 - pl.int_range(0, counts.len(), eager=True) / counts.len()
        fig.add_trace(go.Scatter(x=counts, y=share, mode="lines", name=f"{name} ({counts.len()} sessions)"))
    fig.update_xaxes(type="log", title="messages in session (log scale)")
    fig.update_yaxes(type="log", title="share of sessions with at least x messages")
    return _layout(fig, title or "Sample against source: messages per session")


def load_times(reports: pl.DataFrame, title: str = "Load time per engine and table") -> go.Figure:
    """Stacked bars of seconds per table from ``LoadReport.frame()`` rows."""
    fig = go.Figure(
        [
            go.Bar(x=part["engine"], y=part["seconds"], name=table)
            for (table,), part in reports.partition_by("table", as_dict=True).items()
        ]
    )
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title="seconds")
    return _layout(fig, title)

"""Plotly builders for the index lab (notebook 03); each takes a frame, axes carry units."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from workbench.figures import log_ticks


def _interval(part: pl.DataFrame, mid: str, lo: str, hi: str) -> dict:
    """Plotly error bars from a frame's point estimate and interval bounds (asymmetric)."""
    return {
        "type": "data",
        "symmetric": False,
        "array": part[hi] - part[mid],
        "arrayminus": part[mid] - part[lo],
    }


def speedups(per_query: pl.DataFrame) -> go.Figure:
    """Speedup of each (index, query) per engine with its 95% interval, log axis, 1x marked.

    Dots, not bars: on a log axis a bar's length starts at an arbitrary floor, so a bar
    would say nothing; a dot's distance from the dotted 1 is the speedup.
    """
    fig = go.Figure()
    for (engine,), part in per_query.group_by("engine", maintain_order=True):
        fig.add_scatter(
            y=[f"{r['index']} · {r['query']}" for r in part.iter_rows(named=True)],
            x=part["speedup"],
            name=engine,
            mode="markers",
            orientation="h",
            marker={"size": 9},
            error_x=_interval(part, "speedup", "lo", "hi"),
            hovertemplate="%{y}: %{x:.2f}x<extra>" + str(engine) + "</extra>",
        )
    fig.add_vline(x=1, line_dash="dot")
    fig.update_layout(
        scattermode="group",
        scattergap=0.3,
        height=300 + 18 * per_query.height,
        title="Speedup with the index (95% interval)",
        xaxis={"title": "speedup (x, log scale; 1 = no change, left of it = slower)"},
    )
    return log_ticks(fig, "x")


def write_costs(per_index: pl.DataFrame) -> go.Figure:
    """Bulk-insert slowdown per index and engine (ratio against no secondary index)."""
    fig = go.Figure()
    for (engine,), part in per_index.group_by("engine", maintain_order=True):
        fig.add_bar(
            x=part["index"],
            y=part["write_cost"],
            name=engine,
            error_y=_interval(part, "write_cost", "write_lo", "write_hi"),
        )
    fig.add_hline(y=1, line_dash="dot")
    fig.update_layout(
        barmode="group",
        title="Write cost: bulk insert into the index's table (95% interval, paired rounds)",
        yaxis={"title": "insert time with / without (x; an interval reaching 1: no measurable cost)"},
    )
    return fig


def depth(frame: pl.DataFrame) -> go.Figure:
    """Latency of page N per pager and engine, log-log."""
    fig = go.Figure()
    for (engine, pager), part in frame.group_by("engine", "pager", maintain_order=True):
        part = part.sort("page")
        fig.add_scatter(
            x=part["page"],
            y=part["median_ms"],
            mode="lines+markers",
            name=f"{engine} · {pager}",
            error_y=_interval(part, "median_ms", "lo_ms", "hi_ms"),
        )
    fig.update_layout(
        title="Latency against page depth (95% intervals)",
        xaxis={"title": "page number (log scale)"},
        yaxis={"title": "median latency of one page (ms, log scale)"},
    )
    log_ticks(fig, "x")
    log_ticks(fig, "y")
    return fig


def correctness(frame: pl.DataFrame) -> go.Figure:
    """Rows missed and repeated per pager, still table and with inserts between pages."""
    fig = go.Figure()
    short = {"still table": "still", "rows inserted between pages": "inserts"}
    for what in ("missed", "repeated"):
        fig.add_bar(  # two-level axis: engine, then pager and scenario
            x=[
                frame["engine"].to_list(),
                [
                    f"{r['pager']}, {short.get(r['scenario'], r['scenario'])}"
                    for r in frame.iter_rows(named=True)
                ],
            ],
            y=frame[what],
            name=what,
        )
    fig.update_layout(
        barmode="group",
        title="Walking every page: rows missed and repeated (still, and with rows inserted between pages)",
        yaxis={"title": "rows of the project"},
    )
    return fig

"""Plotly builders for notebook 04; each takes the tidy frames of :mod:`.experiments`."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from workbench.figures import log_ticks

TEMPLATE = "plotly_white"
PALETTE = qualitative.Plotly + qualitative.D3  # enough distinct colours for every variant
WHOLE_TREE = ("polars", "duckdb", "ingest")  # readers of the whole tree, drawn dotted


def scaling_figure(scaling: pl.DataFrame, memory_target_mib: float = 500) -> go.Figure:
    """Peak RSS, its growth and throughput against file size, one colour per variant (log x).

    The middle panel divides each variant's peak RSS by its own at the smallest file (1 =
    flat), so a reader whose memory follows the file rises there even when the
    interpreter's fixed memory makes its absolute line look flat beside the plan's target.
    """
    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=(
            "Peak RSS of the process (MiB)",
            "Peak RSS against its own at the smallest file (x)",
            "Throughput (rows/s)",
        ),
        horizontal_spacing=0.08,
    )
    ordered = scaling.sort("size_mb", maintain_order=True).with_columns(
        growth=pl.col("peak_rss_mib") / pl.col("peak_rss_mib").first().over("variant")
    )
    for i, ((name,), part) in enumerate(ordered.group_by("variant", maintain_order=True)):
        # one colour per variant in every panel: plotly's default colours go by trace, not by name
        line = {"color": PALETTE[i % len(PALETTE)], "dash": "dot" if name in WHOLE_TREE else "solid"}
        common = {
            "x": part["size_mb"],
            "name": name,
            "legendgroup": name,
            "mode": "lines+markers",
            "line": line,
        }
        panels = (
            ("peak_rss_mib", "%{x:.0f} MB: %{y:.0f} MiB"),
            ("growth", "%{x:.0f} MB: %{y:.2f}x its RSS at the smallest file"),
            ("rows_per_s", "%{x:.0f} MB: %{y:,.0f} rows/s"),
        )
        for col, (column, hover) in enumerate(panels, start=1):
            fig.add_trace(
                go.Scatter(y=part[column], hovertemplate=hover, showlegend=col == 1, **common), 1, col
            )
    fig.add_hline(
        y=memory_target_mib, line_dash="dash", line_color="red", annotation_text="plan's target", row=1, col=1
    )
    fig.add_hline(y=1, line_dash="dot", line_color="grey", annotation_text="flat", row=1, col=2)
    log_ticks(fig.update_xaxes(title="file size (MB, log scale)"), "x")
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    top = float(ordered["growth"].max() or 1.0)
    fig.update_yaxes(range=[0.9, max(1.5, top * 1.05)], row=1, col=2)
    fig.update_yaxes(rangemode="tozero", tickformat=",", row=1, col=3)  # 150,000, not 150k
    return fig.update_layout(
        title="Readers against file size: which stay flat",
        template=TEMPLATE,
        height=440,
        margin={"t": 80},
        legend={"orientation": "h", "y": -0.25},
    )


def writers_figure(sweep: pl.DataFrame, knees: pl.DataFrame) -> go.Figure:
    """Insert throughput against batch size, one panel per engine, knees marked."""
    engines = sweep["engine"].unique(maintain_order=True).to_list()
    fig = make_subplots(rows=1, cols=len(engines), subplot_titles=engines, shared_yaxes=True)
    colors = dict(
        zip(
            ["row", "executemany", "values", "bulk"],
            ["#636efa", "#ef553b", "#00cc96", "#ab63fa"],
            strict=True,
        )
    )
    for col, engine in enumerate(engines, start=1):
        for writer in colors:
            part = sweep.filter((pl.col("engine") == engine) & (pl.col("writer") == writer)).sort(
                "batch_size"
            )
            if part.is_empty():
                continue
            fig.add_trace(
                go.Scatter(
                    x=part["batch_size"],
                    y=part["rows_per_s"],
                    name=writer,
                    legendgroup=writer,
                    showlegend=col == 1,
                    mode="lines+markers",
                    line={"color": colors[writer]},
                    hovertemplate="batch %{x}: %{y:,.0f} rows/s",
                ),
                1,
                col,
            )
            knee = knees.filter((pl.col("engine") == engine) & (pl.col("writer") == writer))
            if knee.height:
                fig.add_trace(
                    go.Scatter(
                        x=knee["knee_batch"],
                        y=knee["knee_rows_per_s"],
                        mode="markers",
                        marker={"symbol": "circle-open", "size": 14, "color": colors[writer]},
                        showlegend=False,
                        hovertemplate="knee: batch %{x}<extra></extra>",
                    ),
                    1,
                    col,
                )
    log_ticks(fig.update_xaxes(title="batch size (rows, log scale)"), "x")
    log_ticks(fig, "y")
    fig.update_yaxes(title="rows written per second (log scale)", row=1, col=1)
    return fig.update_layout(
        title="Insert throughput against batch size (circles: the knee, 90% of the best)",
        template=TEMPLATE,
        height=420,
        margin={"t": 80},
    )


def pacing_figure(pacing: pl.DataFrame) -> go.Figure:
    """Share of the no-pause throughput each pacing keeps, against batch size."""
    fig = go.Figure()
    # one line per fixed sleep, one for the adaptive pause (whose sleep varies with the batch size)
    key = pl.when(pl.col("pacing") == "adaptive").then(None).otherwise(pl.col("sleep_ms")).alias("line_ms")
    ordered = pacing.sort("batch_size").with_columns(key)
    for (kind, ms), part in ordered.group_by("pacing", "line_ms", maintain_order=True):
        if kind == "none":
            continue
        name = "adaptive pause" if kind == "adaptive" else f"fixed {ms:g} ms sleep"
        fig.add_trace(
            go.Scatter(
                x=part["batch_size"],
                y=part["kept"] * 100,
                name=name,
                mode="lines+markers",
                line={"dash": "solid" if kind == "adaptive" else "dot"},
                hovertemplate="batch %{x}: %{y:.0f}% kept",
            )
        )
    fig.add_hline(y=100, line_color="grey", annotation_text="no pause")
    log_ticks(fig.update_xaxes(title="batch size (rows, log scale)"), "x")
    fig.update_yaxes(title="throughput kept (% of no pause)", rangemode="tozero")
    return fig.update_layout(
        title="The fixed sleep's cost, and an adaptive pause", template=TEMPLATE, height=380
    )


def breakdown_figure(breakdown: pl.DataFrame) -> go.Figure:
    """Share of CPU time by stage, one bar per profiled variant."""
    fig = go.Figure()
    for stage, part in breakdown.group_by("stage", maintain_order=True):
        fig.add_trace(
            go.Bar(
                x=part["share"] * 100,
                y=part["profile"],
                name=stage[0],
                orientation="h",
                customdata=part["seconds"],
                hovertemplate="%{x:.0f}% (%{customdata:.2f} s)",
            )
        )
    fig.update_xaxes(title="share of CPU samples (%)", range=[0, 100])
    return fig.update_layout(barmode="stack", title="Where the time goes", template=TEMPLATE, height=300)


def batch_memory_figure(frame: pl.DataFrame) -> go.Figure:
    """memray's allocation count per row and peak per batch mode."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("allocations per row", "memray heap peak (MiB)"))
    fig.add_trace(go.Bar(x=frame["mode"], y=frame["allocations_per_row"], showlegend=False), 1, 1)
    fig.add_trace(go.Bar(x=frame["mode"], y=frame["peak_mib"], showlegend=False), 1, 2)
    fig.update_yaxes(rangemode="tozero")
    return fig.update_layout(
        title="Per-row objects against reused buffers (memray, every allocation traced)",
        template=TEMPLATE,
        height=340,
    )

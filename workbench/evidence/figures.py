"""Notebook 06's figure: where the statement time goes, per fingerprint."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from workbench.evidence.conclude import name
from workbench.figures import _layout


def templates(frame: pl.DataFrame, top: int = 12) -> go.Figure:
    """Total time per fingerprint (the ``top`` costliest), calls and mean in the hover."""
    rows = frame.sort("total_ms", descending=True).head(top).reverse()
    labels = [f"{i}. {name(q)}" for i, q in zip(range(len(rows), 0, -1), rows["query"], strict=True)]
    fig = go.Figure(
        go.Bar(
            x=rows["total_ms"].to_list(),
            y=labels,
            orientation="h",
            text=[f"{c:,} calls × {m:.2f} ms" for c, m in zip(rows["calls"], rows["mean_ms"], strict=True)],
            hovertext=rows["query"].to_list(),
        )
    )
    fig.update_xaxes(title="total statement time (ms, server side)")
    return _layout(fig, "Where the statement time goes, per fingerprint").update_layout(
        height=max(320, 32 * len(rows))
    )

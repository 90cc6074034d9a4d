"""Plotly figure builders. Each takes tidy frames and returns a ``go.Figure``.

Builders never compute measurements and never show anything; notebooks display what
they return. :func:`use_renderer` picks how figures are embedded: plotly's JSON
(``plotly_mimetype``), which JupyterLab draws and the report's export turns into divs
drawn by one shared ``plotly.min.js`` beside the pages, so they render offline.
Builders take what they show as data (names already labelled for people): they import
no lab.
"""

from __future__ import annotations

import math
import os

import plotly.graph_objects as go
import plotly.io as pio
import polars as pl

RENDERER_ENV = "WORKBENCH_PLOTLY_RENDERER"
TEMPLATE = "plotly_white"


def use_renderer(default: str = "plotly_mimetype") -> str:
    """Set plotly's renderer from ``$WORKBENCH_PLOTLY_RENDERER``, else ``default``
    (e.g. ``notebook`` for a classic Jupyter without plotly's extension)."""
    pio.renderers.default = os.environ.get(RENDERER_ENV, default)
    pio.templates.default = TEMPLATE
    return pio.renderers.default


def _layout(fig: go.Figure, title: str, **kwargs: object) -> go.Figure:
    return fig.update_layout(title=title, template=TEMPLATE, height=380, margin=dict(t=60, b=40), **kwargs)


def log_axis(fig: go.Figure, axis: str = "y", title: str | None = None, **kwargs: object) -> go.Figure:
    """Make ``axis`` ("x" or "y") logarithmic with readable ticks: 1, 10, 100, 1,000 (no 1e3, no 2k)."""
    update = fig.update_xaxes if axis == "x" else fig.update_yaxes
    options: dict = dict(
        type="log", dtick=1, tickformat=",", exponentformat="none", minor=dict(ticks="outside")
    )
    if title is not None:
        options["title"] = title
    update(**{**options, **kwargs})
    return fig


def ccdf(values: pl.Series) -> pl.DataFrame:
    """(x, share): the share of values at least x, one row per distinct value (the largest included).

    >>> ccdf(pl.Series([1, 1, 2, 10])).rows()
    [(1, 1.0), (2, 0.5), (10, 0.25)]
    """
    sorted_values = values.drop_nulls().sort()
    n = sorted_values.len()
    frame = pl.DataFrame({"x": sorted_values, "rank": pl.int_range(0, n, eager=True)})
    return (
        frame.group_by("x", maintain_order=True)
        .agg(pl.col("rank").min())
        .select("x", share=(n - pl.col("rank")) / n)
    )


# ---- dataset shape (notebook 01) --------------------------------------------------------
def _ccdf_trace(fig: go.Figure, counts: pl.Series, name: str) -> None:
    curve = ccdf(counts.filter(counts > 0))
    fig.add_trace(
        go.Scatter(
            x=curve["x"],
            y=curve["share"],
            mode="lines+markers",
            marker=dict(size=4),
            line=dict(shape="hv"),
            name=name,
            hovertemplate="%{y:.2%} of sessions have ≥ %{x:,} messages<extra>" + name + "</extra>",
        )
    )


def messages_per_session(stats: pl.DataFrame, title: str = "Messages per session") -> go.Figure:
    """The complementary CDF of messages per session on log-log axes, the largest session marked.

    A straight falling line is a heavy (power-law-like) tail; its last point is the
    largest session, 1 in n of them.
    """
    counts = stats["messages"]
    fig = go.Figure()
    _ccdf_trace(fig, counts, f"{counts.len():,} sessions")
    largest = int(counts.max() or 0)
    fig.add_annotation(  # on log axes, annotation coordinates are log10 of the value
        x=_log10(largest),
        y=_log10(1 / max(1, counts.len())),
        text=f"largest: {largest:,} messages",
        showarrow=True,
        ax=-70,
        ay=-30,
    )
    log_axis(fig, "x", "messages in the session (log scale)")
    log_axis(fig, "y", "share of sessions with at least x messages (log scale)", tickformat="~%")
    return _layout(fig, title, showlegend=False)


def _log10(value: float) -> float:
    return math.log10(value) if value > 0 else 0.0


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
        yaxis=dict(title="messages per day", tickformat=","),
        xaxis2=dict(domain=[0.72, 1], anchor="y2", title="hour of day (UTC)"),
        yaxis2=dict(anchor="x2", title="messages in that hour, all days", tickformat=","),
        legend=dict(orientation="h", y=-0.2),
    )
    return _layout(fig, title)


def window_durations(windows: pl.DataFrame, title: str = "5-hour windows: active minutes") -> go.Figure:
    """Histogram of how long each window was actually used (last activity - start)."""
    minutes = windows.select(
        ((pl.col("last_activity") - pl.col("start_time")).dt.total_seconds() / 60).alias("minutes")
    )["minutes"]
    fig = go.Figure(go.Histogram(x=minutes, xbins=dict(start=0, end=300, size=10), name="windows"))
    fig.update_xaxes(title="minutes from window start to last activity (10-minute bins)", range=[0, 300])
    fig.update_yaxes(title="windows", tickformat=",")
    return _layout(fig, title)


def job_mix(jobs: pl.DataFrame, title: str = "Jobs by type and status") -> go.Figure:
    """Grouped bars (one per status) of jobs per type on a log axis: rare statuses stay visible.

    Grouped, not stacked: stacked bars on a log axis misstate every segment but the first.
    """
    mix = jobs.group_by("type", "status").len().sort("type", "status")
    fig = go.Figure(
        [
            go.Bar(x=part["type"], y=part["len"], name=str(status), hovertemplate="%{x}: %{y:,} jobs")
            for (status,), part in mix.partition_by("status", as_dict=True, maintain_order=True).items()
        ]
    )
    fig.update_layout(barmode="group", legend_title_text="status")
    fig.update_xaxes(title="job type")
    log_axis(fig, "y", "jobs (log scale)")
    return _layout(fig, title)


def sample_vs_source(source: pl.DataFrame, sample: pl.DataFrame, title: str | None = None) -> go.Figure:
    """Complementary CDFs of messages per session: does the sample keep the heavy tail?"""
    fig = go.Figure()
    for name, stats in (("source", source), ("sample", sample)):
        _ccdf_trace(fig, stats["messages"], f"{name} ({stats.height:,} sessions)")
    log_axis(fig, "x", "messages in the session (log scale)")
    log_axis(fig, "y", "share of sessions with at least x messages (log scale)", tickformat="~%")
    return _layout(fig, title or "Sample against source: messages per session")


def load_times(
    reports: pl.DataFrame, title: str = "Load time per engine and table", engines: list[str] | None = None
) -> go.Figure:
    """Stacked bars (linear axis) of seconds per table from ``LoadReport.frame()`` rows.

    ``engines``: the engines asked for; any without a load row is named in the title
    (it was left out of the run), so every engine is in the figure or said to be missing.
    """
    fig = go.Figure(
        [
            go.Bar(x=part["engine"], y=part["seconds"], name=str(table), hovertemplate="%{x}: %{y:.3f} s")
            for (table,), part in reports.partition_by("table", as_dict=True, maintain_order=True).items()
        ]
        if not reports.is_empty()
        else []
    )
    if not reports.is_empty():
        totals = reports.group_by("engine", maintain_order=True).agg(pl.col("seconds").sum())
        for engine in totals.filter(pl.col("seconds") == 0)["engine"]:
            fig.add_annotation(x=engine, y=0, text="already held<br>this dataset", showarrow=False, yshift=20)
    missing = [e for e in engines or [] if reports.is_empty() or e not in set(reports["engine"])]
    if missing:
        title += f" ({', '.join(missing)}: not run, see the note at the top)"
    fig.update_layout(barmode="stack", legend_title_text="table")
    fig.update_xaxes(title="engine")
    fig.update_yaxes(title="seconds to load")
    return _layout(fig, title)


# ---- query lab (notebook 02): strategies, scaling, plans ------------------------------------
def strategy_figure(summary: pl.DataFrame, title: str = "Loading strategies: median wall time") -> go.Figure:
    """Median milliseconds per strategy and engine as dots side by side, with bootstrap intervals.

    ``summary`` is ``Results.summary()`` (columns engine, strategy, median_ms, median_lo,
    median_hi), its strategies named as the reader should see them
    (``strategies.labelled(summary)``); the y axis is logarithmic because N+1 and the rest
    differ by orders. Dots, not bars: on a log axis a bar's length starts at an arbitrary
    floor and says nothing.
    """
    fig = go.Figure()
    for (engine,), part in summary.partition_by("engine", as_dict=True, maintain_order=True).items():
        fig.add_trace(
            go.Scatter(
                x=part["strategy"],
                y=part["median_ms"],
                name=str(engine),
                mode="markers",
                marker=dict(size=11),
                offsetgroup=str(engine),
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=(part["median_hi"] - part["median_ms"]).to_list(),
                    arrayminus=(part["median_ms"] - part["median_lo"]).to_list(),
                ),
                hovertemplate="%{x}: %{y:.2f} ms<extra>" + str(engine) + "</extra>",
            )
        )
    fig.update_layout(scattermode="group", scattergap=0.4)
    log_ticks(fig.update_yaxes(title="median wall time (ms, log; whiskers: 95% CI)"), "y")
    fig.update_xaxes(title="strategy")
    return _layout(fig, title)


def scaling_figure(
    summary: pl.DataFrame,
    floors: pl.DataFrame,
    title: str = "Cost against sessions loaded",
    crossings: pl.DataFrame | None = None,
) -> go.Figure:
    """Median ms against sessions loaded, log-log, one panel per engine, one line per strategy.

    ``summary``: ``Results.summary()`` of a scaling run (engine, strategy, sessions,
    median_ms, statements). ``floors``: one row per engine with ``floor_ms``, the median
    latency of a trivial statement; dotted lines show statements × floor, the least
    each strategy's round trips can cost, so it shows where N+1 is bound by round trips.
    ``crossings`` (``strategies.crossings(summary)``): marked where two strategies swap.
    Strategies are shown as named in the frames: label them first (``strategies.labelled``
    on ``summary``, and on ``crossings``' faster_below and faster_above).
    """
    from plotly.subplots import make_subplots

    engines = summary["engine"].unique(maintain_order=True).to_list()
    fig = make_subplots(rows=1, cols=len(engines), subplot_titles=engines, shared_yaxes=True)
    floor = dict(zip(floors["engine"], floors["floor_ms"], strict=True))
    palette = pio.templates[TEMPLATE].layout.colorway or [
        "#636efa",
        "#ef553b",
        "#00cc96",
        "#ab63fa",
        "#ffa15a",
    ]
    strategies = summary["strategy"].unique(maintain_order=True).to_list()
    colors = {s: palette[i % len(palette)] for i, s in enumerate(strategies)}
    crossed = False  # one legend entry for the crossing marks, on the first panel that has some
    for col, engine in enumerate(engines, start=1):
        part = summary.filter(pl.col("engine") == engine)
        for strategy in strategies:
            line = part.filter(pl.col("strategy") == strategy).sort("sessions")
            if line.is_empty():
                continue
            first = col == 1
            fig.add_trace(
                go.Scatter(
                    x=line["sessions"],
                    y=line["median_ms"],
                    mode="lines+markers",
                    name=strategy,
                    legendgroup=strategy,
                    showlegend=first,
                    line=dict(color=colors[strategy]),
                ),
                row=1,
                col=col,
            )
            if engine in floor:
                fig.add_trace(
                    go.Scatter(
                        x=line["sessions"],
                        y=line["statements"] * floor[engine],
                        mode="lines",
                        name=f"{strategy}: statements × cost",
                        legendgroup=strategy,
                        showlegend=False,
                        line=dict(color=colors[strategy], dash="dot", width=1),
                        hovertemplate="statements × cost %{y:.3f} ms<extra>" + strategy + "</extra>",
                    ),
                    row=1,
                    col=col,
                )
        marks = None if crossings is None else crossings.filter(pl.col("engine") == engine)
        if marks is not None and not marks.is_empty():
            fig.add_trace(
                go.Scatter(
                    x=marks["sessions"],
                    y=marks["ms"],
                    mode="markers",
                    name="strategies cross",
                    legendgroup="crossings",
                    showlegend=not crossed,
                    marker=dict(symbol="x-thin", size=11, line=dict(width=2, color="#444")),
                    text=[
                        f"{a} faster below, {b} above"
                        for a, b in zip(marks["faster_below"], marks["faster_above"], strict=True)
                    ],
                    hovertemplate="%{text}: %{x:.0f} sessions, %{y:.2f} ms<extra></extra>",
                ),
                row=1,
                col=col,
            )
            crossed = True
    log_ticks(fig.update_xaxes(title="sessions loaded (log)"), "x")
    log_ticks(fig, "y")
    fig.update_yaxes(title="median ms (log); dotted: statements × cost of one", row=1, col=1)
    return _layout(fig, title).update_layout(height=420)


def plan_time_figure(
    plans: dict, title: str = "Where the time goes (exclusive ms per plan node)"
) -> go.Figure:
    """Horizontal bars of each node's exclusive time, one panel per plan (e.g. per engine).

    ``plans`` maps a label to a :class:`workbench.plans.Plan`; plans without actual times
    (SQLite) are left out. Bars are in plan order, top to bottom, labelled ``#node operator``.
    """
    from plotly.subplots import make_subplots

    timed = {k: p for k, p in plans.items() if p.total_ms is not None}
    if not timed:
        return _layout(go.Figure(), title + " (no plan with actual times)")
    fig = make_subplots(rows=1, cols=len(timed), subplot_titles=list(timed), horizontal_spacing=0.25)
    for col, plan in enumerate(timed.values(), start=1):
        frame = plan.frame().reverse()  # plotly draws the first category at the bottom
        labels = [
            f"#{n} {'·' * d}{op}{' ' + r if r else ''}"
            for n, d, op, r in zip(
                frame["node"], frame["depth"], frame["operator"], frame["relation"], strict=True
            )
        ]
        fig.add_trace(
            go.Bar(
                y=labels,
                x=frame["exclusive_ms"],
                orientation="h",
                showlegend=False,
                customdata=frame["exclusive_share"].fill_null(0),
                hovertemplate="%{y}: %{x:.3f} ms (%{customdata:.0%})<extra></extra>",
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(title="exclusive ms", row=1, col=col)
    height = max(380, 24 * max(len(p.nodes()) for p in timed.values()) + 120)
    return _layout(fig, title).update_layout(height=height)


# ---- query lab, part 2 (notebook 02): readable log axes, the JOIN's multiplication ---------
def log_ticks(fig: go.Figure, axis: str = "y") -> go.Figure:
    """Log scale on every ``axis`` ("x" or "y") of ``fig`` with ticks people read: labelled
    values chosen from the figure's own data (error bars included), powers of ten written
    out with thousands separators (0.1, 1, 10, 100, 1,000), and 1-2-5 steps where the data
    spans too few decades for powers of ten to give more than one or two labels.

    Each panel's axis gets its own ticks from its own traces (axes shared with ``matches``
    share theirs), and its range ends at the data, or at the next labelled value when that
    is near (within 2.5x): never a whole empty decade past the data.
    """
    pooled: dict[str, list[float]] = {}
    roots = {_axis_id(a): a.matches or _axis_id(a) for a in _axes(fig, axis)}
    for trace in fig.data:
        ref = getattr(trace, f"{axis}axis", None) or axis
        pooled.setdefault(roots.get(ref, ref), []).extend(_trace_values(trace, axis))
    for layout_axis in _axes(fig, axis):
        layout_axis.update(_log_options(pooled.get(roots[_axis_id(layout_axis)], [])))
    return fig


def _axes(fig: go.Figure, axis: str) -> list:
    return list(fig.select_xaxes() if axis == "x" else fig.select_yaxes())


def _axis_id(layout_axis: object) -> str:
    """``yaxis2`` -> ``y2``, the name traces use."""
    return layout_axis.plotly_name.replace("axis", "")  # type: ignore[attr-defined]


def _log_options(values: list[float]) -> dict:
    options: dict = dict(type="log")
    if not values:
        return options | dict(dtick=1, tickformat=",~g", minor=dict(ticks="inside", showgrid=False))
    lo, hi = min(values), max(values)
    ticks = readable_log_ticks(lo, hi)
    # The range ends at a label when one is near, so the lowest values sit above a number
    # (plotly's own padding can stop short of it); a far label would add an empty decade.
    first = ticks[0] if ticks[0] >= lo / 2.5 else lo
    last = ticks[-1] if ticks[-1] <= hi * 2.5 else hi
    pad = 0.03 * max(math.log10(last / first), 1)
    span = [math.log10(first) - (pad if first == lo else 0), math.log10(last) + (pad if last == hi else 0)]
    shown = [t for t in ticks if first <= t <= last]
    options.update(tickvals=shown, ticktext=[tick_text(t) for t in shown], range=span)
    # unlabelled minor ticks at 2..9 between powers of ten; none between 1-2-5 labels
    decades = len(shown) > 1 and shown[1] / shown[0] == 10
    options["minor"] = dict(ticks="inside", dtick="D1", showgrid=False) if decades else dict(ticks="")
    return options


def tick_text(value: float) -> str:
    """A tick label: thousands separators, no exponent, at most three significant digits.

    >>> [tick_text(v) for v in (0.05, 0.2, 1, 20, 1000, 100000)]
    ['0.05', '0.2', '1', '20', '1,000', '100,000']
    """
    return f"{value:,.0f}" if value >= 1 else f"{value:.3g}"


def readable_log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks for a log axis over [lo, hi]: powers of ten, or 1-2-5 steps when [lo, hi] spans
    less than about two decades, every digit when it spans less than a factor of five (so
    at least three ticks carry a label).

    >>> readable_log_ticks(1, 4.01)
    [1.0, 2.0, 3.0, 4.0, 5.0]
    >>> readable_log_ticks(30, 220)
    [20.0, 50.0, 100.0, 200.0, 500.0]
    >>> readable_log_ticks(0.02, 3000)
    [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]
    """

    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    span = math.log10(hi / lo)
    steps = (1,) if span > 2 else (1, 2, 5) if span >= 0.7 else tuple(range(1, 10))
    ticks = [float(f"{m * 10.0**e:.6g}") for e in range(first, last + 1) for m in steps]
    inside = [t for t in ticks if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]
    # one tick past each end the data does not sit on, so the axis's padding is labelled too
    below = [t for t in ticks if t < lo][-1:] if not inside or inside[0] > lo * (1 + 1e-9) else []
    above = [t for t in ticks if t > hi][:1] if not inside or inside[-1] < hi * (1 - 1e-9) else []
    return below + inside + above


def _trace_values(trace: object, axis: str) -> list[float]:
    """Every positive value a trace puts on ``axis`` (bars, lines, markers, error bars)."""
    values: list[float] = []
    data = getattr(trace, axis, None)
    if data is None or getattr(trace, "orientation", None) == ("h" if axis == "y" else "v"):
        return values
    try:
        numbers = [float(v) for v in data if v is not None]
    except (TypeError, ValueError):
        return values  # a categorical axis
    error = getattr(trace, f"error_{axis}", None)
    plus = list(error.array) if error is not None and error.array is not None else []
    minus = list(error.arrayminus) if error is not None and error.arrayminus is not None else plus
    for i, v in enumerate(numbers):
        values.append(v)
        if i < len(plus) and plus[i] is not None:
            values.append(v + float(plus[i]))
        if i < len(minus) and minus[i] is not None:
            values.append(v - float(minus[i]))
    return [v for v in values if v > 0 and v == v]


def multiplication_figure(
    mult: pl.DataFrame, worst: pl.DataFrame, title: str = "What the plan's JOIN ships as the page grows"
) -> go.Figure:
    """Rows (left) and MB (right) the JOIN ships against the real rows and bytes, log-log.

    ``mult`` is :func:`workbench.strategies.multiplication` (running totals in page
    order); ``worst`` its :func:`~workbench.strategies.worst_sessions`, marked where the
    page reaches them and named once, in the rows panel, as "#id (messages×windows)".
    """
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=["rows shipped", "MB shipped"])
    x = mult["sessions_loaded"]
    for col, (join, real, scale) in enumerate(
        (("cum_join_rows", "cum_real_rows", 1), ("cum_join_bytes", "cum_real_bytes", 1e6)), start=1
    ):
        for name, column, dash in (("JOIN (plan)", join, None), ("real (messages + windows)", real, "dot")):
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=mult[column] / scale,
                    mode="lines",
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                    line=dict(dash=dash, color="#ef553b" if dash is None else "#636efa"),
                ),
                row=1,
                col=col,
            )
        at = mult.join(worst.select("session_id"), on="session_id", how="semi").sort("sessions_loaded")
        names = [
            f"#{s} ({m:,}×{w})"
            for s, m, w in zip(at["session_id"], at["messages"], at["windows"], strict=True)
        ]
        fig.add_trace(
            go.Scatter(
                x=at["sessions_loaded"],
                y=at[join] / scale,
                mode="markers",
                name="worst sessions",
                legendgroup="worst",
                showlegend=col == 1,
                text=names,
                hovertemplate="session %{text}: reached after %{x:,} sessions<extra></extra>",
                marker=dict(color="#444", size=7),
            ),
            row=1,
            col=col,
        )
        if col == 1:
            both = pl.concat([mult[join], mult[real]])
            both = both.filter(both > 0)
            _name_points(fig, at["sessions_loaded"], at[join], names, float(both.min()), float(both.max()))
    log_ticks(fig.update_xaxes(title="sessions loaded, newest first (log)"), "x")
    log_ticks(fig, "y")
    fig.update_yaxes(title="rows (log)", row=1, col=1)
    fig.update_yaxes(title="MB of values (log)", row=1, col=2)
    return _layout(fig, title).update_layout(height=440)


def _name_points(
    fig: go.Figure, xs: pl.Series, ys: pl.Series, names: list[str], bottom: float, top: float
) -> None:
    """Name points on a rising log-log curve in a column at the panel's upper left (above
    the curve's start, which is empty), one line each, arrows to the points: neighbours on
    a log axis sit too close for labels beside them not to overlap."""
    order = sorted(range(len(names)), key=lambda i: -float(ys[i]))  # the highest point named first
    step = 0.065 * math.log10(top / bottom)  # a line of text in a panel about 300 px high
    for line, i in enumerate(order):
        fig.add_annotation(
            x=_log10(float(xs[i])),
            y=_log10(float(ys[i])),
            ax=0,
            ay=_log10(top) - step * line,
            axref="x",
            ayref="y",
            text=names[i],
            xanchor="left",
            showarrow=True,
            arrowcolor="#999",
            arrowwidth=1,
            font=dict(size=11),
            row=1,
            col=1,
        )


# ---- network distance: cost against round-trip time (notebook 02) -----------------------
def _log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks covering [lo, hi] (1, 2, 5, 10, 20, 50, 100, ... ms): readable on a log axis."""

    ticks = [
        m * 10.0**e
        for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
        for m in (1, 2, 5)
    ]
    return [t for t in ticks if lo / 2 <= t <= hi * 2]


def network_figure(
    summary: pl.DataFrame, title: str = "Cost against round-trip time: measured (points) and model (lines)"
) -> go.Figure:
    """Each strategy's wall time against the RTT the proxy adds, measured (median with its
    95% interval) beside the model ``statements × RTT + work`` (dashed), on a log y axis.

    ``summary`` is :meth:`workbench.strategies.network.NetworkSweep.summary`.
    """
    from plotly.colors import qualitative

    fig = go.Figure()
    # Most statements first (N+1 on top of the legend), as the lines stack up at high RTT.
    ordered = summary.sort("statements", "strategy", "rtt_ms", descending=[True, False, False])
    for i, ((name,), part) in enumerate(ordered.group_by("strategy", maintain_order=True)):
        color = qualitative.Plotly[i % len(qualitative.Plotly)]
        label = part["label"][0] if "label" in part.columns else name
        statements = part["statements"][0]
        fig.add_trace(
            go.Scatter(
                x=part["rtt_ms"],
                y=part["median_ms"],
                error_y=dict(
                    type="data",
                    array=(part["hi_ms"] - part["median_ms"]).to_list(),
                    arrayminus=(part["median_ms"] - part["lo_ms"]).to_list(),
                ),
                mode="markers",
                marker=dict(color=color, size=8),
                name=f"{label} ({statements} statement{'s' if statements != 1 else ''})",
                legendgroup=name,
                customdata=part.select("n", "added_rtt_ms").to_numpy(),
                hovertemplate="%{y:.1f} ms at %{x} ms RTT (%{customdata[1]:.2f} ms added, measured;"
                " n=%{customdata[0]})<extra></extra>",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=part["rtt_ms"],
                y=part["model_ms"],
                mode="lines",
                line=dict(color=color, dash="dash"),
                name=f"{label}: model",
                legendgroup=name,
                showlegend=False,
                hovertemplate="model: %{y:.1f} ms<extra></extra>",
            )
        )
    values = pl.concat([summary["lo_ms"], summary["hi_ms"], summary["model_ms"]]).drop_nulls()
    ticks = _log_ticks(float(values.min()), float(values.max()))
    fig.update_yaxes(
        type="log",
        title="wall time per load (ms, log)",
        tickvals=ticks,
        ticktext=[tick_text(t) for t in ticks],
    )
    rtts = summary["rtt_ms"].unique().sort().to_list()
    fig.update_xaxes(title="round trip added by the proxy (ms; 0 = loopback)", tickvals=rtts)
    return _layout(fig, title).update_layout(height=460)

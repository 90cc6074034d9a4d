"""Notebook 01's figure builders: honest axes, readable log ticks, tails visible."""

import polars as pl

from workbench import figures


def test_ccdf_keeps_every_value_and_the_largest():
    curve = figures.ccdf(pl.Series([1, 1, 2, 10]))
    assert curve.rows() == [(1, 1.0), (2, 0.5), (10, 0.25)]  # the largest: 1 of 4 sessions


def test_messages_per_session_is_a_log_log_ccdf_reaching_the_largest_session(tiny):
    stats = tiny.session_stats()
    fig = figures.messages_per_session(stats)
    (trace,) = fig.data
    assert max(trace.x) == stats["messages"].max()
    assert min(trace.y) == 1 / stats.height  # the tail is drawn to its last session
    for axis in (fig.layout.xaxis, fig.layout.yaxis):
        assert axis.type == "log" and axis.dtick == 1 and axis.exponentformat == "none"
    assert fig.layout.xaxis.tickformat == ","  # 1, 10, 100, 1,000: no 1e3, no 2k
    assert f"largest: {stats['messages'].max():,} messages" in fig.layout.annotations[0].text


def test_job_mix_groups_bars_on_its_log_axis(tiny):
    fig = figures.job_mix(tiny.read("jobs"))
    assert fig.layout.barmode == "group" and fig.layout.yaxis.type == "log"


def test_load_times_names_engines_left_out_and_reused_loads():
    loads = pl.DataFrame(
        {
            "engine": ["duckdb", "duckdb", "sqlite", "sqlite"],
            "table": ["jobs", "messages", "jobs", "messages"],
            "rows": [1, 2, 1, 2],
            "seconds": [0.1, 0.5, 0.0, 0.0],
        }
    )
    fig = figures.load_times(loads, engines=["duckdb", "sqlite", "postgres"])
    assert fig.layout.barmode == "stack" and fig.layout.yaxis.type != "log"
    assert "postgres: not run" in fig.layout.title.text
    assert [a.x for a in fig.layout.annotations] == ["sqlite"]  # reused, not zero-cost


def test_log_ticks_label_a_narrow_range_in_1_2_5_steps_from_the_data():
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Bar(x=["a", "b"], y=[30.0, 210.0], error_y=dict(array=[1.0, 10.0], arrayminus=[2.0, 5.0]))
    )
    figures.log_ticks(fig, "y")
    # 28-220 ms: powers of ten would label only "100"; 1-2-5 steps label five ticks, the tails inside
    assert list(fig.layout.yaxis.tickvals) == [20.0, 50.0, 100.0, 200.0, 500.0]
    assert list(fig.layout.yaxis.ticktext) == ["20", "50", "100", "200", "500"]
    wide = figures.log_ticks(go.Figure(go.Scatter(x=[1, 100_000], y=[1, 2])), "x")
    assert list(wide.layout.xaxis.ticktext) == ["1", "10", "100", "1,000", "10,000", "100,000"]


def test_strategy_figure_labels_more_than_one_tick():
    from workbench.measure import Results

    rows = [
        {
            "engine": "duckdb",
            "strategy": s,
            "sessions": 100,
            "run": r,
            "wall_ns": int(ms * 1e6),
            "statements": 1,
        }
        for s, ms in (("n_plus_one", 220.0), ("batch", 41.0))
        for r in range(3)
    ]
    fig = figures.strategy_figure(Results.from_runs(rows, {"engines": {}}).summary())
    labelled = [t for t in fig.layout.yaxis.tickvals if 41 <= t <= 220]
    assert len(labelled) >= 2 and fig.layout.yaxis.type == "log"


def test_pacing_figure_draws_one_adaptive_line_whatever_its_sleep():
    from workbench.processing import figures as pfig

    pace = pl.DataFrame(
        {
            "batch_size": [10, 10, 10, 100, 100, 100],
            "pacing": ["none", "fixed", "adaptive"] * 2,
            "sleep_ms": [0.0, 1.0, 4.9, 0.0, 1.0, 8.1],
            "kept": [1.0, 0.5, 0.98, 1.0, 0.6, 0.9],
        }
    )
    fig = pfig.pacing_figure(pace)
    assert [t.name for t in fig.data] == ["fixed 1 ms sleep", "adaptive pause"]
    assert list(fig.data[1].x) == [10, 100]
    assert list(fig.layout.xaxis.ticktext) == ["10", "20", "50", "100"]


def test_index_figures_read_their_log_ticks_and_name_the_scenarios():
    from workbench.indexes import figures as ifig

    per_query = pl.DataFrame(
        {"engine": ["sqlite"] * 2, "index": ["a", "b"], "query": ["q", "q"], "speedup": [0.5, 20.0]}
    ).with_columns(lo=pl.col("speedup") * 0.9, hi=pl.col("speedup") * 1.1)
    fig = ifig.speedups(per_query)
    assert fig.layout.xaxis.type == "log" and "1" in fig.layout.xaxis.ticktext
    assert all(t in ("0.2", "0.5", "1", "2", "5", "10", "20", "50") for t in fig.layout.xaxis.ticktext)
    pages = pl.DataFrame(
        {
            "engine": ["duckdb"] * 2,
            "pager": ["cursor"] * 2,
            "scenario": ["still table", "rows inserted between pages"],
        }
    ).with_columns(missed=pl.lit(3), repeated=pl.lit(1))
    bars = ifig.correctness(pages)
    assert [list(level) for level in bars.data[0].x] == [
        ["duckdb", "duckdb"],
        ["cursor, still", "cursor, inserts"],
    ]


def test_figures_import_no_lab():
    """Imports point down: the shared builders take labels as data, never from a lab."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(figures))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    labs = ("strategies", "indexes", "processing", "service", "report", "lab")
    assert not {m for m in imported if m and m.startswith(tuple(f"workbench.{x}" for x in labs))}


def test_reader_panels_keep_one_colour_per_variant_and_show_growth():
    from workbench.processing import figures as pfig

    scaling = pl.DataFrame(
        {
            "variant": ["whole/orjson", "stream/json", "polars"] * 2,
            "size_mb": [1.0] * 3 + [4.0] * 3,
            "peak_rss_mib": [60.0, 50.0, 80.0, 90.0, 50.5, 81.0],
            "rows_per_s": [1e5, 2e5, 3e5, 1e5, 2e5, 3e5],
        }
    )
    fig = pfig.scaling_figure(scaling, 500)
    colours = {}
    for trace in fig.data:
        colours.setdefault(trace.name, set()).add(trace.line.color)
    assert all(len(c) == 1 for c in colours.values())  # the legend's colour in every panel
    assert len({c.pop() for c in colours.values()}) == 3
    growth = {t.name: list(t.y) for t in fig.data if t.xaxis == "x2"}
    assert growth["whole/orjson"] == [1.0, 1.5] and growth["stream/json"] == [1.0, 1.01]
    assert [t.name for t in fig.data if t.showlegend] == ["whole/orjson", "stream/json", "polars"]


def test_log_ticks_end_near_the_data_and_follow_each_panel():
    import math

    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2)
    fig.add_trace(go.Scatter(x=[1, 1_002], y=[3, 1_200]), row=1, col=1)
    fig.add_trace(go.Scatter(x=[1, 1_002], y=[0.004, 2.5]), row=1, col=2)
    figures.log_ticks(figures.log_ticks(fig, "x"), "y")
    # data up to 1,002: the axis ends at 1,000's label, not a decade later at 10,000
    assert list(fig.layout.xaxis.ticktext)[-1] == "1,000" and fig.layout.xaxis.range[1] < math.log10(2_000)
    assert "10,000" not in fig.layout.yaxis.ticktext and 10 ** fig.layout.yaxis.range[1] < 2_000
    assert list(fig.layout.yaxis2.ticktext) == ["0.01", "0.1", "1"]  # its own panel's, 0.004-2.5
    shared = make_subplots(rows=1, cols=2, shared_yaxes=True)
    shared.add_trace(go.Scatter(x=[1, 2], y=[1, 10]), row=1, col=1)
    shared.add_trace(go.Scatter(x=[1, 2], y=[100, 1_000]), row=1, col=2)
    figures.log_ticks(shared, "y")
    assert shared.layout.yaxis.tickvals == shared.layout.yaxis2.tickvals  # shared axes share ticks


def test_the_joins_worst_sessions_are_named_once_on_separate_lines():
    n = 1_002
    mult = pl.DataFrame(
        {
            "session_id": range(n),
            "sessions_loaded": range(1, n + 1),
            "messages": [10] * n,
            "windows": [2] * n,
        }
    ).with_columns(
        cum_join_rows=pl.col("sessions_loaded") * 100,
        cum_real_rows=pl.col("sessions_loaded") * 20,
        cum_join_bytes=pl.col("sessions_loaded") * 10_000,
        cum_real_bytes=pl.col("sessions_loaded") * 2_000,
    )
    worst = mult.filter(pl.col("session_id").is_in([300, 310, 320, 330]))
    fig = figures.multiplication_figure(mult, worst)
    names = [a for a in fig.layout.annotations if a.text.startswith("#")]
    assert len(names) == 4 and {a.xref for a in names} == {"x"}  # in the rows panel only
    lines = sorted(a.ay for a in names)
    assert min(b - a for a, b in zip(lines, lines[1:], strict=False)) > 0.2  # no two on one line
    assert fig.layout.xaxis.range[1] < 3.3 and fig.layout.xaxis2.range[1] < 3.3  # no axis to 10,000

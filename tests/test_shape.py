"""Notebook 01's analysis: a dataset's manifest, session shape, a sample against its source."""

import polars as pl

from workbench import shape


def test_compare_and_conclusions(tiny, tmp_path):
    part = tiny.sample(tmp_path / "s", fraction=0.5, seed=1)
    table = shape.compare(tiny, part)
    row = dict(zip(table["metric"], table["ratio"], strict=True))
    assert row["sessions"] == 0.5
    assert table.filter(pl.col("metric") == "tokens/message mean")["source"].item() > 0
    text = shape.conclusions(tiny, tiny.session_stats(), table)
    assert f"{tiny.counts['sessions']} sessions" in text and "5-hour window" in text
    assert shape.describe(tiny).filter(pl.col("field") == "seed")["value"].item() == "7"
    described = shape.describe(tiny)
    assert not described["value"].str.contains(r"[{}\[\]]").any()  # no dict or list repr
    assert "source counts" not in described["field"].to_list()  # the rows per table say it
    quantiles = shape.quantiles(tiny.session_stats())
    assert (
        quantiles["measure"].to_list()[0] == "messages per session"
        and quantiles["max"][0] >= quantiles["p99"][0]
    )


def test_fit_report_round_trip_and_verdicts(tiny, tmp_path):
    from workbench.sources.fit import fit
    from workbench.sources.synthetic import generate_like

    real = shape.distributions(tiny)
    same = shape.fit_report(real, real)
    assert same["verdict"].to_list() == ["fits"] * same.height and same["KS"].max() == 0
    assert {"messages per session", "windows per session", "job run (seconds)"} <= set(same["distribution"])
    doubled = shape.fit_report(real, {k: 2 * v for k, v in real.items()})
    row = doubled.filter(pl.col("distribution") == "messages per session").row(0, named=True)
    assert row["p50 generated"] == 2 * row["p50 real"] and row["verdict"].startswith("off: p50 +100%")
    assert "0 of" in shape.fit_conclusion(
        doubled
    ) and "not: messages per session (p50 +100%" in shape.fit_conclusion(doubled)
    generated = generate_like(tmp_path / "g", fit(tiny), seed=1)
    report = shape.fit_report(real, shape.distributions(generated))
    assert report.height == same.height and report["n generated"].min() > 0
    fig = shape.fit_figure(
        real["messages per session"], shape.distributions(generated)["messages per session"], "m"
    )
    assert [t.name.split(" ")[0] for t in fig.data] == [
        "real",
        "generated",
    ] and fig.layout.xaxis.type == "log"

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

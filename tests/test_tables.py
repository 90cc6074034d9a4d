"""Tables for people: headers with units, numbers with separators, text never cut."""

import re

import polars as pl

from workbench import tables


def test_tables_for_people():

    frame = pl.DataFrame(
        {
            "engine": ["duckdb", "a very long engine name that must not be cut off at thirty chars"],
            "median_ms": [1234.5678, 0.012345],
            "rows": [1_234_567, None],
        }
    )
    page = tables.html_table(frame, decimals={"median_ms": 1})
    heads = re.findall(r"<th class='(\w+)' data-column='(\w+)'>([^<]*)</th>", page)
    assert heads == [
        ("text", "engine", "engine"),
        ("num", "median_ms", "median (ms)"),
        ("num", "rows", "rows"),
    ]
    assert "<td class='text'>a very long engine name that must not be cut off at thirty chars</td>" in page
    assert "<td class='num'>1,234.6</td>" in page and "<td class='num'>1,234,567</td>" in page
    assert "<td class='num'>–</td>" in page and "str" not in page and "&quot;" not in page
    assert tables.header("seconds", "s") == "seconds (s)" and tables.header("rows") == "rows"
    assert tables.format_value(0.012345) == "0.01235" and tables.format_value(True) == "yes"
    long = tables.html_table(pl.DataFrame({"n": range(100)}), max_rows=20)
    assert long.count("<tr>") == 1 + 20 and "… 80 more rows" in long
    assert "<caption>loads</caption>" in tables.table(frame, caption="loads")._repr_html_()
    assert tables.header("rows_per_s") == "rows/s" and tables.header("knee_rows_per_s") == "knee rows/s"


def test_counts_show_no_decimals_and_structs_no_python_repr():
    frame = pl.DataFrame(
        {"metric": ["sessions", "p50"], "sample": [150.0, 8.15], "s": [{"a": 1}, {"a": 2_000}]}
    )
    page = tables.html_table(frame, by_row=True)
    assert "<td class='num'>150</td>" in page and "<td class='num'>8.15</td>" in page
    assert "<td class='num'>150.0</td>" in tables.html_table(
        frame
    )  # a column of one measure keeps its digits
    assert "<td class='text'>a 2,000</td>" in page and "{" not in page


def test_a_page_is_checked_against_its_csvs(tmp_path):
    frame = pl.DataFrame(
        {
            "engine": [f"e{i}" for i in range(100)],
            "median_ms": [i * 1.2345 for i in range(100)],
            "rows": list(range(100)),
        }
    )
    page = tmp_path / "page.html"
    page.write_text(f"<html><body>{tables.html_table(frame, max_rows=20)}</body></html>")
    (tmp_path / "same").mkdir()
    frame.write_csv(tmp_path / "same" / "t.csv")
    assert tables.tables_against_csvs(page, tmp_path / "same") == []  # head and tail both match
    (tmp_path / "other").mkdir()
    frame.with_columns(pl.col("median_ms") + 1).write_csv(tmp_path / "other" / "t.csv")
    problems = tables.tables_against_csvs(page, tmp_path / "other")
    assert problems == [
        "t.csv: 20 of the 20 rows shown are not in the CSV (first: engine e0, median_ms 0, rows 0)"
    ]
    (tmp_path / "unshown").mkdir()
    frame.select("engine").write_csv(tmp_path / "unshown" / "u.csv")
    assert tables.tables_against_csvs(page, tmp_path / "unshown") == []  # not on the page: not checked
    sorted_view = tmp_path / "sorted.html"
    shown = frame.sort("rows", descending=True).head(5)
    sorted_view.write_text(f"<html><body>{tables.html_table(shown)}</body></html>")
    assert tables.tables_against_csvs(sorted_view, tmp_path / "same") == []  # a sorted, filtered view


def test_identifiers_may_wrap_and_still_match_their_csv(tmp_path):
    frame = pl.DataFrame(
        {"index": ["ix_sessions_project_id_created_at_desc", "session_windows"], "rows": [1, 2]}
    )
    page = tables.html_table(frame)
    assert (
        "<td class='text'>ix_<wbr>sessions_<wbr>project_<wbr>id_<wbr>created_<wbr>at_<wbr>desc</td>" in page
    )
    assert "<td class='text'>session_windows</td>" in page  # a short name stays whole
    (tmp_path / "page.html").write_text(f"<html><body>{page}</body></html>")
    frame.write_csv(tmp_path / "t.csv")
    assert tables.tables_against_csvs(tmp_path / "page.html", tmp_path) == []

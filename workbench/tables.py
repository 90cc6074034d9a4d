"""Tables for people: how notebooks and reports show a frame, and a check that a page's
tables hold what its CSVs hold.

Text left-aligned and never cut, numbers right-aligned with thousands separators and
sensible decimals, units in the headers, no dtype row. :func:`workbench.lab.setup` makes
every displayed DataFrame render with :func:`html_table`; :func:`table` adds units,
decimals and a caption where a frame needs them.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

#: Column-name suffixes that carry a unit: ``median_ms`` is shown as "median (ms)".
UNIT_SUFFIXES = {
    "_ms": "ms",
    "_us": "µs",
    "_s": "s",
    "_seconds": "s",
    "_bytes": "bytes",
    "_kb": "kB",
    "_mb": "MB",
    "_mib": "MiB",
    "_pct": "%",
}
MAX_ROWS = 60  # longer tables show their head and tail, and say how many rows the CSV holds


def header(column: str, unit: str | None = None) -> str:
    """A column's header for people: underscores as spaces, the unit in parentheses.

    >>> header("median_ms"), header("rows"), header("seconds", "s"), header("best_rows_per_s")
    ('median (ms)', 'rows', 'seconds (s)', 'best rows/s')
    >>> header("sleep_ms", "ms; adaptive: the longest")
    'sleep (ms; adaptive: the longest)'

    """
    name = column
    if unit is None and column.lower().endswith("_per_s") and len(column) > len("_per_s"):
        return column[: -len("_per_s")].replace("_", " ") + "/s"  # a rate, not a time in seconds
    for suffix, found in UNIT_SUFFIXES.items():
        if column.lower().endswith(suffix) and len(column) > len(suffix):
            name, unit = column[: -len(suffix)], unit or found  # a unit given explains the suffix's
            break
    name = name.replace("_", " ")
    return f"{name} ({unit})" if unit else name


def _decimals(value: float, significant: int = 4) -> int:
    """Decimals that show ``significant`` digits of ``value`` (between 0 and 6)."""
    import math

    if value == 0 or not math.isfinite(value):
        return 0
    return max(0, min(6, significant - 1 - math.floor(math.log10(abs(value)))))


def _column_decimals(values: pl.Series) -> int:
    """One number of decimals for a float column: three significant digits of its median size."""
    sizes = values.drop_nulls().drop_nans().abs()
    sizes = sizes.filter(sizes > 0)
    return _decimals(float(sizes.median()), 3) if sizes.len() else 0  # type: ignore[arg-type]


def format_value(value: Any, decimals: int | None = None) -> str:
    """One cell as text: thousands separators, about four significant digits, '–' for null,
    mappings and lists written out for people (never a Python repr).

    >>> format_value(1234567), format_value(0.012345), format_value(2.5, 2), format_value(None)
    ('1,234,567', '0.01235', '2.50', '–')
    >>> format_value({"jobs": 2500, "projects": 25}), format_value([1, 5, 22])
    ('jobs 2,500; projects 25', '1, 5, 22')
    """
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        return f"{value:,.{_decimals(value) if decimals is None else decimals}f}"
    if isinstance(value, Mapping):  # a struct cell: "jobs 2,500; messages 75,000", never a dict's repr
        return "; ".join(f"{k} {format_value(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(format_value(v) for v in value)
    return str(value)


def html_table(
    frame: pl.DataFrame,
    *,
    units: Mapping[str, str] | None = None,
    decimals: Mapping[str, int] | None = None,
    caption: str | None = None,
    max_rows: int = MAX_ROWS,
    by_row: bool = False,
) -> str:
    """``frame`` as an HTML table for people.

    Text left-aligned and never cut (it wraps at spaces, and long identifiers after ``_``
    and ``/``, so the table fits the page); numbers right-aligned with thousands separators, a
    float column with one number of decimals (three significant digits of its median;
    each cell keeps two to four significant digits; ``decimals`` fixes a column's); units in the headers
    (``units``, else read from suffixes such as ``_ms``); no dtype row, no shape line.
    ``by_row``: the rows are different measures (a count, a share, a mean), so each float
    cell gets its own digits and an integral one none.
    """
    units, decimals = units or {}, decimals or {}
    numeric = {c for c, t in frame.schema.items() if t.is_numeric()}
    column = {c: _column_decimals(frame[c]) for c, t in frame.schema.items() if t.is_float()}

    def cell(c: str, v: Any) -> str:
        if by_row and isinstance(v, float) and v == v and c not in decimals:
            # rows of different measures: a count stays a count (150), a ratio gets its digits
            return (
                format_value(int(v)) if v.is_integer() and abs(v) < 1e15 else format_value(v, _decimals(v, 3))
            )
        if c in decimals or c not in column or not isinstance(v, float) or v != v:
            return format_value(v, decimals.get(c))
        # the column's decimals, but at least two significant digits and at most four
        return format_value(v, min(max(column[c], _decimals(v, 2)), max(_decimals(v, 4), 0)))

    heads = "".join(
        f"<th class='{'num' if c in numeric else 'text'}' data-column='{html.escape(c)}'>"
        f"{html.escape(header(c, units.get(c)))}</th>"
        for c in frame.columns
    )
    shown = frame
    skipped = 0
    if frame.height > max_rows:
        head, tail = max_rows - 10, 10
        shown = pl.concat([frame.head(head), frame.tail(tail)])
        skipped = frame.height - head - tail
    body = []
    for i, row in enumerate(shown.iter_rows()):
        if skipped and i == max_rows - 10:
            body.append(
                f"<tr class='skipped'><td colspan='{frame.width}'>… {skipped:,} more rows "
                "(all in the notebook's CSV export)</td></tr>"
            )
        cells = "".join(
            f"<td class='num'>{html.escape(cell(c, v))}</td>"
            if c in numeric
            else f"<td class='text'>{_breakable(cell(c, v))}</td>"
            for c, v in zip(frame.columns, row, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (
        f"<table class='wb-table'>{cap}<thead><tr>{heads}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _breakable(text: str, longest: int = 30) -> str:
    """``text`` escaped, with a line-break opportunity after each ``_`` and ``/`` inside a
    word longer than ``longest`` characters, so a long identifier
    (``ix_session_windows_session_id_start_time``) wraps inside its cell instead of
    widening the table past the page, while short names (``session_windows``) stay whole.

    >>> _breakable("ix_session_windows_session_id_start_time <session_windows>")
    'ix_<wbr>session_<wbr>windows_<wbr>session_<wbr>id_<wbr>start_<wbr>time &lt;session_windows&gt;'
    """

    def breakable(word: re.Match[str]) -> str:
        return re.sub(r"([_/])(?=\w)", r"\1<wbr>", word.group(0))

    return re.sub(rf"[^\s&;]{{{longest + 1},}}", breakable, html.escape(text))


@dataclass
class Table:
    """A frame displayed as :func:`html_table` (HTML) and as Polars' text table (text)."""

    frame: pl.DataFrame
    units: Mapping[str, str] | None = None
    decimals: Mapping[str, int] | None = None
    caption: str | None = None
    by_row: bool = False

    def _repr_html_(self) -> str:
        return html_table(
            self.frame, units=self.units, decimals=self.decimals, caption=self.caption, by_row=self.by_row
        )

    def __repr__(self) -> str:
        return repr(self.frame)


def table(
    frame: pl.DataFrame,
    *,
    units: Mapping[str, str] | None = None,
    decimals: Mapping[str, int] | None = None,
    caption: str | None = None,
    by_row: bool = False,
) -> Table:
    """Display ``frame`` with units in its headers and fixed decimals where given.

    >>> tables.table(loads, units={"seconds": "s"}, decimals={"seconds": 2})  # doctest: +SKIP
    """
    return Table(frame, units, decimals, caption, by_row)


_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:")


def _cell_matches(text: str, value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return text == format_value(value)
    if isinstance(value, int | float):
        try:
            shown = float(text.replace(",", ""))
        except ValueError:
            return text == format_value(value)
        digits = len(text.split(".")[1]) if "." in text else 0
        return abs(shown - value) <= 0.5 * 10**-digits * (1 + 1e-9)
    if _ISO_TIME.match(str(value)):  # the CSV's ISO form against the table's display form
        return text.replace(" ", "T")[:19] == str(value).replace(" ", "T")[:19]
    return text == str(value)


def tables_against_csvs(page: str | os.PathLike[str], folder: str | os.PathLike[str]) -> list[str]:
    """Check that every table ``page`` shows from a CSV in ``folder`` holds the CSV's values.

    A table is matched to a CSV by its columns (``html_table`` records each column's
    name); each row it shows must be a row of the CSV, to the digits shown (so a sorted,
    filtered or elided view passes; numbers from another run do not). Returns one line
    per disagreeing table (empty when the page and its CSVs come from the same run); CSVs
    the page does not show are not checked.
    """
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(Path(page).read_text(encoding="utf-8"), "html.parser")
    shown = []
    for t in soup.select("table.wb-table"):
        columns = [th.get("data-column") for th in t.select("thead th")]
        rows = [
            [td.get_text() for td in tr.select("td")]
            for tr in t.select("tbody tr")
            if "skipped" not in (tr.get("class") or [])
        ]
        shown.append((columns, rows))
    problems = []
    for csv in sorted(Path(folder).glob("*.csv")):
        frame = pl.read_csv(csv, infer_schema_length=None)
        expected = list(frame.iter_rows())
        for columns, rows in shown:
            if columns != frame.columns:
                continue
            unmatched = [
                row for row in rows if not any(all(map(_cell_matches, row, values)) for values in expected)
            ]
            if unmatched:
                example = ", ".join(f"{c} {t}" for c, t in zip(columns, unmatched[0], strict=True))
                problems.append(
                    f"{csv.name}: {len(unmatched)} of the {len(rows)} rows shown are not in the CSV "
                    f"(first: {example})"
                )
    return problems

"""The report pipeline end to end: execute a notebook, export HTML, draw it in Chromium."""

import json
import os
import re

import pytest

from workbench import report, tables, verdicts
from workbench.errors import WorkbenchError


def tree_state(folder):
    """Every file under ``folder``: relative path -> (size, mtime)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def at(page, cls):
    """Where the first element of class ``cls`` starts (nbconvert rewrites quotes to double)."""
    found = re.search(rf"class=[\"']{cls}[\"']", page)
    assert found, f"no element of class {cls!r}"
    return found.start()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Notebook 01 at the tiny scale, as on a machine without PostgreSQL's binaries.

    ``auto`` resolves to DuckDB and SQLite with a note; PostgreSQL is also asked for
    explicitly, so the kernel's attempt to start it fails and the notebook leaves it out.
    """
    out = tmp_path_factory.mktemp("reports")
    saved = {k: os.environ.get(k) for k in ("WORKBENCH_PG_BINDIR", "WORKBENCH_POSTGRES_URL")}
    os.environ["WORKBENCH_PG_BINDIR"] = str(tmp_path_factory.mktemp("no-postgres"))
    os.environ.pop("WORKBENCH_POSTGRES_URL", None)
    guarded = {name: tree_state(report.ROOT / name) for name in ("reports", "data")}
    try:
        auto = report.resolve_engines("auto")
        index = report.build_report(
            out,
            {"scale": "tiny", "seed": 7, "engines": ["duckdb", "postgres"]},
            only=["01_data"],
            notes=auto[1],
            progress=False,
        )
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return out, index, auto, guarded


def test_index_links_the_notebook_with_run_metadata(built):
    out, index, _, _ = built
    page = index.read_text()
    assert "href='01_data.html'" in page and ">ok<" in page
    for fact in ("git commit", "duckdb", "cpu", "tiny:", "python"):
        assert fact in page
    assert (out / "01_data.html").stat().st_size > 1_000_000  # plotly.js is inlined, no CDN
    html = (out / "01_data.html").read_text()
    assert not re.search(r"<script[^>]*src=[\"']https?:", html), "the report loads a script from the network"
    assert (out / "01_data" / "sample_comparison.csv").exists()


def test_without_postgres_binaries_every_page_says_so_at_the_top(built):
    out, index, (engines, notes), _ = built
    assert engines == ["duckdb", "sqlite"]
    assert len(notes) == 1 and "make system-deps" in notes[0] and "not found" in notes[0]
    for page in (index.read_text(), (out / "01_data.html").read_text()):
        banner = at(page, "wb-banner")
        assert banner < page.index("<h1") or banner < page.index("01 · The data under test")
        assert "<code>make system-deps</code>" in page[banner : banner + 2000]
    # PostgreSQL was asked for, could not start, and the notebook left it out: said too.
    assert "postgres was left out of 01_data" in (out / "01_data.html").read_text()


def test_index_lists_the_engines_each_notebook_ran_on(built):
    out, index, _, _ = built
    assert json.loads((out / "01_data" / "engines.json").read_text())["ran"] == ["duckdb"]
    notebooks = index.read_text().split("<h2>Notebooks</h2>")[1]
    row = re.search(r"<tr><td><a href='01_data.html'>.*?</tr>", notebooks).group(0)
    assert "<td class='engines'>duckdb</td>" in row


def test_verdicts_open_the_page_and_the_index(built):
    out, index, _, _ = built
    found = verdicts.load(out, "01_data")
    assert {v.topic for v in found} >= {"heavy tail of session sizes", "same rows in every engine"}
    page = (out / "01_data.html").read_text()
    top = at(page, "verdicts")
    assert page.index("01 · The data under test") < top < page.index('id="Data"')
    assert len(re.findall("class=[\"']verdicts", page)) == 1  # moved, not copied
    assert "same rows in every engine" in page[top : top + 5000]
    assert re.search(r"href=[\"']01_data/shape.csv[\"']", page[:top])  # the CSVs, linked above
    index_page = index.read_text()
    assert at(index_page, "verdicts") < index_page.index("<h2>Notebooks</h2>")
    # the decision comes first, then each notebook's own verdicts
    assert index_page.index("<h2>The decision, for profile default</h2>") < at(index_page, "verdicts")
    for v in found:
        assert v.verdict.replace("'", "&#x27;") in index_page


def test_every_page_states_the_profile_it_ran_under(built):
    out, index, _, _ = built
    page = (out / "01_data.html").read_text()
    conditions = at(page, "conditions")
    assert conditions < at(page, "verdicts")
    assert "Measured under the production profile. Profile default (profiles/default.toml): postgres" in page
    assert "Profile default (profiles/default.toml)" in index.read_text().split("<h2>")[1]


def test_code_is_hidden_in_the_page(built):
    out, _, _, _ = built
    page = (out / "01_data.html").read_text()
    for code in ("lab.open_engines(", "lab.setup()", "from workbench import", 'class="highlight'):
        assert code not in page
    assert "The data under test" in page  # markdown stays


def test_report_numbers_match_its_csvs(built, tmp_path):
    """Every table the page shows from an exported frame holds the CSV's numbers."""
    import polars as pl

    out, index, _, _ = built
    page = out / "01_data.html"
    assert tables.tables_against_csvs(page, out / "01_data") == []
    assert ">ok<" in index.read_text()
    # The check does compare: a CSV from another run (one changed number) is caught.
    for name in ("shape", "sample_comparison", "loads"):
        csv = pl.read_csv(out / "01_data" / f"{name}.csv")
        number = next(c for c, t in csv.schema.items() if t.is_numeric())
        stale = csv.with_columns(pl.col(number) * 2 + 1)
        (tmp_path / name).mkdir()
        stale.write_csv(tmp_path / name / f"{name}.csv")
        assert tables.tables_against_csvs(page, tmp_path / name), f"{name} is not shown on the page"


def test_the_report_tests_leave_reports_and_data_untouched(built, scratch_dirs):
    _, _, _, before = built
    for name, state in before.items():
        assert tree_state(report.ROOT / name) == state, f"{name}/ changed"


def test_notebooks_with_default_parameters_write_to_the_session_scratch(tmp_path, scratch_dirs):
    """What nbval runs: no data_dir or out_dir, so $WORKBENCH_DATA_DIR/$WORKBENCH_OUT_DIR apply."""
    data, out = scratch_dirs
    before = {name: tree_state(report.ROOT / name) for name in ("reports", "data")}
    report.execute(
        report.NOTEBOOKS / "01_data.ipynb",
        tmp_path / "01.ipynb",
        {"scale": "tiny", "engines": ["duckdb"]},
        renderer="plotly_mimetype",
    )
    assert (out / "01_data" / "verdicts.json").exists() and (data / "tiny" / "manifest.json").exists()
    assert {name: tree_state(report.ROOT / name) for name in before} == before


def test_exported_plot_is_drawn_by_headless_chromium(built, chromium_dom):
    out, *_ = built
    dom = chromium_dom(out / "01_data.html")
    # plotly draws each chart as SVG with class main-svg once plotly.js has run, offline.
    assert dom.count('class="main-svg"') >= 5, dom[:500]


def test_unknown_notebook_is_named():
    with pytest.raises(WorkbenchError, match="Unknown notebook '99_nope': expected one of 01_data"):
        report.notebooks(only=["99_nope"])


def test_a_failing_notebook_is_reported_after_the_index(tmp_path):
    with pytest.raises(WorkbenchError, match="Notebook 01_data failed"):
        report.build_report(
            tmp_path,
            {"scale": "tiny", "engines": ["nosuch"]},
            only=["01_data"],
            data_dir=tmp_path / "data",
            progress=False,
        )
    assert "class='fail'" in (tmp_path / "index.html").read_text()
    assert (tmp_path / "01_data.html").exists()


def test_dataset_notebook_runs_on_real_transcripts(tmp_path):
    import nbformat

    fixtures = report.ROOT / "tests" / "fixtures" / "claude-code"
    out = tmp_path / "01.ipynb"
    report.execute(
        report.NOTEBOOKS / "01_data.ipynb",
        out,
        {
            "source": f"claude-code:{fixtures}",
            "scale": "tiny",
            "engines": ["duckdb"],
            "data_dir": str(tmp_path / "data"),
            "out_dir": str(tmp_path / "out"),
        },
        renderer="plotly_mimetype",
    )
    text = "\n".join(
        str(
            o.get("text") or o.get("data", {}).get("text/markdown") or o.get("data", {}).get("text/plain", "")
        )
        for c in nbformat.read(out, as_version=4).cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    assert "streamed duplicates" in text and "collapsed" in text  # what the ingest did
    assert "synthetic" in text and "claude-code-claude-code" in text  # real against generator
    assert "4 sessions in 3 projects hold 185 messages" in text


def test_verdicts_round_trip_and_render(tmp_path):
    found = [
        verdicts.Verdict("the plan's JOIN", "3.1x slower than N+1 (today)", "rows <shipped> 2x", "sqlite"),
        verdicts.Verdict("index on jobs", "tie", ""),
    ]
    path = verdicts.save("02_n_plus_one", found, tmp_path)
    assert path == tmp_path / "02_n_plus_one" / "verdicts.json"
    assert verdicts.load(tmp_path, "02_n_plus_one") == found
    assert verdicts.load(tmp_path, "03_missing") == []
    page = verdicts.to_html(found)
    assert "&lt;shipped&gt;" in page and page.count("<tr>") == 3


def test_auto_engines_follow_what_is_installed(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_POSTGRES_URL", "postgresql://u@127.0.0.1:1/x")
    assert report.resolve_engines("auto") == (["duckdb", "sqlite", "postgres"], [])
    monkeypatch.delenv("WORKBENCH_POSTGRES_URL")
    monkeypatch.setenv("WORKBENCH_PG_BINDIR", str(tmp_path))
    names, notes = report.resolve_engines("auto")
    assert names == ["duckdb", "sqlite"] and "make system-deps" in notes[0]
    assert report.resolve_engines("duckdb, postgres") == (["duckdb", "postgres"], [])


def test_index_without_verdicts_says_so(tmp_path):
    run = report.NotebookRun("03_x", "03 · X", 1.0, "Boom: x", [], {"postgres": "no binaries"})
    page = report.write_index(tmp_path, [run], {"date": "today"}).read_text()
    assert "failed before its verdicts" in page and "postgres was left out of 03_x: no binaries" in page


def test_open_engines_records_what_ran_for_the_report(tiny, tmp_path, monkeypatch):
    from workbench import lab

    monkeypatch.setenv("WORKBENCH_ENGINES_FILE", str(tmp_path / "01_x" / "engines.json"))
    monkeypatch.setenv("WORKBENCH_PG_BINDIR", str(tmp_path))  # no server binaries here
    monkeypatch.delenv("WORKBENCH_POSTGRES_URL", raising=False)
    monkeypatch.setattr(lab, "_engines", {})
    monkeypatch.setattr(lab, "_servers", [])
    opened, _ = lab.open_engines(tiny, ["duckdb", "postgres"], tmp_path)
    for engine in opened.values():
        engine.close()
    ran, left_out = report.load_engines(tmp_path, "01_x")
    assert ran == ["duckdb"] and list(left_out) == ["postgres"] and "not found" in left_out["postgres"]


def test_index_flags_a_page_whose_tables_disagree_with_its_csvs(tmp_path):
    differ = ["t.csv: 1 of the 3 rows shown are not in the CSV"]
    run = report.NotebookRun("01_x", "01 · X", 1.0, mismatches=differ)
    page = report.write_index(tmp_path, [run], {}).read_text()
    assert "<td class='fail'>tables disagree with the CSVs (1 tables)</td>" in page


def test_exported_files_are_relative_links_and_sentences_paragraphs(tmp_path):
    out = tmp_path / "reports"
    paths = [out / "02_n_plus_one" / "summary.csv", out / "02_n_plus_one" / "network.csv"]
    page = report.files_html(out, paths, "The CSV files:")
    assert "<a href='02_n_plus_one/summary.csv'>02_n_plus_one/summary.csv</a>" in page
    assert (
        str(tmp_path) not in page
        and "PosixPath" not in page
        and page.startswith("<div class='wb-files'><p>The")
    )
    text = report.paragraphs("duckdb: a < b.\nsqlite: c.").data
    assert text == "<p>duckdb: a &lt; b.</p><p>sqlite: c.</p>"


def test_verdicts_grouped_per_question_with_every_engine_reachable():
    found = [
        verdicts.Verdict(
            "the plan's three-table JOIN", "helps: 3.3x faster than today's N+1", "d1", "duckdb"
        ),
        verdicts.Verdict(
            "the plan's three-table JOIN", "not a good fix: 3.3x slower than today's N+1", "d2", "sqlite"
        ),
        verdicts.Verdict(
            "the plan's three-table JOIN", "not a good fix: 3.3x slower than today's N+1", "d3", "postgres"
        ),
        verdicts.Verdict("heavy tail of session sizes", "top 1% hold 11%", "same"),
    ]
    page = verdicts.to_html(found)
    assert page.count("<tr>") == 3  # the header and one row per question
    assert (
        "<span class='on'>sqlite, postgres:</span> <b>not a good fix: 3.3x slower than today&#x27;s N+1</b>"
        in page
    )
    assert "<details><summary>why, per engine (3)</summary>" in page
    for detail in ("d1", "d2", "d3", "same"):
        assert detail in page

"""The report pipeline end to end: execute a notebook, export HTML, draw it in Chromium."""

import os
import re
import shutil
import subprocess

import pytest

from workbench import report
from workbench.errors import WorkbenchError


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    index = report.build_report(
        out,
        {"scale": "tiny", "seed": 7, "engines": ["duckdb"]},
        only=["01_data"],
        data_dir=out / "data",
        progress=False,
    )
    return out, index


def test_index_links_the_notebook_with_run_metadata(built):
    out, index = built
    page = index.read_text()
    assert "href='01_data.html'" in page and ">ok<" in page
    for fact in ("git commit", "duckdb", "cpu", "tiny:", "python"):
        assert fact in page
    assert (out / "01_data.html").stat().st_size > 1_000_000  # plotly.js is inlined, no CDN
    html = (out / "01_data.html").read_text()
    assert not re.search(r"<script[^>]*src=[\"']https?:", html), "the report loads a script from the network"
    assert (out / "01_data" / "sample_comparison.csv").exists()


def test_exported_plot_is_drawn_by_headless_chromium(built, tmp_path, in_ci):
    out, _ = built
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        if in_ci:
            pytest.fail("chromium is required in CI (make system-deps installs it)")
        pytest.skip("chromium not installed: apt-get install chromium (make system-deps)")
    dom = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            (out / "01_data.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "HOME": str(tmp_path),
            "XDG_CONFIG_HOME": str(tmp_path),
            "XDG_CACHE_HOME": str(tmp_path),
        },
    ).stdout
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
        str(o.get("text") or o.get("data", {}).get("text/plain", ""))
        for c in nbformat.read(out, as_version=4).cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    assert "streamed duplicates" in text and "collapsed" in text  # what the ingest did
    assert "synthetic" in text and "claude-code-claude-code" in text  # real against generator
    assert "4 sessions in 3 projects hold 185 messages" in text


def test_verdicts_round_trip_and_render(tmp_path):
    verdicts = [
        report.Verdict("the plan's JOIN", "3.1x slower than N+1 (today)", "rows <shipped> 2x", "sqlite"),
        report.Verdict("index on jobs", "tie", ""),
    ]
    path = report.save_verdicts("02_n_plus_one", verdicts, tmp_path)
    assert path == tmp_path / "02_n_plus_one" / "verdicts.json"
    assert report.load_verdicts(tmp_path, "02_n_plus_one") == verdicts
    assert report.load_verdicts(tmp_path, "03_missing") == []
    page = report.verdicts_html(verdicts)
    assert "&lt;shipped&gt;" in page and page.count("<tr>") == 3

"""Execute the notebooks with parameters and export them as offline HTML reports.

``build_report`` runs every ``notebooks/NN_*.ipynb`` through papermill (into a temporary
folder), exports each to ``reports/NN_*.html``, and writes ``reports/index.html`` linking
them with the run's metadata: versions, CPU, dataset manifest, date and git commit. Every
page's charts are drawn by one ``reports/plotly.min.js``, copied from the installed plotly
package and loaded by a relative path, so the pages render with no network and each
weighs what its own figures weigh.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl

from workbench.engines.postgres import mask_url
from workbench.errors import WorkbenchError
from workbench.figures import RENDERER_ENV
from workbench.profile import PROFILE_ENV, Profile
from workbench.profile import load as load_profile
from workbench.tables import format_value, tables_against_csvs
from workbench.verdicts import VERDICTS_FILE
from workbench.verdicts import load as load_verdicts
from workbench.verdicts import to_html as verdicts_html

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
_EXTERNAL_SCRIPT = re.compile(r"<script[^>]*\ssrc=[\"']https?://[^>]*>\s*</script>", re.I)
PACKAGES = ("duckdb", "polars", "sqlalchemy", "psycopg", "pyarrow", "plotly", "sqlglot", "papermill", "nbval")


def notebooks(
    folder: Path = NOTEBOOKS, only: Sequence[str] | None = None, suffix: str = ".ipynb"
) -> list[Path]:
    """The numbered notebooks in ``folder``, in order; ``only`` filters by stem."""
    found = sorted(folder.glob(f"[0-9][0-9]_*{suffix}"))
    if only:
        unknown = sorted(set(only) - {p.stem for p in found})
        if unknown:
            raise WorkbenchError(
                f"Unknown notebook {unknown[0]!r}: expected one of {', '.join(p.stem for p in found)}"
            )
        found = [p for p in found if p.stem in only]
    return found


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    """Set environment variables for kernels started inside the block, restored after."""
    previous = {k: os.environ.get(k) for k in values}
    os.environ.update(values)  # kernels inherit them
    try:
        yield
    finally:
        for k, v in previous.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _renderer(name: str) -> contextlib.AbstractContextManager[None]:
    """Set ``$WORKBENCH_PLOTLY_RENDERER`` (read by figures.use_renderer) for kernels started inside."""
    return _environ(**{RENDERER_ENV: name})


def known_parameters(notebook: Path, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The report's ``parameters`` that ``notebook``'s parameters cell defines: the report
    passes the same set to every notebook (05 has no ``engines``, say), while a notebook run
    by hand with a parameter it does not know fails (:func:`workbench.lab.check_parameters`)."""
    import papermill

    known = papermill.inspect_notebook(str(notebook))
    return {k: v for k, v in parameters.items() if k in known}


def execute(
    notebook: Path, output: Path, parameters: Mapping[str, Any], renderer: str = "plotly_mimetype"
) -> None:
    """Run ``notebook`` with ``parameters`` into ``output`` (cwd = the notebook's folder).

    Figures are kept as plotly's JSON (``plotly_mimetype``: JupyterLab draws them, and
    :func:`export_html` turns them into divs drawn by the shared ``plotly.min.js``).
    """
    import papermill

    with _renderer(renderer):
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=dict(parameters),
            cwd=str(notebook.parent),
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
        )


PAGE_CSS = """
<style>
/* workbench report: read top-down by someone who will not run the code */
.wb-banner { background: #fff4e5; border: 2px solid #d97706; border-radius: 6px; padding: .6rem 1rem;
  margin: .5rem 0 1rem; font: 15px/1.5 system-ui, sans-serif; color: #5c3a00; }
.wb-banner code { background: #fde7c7; padding: 0 .25rem; }
.wb-summary h2 { margin-top: .2rem; }
.wb-summary .engines { color: #555; margin: .3rem 0 .8rem; }
table.verdicts, table.wb-table { border-collapse: collapse; margin: .4rem 0 1rem; font-size: 14px; }
.jp-RenderedHTMLCommon table.verdicts, .jp-RenderedHTMLCommon table.wb-table { table-layout: auto; }
table.verdicts th, table.verdicts td, table.wb-table th, table.wb-table td,
.jp-RenderedHTMLCommon table.verdicts td, .jp-RenderedHTMLCommon table.wb-table td {
  border-bottom: 1px solid #ddd; padding: .3rem .6rem; vertical-align: top; white-space: normal; }
table.verdicts th, table.wb-table th { border-bottom: 2px solid #999; font-weight: 600; }
table.verdicts td, table.verdicts th, table.wb-table .text,
.jp-RenderedHTMLCommon table.verdicts td, .jp-RenderedHTMLCommon table.verdicts th,
.jp-RenderedHTMLCommon table.wb-table .text { text-align: left; }
table.wb-table .num, .jp-RenderedHTMLCommon table.wb-table .num {
  text-align: right; font-variant-numeric: tabular-nums; }
/* a number never wraps; its header does, so many numeric columns still fit the page */
table.wb-table td.num, .jp-RenderedHTMLCommon table.wb-table td.num { white-space: nowrap; }
table.wb-table th, .jp-RenderedHTMLCommon table.wb-table th { white-space: normal; vertical-align: bottom; }
table.verdicts td:nth-child(1) { min-width: 12rem; } table.verdicts td:nth-child(2) { min-width: 15rem; }
table.verdicts .on { color: #555; }
table.verdicts details summary { cursor: pointer; color: #0550ae; }
table.verdicts details ul { margin: .3rem 0 0; padding-left: 1.1rem; }
table.wb-table caption { caption-side: top; text-align: left; font-weight: 600; padding: .2rem 0; }
table.wb-table tr.skipped td { text-align: center; color: #666; font-style: italic; }
/* printed text wraps at words (JupyterLab breaks it anywhere: "con tention") */
.jp-OutputArea-output pre { word-break: normal; overflow-wrap: break-word; }
/* Polars' own HTML (frames displayed without lab.setup): left-align text, no dtype row */
.dataframe td, .dataframe th { text-align: left; white-space: pre-wrap; }
</style>
"""
SYSTEM_DEPS = "make system-deps"


def _tagged(cell: Any, tag: str) -> bool:
    return tag in cell.get("metadata", {}).get("tags", [])


def _html_cell(markup: str) -> Any:
    """A code cell whose only output is ``markup`` (its input is hidden in the export)."""
    import nbformat

    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": markup, "text/plain": ""})]
    return cell


def banner_html(notes: Sequence[str]) -> str:
    """The warning shown at the top of each page and the index (e.g. PostgreSQL left out)."""
    items = "".join(f"<p>{html.escape(n)}</p>" for n in notes)
    items = re.sub(r"`([^`]+)`", r"<code>\1</code>", items)
    return f"<div class='wb-banner'><strong>Note:</strong> {items}</div>" if notes else ""


def _summary_first(
    nb: Any, engines: Sequence[str], notes: Sequence[str], files: Sequence[str] = (), conditions: str = ""
) -> None:
    """Move the output of the cell tagged ``verdicts`` under the title; put ``notes`` above it.

    ``files`` (paths relative to the page, e.g. the notebook's CSVs) are linked under the
    verdicts; ``conditions`` (the profile the run measured under) heads the summary.
    """
    verdict_outputs: list[Any] = []
    for cell in nb.cells:
        if cell.cell_type == "code" and _tagged(cell, "verdicts"):
            verdict_outputs += [
                o for o in cell.outputs if "verdicts" in str(o.get("data", {}).get("text/html", ""))
            ]
            cell.outputs = [o for o in cell.outputs if o not in verdict_outputs]
    ran = f"<p class='conditions'>{html.escape(conditions)}</p>" if conditions else ""
    ran += f"<p class='engines'>Engines: {html.escape(', '.join(engines))}</p>" if engines else ""
    ran += "<p class='engines'><a href='index.html'>Every notebook's verdicts (index)</a></p>"
    if files:
        links = ", ".join(f"<a href='{html.escape(f)}'>{html.escape(Path(f).name)}</a>" for f in files)
        ran += f"<p class='engines'>The numbers behind the tables and charts: {links}</p>"
    summary = _html_cell(f"<div class='wb-summary'><h2>Verdicts</h2>{ran}</div>")
    if verdict_outputs:
        summary.outputs += verdict_outputs
    else:
        summary.outputs[0].data["text/html"] = (
            f"<div class='wb-summary'><h2>Verdicts</h2>{ran}<p>This notebook recorded no verdicts "
            "(no cell tagged <code>verdicts</code> ran).</p></div>"
        )
    title = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"), -1)
    nb.cells.insert(title + 1, summary)
    if notes:
        nb.cells.insert(0, _html_cell(banner_html(notes)))


def export_html(
    notebook: Path,
    output: Path,
    *,
    engines: Sequence[str] = (),
    notes: Sequence[str] = (),
    files: Sequence[str] = (),
    conditions: str = "",
    show_code: bool = False,
) -> Path:
    """Export an executed notebook to an HTML page for a reviewer that opens offline.

    The verdicts (the output of the cell tagged ``verdicts``) come first, under the
    title, with the ``engines`` it ran on and links to ``files`` (its CSVs, relative to
    the page); ``notes`` (e.g. PostgreSQL left out) are a banner above the title; code is
    hidden unless ``show_code``; tables and charts keep their outputs. Charts are drawn by
    ``plotly.min.js`` beside the page (written there once, from the installed plotly).
    """
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook, as_version=4)
    _summary_first(nb, engines, notes, files, conditions)
    charts = _plotly_divs(nb)
    exporter = HTMLExporter(
        template_name="lab",
        exclude_input=not show_code,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    body, _ = exporter.from_notebook_node(nb)
    # The template references require.js and MathJax on a CDN; the pages use neither, and
    # offline those tags only stall the page.
    head = PAGE_CSS
    if charts:
        head += f'<script src="{PLOTLY_JS}" charset="utf-8"></script>\n'
        write_plotly_js(output.parent)
    body = _EXTERNAL_SCRIPT.sub("", body).replace("</head>", head + "</head>", 1)
    _write_atomic(output, body)
    return output


PLOTLY_JS = "plotly.min.js"
PLOTLY_MIME = "application/vnd.plotly.v1+json"


def _plotly_divs(nb: Any) -> int:
    """Turn each figure kept as plotly's JSON into a div that the page's shared plotly.js
    draws (as plotly's own notebook renderer does, without the 4.8 MB bundle); return how
    many there were."""
    import nbformat
    import plotly.io as pio

    charts = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            figure = output.get("data", {}).get(PLOTLY_MIME)
            if figure is None:
                continue
            div = pio.to_html(
                dict(figure),
                config=figure.get("config"),
                include_plotlyjs=False,
                full_html=False,
                default_width="100%",
                default_height=525,
                validate=False,
            )
            output["data"] = nbformat.NotebookNode({"text/html": div})
            charts += 1
    return charts


def write_plotly_js(folder: Path) -> Path:
    """``folder/plotly.min.js`` from the installed plotly package, written once per report
    folder (again only when another plotly version wrote it): the pages load it by a
    relative path, so they render offline."""
    from plotly.offline import get_plotlyjs

    path = folder / PLOTLY_JS
    bundle = get_plotlyjs()
    if not path.exists() or path.stat().st_size != len(bundle.encode()) or path.read_text() != bundle:
        _write_atomic(path, bundle)
    return path


def refresh(folder: Path = NOTEBOOKS, only: Sequence[str] | None = None, progress: bool = True) -> list[Path]:
    """Sync each ``.ipynb`` from its jupytext ``.py`` and re-execute it in place.

    This produces the committed outputs nbval compares against: default parameters,
    compact figures (``plotly_mimetype``), no timing metadata. The notebooks' exports
    (``out_dir``) go to a temporary folder, never into ``reports/``.
    """
    import jupytext
    import nbformat
    from nbclient import NotebookClient
    from tqdm.auto import tqdm

    from workbench.lab import OUT_DIR_ENV

    sources = notebooks(folder, only, suffix=".py")  # a new notebook may have no .ipynb yet
    done = []
    with (
        tempfile.TemporaryDirectory(prefix="workbench-refresh-") as scratch,
        _environ(**{RENDERER_ENV: "plotly_mimetype", OUT_DIR_ENV: scratch}),
    ):
        for source in tqdm(sources, desc="refresh", unit="nb", disable=not progress):
            nb = jupytext.read(source)
            NotebookClient(
                nb,
                timeout=900,
                kernel_name="python3",
                record_timing=False,
                resources={"metadata": {"path": str(folder)}},
            ).execute()
            target = source.with_suffix(".ipynb")
            _write_atomic(target, nbformat.writes(nb) + "\n")
            done.append(target)
    return done


@dataclass
class NotebookRun:
    name: str
    title: str
    seconds: float
    error: str | None = None
    engines: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)

    def left_out_notes(self) -> list[str]:
        return [
            f"{engine} was left out of {self.name}: {why} "
            f"(`{SYSTEM_DEPS}` installs the PostgreSQL server binaries)."
            for engine, why in self.left_out.items()
        ]


ENGINES_FILE = "engines.json"


def resolve_engines(spec: str | Sequence[str]) -> tuple[list[str], list[str]]:
    """The engines a report runs on, and notes for the reader about any left out.

    ``"auto"`` is DuckDB and SQLite, plus PostgreSQL when ``$WORKBENCH_POSTGRES_URL`` is
    set or the server binaries are found (the notebooks then start a throwaway server);
    without them the note says so and names the command that installs them.
    """
    if isinstance(spec, str) and spec != "auto":
        spec = [e.strip() for e in spec.split(",") if e.strip()]
    if spec != "auto":
        return list(spec), []
    if os.environ.get("WORKBENCH_POSTGRES_URL"):
        return ["duckdb", "sqlite", "postgres"], []
    from workbench.engines.server import INSTALL_HINT, find_bindir
    from workbench.errors import EngineError

    try:
        find_bindir()
    except EngineError as e:
        where = str(e).removesuffix(f": {INSTALL_HINT}")
        return ["duckdb", "sqlite"], [
            f"PostgreSQL is not in this report: {where}. Install them with `{SYSTEM_DEPS}` "
            "(apt-get install postgresql postgresql-15-hypopg), then run `make report` again."
        ]
    return ["duckdb", "sqlite", "postgres"], []


def load_engines(out_dir: str | os.PathLike[str], notebook: str) -> tuple[list[str], dict[str, str]]:
    """The engines a notebook ran on and those it left out (with why).

    :func:`workbench.lab.open_engines` writes them to ``$WORKBENCH_ENGINES_FILE``, which
    :func:`build_report` points at ``out_dir/<notebook>/engines.json``. A notebook that
    opened no engines through it wrote none: its verdicts' engines stand in.
    """
    path = Path(out_dir) / notebook / ENGINES_FILE
    if path.exists():
        data = json.loads(path.read_bytes())
        return list(data["ran"]), dict(data["left_out"])
    said = [v.engine or v.conditions.get("engine") for v in load_verdicts(out_dir, notebook)]
    named = [e.strip() for engines in said if engines for e in engines.split(",")]
    return list(dict.fromkeys(named)), {}


def build_report(
    out_dir: str | os.PathLike[str],
    parameters: Mapping[str, Any],
    *,
    only: Sequence[str] | None = None,
    folder: Path = NOTEBOOKS,
    data_dir: str | os.PathLike[str] | None = None,
    notes: Sequence[str] = (),
    progress: bool = True,
    profile: str | os.PathLike[str] | None = None,
) -> Path:
    """Execute the notebooks, export HTML, write ``index.html``; return its path.

    ``profile`` (a TOML path or a name in ``profiles/``; default ``profiles/default.toml``)
    is checked before anything runs, and every notebook measures under it: its kernel
    gets ``$WORKBENCH_PROFILE``, and every page states it.

    ``data_dir`` defaults to ``$WORKBENCH_DATA_DIR``, else the repository's ``data/``.
    ``notes`` are shown at the top of every page (e.g. an engine the run could not use),
    as is any engine a notebook had to leave out. A failing notebook is still exported
    (with its traceback) and listed as failed; the error is raised after the index is written.
    """
    from tqdm.auto import tqdm

    from workbench.lab import DATA_DIR_ENV, ENGINES_FILE_ENV

    prof = load_profile(profile)  # a bad profile stops here, before any notebook runs
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = Path(data_dir or os.environ.get(DATA_DIR_ENV) or ROOT / "data").resolve()
    params = {"data_dir": str(data), "out_dir": str(out), **parameters}
    runs: list[NotebookRun] = []
    scratch = Path(tempfile.mkdtemp(prefix="workbench-report-"))  # executed notebooks: not for reviewers
    bar = tqdm(notebooks(folder, only), desc="notebooks", unit="nb", disable=not progress)
    for nb in bar:
        bar.set_postfix_str(nb.stem)
        started = time.perf_counter()
        executed = scratch / f"{nb.stem}.ipynb"
        for stale in (VERDICTS_FILE, ENGINES_FILE):  # a failed run must not show the last run's
            (out / nb.stem / stale).unlink(missing_ok=True)
        error = None
        try:
            env = {ENGINES_FILE_ENV: str(out / nb.stem / ENGINES_FILE), PROFILE_ENV: _profile_path(prof)}
            with _environ(**env):
                execute(nb, executed, known_parameters(nb, params))
        except Exception as e:  # papermill's errors carry the cell's traceback
            error = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
        ran, left_out = load_engines(out, nb.stem)
        run = NotebookRun(nb.stem, _title(nb), 0.0, error, ran, left_out)
        page_notes = [*notes, *run.left_out_notes()]
        if error:
            page_notes.insert(0, f"This notebook failed ({error}); its traceback is in the page below.")
        csvs = [f"{nb.stem}/{p.name}" for p in sorted((out / nb.stem).glob("*.csv"))]
        if executed.exists():
            conditions = f"Measured under the production profile. {prof.describe()}"
            page = export_html(
                executed,
                out / f"{nb.stem}.html",
                engines=ran,
                notes=page_notes,
                files=csvs,
                conditions=conditions,
            )
            if differ := tables_against_csvs(page, out / nb.stem):
                run.mismatches = differ
                page_notes.append(
                    f"This page's tables disagree with its CSVs in {nb.stem}/ "
                    f"({len(differ)} tables): {'; '.join(differ)}."
                )
                export_html(executed, page, engines=ran, notes=page_notes, files=csvs, conditions=conditions)
        run.seconds = time.perf_counter() - started
        runs.append(run)
    shutil.rmtree(scratch, ignore_errors=True)
    meta = run_metadata({"scale": prof.data.scale, "seed": prof.data.seed, **params})
    index = write_index(out, runs, {"profile": prof.describe(), **meta}, notes, prof)
    failed = [r for r in runs if r.error]
    if failed:
        raise WorkbenchError(
            f"Notebook {failed[0].name} failed ({failed[0].error}); see {out / (failed[0].name + '.html')}"
        )
    return index


def _profile_path(prof: Profile) -> str:
    """The profile's file as an absolute path, for kernels whose working folder is notebooks/."""
    path = Path(prof.file)
    return str(path if path.is_absolute() else ROOT / path)


def _title(notebook: Path) -> str:
    import nbformat

    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return notebook.stem


def run_metadata(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Where and how this run happened: :func:`workbench.measure.context` (commit, CPU,
    Python, platform, load), the package versions, the dataset and the parameters."""
    from workbench.measure import context

    ctx = context()
    meta: dict[str, Any] = {
        "date": ctx["started_at"],
        "git commit": ctx["git_commit"] or "unknown",
        "workbench": ctx["workbench_version"],
        "python": ctx["python"],
        "platform": ctx["platform"],
        "cpu": ctx["cpu"],
        "load average (1 min)": ctx["load_average"],
        "parameters": format_value(
            {k: mask_url(v) if isinstance(v, str) and "://" in v else v for k, v in parameters.items()}
        ),
    }
    for package in PACKAGES:
        try:
            meta[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            meta[package] = "not installed"
    data_dir, scale = parameters.get("data_dir"), parameters.get("scale")
    manifest = Path(str(data_dir)) / str(scale) / "manifest.json"
    if data_dir and scale and manifest.exists():
        m = json.loads(manifest.read_bytes())
        meta["dataset"] = (
            f"{scale}: {format_value(m['counts'])}; seed {m['seed']}; hash {m['content_hash'][:16]}"
        )
    return meta


def _status(run: NotebookRun) -> str:
    if run.error:
        return run.error
    if run.mismatches:
        return f"tables disagree with the CSVs ({len(run.mismatches)} tables)"
    return "ok"


def write_index(
    out: Path,
    runs: Sequence[NotebookRun],
    meta: Mapping[str, Any],
    notes: Sequence[str] = (),
    profile: Profile | None = None,
) -> Path:
    """``index.html``: the decision first (the plan's success criteria and one row per plan
    item, computed by :mod:`workbench.decision` from the notebooks' verdicts under
    ``profile``), then every notebook's own verdicts, the notebooks (link, engines, time,
    status) and the run metadata; ``notes`` in a banner at the top."""
    from workbench import decision

    prof = profile or load_profile()
    saved = decision.gather(out, [r.name for r in runs])
    rows = decision.decide(saved, prof.name, prof.engine)
    judged = decision.to_html(
        rows, prof.describe(), prof.network.source, decision.stale(saved, prof.name), prof.name
    )
    sections = []
    for r in runs:
        link = f"<a href='{html.escape(r.name)}.html'>{html.escape(r.title)}</a>"
        verdicts = saved[r.name]
        if verdicts:
            body = verdicts_html(verdicts)
        else:
            body = (
                f"<p class='none'>{'failed before its verdicts' if r.error else 'no verdicts recorded'}</p>"
            )
        sections.append(f"<h3>{link}</h3>\n{body}")
    rows = "\n".join(
        f"<tr><td><a href='{html.escape(r.name)}.html'>{html.escape(r.name)}</a></td>"
        f"<td>{html.escape(r.title)}</td><td class='engines'>{html.escape(', '.join(r.engines) or '–')}</td>"
        f"<td>{r.seconds:.1f} s</td>"
        f"<td class='{'fail' if r.error or r.mismatches else 'ok'}'>{html.escape(_status(r))}</td></tr>"
        for r in runs
    )
    facts = "\n".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in meta.items()
    )
    left_out = [n for r in runs for n in r.left_out_notes()]
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Workbench report</title>
{PAGE_CSS}
{decision.DECISION_CSS}
<style>
body {{ font: 15px/1.5 system-ui, sans-serif; max-width: 84rem; margin: 2rem auto; padding: 0 1rem; }}
table {{ border-collapse: collapse; width: 100%; margin-bottom: 2rem; }}
td, th {{ border-bottom: 1px solid #ddd; padding: .35rem .6rem; text-align: left; vertical-align: top; }}
h3 {{ margin: 1.4rem 0 .2rem; font-size: 17px; }}
table.verdicts {{ table-layout: fixed; }}
table.verdicts th:nth-child(1) {{ width: 24%; }} table.verdicts th:nth-child(2) {{ width: 34%; }}
.ok {{ color: #1a7f37; }} .fail {{ color: #cf222e; font-weight: 600; }} .none {{ color: #666; }}
</style></head><body>
{banner_html([*notes, *left_out])}
<h1>Workbench report: the performance plan, judged</h1>
{judged}
<h2>Each notebook's verdicts</h2>
<p>What each notebook concluded, computed from its measurements, on every engine it ran
(engines that agree share a line; "why, per engine" opens each engine's numbers). The
decision above takes the rows measured under the profile on its engine; follow a link for
the evidence (charts, tables, plans). Code is hidden in the pages; it is in
<code>notebooks/</code>.</p>
{chr(10).join(sections)}
<h2>Notebooks</h2>
<table><tr><th>notebook</th><th>title</th><th>engines it ran on</th><th>time</th><th>status</th></tr>
{rows}
</table>
<h2>Run</h2>
<table>
{facts}
</table>
</body></html>
"""
    index = out / "index.html"
    _write_atomic(index, page)
    return index


def export_frames(out_dir: str | os.PathLike[str], prefix: str, **frames: pl.DataFrame) -> list[Path]:
    """Write each frame as ``out_dir/<prefix>/<name>.csv`` (for reviewers and spreadsheets); a
    list column (CSV has no nesting) becomes its items joined by ``; ``."""
    folder = Path(out_dir) / prefix
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in frames.items():
        path = folder / f"{name}.csv"
        lists = [c for c, t in frame.schema.items() if isinstance(t, pl.List)]
        frame.with_columns(pl.col(c).cast(pl.List(pl.String)).list.join("; ") for c in lists).write_csv(path)
        paths.append(path)
    return paths


def files_html(
    out_dir: str | os.PathLike[str], paths: Sequence[str | os.PathLike[str]], intro: str = ""
) -> str:
    """``paths`` as links relative to the report pages in ``out_dir`` (they open offline
    from ``reports/``), one per line, never as a Python list of absolute paths."""
    base = Path(out_dir).resolve()
    items = []
    for p in paths:
        path = Path(p).resolve()
        rel = path.relative_to(base).as_posix() if path.is_relative_to(base) else path.as_posix()
        items.append(f"<li><a href='{html.escape(rel)}'>{html.escape(rel)}</a></li>")
    head = f"<p>{html.escape(intro)}</p>" if intro else ""
    return f"<div class='wb-files'>{head}<ul>{''.join(items)}</ul></div>"


def paragraphs(text: str) -> Any:
    """Computed sentences (one per line) displayed as paragraphs that wrap, not as printed
    text cut at the page's edge."""
    from IPython.display import HTML

    return HTML("".join(f"<p>{html.escape(line)}</p>" for line in text.splitlines() if line.strip()))


def show_files(
    out_dir: str | os.PathLike[str], paths: Sequence[str | os.PathLike[str]], intro: str = ""
) -> Any:
    """Display :func:`files_html` in a notebook (the Export cell's output)."""
    from IPython.display import HTML

    return HTML(files_html(out_dir, paths, intro))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)

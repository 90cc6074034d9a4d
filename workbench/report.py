"""Execute the notebooks with parameters and export them as offline HTML reports.

``build_report`` runs every ``notebooks/NN_*.ipynb`` through papermill into
``reports/``, exports each to HTML with plotly.js inlined (so charts render with no
network), and writes ``reports/index.html`` linking them with the run's metadata:
versions, CPU, dataset manifest, date and git commit.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import platform
import re
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl

from workbench import __version__
from workbench.engines.postgres import mask_url
from workbench.errors import WorkbenchError
from workbench.figures import RENDERER_ENV

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
def _renderer(name: str) -> Iterator[None]:
    """Set ``$WORKBENCH_PLOTLY_RENDERER`` for kernels started inside the block."""
    previous = os.environ.get(RENDERER_ENV)
    os.environ[RENDERER_ENV] = name  # kernels inherit it; figures.use_renderer reads it
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(RENDERER_ENV, None)
        else:
            os.environ[RENDERER_ENV] = previous


def execute(notebook: Path, output: Path, parameters: Mapping[str, Any], renderer: str = "notebook") -> None:
    """Run ``notebook`` with ``parameters`` into ``output`` (cwd = the notebook's folder)."""
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


def export_html(notebook: Path, output: Path) -> Path:
    """Export an executed notebook to a self-contained HTML file."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    # The template and plotly reference require.js and MathJax on a CDN; the reports use
    # neither (plotly.js is inlined), and offline those tags only stall the page.
    _write_atomic(output, _EXTERNAL_SCRIPT.sub("", body))
    return output


def refresh(folder: Path = NOTEBOOKS, only: Sequence[str] | None = None, progress: bool = True) -> list[Path]:
    """Sync each ``.ipynb`` from its jupytext ``.py`` and re-execute it in place.

    This produces the committed outputs nbval compares against: default parameters,
    compact figures (``plotly_mimetype``), no timing metadata.
    """
    import jupytext
    import nbformat
    from nbclient import NotebookClient
    from tqdm.auto import tqdm

    sources = notebooks(folder, only, suffix=".py")  # a new notebook may have no .ipynb yet
    done = []
    with _renderer("plotly_mimetype"):
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


def build_report(
    out_dir: str | os.PathLike[str],
    parameters: Mapping[str, Any],
    *,
    only: Sequence[str] | None = None,
    folder: Path = NOTEBOOKS,
    data_dir: str | os.PathLike[str] = ROOT / "data",
    progress: bool = True,
) -> Path:
    """Execute the notebooks, export HTML, write ``index.html``; return its path.

    A failing notebook is still exported (with its traceback) and listed as failed;
    the error is raised after the index is written.
    """
    from tqdm.auto import tqdm

    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    params = {"data_dir": str(Path(data_dir).resolve()), "out_dir": str(out), **parameters}
    runs: list[NotebookRun] = []
    bar = tqdm(notebooks(folder, only), desc="notebooks", unit="nb", disable=not progress)
    for nb in bar:
        bar.set_postfix_str(nb.stem)
        started = time.perf_counter()
        executed = out / f"{nb.stem}.ipynb"
        error = None
        try:
            execute(nb, executed, params)
        except Exception as e:  # papermill's errors carry the cell's traceback
            error = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
        if executed.exists():
            export_html(executed, out / f"{nb.stem}.html")
        runs.append(NotebookRun(nb.stem, _title(nb), time.perf_counter() - started, error))
    index = write_index(out, runs, run_metadata(params))
    failed = [r for r in runs if r.error]
    if failed:
        raise WorkbenchError(
            f"Notebook {failed[0].name} failed ({failed[0].error}); see {out / (failed[0].name + '.html')}"
        )
    return index


def _title(notebook: Path) -> str:
    import nbformat

    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return notebook.stem


def run_metadata(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Where and how this run happened: versions, machine, dataset, date, commit."""
    meta: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git commit": _git("rev-parse", "--short", "HEAD")
        + (" (dirty)" if _git("status", "--porcelain") else ""),
        "workbench": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "parameters": json.dumps(
            {k: mask_url(v) if isinstance(v, str) and "://" in v else v for k, v in parameters.items()},
            default=str,
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
            f"{scale}: {json.dumps(m['counts'])}, seed {m['seed']}, hash {m['content_hash'][:16]}"
        )
    return meta


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_index(out: Path, runs: Sequence[NotebookRun], meta: Mapping[str, Any]) -> Path:
    """``index.html``: one row per notebook (link, time, status) and the run metadata."""
    rows = "\n".join(
        f"<tr><td><a href='{html.escape(r.name)}.html'>{html.escape(r.name)}</a></td>"
        f"<td>{html.escape(r.title)}</td><td>{r.seconds:.1f} s</td>"
        f"<td class='{'fail' if r.error else 'ok'}'>{html.escape(r.error or 'ok')}</td></tr>"
        for r in runs
    )
    facts = "\n".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in meta.items()
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Workbench report</title>
<style>
body {{ font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }}
table {{ border-collapse: collapse; width: 100%; margin-bottom: 2rem; }}
td, th {{ border-bottom: 1px solid #ddd; padding: .35rem .6rem; text-align: left; vertical-align: top; }}
.ok {{ color: #1a7f37; }} .fail {{ color: #cf222e; font-weight: 600; }}
</style></head><body>
<h1>Workbench report</h1>
<p>Each notebook was executed with the parameters below; charts render offline.</p>
<table><tr><th>notebook</th><th>question</th><th>time</th><th>status</th></tr>
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
    """Write each frame as ``out_dir/<prefix>/<name>.csv`` (for reviewers and spreadsheets)."""
    folder = Path(out_dir) / prefix
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in frames.items():
        path = folder / f"{name}.csv"
        frame.write_csv(path)
        paths.append(path)
    return paths


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# ---- verdicts -------------------------------------------------------------------------------
VERDICTS_FILE = "verdicts.json"


@dataclass(frozen=True)
class Verdict:
    """One computed answer to one of the plan's questions.

    ``topic`` is the question in the plan's words ("the plan's three-table JOIN"),
    ``verdict`` the short answer ("3.1x slower than N+1 (today)", "tie", "met"),
    ``detail`` the sentence with the numbers behind it, ``engine`` where it was measured.
    """

    topic: str
    verdict: str
    detail: str = ""
    engine: str | None = None


def verdicts_frame(verdicts: Sequence[Verdict]) -> pl.DataFrame:
    schema = {"topic": pl.String, "engine": pl.String, "verdict": pl.String, "detail": pl.String}
    rows = [{k: getattr(v, k) for k in schema} for v in verdicts]
    return pl.DataFrame(rows, schema=schema)


def save_verdicts(notebook: str, verdicts: Sequence[Verdict], out_dir: str | os.PathLike[str]) -> Path:
    """Write ``out_dir/<notebook>/verdicts.json`` (the index page gathers these)."""
    folder = Path(out_dir) / notebook
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / VERDICTS_FILE
    _write_atomic(path, json.dumps([asdict(v) for v in verdicts], indent=2, ensure_ascii=False) + "\n")
    return path


def load_verdicts(out_dir: str | os.PathLike[str], notebook: str) -> list[Verdict]:
    """The verdicts a notebook saved, or [] when it saved none."""
    path = Path(out_dir) / notebook / VERDICTS_FILE
    if not path.exists():
        return []
    return [Verdict(**v) for v in json.loads(path.read_bytes())]


def show_verdicts(notebook: str, verdicts: Sequence[Verdict], out_dir: str | os.PathLike[str]) -> Any:
    """Save the verdicts and return them as an HTML table for the notebook to display.

    Call it last in the Conclude cell tagged ``verdicts``: the HTML export shows that
    cell's output at the top of the page.
    """
    from IPython.display import HTML

    save_verdicts(notebook, verdicts, out_dir)
    return HTML(verdicts_html(verdicts))


def verdicts_html(verdicts: Sequence[Verdict]) -> str:
    rows = "\n".join(
        f"<tr><td>{html.escape(v.topic)}</td><td>{html.escape(v.engine or '')}</td>"
        f"<td><b>{html.escape(v.verdict)}</b></td><td>{html.escape(v.detail)}</td></tr>"
        for v in verdicts
    )
    return (
        "<table class='verdicts'><thead><tr><th style='text-align:left'>question</th>"
        "<th style='text-align:left'>engine</th><th style='text-align:left'>verdict</th>"
        f"<th style='text-align:left'>why</th></tr></thead><tbody>\n{rows}\n</tbody></table>"
    )

"""What every notebook does first: open the dataset its parameters name, open engines.

Kept here, tested, so notebooks stay a parameters cell, calls and conclusions: a
notebook calls ``setup()``, ``prof = profile(profile)``, ``ds = dataset(prof, data_dir, ...)``
and ``open_engines(ds, engines, data_dir)``.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from workbench.dataset import Dataset
from workbench.engines import ENGINES, Engine, LoadReport, open_engine
from workbench.errors import EngineError, WorkbenchError

if TYPE_CHECKING:
    from workbench.profile import Profile

_servers: list = []
#: The engines this kernel's notebook opened: name -> None when it ran, else why it was left out.
_engines: dict[str, str | None] = {}


def setup() -> None:
    """Check the notebook's parameters, then set display: the figure renderer, tables for people.

    A parameter papermill passed that the notebook's parameters cell does not define is an
    error naming the nearest known one (papermill itself only warns, and the notebook
    would quietly run on its defaults). Every DataFrame a cell displays renders as
    :func:`workbench.tables.html_table` (text left-aligned and never cut, numbers
    right-aligned with separators, units in headers, no dtype row).
    """
    from workbench.figures import use_renderer
    from workbench.tables import html_table

    use_renderer()
    pl.Config.set_tbl_rows(30)
    pl.Config.set_tbl_cols(12)
    pl.Config.set_fmt_str_lengths(100)
    pl.Config.set_tbl_hide_dataframe_shape(True)
    pl.Config.set_tbl_hide_column_data_types(True)
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with the notebook stack
        return
    if (shell := get_ipython()) is not None:
        check_parameters(shell.user_ns.get("In", []))
        shell.display_formatter.formatters["text/html"].for_type(pl.DataFrame, html_table)


INJECTED = "# Parameters\n"  # how papermill's injected-parameters cell begins


def _assigned(source: str) -> list[str]:
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [
        t.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    ]


def check_parameters(history: Sequence[str]) -> None:
    """Raise when papermill injected a parameter the parameters cell does not define.

    ``history`` is IPython's ``In``: the parameters cell runs first, papermill's injected
    cell (beginning ``# Parameters``) right after it.

    >>> check_parameters(["", "limit = 100", "# Parameters\\nlimit = 20\\n"])
    >>> check_parameters(["", "limit = 100", "# Parameters\\nlimt = 20\\n"])  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    workbench.errors.WorkbenchError: Unknown notebook parameter 'limt': did you mean 'limit'?
    The parameters are limit.
    """
    import difflib

    cells = [c for c in history if c.strip()]
    injected = [i for i, c in enumerate(cells) if c.startswith(INJECTED)]
    if not injected or injected[0] == 0:
        return
    known = _assigned(cells[injected[0] - 1])
    for name in _assigned(cells[injected[0]]):
        if name not in known:
            near = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise WorkbenchError(
                f"Unknown notebook parameter {name!r}: {hint}The parameters are {', '.join(known)}."
            )


def profile(value: str | os.PathLike[str] | None = None) -> Profile:
    """The production profile a notebook runs under: its ``profile`` parameter (a TOML path or a
    name in ``profiles/``), else ``$WORKBENCH_PROFILE`` (``workbench report --profile`` sets
    it), else ``profiles/default.toml``. Notebook parameters still override its values."""
    from workbench.profile import load

    return load(value)


def dataset(
    prof: Profile,
    data_dir: str | os.PathLike[str],
    *,
    source: str | None = None,
    scale: str | None = None,
    seed: int | None = None,
) -> Dataset:
    """The Dataset a notebook runs on: its ``source``/``scale``/``seed`` parameters where set,
    else the profile's data (a synthetic scale, a Dataset path, or a database URL sampled
    read-only). See :func:`open_dataset` for the forms ``source`` takes."""
    return open_dataset(
        source or prof.data.source(),
        data_dir,
        scale=scale or prof.data.scale,
        seed=prof.data.seed if seed is None else seed,
    )


def engines_run() -> dict[str, str | None]:
    """The engines :func:`open_engines` opened in this process: name -> None, or why it was left out."""
    return dict(_engines)


ENGINES_FILE_ENV = "WORKBENCH_ENGINES_FILE"


def _record_engines() -> None:
    """Write what :func:`engines_run` says to ``$WORKBENCH_ENGINES_FILE`` (set by the report for
    each notebook it runs, so its index lists the engines every notebook really ran on)."""
    if not (path := os.environ.get(ENGINES_FILE_ENV)):
        return
    import json

    data = {
        "ran": [name for name, why in _engines.items() if why is None],
        "left_out": {name: why for name, why in _engines.items() if why is not None},
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


DATA_DIR_ENV = "WORKBENCH_DATA_DIR"
OUT_DIR_ENV = "WORKBENCH_OUT_DIR"


def data_dir(value: str | os.PathLike[str] | None = None) -> Path:
    """A notebook's ``data_dir`` parameter: itself, else ``$WORKBENCH_DATA_DIR``, else ``../data``.

    Tests set the variable to a temporary folder, so they never write into ``data/``.
    """
    return Path(value or os.environ.get(DATA_DIR_ENV) or "../data")


def out_dir(value: str | os.PathLike[str] | None = None) -> Path:
    """A notebook's ``out_dir`` parameter: itself, else ``$WORKBENCH_OUT_DIR``, else ``../reports``.

    Tests set the variable to a temporary folder, so ``reports/`` holds only what
    ``make report`` wrote.
    """
    return Path(value or os.environ.get(OUT_DIR_ENV) or "../reports")


def open_dataset(
    source: str, data_dir: str | os.PathLike[str], *, scale: str = "small", seed: int = 7
) -> Dataset:
    """The Dataset for a notebook's ``source`` parameter.

    ``"synthetic"`` generates (or reuses) ``data_dir/<scale>``; ``"claude-code:PATH"``
    ingests a transcript tree; a database URL samples it read-only; anything else is
    taken as the path of an existing Dataset folder.
    """
    data_dir = Path(data_dir)
    if source == "synthetic":
        from workbench.sources.synthetic import generate

        return generate(data_dir / scale, scale, seed)
    if source.startswith("claude-code:"):
        from workbench.sources.claude_code import ingest

        tree = Path(source.removeprefix("claude-code:")).expanduser()
        return ingest([tree], data_dir / f"claude-code-{tree.name}", progress=False).dataset
    if "://" in source:
        from workbench.sources.database import sample_database

        return sample_database(source, data_dir / "from-database", fraction=0.1, seed=seed)
    if Path(source).is_dir():
        return Dataset.open(source)
    raise WorkbenchError(
        f"Unknown source {source!r}: use 'synthetic', 'claude-code:PATH', a database URL, "
        "or the path of a Dataset folder"
    )


def provenance(ds: Dataset) -> pl.DataFrame:
    """What a real-data source read, kept, collapsed and quarantined: (stage, item, count).

    Empty for synthetic data. For a Claude Code ingest: files by status, entries by
    type, streamed duplicates collapsed, quarantined lines by reason. For a database
    sample: sessions in the database and kept.
    """
    source = ds.manifest["source"]
    rows: list[tuple[str, str, int]] = []
    if source.get("kind") == "claude-code":
        ingest = ds.manifest["ingest"]
        rows += [("files", status, n) for status, n in ingest["files"].items() if n]
        rows += [("lines", "read", ingest["lines_read"])]
        rows += [("entries", kind, n) for kind, n in sorted(ingest["entries"].items())]
        rows += [("streamed duplicates", "collapsed", ingest["duplicates_collapsed"])]
        rows += [("quarantined", reason, n) for reason, n in sorted(ingest["quarantined"].items())]
        rows += [("quarantined", "total", sum(ingest["quarantined"].values()))]
    elif source.get("kind") == "database":
        rows += [("sessions", "in database", source.get("sessions_total", 0))]
        rows += [("sessions", "kept", ds.counts["sessions"])]
    return pl.DataFrame(rows, schema={"stage": pl.String, "item": pl.String, "count": pl.Int64}, orient="row")


def postgres_url(url: str | None = None) -> str:
    """``url``, else ``$WORKBENCH_POSTGRES_URL``, else a throwaway server stopped at exit."""
    if url or (url := os.environ.get("WORKBENCH_POSTGRES_URL")):
        return url
    if not _servers:
        from workbench.engines.server import PostgresServer

        server = PostgresServer.start()
        atexit.register(server.stop)
        server.stop_with()  # notebook kernels are killed, not exited: atexit alone would leak it
        _servers.append(server)
    return _servers[0].url


def open_engines(
    dataset: Dataset,
    names: str | Sequence[str],
    data_dir: str | os.PathLike[str],
    *,
    pg_url: str | None = None,
) -> tuple[dict[str, Engine], pl.DataFrame]:
    """Open each engine in ``names`` and load ``dataset`` into it (reused when already there).

    Embedded databases live beside the dataset (``data_dir/<dataset>.<engine>``). When
    PostgreSQL cannot be reached it is left out with a printed note, not an error, so
    a laptop without it still runs the notebook. Returns the engines and a frame of
    load reports.
    """
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    engines: dict[str, Engine] = {}
    reports: list[LoadReport] = []
    for name in names:
        if name not in ENGINES:
            raise EngineError(f"Unknown engine {name!r}: expected one of {', '.join(ENGINES)}")
        try:
            if name == "postgres":
                target = postgres_url(pg_url)
            else:
                target = str(Path(data_dir) / f"{dataset.name}.{name}")
            engine = open_engine(name, target)
        except EngineError as e:
            if name != "postgres":
                raise
            print(f"Note: PostgreSQL left out of this run: {e}")
            _engines.setdefault(name, str(e))
            continue
        engines[name] = engine
        _engines[name] = None
        try:
            reports.append(engine.load(dataset))
        except BaseException:
            for opened in engines.values():
                opened.close()
            raise
    _record_engines()
    if names and not engines:
        why = "; ".join(f"{n}: {w}" for n, w in _engines.items() if w and n in names)
        raise EngineError(
            f"No engine could be opened ({why}). Install PostgreSQL's server binaries "
            "(make system-deps), set WORKBENCH_POSTGRES_URL, or add duckdb or sqlite to the engines."
        )
    frame = pl.concat([r.frame() for r in reports]) if reports else pl.DataFrame()
    return engines, frame

"""The ``workbench`` command: argument parsing only.

Every command opens what it needs, calls the library and prints a short summary.
Library errors (:class:`WorkbenchError`) become ``Error: ...`` and exit code 1.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
from pathlib import Path

import click

from workbench.errors import WorkbenchError

# One `pg start` server per user, whatever folder the command runs in.
STATE = Path(os.environ.get("WORKBENCH_STATE_DIR", Path.home() / ".cache" / "workbench")) / "postgres.json"
ENGINE_NAMES = ("duckdb", "sqlite", "postgres")
SCALE_NAMES = ("tiny", "small", "medium", "large")


class WorkbenchGroup(click.Group):
    """Turns library errors into one clear line and exit code 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except WorkbenchError as e:
            raise click.ClickException(str(e)) from None


def _progress() -> bool:
    return os.environ.get("WORKBENCH_PROGRESS", "1") != "0"


@click.group(cls=WorkbenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="workbench")
def main() -> None:
    """Turn a chat-history backend's performance plan into measurements.

    \b
    Typical flow:
      workbench generate data/small --scale small      # a synthetic Dataset
      workbench ingest ~/.claude/projects --out data/mine   # or your real transcripts
      workbench sample data/medium data/medium-5pct --fraction 0.05
      workbench load data/small --engine duckdb        # into data/small.duckdb
      workbench pg start                               # a throwaway PostgreSQL
      workbench load data/small --engine postgres
      workbench report                                 # run every notebook -> reports/
    """


class _ScaleParam(click.ParamType):
    """A named scale, or (with --like/--shape) a positive factor."""

    name = "scale"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> str | float:
        if isinstance(value, float) or value in SCALE_NAMES:
            return value
        try:
            return float(value)
        except (TypeError, ValueError):
            choices = ", ".join(repr(n) for n in SCALE_NAMES)
            self.fail(f"{value!r} is not one of {choices}, or a factor such as 10 (with --like/--shape)")


@main.command()
@click.argument("dest", type=click.Path(path_type=Path))
@click.option(
    "--scale",
    type=_ScaleParam(),
    help="tiny ~3k messages (tests), small ~75k (notebooks, CI), medium ~1M, large ~10M "
    "[default: small]. With --like/--shape: a factor of the fitted source's sessions [default: 1].",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Same seed, same data.")
@click.option(
    "--like",
    type=click.Path(path_type=Path),
    metavar="DATASET",
    help="Fit the generator to this Dataset (ingested transcripts, a sample) and generate its shape.",
)
@click.option(
    "--shape",
    "shape_file",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Generate from a shape file written by --save-shape (no content, no identifiers).",
)
@click.option(
    "--save-shape",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="With --like: also write the fitted shape (JSON) here, to share without the data.",
)
@click.option("--projects", type=int, help="Override the scale's number of projects.")
@click.option("--sessions", type=int, help="Override the scale's number of sessions (with --like: the size).")
@click.option("--messages", type=int, help="Override the scale's number of messages.")
@click.option("--jobs", type=int, help="Override the scale's number of jobs.")
@click.option("--overwrite", is_flag=True, help="Replace a different dataset already at DEST.")
@click.option(
    "--transcripts",
    type=click.Path(path_type=Path),
    help="Also write the conversations as a Claude Code JSONL tree here (for streaming tests).",
)
def generate(
    dest: Path,
    scale: str | float | None,
    seed: int,
    like: Path | None,
    shape_file: Path | None,
    save_shape: Path | None,
    overwrite: bool,
    transcripts: Path | None,
    **counts: int | None,
) -> None:
    """Generate a synthetic Dataset (Parquet + manifest) at DEST.

    Deterministic for a seed; an identical dataset already at DEST is reused.

    \b
    Shaped like real data:
      workbench generate data/like --like data/mine --scale 10 --save-shape mine.shape.json
      workbench generate data/like --shape mine.shape.json --sessions 5000
    """
    from workbench.sources import fit as fitting
    from workbench.sources.synthetic import generate as run
    from workbench.sources.synthetic import generate_like

    if like is not None and shape_file is not None:
        raise WorkbenchError("Give one of --like DATASET and --shape FILE, not both")
    if save_shape is not None and like is None:
        raise WorkbenchError("--save-shape needs --like DATASET (the Dataset to fit)")
    if like is None and shape_file is None:
        if isinstance(scale, float):
            raise WorkbenchError(
                f"--scale {scale:g} is a factor, which needs --like or --shape: "
                f"use a named scale ({', '.join(SCALE_NAMES)})"
            )
        ds = run(dest, scale or "small", seed, overwrite=overwrite, progress=_progress(), **counts)
    else:
        if isinstance(scale, str):
            raise WorkbenchError(
                f"With --like/--shape, --scale is a factor of the fitted source's sessions (e.g. 10), "
                f"not {scale!r}"
            )
        fixed = [f"--{k}" for k, v in counts.items() if v is not None and k != "sessions"]
        if fixed:
            raise WorkbenchError(
                f"{', '.join(fixed)} cannot be set with --like/--shape: the shape decides them"
            )
        if like is not None:
            from workbench.dataset import Dataset

            shape = fitting.fit(Dataset.open(like))
            if save_shape is not None:
                click.echo(f"Shape {shape.save(save_shape)}")
        else:
            shape = fitting.Shape.load(shape_file)
        ds = generate_like(
            dest,
            shape,
            seed,
            sessions=counts["sessions"],
            scale=scale,
            overwrite=overwrite,
            progress=_progress(),
        )
    _print_counts(f"Dataset {ds.path}", ds.counts)
    if transcripts is not None:
        from workbench.sources.claude_code import write_transcripts

        if transcripts.exists() and any(transcripts.iterdir()):
            raise WorkbenchError(f"{str(transcripts)!r} is not empty: choose a new folder for --transcripts")
        written = write_transcripts(ds, transcripts, seed=seed)
        click.echo(f"Transcripts {transcripts}: {written['files']:,} files, {written['lines']:,} lines")


@main.command()
@click.argument("paths", nargs=-1, metavar="[SOURCE] DEST", type=click.Path(path_type=Path))
@click.option(
    "--from",
    "url",
    metavar="URL",
    help="Sample from an existing database (read-only) instead of a Dataset folder.",
)
@click.option("--fraction", type=float, help="Share of sessions to keep, 0 < F <= 1.")
@click.option("--sessions", type=int, help="Number of sessions to keep.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--no-stratify", is_flag=True, help="Plain random sessions instead of per size class.")
@click.option(
    "--method",
    type=click.Choice(["hash", "bernoulli", "system"]),
    default="hash",
    show_default=True,
    help="With --from: a seeded hash of the id (exact count, any database) or PostgreSQL "
    "TABLESAMPLE BERNOULLI/SYSTEM (approximate count).",
)
@click.option("--overwrite", is_flag=True, help="Replace a dataset already at DEST.")
def sample(
    paths: tuple[Path, ...],
    url: str | None,
    fraction: float | None,
    sessions: int | None,
    seed: int,
    no_stratify: bool,
    method: str,
    overwrite: bool,
) -> None:
    """Cluster-sample sessions (with all their messages and windows) into DEST.

    \b
    From a Dataset:   workbench sample data/medium data/medium-5pct --fraction 0.05
    From a database:  workbench sample --from postgresql://user@host/db data/prod-1pct --fraction 0.01
    """
    from workbench.dataset import Dataset, check_sample_size
    from workbench.shape import compare

    if len(paths) != (1 if url else 2):
        raise click.UsageError("Give SOURCE and DEST folders, or --from URL and DEST, not both")
    *source, dest = paths
    check_sample_size(fraction, sessions, click.UsageError)
    if url is not None:
        from workbench.sources.database import sample_database

        ds = sample_database(
            url,
            dest,
            fraction=fraction,
            sessions=sessions,
            seed=seed,
            method=method,
            stratify=not no_stratify,
            overwrite=overwrite,
            progress=_progress(),
        )
        _print_counts(f"Dataset {ds.path}", ds.counts)
        return
    parent = Dataset.open(source[0])
    ds = parent.sample(
        dest, fraction=fraction, sessions=sessions, seed=seed, stratify=not no_stratify, overwrite=overwrite
    )
    _print_counts(f"Dataset {ds.path}", ds.counts)
    click.echo(compare(parent, ds))


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "dest",
    required=True,
    type=click.Path(path_type=Path),
    help="Dataset folder to write; re-ingesting into it reads only what is new.",
)
@click.option("--full", is_flag=True, help="Re-read every file instead of only what was appended.")
@click.option("--overwrite", is_flag=True, help="Replace a dataset at --out that came from other roots.")
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    help="Parser processes beside this one, which also parses whenever it would wait. "
    "Default: 1 if this process may run on two or more CPUs (the fastest setting on two "
    "cores; its memory is in docs/BENCHMARKS.md), else 0. 0 parses only here, with the least "
    "memory. The Dataset is the same either way.",
)
def ingest(paths: tuple[Path, ...], dest: Path, full: bool, overwrite: bool, workers: int | None) -> None:
    """Ingest Claude Code transcript trees into a Dataset.

    PATHS default to ~/.claude/projects, ~/.config/claude/projects and the roots in
    $CLAUDE_CONFIG_DIR. Files stream line by line; streamed duplicates are collapsed as
    ccusage does; bad lines are quarantined with file, line and reason in
    OUT/quarantine.jsonl and every valid entry still arrives.
    """
    # Process-wide settings of an ingest, made here and not in the library. Arrow's
    # allocator, read when Arrow is first imported (parser processes inherit it): jemalloc
    # reuses the messages' large buffers and hands freed pages back; with the C library's
    # they fragment its heap, and mimalloc, Arrow's default, keeps them (docs/BENCHMARKS.md).
    # The cycle collector is paused: parsed rows make no cycles, and collections rescanning
    # them cost CPU.
    if "pyarrow" not in sys.modules:
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
    # SIGTERM unwinds like an error, so parser processes and scratch files are cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    from workbench.sources.claude_code import ingest as run

    gc.disable()  # restored below; not measure.gc_paused, whose module imports polars
    try:
        report = run(
            list(paths) or None,
            dest,
            progress=_progress(),
            overwrite=overwrite,
            update=not full,
            workers=workers,
        )
    finally:
        gc.enable()
    click.echo(report.summary())


@main.command()
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--engine", "engine_name", type=click.Choice(ENGINE_NAMES), required=True)
@click.option(
    "--target",
    help="Database file (duckdb, sqlite; default DATASET.<engine>) or "
    "PostgreSQL URL (default $WORKBENCH_POSTGRES_URL, else the `workbench pg start` server).",
)
@click.option(
    "--schema",
    "schema_name",
    default="public",
    show_default=True,
    help="PostgreSQL schema to load into (created if missing).",
)
@click.option("--force", is_flag=True, help="Reload even if the target already holds this dataset.")
def load(dataset: Path, engine_name: str, target: str | None, schema_name: str, force: bool) -> None:
    """Load a Dataset into an engine through its bulk path.

    Only a database the workbench created (it leaves a marker table) or an empty one is
    written to; anything else is refused.
    """
    from workbench.dataset import Dataset
    from workbench.engines import open_engine

    ds = Dataset.open(dataset)
    target = target or default_target(engine_name, ds.path)
    options = {"schema_name": schema_name} if engine_name == "postgres" else {}
    with open_engine(engine_name, target, **options) as engine:
        report = engine.load(ds, force=force, progress=_progress())
        verb = "already holds" if report.reused else "loaded"
        click.echo(f"{engine.display_target} {verb} {ds.path} ({sum(report.rows.values()):,} rows)")
        if not report.reused:
            click.echo(report.frame().drop("engine"))


def default_target(engine_name: str, dataset: Path) -> str:
    if engine_name != "postgres":
        return str(dataset.with_name(f"{dataset.name}.{engine_name}"))
    if url := os.environ.get("WORKBENCH_POSTGRES_URL"):
        return url
    from workbench.engines.server import PostgresServer

    server = PostgresServer.load(STATE)
    if server is None or not server.running():
        raise WorkbenchError(
            "No PostgreSQL URL: pass --target URL, set WORKBENCH_POSTGRES_URL, "
            "or start a throwaway server with `workbench pg start`"
        )
    return server.url


@main.group()
def pg() -> None:
    """A throwaway PostgreSQL server (system binaries, temp folder, loopback only)."""


@pg.command("start")
@click.option("--port", type=int, help="Port on 127.0.0.1 (default: a free one).")
def pg_start(port: int | None) -> None:
    """Start the server and print its URL (export it as WORKBENCH_POSTGRES_URL)."""
    from workbench.engines.server import PostgresServer

    running = PostgresServer.load(STATE)
    if running and running.running():
        click.echo(running.url)
        return
    server = PostgresServer.start(port=port)
    server.save(STATE)
    click.echo(server.url)


@pg.command("stop")
def pg_stop() -> None:
    """Stop the server and delete its data folder."""
    from workbench.engines.server import PostgresServer

    server = PostgresServer.load(STATE)
    if server is None:
        click.echo("No workbench PostgreSQL server is recorded; nothing to stop.")
        return
    server.stop()
    STATE.unlink(missing_ok=True)
    click.echo(f"Stopped the server on port {server.port}.")


@pg.command("status")
def pg_status() -> None:
    """Say whether the server runs, where, and whether HypoPG is available."""
    from workbench.engines.server import PostgresServer

    server = PostgresServer.load(STATE)
    if server is None or not server.running():
        click.echo("Not running. Start one with `workbench pg start`.")
        raise SystemExit(3)
    click.echo(f"Running: {server.url} (data in {server.directory}; HypoPG: {server.hypopg()})")


@main.command()
@click.option(
    "--scale",
    type=click.Choice(SCALE_NAMES),
    default=None,
    help="Synthetic scale, overriding the profile's data.scale (default: the profile's).",
)
@click.option("--seed", type=int, default=None, help="Overrides the profile's data.seed.")
@click.option(
    "--engines",
    default="auto",
    show_default=True,
    help="Comma-separated engines the notebooks compare. 'auto': duckdb and sqlite, plus postgres "
    "(a throwaway server each notebook starts) when its binaries are installed or "
    "WORKBENCH_POSTGRES_URL is set; without them the report says so at the top of every page.",
)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True)
@click.option("--notebook", "only", multiple=True, help="Run only these notebooks (by file name stem).")
@click.option(
    "--profile",
    "profile_path",
    default=None,
    help="The production profile every lab measures under: a TOML file, or a name in profiles/ "
    "(default: profiles/default.toml). It holds the production engine, the app-to-database round "
    "trip, page sizes, the traffic mix, the data, the hardware, the SLOs and a log-sync day; a bad "
    "profile stops the run before any notebook starts.",
)
def report(
    scale: str | None,
    seed: int | None,
    engines: str,
    out_dir: Path,
    only: tuple[str, ...],
    profile_path: str | None,
) -> None:
    """Execute every notebook under a production profile and export HTML + reports/index.html.

    index.html opens with the decision: the plan's success criteria and one row per plan
    item (ship / don't ship, the effect, its cost), computed from every notebook's verdicts.
    Each page opens with its own verdicts and the profile it measured under, code hidden.
    """
    from workbench.profile import load as load_profile
    from workbench.report import build_report, resolve_engines

    load_profile(profile_path)  # a bad profile is an error before anything else

    names, notes = resolve_engines(engines)
    unknown = sorted(set(names) - set(ENGINE_NAMES))
    if unknown:
        raise WorkbenchError(f"Unknown engine {unknown[0]!r}: expected one of {', '.join(ENGINE_NAMES)}")
    for note in notes:
        click.echo(f"Note: {note}", err=True)
    index = build_report(
        out_dir,
        parameters={"engines": names}
        | ({"scale": scale} if scale else {})
        | ({"seed": seed} if seed is not None else {}),
        only=list(only) or None,
        notes=notes,
        progress=_progress(),
        profile=profile_path,
    )
    click.echo(f"Report: {index}")


@main.command()
@click.option("--notebook", "only", multiple=True, help="Refresh only these notebooks (by file name stem).")
def refresh(only: tuple[str, ...]) -> None:
    """Re-execute notebooks/*.py into their .ipynb with default parameters.

    Run after editing a notebook: the refreshed outputs are what nbval checks in CI.
    Datasets are reused from data/; the notebooks' exports go to a temporary folder,
    so reports/ keeps only what `workbench report` wrote.
    """
    from workbench.report import refresh as run

    for path in run(only=list(only) or None, progress=_progress()):
        click.echo(f"Refreshed {path}")


def _print_counts(title: str, counts: dict[str, int]) -> None:
    click.echo(title)
    for table, n in counts.items():
        click.echo(f"  {table:<16} {n:>12,}")


# ---- workbench advise (index lab, notebook 03) ---------------------------------------------------
@main.command()
@click.option(
    "--engine",
    "engine_name",
    type=click.Choice(ENGINE_NAMES),
    default="postgres",
    show_default=True,
    help="Engine the sample is loaded into and the indexes are built and measured on.",
)
@click.option(
    "--dataset",
    type=click.Path(path_type=Path),
    help="A Dataset folder (default: <data>/<scale>, generated; <data> is $WORKBENCH_DATA_DIR, else data/).",
)
@click.option("--scale", type=click.Choice(SCALE_NAMES), default="small", show_default=True)
@click.option(
    "--queries",
    "queries_dir",
    type=click.Path(path_type=Path),
    help="Folder of *.sql queries with :named parameters (default: queries/).",
)
@click.option(
    "--workload",
    "workload_file",
    type=click.Path(path_type=Path),
    help="pg_stat_statements CSV export, or a PostgreSQL jsonlog/csvlog file: frequencies by fingerprint.",
)
@click.option(
    "--values",
    "values_file",
    type=click.Path(path_type=Path),
    help="TOML or JSON file giving parameters their values (see below).",
)
@click.option("--url", help="A production PostgreSQL URL for the hypothetical (HypoPG) pass only; read-only.")
@click.option(
    "--max-write-cost",
    type=float,
    default=1.5,
    show_default=True,
    help="Budget: slowest a table's bulk insert may become with the chosen indexes (ratio); an index "
    "is refused only when its measured interval lies above it.",
)
@click.option("--max-size-mb", type=float, help="Budget: total size of the chosen indexes in MB.")
@click.option(
    "--min-saving",
    type=click.FloatRange(0, 1),
    default=0.01,
    show_default=True,
    help="Least share of the workload's DB time a recommended index must save (0.01 = 1%).",
)
@click.option("--repeat", type=int, default=5, show_default=True, help="Timed runs per query and index.")
@click.option(
    "--covering",
    is_flag=True,
    help="PostgreSQL: also measure each key with INCLUDE (the query's other columns), for index-only scans.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("reports/advise"),
    show_default=True,
    help="Writes migrations/<engine>/VERSION_name.up.sql/.down.sql here.",
)
@click.option(
    "--migrations-dir",
    type=click.Path(path_type=Path),
    help="Write the migrations straight into this folder instead (your repository's), beside its files.",
)
@click.option(
    "--versions",
    type=click.Choice(("seq", "timestamp", "unix")),
    default="seq",
    show_default=True,
    help="Migration versions as `migrate create` makes them: -seq (6 digits, after the folder's "
    "latest), its default timestamp 20060102150405, or -format unix.",
)
@click.option(
    "--start-version",
    type=click.IntRange(min=1),
    help="First sequential version (default: one after the highest version in the folder).",
)
def advise(
    engine_name: str,
    dataset: Path | None,
    scale: str,
    queries_dir: Path | None,
    workload_file: Path | None,
    values_file: Path | None,
    url: str | None,
    max_write_cost: float,
    max_size_mb: float | None,
    min_saving: float,
    repeat: int,
    covering: bool,
    out_dir: Path,
    migrations_dir: Path | None,
    versions: str,
    start_version: int | None,
) -> None:
    """Recommend indexes for the workload, measured on a local sample, and write migrations.

    Candidates come from each query's predicates, joins and ORDER BY; on PostgreSQL HypoPG
    estimates them first; each is then built on the sample, timed, and chosen greedily by
    frequency-weighted time saved within the write-cost and size budgets. With --url the
    hypothetical pass runs against that database read-only (nothing is built there); if it
    has no HypoPG, that is said and the local sample decides alone. Indexes the sample
    already has are reported, not recommended again.

    \b
    Parameter values: the workbench draws :project_id, :session_id, :session_ids, :status,
    :limit, :day_start, :day_end and the pagination cursors from the data (the hottest, a
    typical and a cold value). Any other parameter needs --values FILE, for example:
      git_branch = "main"                        # one value
      model = ["opus", "sonnet", "haiku"]        # hot, typical, cold: first, middle, last
      [title]                                    # a value query, its first column,
      query = "SELECT title FROM sessions ORDER BY message_count DESC"   # hottest first
    (JSON works too: {"git_branch": "main"}). A query whose parameter gets no value is an
    error naming it.

    \b
    Migrations into an existing repository (golang-migrate naming):
      workbench advise --migrations-dir db/migrations             # continues after 000041
      workbench advise --migrations-dir db/migrations --versions timestamp
    Files the workbench did not write are never replaced or deleted; a clash is an error.
    """
    from workbench import lab
    from workbench.engines import open_engine
    from workbench.indexes import advisor, select, workload

    w = workload.from_file(workload_file, queries_dir) if workload_file else workload.from_folder(queries_dir)
    values = workload.read_values(values_file) if values_file else None
    data = Path(os.environ.get(lab.DATA_DIR_ENV) or "data")
    ds = lab.open_dataset(str(dataset) if dataset else "synthetic", data, scale=scale)
    engines, _ = lab.open_engines(ds, [engine_name], data)
    if engine_name not in engines:
        raise WorkbenchError(
            "PostgreSQL could not be reached: pass --engine duckdb or sqlite, or start one (workbench pg start)"  # noqa: E501
        )
    engine = engines[engine_name]
    prod = open_engine("postgres", url) if url else None
    try:
        if prod is not None:
            prod.execute("SET default_transaction_read_only = on")
        budgets = select.Budgets(max_write_cost, int(max_size_mb * 1e6) if max_size_mb else None, min_saving)
        report = advisor.advise(
            engine,
            w,
            budgets=budgets,
            out_dir=out_dir,
            hypothetical_on=prod,
            repeat=repeat,
            covering=covering,
            values=values,
            migrations_dir=migrations_dir,
            versions=versions,
            start_version=start_version,
        )
    finally:
        engine.close()
        if prod is not None:
            prod.close()
    for line in [*report.advice.errors, *report.notes]:
        click.echo(f"Note: {line}")
    if report.hypothetical is not None:
        where = (prod or engine).display_target
        click.echo(f"HypoPG: {report.hypothetical.height} planner estimates on {where} (nothing built there)")
    for f in report.advice.flags:
        click.echo(f"Not indexable: {f.query}: {f.predicate} ({f.reason}); rewrite: {f.rewrite}")
    for line in advisor.ranked_lines(report):
        click.echo(line)
    click.echo(report.verdict_sentence())
    folder = migrations_dir or out_dir / "migrations" / engine.dialect
    click.echo(f"Migrations: {folder} ({len(report.migrations)} files written, {report.seconds:.1f} s)")


# ---- workbench profile (profiling lab, notebook 04) -------------------------------------------
@main.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--cpu", "mode", flag_value="cpu", default=True, help="pyinstrument call tree (the default).")
@click.option("--memory", "mode", flag_value="memory", help="memray: peak memory and the stacks holding it.")
@click.option("--name", help="Names the artifacts (default: the command and the mode, e.g. ingest-cpu).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("reports"),
    show_default=True,
    help="Artifacts go to OUT/profiles/.",
)
@click.option("--top", type=int, default=15, show_default=True, help="Lines of the profile to print.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
def profile(mode: str, name: str | None, out_dir: Path, top: int, command: tuple[str, ...]) -> None:
    """Run a workbench COMMAND or a Python script under a profiler; print the top of its profile.

    \b
      workbench profile --cpu -- ingest ~/.claude/projects --out data/mine
      workbench profile --memory -- load data/small --engine sqlite
      workbench profile --memory -- python my_job.py --input logs/   (or python -m package.module)

    \b
    --cpu saves OUT/profiles/NAME.cpu.html (pyinstrument's page, opens offline),
    NAME.cpu.txt and NAME.pyisession (pyinstrument --load). --memory saves
    NAME.memory.html (the memory at the peak as an icicle, opens offline),
    NAME.memray.bin (memray tree/summary/stats) and NAME.memory.json. memray's heap peak
    is what the code's allocations held at their largest; peak RSS is the whole
    process's resident memory (interpreter, libraries, freed-but-kept memory); the
    summary says which is larger and why. The command runs in this process (a script
    through runpy, with sys.argv set); its own errors are reported after the profile
    is saved.
    """
    from workbench import profiling

    words = list(command)
    tb: list[str] = []
    if words[0] == "workbench":  # `-- workbench ingest ...` reads like the shell command
        words = words[1:] or [""]
    script = words[0] in ("python", "python3") or words[0].endswith(".py")
    if script:
        argv = words[1:] if words[0] in ("python", "python3") else words
        module = argv[:1] == ["-m"] and len(argv) > 1
        target = argv[1] if module else (argv[0] if argv else "python")
        default = (target.rsplit(".", 1)[-1] if module else Path(target).stem).replace("_", "-") or "script"

        def run() -> None:
            try:
                profiling.run_script(argv)
            except (WorkbenchError, click.ClickException):
                raise
            except Exception as e:  # the script's own error: its traceback, after the profile
                import traceback

                tb.append(traceback.format_exc())
                raise WorkbenchError(f"{target} failed: {type(e).__name__}: {e}") from None

    else:
        if words[0] == "profile":
            raise WorkbenchError(
                "workbench profile cannot profile itself: give the command to profile after --"
            )
        if words[0] not in main.commands:
            raise WorkbenchError(
                f"Unknown command {words[0]!r} to profile: expected a Python script (python script.py "
                "[args]) or one of " + ", ".join(sorted(c for c in main.commands if c != "profile"))
            )
        default = words[0]

        def run() -> None:
            main.main(args=words, prog_name="workbench", standalone_mode=False)

    name = name or f"{default}-{mode}"
    manager = profiling.cpu if mode == "cpu" else profiling.memory
    failure: click.ClickException | WorkbenchError | None = None
    with manager(name, out_dir) as prof:
        try:
            run()
        except (click.ClickException, WorkbenchError) as e:
            failure = e
    if mode == "cpu":
        lines = [ln for ln in prof.text().splitlines() if ln.strip()]
        start = next((i for i, ln in enumerate(lines) if ln.lstrip()[:1].isdigit()), 0)
        click.echo(
            f"CPU profile: {prof.seconds:.2f} s wall, {prof.samples:,} samples, peak RSS "
            f"{prof.peak_rss_bytes / 2**20:,.0f} MiB"
        )
        click.echo("\n".join(lines[start : start + top]))
    else:
        click.echo(
            f"Memory profile: memray heap peak {prof.peak_bytes / 2**20:,.1f} MiB, "
            f"{prof.allocations:,} allocations, peak RSS {prof.peak_rss_bytes / 2**20:,.0f} MiB"
        )
        for line in prof.explain():
            click.echo(f"  {line}")
        click.echo("Stacks holding the most at the heap peak (MiB, allocations, where):")
        for row in prof.top(top).iter_rows(named=True):
            click.echo(f"  {row['bytes'] / 2**20:>10,.2f} MiB  {row['allocations']:>9,}  {row['where']}")
    click.echo(f"Saved: {', '.join(str(p) for p in prof.paths.values())}")
    if "page" in prof.paths:
        click.echo(f"Open {prof.paths['page']} in a browser (offline) for the memory icicle.")
    if failure is not None:
        for text in tb:
            click.echo(text, err=True)
        raise failure


# ---- service lab: `workbench serve`, `workbench loadtest` -------------------------------------------
@main.command()
@click.option(
    "--url", "database_url", help="PostgreSQL URL (default: $WORKBENCH_POSTGRES_URL, else `pg start`'s)."
)
@click.option(
    "--dataset", type=click.Path(path_type=Path), help="Load this Dataset first (reused when loaded)."
)
@click.option(
    "--strategy",
    default="n_plus_one",
    show_default=True,
    help="How /projects/ID/recent loads sessions: n_plus_one, joined, per_relation, batch, aggregate.",
)
@click.option(
    "--pool-size", type=int, default=4, show_default=True, help="Connections (and handler threads)."
)
@click.option(
    "--max-waiting", type=int, default=64, show_default=True, help="Requests that may wait; then 503."
)
@click.option(
    "--pool-timeout", type=float, default=0.5, show_default=True, help="Seconds a request may wait."
)
@click.option("--workers", type=int, default=1, show_default=True, help="uvicorn worker processes.")
@click.option(
    "--cache-seconds",
    type=float,
    default=0,
    show_default=True,
    help="Keep read answers this long in a query cache (0: no cache).",
)
@click.option(
    "--trace-sql",
    is_flag=True,
    help="Append each request's traceparent to its SQL as a sqlcommenter comment (PostgreSQL's logs "
    "then group by request; statements are no longer prepared).",
)
@click.option("--port", type=int, default=8000, show_default=True, help="Loopback port to listen on.")
def serve(
    database_url: str | None,
    dataset: Path | None,
    strategy: str,
    pool_size: int,
    max_waiting: int,
    pool_timeout: float,
    workers: int,
    cache_seconds: float,
    trace_sql: bool,
    port: int,
) -> None:
    """Serve the backend's read API over PostgreSQL on 127.0.0.1:PORT until Ctrl-C.

    \b
    Endpoints: /projects/ID/sessions?limit=&cursor=  /projects/ID/recent?limit=
               /sessions/ID  /usage/YYYY-MM-DD  /jobs?status=&limit=
               /health  /metrics (Prometheus)  /stats
    A full pool answers 503 at once; a failing handler answers 500 and is counted; a
    request past 5 s answers 504, and one whose client leaves is dropped, its query cancelled.
    """
    from workbench.service.process import serve as run
    from workbench.service.settings import Settings

    url = database_url or default_target("postgres", Path("."))
    if dataset is not None:
        from workbench.dataset import Dataset
        from workbench.engines import open_engine
        from workbench.strategies import ensure_indexes

        with open_engine("postgres", url) as engine:
            engine.load(Dataset.open(dataset))
            ensure_indexes(engine)
    settings = Settings(
        url,
        strategy,
        pool_size,
        max_waiting,
        pool_timeout,
        workers,
        cache_seconds=cache_seconds,
        trace_sql=trace_sql,
    )
    click.echo(f"Serving {settings.label} on http://127.0.0.1:{port} (Ctrl-C stops)")
    run(settings, port)


@main.command()
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="The service's base URL.")
@click.option(
    "--dataset", type=click.Path(path_type=Path), help="Draw the requests' parameters from this Dataset."
)
@click.option("--rate", "rates", type=float, multiple=True, help="Arrival rate, req/s (repeat for steps).")
@click.option("--seconds", type=float, default=10, show_default=True, help="Duration of each step.")
@click.option("--ramp", help="A linear ramp START:STOP req/s over --seconds, instead of --rate.")
@click.option("--mix", help="Endpoint weights, e.g. recent=3,session=2,sessions=2,usage=1,jobs=1.")
@click.option(
    "--hot-share", type=float, default=0.8, show_default=True, help="Share of requests to hot projects."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-requests", type=int, default=200_000, show_default=True, help="Bound on requests sent.")
@click.option(
    "--timeout", type=float, default=10, show_default=True, help="Seconds before a request times out."
)
@click.option("--label", default="", help="Name of this run in the tables.")
@click.option(
    "--save", type=click.Path(path_type=Path), help="Write the per-stage summary here (.csv or .json)."
)
@click.option(
    "--k6", "k6_file", type=click.Path(path_type=Path), help="Import a k6 --summary-export file instead."
)
@click.option(
    "--realtime",
    is_flag=True,
    help="Run the generator's threads in the real-time FIFO class (Linux, privileged): on a busy "
    "machine the ordinary scheduler wakes them milliseconds late.",
)
@click.option(
    "--soak",
    help="Hold --rate for this long (e.g. 30m, 2h) in 60 s windows; print latency and the service's "
    "memory per window, memory growth per hour and P99 drift.",
)
def loadtest(
    url: str,
    dataset: Path | None,
    rates: tuple[float, ...],
    seconds: float,
    ramp: str | None,
    mix: str | None,
    hot_share: float,
    seed: int,
    max_requests: int,
    timeout: float,
    label: str,
    save: Path | None,
    k6_file: Path | None,
    realtime: bool,
    soak: str | None,
) -> None:
    """Open-loop load on a service at fixed arrival rates; latency from intended send times.

    \b
    Sends only to --url: loopback by default, or the URL you name (e.g. your staging).
      workbench loadtest --dataset data/small --rate 50 --rate 100 --seconds 10
      workbench loadtest --dataset data/small --ramp 10:300 --seconds 30
      workbench loadtest --k6 summary.json          # k6's numbers in the same table
      workbench loadtest --dataset data/small --rate 40 --soak 30m
    Above the generator's own ceiling (docs/BENCHMARKS.md), drive the load with k6 and --k6.
    On a busy machine, --realtime keeps the send schedule (see send_lag_p99_ms).
    Prints P50/P90/P99/P99.9 (95% intervals), throughput offered and achieved, errors by
    kind, the generator's send lag, and the plan's SLO verdicts.
    """
    import polars as pl

    from workbench.service import slo
    from workbench.service.load import Mix, Profile, import_summary, paths, run_load, targets
    from workbench.service.load.generator import realtime_scheduling

    if k6_file is not None:
        frame = import_summary(k6_file, label or None)
    else:
        if dataset is None:
            raise WorkbenchError("--dataset is required to draw requests (or import a run with --k6 FILE)")
        if ramp and rates:
            raise WorkbenchError("Give either --rate (steps) or --ramp START:STOP, not both")
        if ramp:
            try:
                start, stop = (float(x) for x in ramp.split(":"))
            except ValueError:
                raise WorkbenchError(
                    f"Invalid --ramp {ramp!r}: use START:STOP in req/s, e.g. 10:300"
                ) from None
            profile = Profile.ramp(start, stop, seconds, max_requests=max_requests)
        else:
            profile = Profile.steps(list(rates or (10.0,)), seconds, max_requests=max_requests)
        weights = None
        if mix:
            try:
                weights = {k.strip(): float(v) for k, v in (kv.split("=") for kv in mix.split(","))}
            except ValueError:
                raise WorkbenchError(
                    f"Invalid --mix {mix!r}: use name=weight,... e.g. recent=3,jobs=1"
                ) from None
        from workbench.dataset import Dataset

        ds = Dataset.open(dataset)
        the_mix = Mix(weights=weights, hot_share=hot_share) if weights else Mix(hot_share=hot_share)
        if soak is not None:
            _soak(url, soak, rates, the_mix, ds, seed, timeout, save)
            return
        reqs = paths(the_mix, targets(ds, the_mix.hot_fraction), len(profile.intended()[0]), seed)
        with realtime_scheduling() if realtime else contextlib.nullcontext(False) as granted:
            run = run_load(url, profile, reqs, label=label, allow_remote=True, timeout=timeout)
        if realtime and not granted:
            click.echo("Note: --realtime was refused (needs Linux and CAP_SYS_NICE); ordinary scheduling.")
        frame = run.summary(per_stage=len(profile.stages) > 1)
        if run.partial:
            click.echo(f"PARTIAL RUN: {run.reason}; the numbers below cover what was measured.")
    with pl.Config(
        tbl_rows=50, tbl_cols=20, tbl_hide_dataframe_shape=True, tbl_width_chars=220, fmt_str_lengths=80
    ):
        cols = [c for c in ("label", "offered_rps", "achieved_rps", "p50_ms", "p90_ms", "p99_ms", "p999_ms")]
        click.echo(frame.select(cols + ["error_rate", "errors_by_kind", "send_lag_p99_ms"]))
        table = slo.verdicts(frame.with_columns(pl.col("offered_rps").fill_nan(None)))
        click.echo(
            table.select("offered_rps", "slo", "shown", "verdict").filter(pl.col("verdict") != "unknown")
        )
    if save is not None:
        if save.suffix == ".json":
            save.write_text(frame.write_json())
        else:
            frame.write_csv(save)
        click.echo(f"Saved {save}")


def _soak(
    url: str, duration: str, rates: tuple[float, ...], mix, ds, seed: int, timeout: float, save
) -> None:
    """``loadtest --soak``: one rate held in 60 s windows; the windows and their drift."""
    import re

    import polars as pl

    from workbench.service import stress
    from workbench.service.load import paths, targets

    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smh])", duration.strip())
    if not match:
        raise WorkbenchError(f"Invalid --soak {duration!r}: use a duration such as 600s, 30m or 2h")
    seconds = float(match[1]) * {"s": 1, "m": 60, "h": 3600}[match[2]]
    if len(rates) != 1:
        raise WorkbenchError("--soak holds one rate: give exactly one --rate (e.g. --rate 40)")
    reqs = paths(mix, targets(ds, mix.hot_fraction), 100_000, seed)
    windows = stress.soak(url, rates[0], seconds, reqs, window=60.0, allow_remote=True, timeout=timeout)
    with pl.Config(tbl_rows=500, tbl_hide_dataframe_shape=True, tbl_width_chars=200):
        click.echo(windows)
    f = stress.drift(windows)
    click.echo(
        f"Over {f['hours'] * 60:.0f} min at {rates[0]:g} req/s: memory {f['rss_mb_first']:.0f} → "
        f"{f['rss_mb_last']:.0f} MB ({f['memory_mb_per_hour']:+.1f} MB/hour), P99 "
        f"{f['p99_ms_first']:.1f} → {f['p99_ms_last']:.1f} ms ({f['p99_ms_per_hour']:+.1f} ms/hour)"
    )
    if save is not None:
        windows.write_csv(save)
        click.echo(f"Saved {save}")


if __name__ == "__main__":
    main()


# ---- workbench detect (production evidence, notebook 06) ----------------------------------------
@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--url",
    "urls",
    multiple=True,
    help="A live PostgreSQL whose pg_stat_statements to read (read-only); repeatable.",
)
@click.option(
    "--format",
    "log_format",
    type=click.Choice(("jsonlog", "csvlog", "stderr", "pg_stat_statements")),
    help="Every file's format (default: told from each file's first line and name).",
)
@click.option(
    "--prefix",
    default="%m [%p] ",
    show_default=True,
    help="The server's log_line_prefix, for stderr logs (%m %t %p %c %l %u %d %a %x %v %e %q ...).",
)
@click.option("--min-count", type=int, default=5, show_default=True, help="N+1: more executions than this.")
@click.option(
    "--min-total-ms", type=float, default=50.0, show_default=True, help="N+1: more time in total than this."
)
@click.option(
    "--rtt-ms", type=float, default=0.0, show_default=True, help="Round trip added to each execution's time."
)
@click.option(
    "--gap-ms",
    type=float,
    default=100.0,
    show_default=True,
    help="Without trace ids: a pause this long on one session starts a new request.",
)
@click.option(
    "--workload-out", type=click.Path(path_type=Path), help="Write the workload for advise --workload here."
)
@click.option(
    "--sample-url",
    help="A sample PostgreSQL database (same schema): each proposed batch is run there read-only, "
    "checked for the same rows and timed against the loop.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Write findings.csv, workload.csv, mix.csv and quarantine.jsonl here.",
)
def detect(
    paths: tuple[Path, ...],
    urls: tuple[str, ...],
    log_format: str | None,
    prefix: str,
    min_count: int,
    min_total_ms: float,
    rtt_ms: float,
    gap_ms: float,
    workload_out: Path | None,
    sample_url: str | None,
    out_dir: Path | None,
) -> None:
    """Find the N+1s and the real workload in PostgreSQL logs or pg_stat_statements exports.

    Reads jsonlog, csvlog, stderr logs (with their --prefix) and pg_stat_statements CSV
    exports in one streaming pass; statements are grouped into requests by traceparent
    comment, else session + transaction + pauses, else application_name. Lines that
    cannot be read are counted and listed with file, line and reason; the rest is kept.
    """
    from workbench.evidence import analysis, export
    from workbench.evidence.detect import Rule

    if not paths and not urls:
        raise WorkbenchError("Nothing to read: pass log files (PATH...) or a live server's --url")
    rule = Rule(min_count=min_count, min_total_ms=min_total_ms, rtt_ms=rtt_ms)
    ev = analysis.analyse(
        paths, format=log_format, prefix=prefix, rule=rule, gap_ms=gap_ms, progress=_progress(), urls=urls
    )
    keys = ", ".join(f"{k}: {n}" for k, n in ev.keys().items()) or "none"
    click.echo(f"{ev.statements} statements, {len(ev.templates)} fingerprints; requests by key: {keys}")
    if ev.quarantine.count:
        click.echo(f"{ev.quarantine.count} lines quarantined (kept the rest):")
        for line in ev.quarantine.lines()[:5]:
            click.echo(f"  {line}")
    if ev.findings.is_empty():
        click.echo(f"No N+1 ({rule.describe()}).")
    for row in ev.findings.head(10).iter_rows(named=True):
        click.echo(
            f"#{row['rank']} N+1: {row['executions']} executions in {row['requests']} requests "
            f"({row['per_request']:.1f} each, max {row['max_per_request']}), {row['repeated_ms']:.1f} ms; "
            f"batching saves ~{row['saving_ms']:.1f} ms\n"
            f"   after:    {row['source'][:100]}\n   repeated: {row['repeated'][:100]}\n"
            f"   batch:    {(row['rewrite'] or 'no = $n to batch: rewrite by hand')[:100]}"
        )
    if sample_url and not ev.findings.is_empty():
        from workbench.evidence.check import check_findings

        for c in check_findings(ev, sample_url).iter_rows(named=True):
            if c["same_rows"]:
                click.echo(
                    f"#{c['rank']} checked: same {c['rows']} rows; loop {c['singles_ms']:.2f} ms, "
                    f"batch {c['batch_ms']:.2f} ms ({c['speedup']:.1f}x)"
                )
            else:
                click.echo(f"#{c['rank']} not checked: {c['reason']}")
    if out_dir is not None:
        for name, file in export.write(ev, out_dir).items():
            click.echo(f"{name}: {file}")
    if workload_out is not None:
        click.echo(f"workload: {export.write_workload(ev, workload_out)}")

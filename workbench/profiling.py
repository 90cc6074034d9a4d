"""pyinstrument and memray as one-liners: a block's CPU call tree or its memory peak,
shown inline, saved under ``<out>/profiles/``, and viewable offline.

In a notebook::

    with profiling.cpu("sync-stream", out) as prof:       # pyinstrument
        run_the_job()
    prof.figure()                                         # icicle of the call tree

    with profiling.memory("sync-whole", out) as mem:      # memray
        run_the_job()
    mem.peak_bytes, mem.peak_rss_bytes, mem.figure()

or, after ``%load_ext workbench.profiling``, the cell magics ``%%profile_cpu [NAME] [--out DIR]``
and ``%%profile_memory [NAME] [--out DIR]``. On the command line:
``workbench profile --cpu -- ingest ...`` or ``workbench profile --memory -- python script.py``.

Artifacts: ``NAME.cpu.html`` (pyinstrument's own page, self-contained; its one web-font
request is removed so it opens offline), ``NAME.cpu.txt``, ``NAME.pyisession`` (reload with
``pyinstrument --load``); ``NAME.memray.bin`` (memray's capture: ``memray tree``,
``memray summary``), ``NAME.memory.json`` (peak, allocations, peak RSS, top stacks) and
``NAME.memory.html``: the memory at the peak as an icicle, offline. memray's own flamegraph
page loads its scripts from a CDN and is blank offline, so the icicle is built here from
memray's reader API (``FileReader.get_high_watermark_allocation_records``: the stacks alive
at the peak), with plotly's script beside the page (``plotly.min.js``, shared by every page
in the folder).

Two memory figures, two questions (:data:`MEMORY_TERMS`): memray's **heap peak** is the most
memory its tracked allocations held at one moment; **peak RSS** is the process's resident
pages (interpreter, libraries, memory freed but not yet returned to the system), from
memray's RSS snapshots every 5 ms (memory profiles) or a sampling thread (CPU profiles).
Either can be the larger. Both context managers detach their profiler in ``finally``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from workbench.errors import WorkbenchError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}$")
#: What each memory figure measures, in the words every summary and page uses.
MEMORY_TERMS = {
    "heap peak": "memray's tracked allocations (Python objects' arenas, malloc, mmap) at their "
    "largest at one moment: what the code held",
    "peak RSS": "the process's resident pages at their largest, sampled every few ms: the "
    "interpreter, libraries and memory freed but not yet returned to the system as well",
}
WHY_THEY_DIFFER = (
    "RSS above the heap peak is the interpreter, libraries and freed-but-kept memory. A heap "
    "peak above RSS is memory allocated but never touched (pages the kernel only provides "
    "when written), or a spike shorter than the RSS sampling interval."
)
_FONT = re.compile(r"https://fonts\.googleapis\.com/css[^\"']*")
#: Nodes below this share of the total are folded into their parent in the icicles.
MIN_SHARE = 0.005


class ProfilingError(WorkbenchError):
    """A profile was asked for in a way that cannot work."""


def profiles_dir(out_dir: str | os.PathLike[str] | None = None) -> Path:
    """``<out>/profiles`` (``out`` resolved as notebooks do: env WORKBENCH_OUT_DIR, else reports/)."""
    from workbench import lab

    path = lab.out_dir(out_dir) / "profiles"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ProfilingError(
            f"Invalid profile name {name!r}: use letters, digits, '.', '_' or '-' (it names the files)"
        )
    return name


class RssSampler:
    """The process's peak resident memory over a block, sampled on a thread every ``interval`` s."""

    def __init__(self, interval: float = 0.005) -> None:
        import psutil

        self._proc = psutil.Process()
        self.interval = interval
        self.peak = self.start = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


@dataclass
class Profile:
    """What every profile holds: its name, its artifacts' folder and files, the block's wall
    seconds and the process's peak RSS while it ran."""

    name: str
    folder: Path
    seconds: float = 0.0
    peak_rss_bytes: int = 0
    paths: dict[str, Path] = field(default_factory=dict)

    def _filled(self, data: Any) -> Any:
        if data is None:
            raise ProfilingError(f"Profile {self.name!r} has no data yet: read it after its `with` block")
        return data


# ---- CPU: pyinstrument --------------------------------------------------------------------
@dataclass
class CpuProfile(Profile):
    """A block's CPU profile; filled when its ``with`` block ends."""

    cpu_seconds: float = 0.0
    samples: int = 0
    session: Any = None

    def frame(self) -> pl.DataFrame:
        """The call tree as a tidy frame: id, parent, function, location, total/self seconds, depth."""
        session = self._filled(self.session)
        from pyinstrument.renderers import ConsoleRenderer

        root = ConsoleRenderer(show_all=False).preprocess(session.root_frame())
        rows: list[dict[str, Any]] = []

        def walk(fr: Any, parent: str, depth: int) -> None:
            node = f"{parent}/{len(rows)}"
            where = f"{fr.file_path_short}:{fr.line_no}" if fr.line_no else (fr.file_path_short or "")
            rows.append(
                {
                    "id": node,
                    "parent": parent,
                    "function": fr.function,
                    "location": where,
                    "total_s": float(fr.time),
                    "self_s": float(fr.total_self_time),
                    "depth": depth,
                }
            )
            for child in fr.children:
                walk(child, node, depth + 1)

        if root is not None:
            walk(root, "", 0)
        schema = {"id": pl.String, "parent": pl.String, "function": pl.String, "location": pl.String}
        schema |= {"total_s": pl.Float64, "self_s": pl.Float64, "depth": pl.Int64}
        return pl.DataFrame(rows, schema=schema)

    def top(self, n: int = 10) -> pl.DataFrame:
        """The functions with the most self time (summed over the tree)."""
        return (
            self.frame()
            .group_by("function", "location")
            .agg(pl.col("self_s").sum())
            .sort("self_s", "function", descending=[True, False])
            .head(n)
        )

    def text(self) -> str:
        return self.paths["txt"].read_text() if "txt" in self.paths else ""

    def figure(self, title: str | None = None) -> Any:
        frame = self.frame()
        labels = [
            f"{f} ({loc})" if loc else f for f, loc in zip(frame["function"], frame["location"], strict=True)
        ]
        return icicle(
            frame.with_columns(label=pl.Series(labels)),
            "total_s",
            title or f"CPU: {self.name} ({self.seconds:.2f} s wall, {self.samples:,} samples)",
            unit="s",
        )

    def html(self) -> str:
        """pyinstrument's page, self-contained (for an iframe's ``srcdoc``)."""
        return self.paths["html"].read_text()

    def iframe(self, height: int = 520) -> Any:
        """pyinstrument's interactive page inline (an iframe with the page as ``srcdoc``: it
        travels with the notebook and its HTML export, and opens offline)."""
        import html as html_lib

        from IPython.display import HTML

        page = html_lib.escape(self.html(), quote=True)
        # wrapped in a div: IPython warns (into the report) about HTML that starts with <iframe
        return HTML(
            f'<div><iframe srcdoc="{page}" style="width:100%;height:{height}px;border:1px solid #ddd">'
            "</iframe></div>"
        )


@contextlib.contextmanager
def cpu(
    name: str = "profile",
    out_dir: str | os.PathLike[str] | None = None,
    *,
    interval: float = 0.001,
    clock: Callable[[], float] = time.perf_counter,
) -> Iterator[CpuProfile]:
    """Profile the block with pyinstrument; save ``<out>/profiles/NAME.cpu.{html,txt}`` and the session."""
    from pyinstrument import Profiler
    from pyinstrument.renderers import HTMLRenderer

    result = CpuProfile(_check_name(name), profiles_dir(out_dir))
    profiler = Profiler(interval=interval, async_mode="disabled")
    started = clock()
    with RssSampler() as rss:
        profiler.start()
        try:
            yield result
        finally:
            session = profiler.stop()
    result.seconds, result.peak_rss_bytes = clock() - started, rss.peak
    result.session, result.samples, result.cpu_seconds = session, session.sample_count, session.cpu_time
    base = result.folder / name
    result.paths = {"html": base.with_suffix(".cpu.html"), "txt": base.with_suffix(".cpu.txt")}
    result.paths["session"] = base.with_suffix(".pyisession")
    result.paths["html"].write_text(offline_html(profiler.output(HTMLRenderer())))
    result.paths["txt"].write_text(profiler.output_text(unicode=True, color=False))
    session.save(result.paths["session"])


def offline_html(html: str) -> str:
    """pyinstrument's page without its web-font request (it falls back to local fonts)."""
    return _FONT.sub("data:text/css,", html)


# ---- memory: memray -----------------------------------------------------------------------
@dataclass
class MemoryProfile(Profile):
    """A block's memory profile; filled when its ``with`` block ends."""

    peak_bytes: int = 0
    allocations: int = 0
    start_rss_bytes: int = 0
    stacks: pl.DataFrame | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "peak_mib": self.peak_bytes / 2**20,
            "allocations": self.allocations,
            "peak_rss_mib": self.peak_rss_bytes / 2**20,
            "start_rss_mib": self.start_rss_bytes / 2**20,
            "seconds": self.seconds,
        }

    def top(self, n: int = 10) -> pl.DataFrame:
        """The stacks holding the most memory at the peak (innermost frame first)."""
        return self._stacks().sort("bytes", descending=True).head(n)

    def _stacks(self) -> pl.DataFrame:
        return self._filled(self.stacks)

    def frame(self) -> pl.DataFrame:
        """The peak as a tree (outermost frame at the root): id, parent, label, bytes, allocations."""
        nodes: dict[str, dict[str, Any]] = {}
        for stack, size, count in self._stacks().select("stack", "bytes", "allocations").iter_rows():
            parent = ""
            path = ""
            for label in reversed(stack or ["<the profiled block>"]):
                path = f"{path}\x1f{label}"
                node = nodes.setdefault(
                    path, {"id": path, "parent": parent, "label": label, "bytes": 0, "allocations": 0}
                )
                node["bytes"] += size
                node["allocations"] += count
                parent = path
        schema = {
            "id": pl.String,
            "parent": pl.String,
            "label": pl.String,
            "bytes": pl.Int64,
            "allocations": pl.Int64,
        }
        return pl.DataFrame(list(nodes.values()), schema=schema)

    def figure(self, title: str | None = None) -> Any:
        title = title or (
            f"Memory at the peak: {self.name} (memray heap peak {self.peak_bytes / 2**20:.1f} MiB, "
            f"peak RSS {self.peak_rss_bytes / 2**20:.1f} MiB)"
        )
        return icicle(self.frame().with_columns(mib=pl.col("bytes") / 2**20), "mib", title, unit="MiB")

    def explain(self) -> list[str]:
        """The two figures, what each measures, and why they differ here."""
        heap, rss = self.peak_bytes / 2**20, self.peak_rss_bytes / 2**20
        larger = (
            "RSS is the larger: the interpreter, libraries and freed-but-kept memory count in it"
            if rss >= heap
            else "the heap peak is the larger: allocated memory never touched (not resident), or a "
            "spike shorter than the RSS sampling interval"
        )
        return [
            f"heap peak {heap:,.1f} MiB: {MEMORY_TERMS['heap peak']}.",
            f"peak RSS {rss:,.1f} MiB: {MEMORY_TERMS['peak RSS']}.",
            f"Here {larger}.",
        ]

    def save_page(self, path: str | os.PathLike[str] | None = None) -> Path:
        """The icicle as an HTML page that opens offline (plotly's script beside it, shared by
        every page in the folder), with what the two memory figures measure."""
        import html as html_lib

        page = Path(path) if path else self.folder / f"{self.name}.memory.html"
        body = self.figure().to_html(full_html=False, include_plotlyjs=False)
        notes = "".join(f"<li>{html_lib.escape(line)}</li>" for line in self.explain())
        script = page.parent / "plotly.min.js"
        if not script.exists():
            from plotly.offline import get_plotlyjs

            script.write_text(get_plotlyjs(), encoding="utf-8")
        page.write_text(
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>Memory: {html_lib.escape(self.name)}</title>"
            "<script src='plotly.min.js'></script></head><body style='font-family:sans-serif'>"
            f"<h1>Memory at the peak: {html_lib.escape(self.name)}</h1><ul>{notes}</ul>"
            "<p>Each bar is a call stack's memory alive at the heap peak (click to zoom). "
            f"Capture: {html_lib.escape(self.name)}.memray.bin (memray tree / summary / stats).</p>"
            f"{body}</body></html>",
            encoding="utf-8",
        )
        return page


class memory:  # noqa: N801 (used like a function: ``with profiling.memory(...)``)
    """Track the block's allocations with memray; save ``NAME.memray.bin`` and ``NAME.memory.json``.

    ``python_allocators=True`` counts every Python object allocation (pymalloc's arenas
    otherwise hide small objects: needed to compare allocation counts); ``native``
    records C stacks too. A class, not a generator: memray follows the Python stack
    from where tracking starts, and a suspended generator frame would cut every stack
    recorded in the block down to its innermost frame.
    """

    def __init__(
        self,
        name: str = "profile",
        out_dir: str | os.PathLike[str] | None = None,
        *,
        python_allocators: bool = False,
        native: bool = False,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.result = MemoryProfile(_check_name(name), profiles_dir(out_dir))
        self.capture = self.result.folder / f"{name}.memray.bin"
        self.clock = clock
        self.options = {"native_traces": native, "trace_python_allocators": python_allocators}

    def __enter__(self) -> MemoryProfile:
        import memray

        self.capture.unlink(missing_ok=True)  # memray refuses to overwrite a capture
        self.tracker = memray.Tracker(self.capture, memory_interval_ms=5, **self.options)
        self.started = self.clock()
        self.tracker.__enter__()
        return self.result

    def __exit__(self, *exc: object) -> None:
        self.tracker.__exit__(*exc)
        result = self.result
        result.seconds = self.clock() - self.started
        result.paths = {"capture": self.capture, "json": result.folder / f"{result.name}.memory.json"}
        read_capture(self.capture, result)
        summary = result.summary() | {"terms": MEMORY_TERMS, "top": result.top(20).to_dicts()}
        result.paths["json"].write_text(json.dumps(summary, indent=1, default=str))
        result.paths["page"] = result.save_page()


def read_capture(capture: str | os.PathLike[str], into: MemoryProfile | None = None) -> MemoryProfile:
    """A memray capture file read back: heap peak, allocation count, RSS, the stacks at the peak."""
    import memray

    path = Path(capture)
    if not path.exists():
        raise ProfilingError(
            f"memray capture {str(path)!r} does not exist: profile with profiling.memory first"
        )
    result = into or MemoryProfile(path.name.split(".")[0], path.parent)
    reader = memray.FileReader(path)
    try:
        meta = reader.metadata
        result.peak_bytes, result.allocations = int(meta.peak_memory), int(meta.total_allocations)
        snaps = list(reader.get_memory_snapshots())
        if snaps:
            result.start_rss_bytes = int(snaps[0].rss)
            result.peak_rss_bytes = max(int(s.rss) for s in snaps)
        rows = []
        for rec in reader.get_high_watermark_allocation_records(merge_threads=True):
            stack = [f"{fn} ({Path(file).name}:{line})" for fn, file, line in rec.stack_trace()]
            rows.append({"stack": stack, "bytes": int(rec.size), "allocations": int(rec.n_allocations)})
    finally:
        reader.close()
    schema = {"stack": pl.List(pl.String), "bytes": pl.Int64, "allocations": pl.Int64}
    frame = pl.DataFrame(rows, schema=schema)
    result.stacks = frame.with_columns(where=pl.col("stack").list.first().fill_null("<the profiled block>"))
    return result


# ---- the icicle both views share ------------------------------------------------------------
def icicle(frame: pl.DataFrame, value: str, title: str, unit: str, min_share: float = MIN_SHARE) -> Any:
    """A plotly icicle of a tree frame (``id``, ``parent``, ``label``, ``value``): nodes under
    ``min_share`` of the root are left out (their time or bytes stay in their parent's bar)."""
    import plotly.graph_objects as go

    if "label" not in frame.columns:
        frame = frame.with_columns(label=pl.col("function"))
    roots = frame.filter(pl.col("parent") == "")
    total = float(roots[value].sum()) if roots.height else 0.0
    shown = frame.filter(pl.col(value) >= total * min_share) if total > 0 else frame
    kept = set(shown["id"])
    shown = shown.filter((pl.col("parent") == "") | pl.col("parent").is_in(list(kept)))
    fig = go.Figure(
        go.Icicle(
            ids=shown["id"].to_list(),
            labels=shown["label"].to_list(),
            parents=shown["parent"].to_list(),
            values=shown[value].to_list(),
            branchvalues="total",
            tiling={"orientation": "v"},
            hovertemplate=f"%{{label}}<br>%{{value:.3f}} {unit} (%{{percentRoot:.1%}} of all)<extra></extra>",
            maxdepth=8,
        )
    )
    fig.update_layout(title=title, margin={"t": 50, "l": 10, "r": 10, "b": 10}, height=520)
    return fig


def overhead(
    fn: Callable[[], Any],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    repeat: int = 3,
    clock: Callable[[], float] = time.perf_counter,
) -> pl.DataFrame:
    """``fn`` timed plain, under pyinstrument and under memray, interleaved: best of ``repeat``
    seconds per mode and the ratio to plain (what profiling costs this workload)."""
    modes: dict[str, Callable[[], Any]] = {
        "plain": contextlib.nullcontext,
        "pyinstrument": lambda: cpu("overhead-cpu", out_dir, clock=clock),
        "memray": lambda: memory("overhead-memory", out_dir, clock=clock),
    }
    best = {m: float("inf") for m in modes}
    for _ in range(repeat):
        for mode, make in modes.items():
            t0 = clock()
            with make():
                fn()
            best[mode] = min(best[mode], clock() - t0)
    return pl.DataFrame(
        {"mode": list(best), "seconds": list(best.values()), "ratio": [best[m] / best["plain"] for m in best]}
    )


# ---- IPython: %%profile_cpu and %%profile_memory ------------------------------------------------
def magic_arguments(kind: str, line: str) -> tuple[str, str | None]:
    """``[NAME] [--out DIR]`` of a profiling magic: the name checked, anything else an error.

    >>> magic_arguments("cpu", "sync --out /tmp/x")
    ('sync', '/tmp/x')
    >>> magic_arguments("cpu", "bad name!")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    workbench.profiling.ProfilingError: %%profile_cpu takes [NAME] [--out DIR]...: unexpected 'name!'
    """
    import argparse
    import shlex

    usage = f"%%profile_{kind} takes [NAME] [--out DIR], not {line.strip()!r}"
    parser = argparse.ArgumentParser(prog=f"%%profile_{kind}", add_help=False, exit_on_error=False)
    parser.add_argument("name", nargs="?", default=f"cell-{kind}")
    parser.add_argument("--out", default=None)
    try:
        args, extra = parser.parse_known_args(shlex.split(line))
    except (argparse.ArgumentError, ValueError) as e:
        raise ProfilingError(f"{usage}: {e}") from None
    if extra:
        raise ProfilingError(f"{usage}: unexpected {' '.join(extra)!r}")
    return _check_name(args.name), args.out


def _magic(kind: str) -> Callable[[str, str], Any]:
    def run(line: str, cell: str) -> Any:
        from IPython import get_ipython
        from IPython.display import display

        name, out = magic_arguments(kind, line)
        shell = get_ipython()
        manager = cpu if kind == "cpu" else memory
        with manager(name, out) as prof:
            shell.ex(cell)
        display(prof.figure())
        return None

    run.__doc__ = f"%%profile_{kind} [NAME] [--out DIR]: profile the cell ({kind}), show it, save it."
    return run


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext workbench.profiling``: registers ``%%profile_cpu`` and ``%%profile_memory``."""
    ipython.register_magic_function(_magic("cpu"), "cell", "profile_cpu")
    ipython.register_magic_function(_magic("memory"), "cell", "profile_memory")


# ---- a Python script under the profiler (``workbench profile -- python script.py``) -----------
def run_script(argv: list[str]) -> None:
    """Run ``python SCRIPT [ARGS]`` (or ``python -m MODULE [ARGS]``) in this process, as
    ``__main__`` through :mod:`runpy`, with ``sys.argv`` set as the script expects and restored
    after. A ``SystemExit(0)`` is a normal end; another code is raised as an error."""
    import runpy
    import sys

    if not argv:
        raise ProfilingError("python needs a script: workbench profile -- python script.py [args]")
    module = argv[0] == "-m"
    if module and len(argv) < 2:
        raise ProfilingError("python -m needs a module: workbench profile -- python -m package.module")
    target = argv[1] if module else argv[0]
    if not module and not Path(target).is_file():
        raise ProfilingError(f"Script {target!r} not found: give the path of a .py file")
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = [target, *argv[2 if module else 1 :]]
    if not module:
        sys.path.insert(0, str(Path(target).resolve().parent))  # as `python script.py` does
    try:
        if module:
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(target, run_name="__main__")
    except SystemExit as e:
        if e.code not in (None, 0):
            raise ProfilingError(f"{target} exited with status {e.code}") from None
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path

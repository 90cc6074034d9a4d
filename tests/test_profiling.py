"""Profiling one-liners: artifacts parsed back, no profiler left attached, offline pages."""

from __future__ import annotations

import json
import re
import sys
import threading
from pathlib import Path

import pytest

from workbench import profiling


@pytest.fixture(autouse=True)
def no_profiler_left_attached(tmp_path_factory: pytest.TempPathFactory):
    yield
    assert sys.getprofile() is None, "a profiler is still attached (sys.setprofile)"
    assert not [t for t in threading.enumerate() if t.name == "rss-sampler"], (
        "RSS sampler thread left running"
    )
    import memray  # a second Tracker cannot start while one is active

    with memray.Tracker(tmp_path_factory.mktemp("probe") / "probe.bin"):
        pass


def _work(n: int = 300_000) -> int:
    return sum(_square(i) for i in range(n))


def _square(i: int) -> int:
    return i * i


def _allocate(n: int) -> list[bytes]:
    return [bytes(1024) for _ in range(n)]


def test_cpu_profile_saves_a_tree_that_parses_back(tmp_path: Path) -> None:
    from pyinstrument.session import Session

    ticks = iter([10.0, 12.5])
    with profiling.cpu("busy", tmp_path, clock=lambda: next(ticks)) as prof:
        _work()
    assert prof.seconds == 2.5 and prof.samples > 0 and prof.peak_rss_bytes > 0
    folder = tmp_path / "profiles"
    assert {p.name for p in folder.iterdir()} == {"busy.cpu.html", "busy.cpu.txt", "busy.pyisession"}
    session = Session.load(str(folder / "busy.pyisession"))
    functions = set()

    def walk(frame):
        functions.add(frame.function)
        for c in frame.children:
            walk(c)

    walk(session.root_frame())
    assert {"_work", "_square"} <= functions
    tree = prof.frame()
    assert tree.filter(tree["parent"] == "").height == 1
    assert "_work" in tree["function"].to_list() and "_work" in prof.text()
    assert prof.top(3).height <= 3
    assert len(prof.figure().data[0].ids) >= 2


def test_cpu_profile_html_opens_offline(tmp_path: Path) -> None:
    with profiling.cpu("page", tmp_path) as prof:
        _work(10_000)
    html = prof.html()
    assert "<script" in html and "fonts.googleapis" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']https?://""", html)


def test_memory_profile_peak_parses_back(tmp_path: Path) -> None:
    with profiling.memory("alloc", tmp_path) as mem:
        held = _allocate(20_000)  # ~20 MiB alive at the peak
        del held
    assert 19 * 2**20 < mem.peak_bytes < 40 * 2**20
    page = (tmp_path / "profiles" / "alloc.memory.html").read_text()
    assert "<script src='plotly.min.js'>" in page and (tmp_path / "profiles" / "plotly.min.js").exists()
    assert "heap peak" in page and "peak RSS" in page and "_allocate" in page
    assert not re.search(r"""(src|href)\s*=\s*["']https?://""", page)
    assert mem.peak_rss_bytes >= mem.start_rss_bytes > 0
    saved = json.loads((tmp_path / "profiles" / "alloc.memory.json").read_text())
    assert saved["peak_mib"] == pytest.approx(mem.peak_bytes / 2**20)
    again = profiling.read_capture(tmp_path / "profiles" / "alloc.memray.bin")
    assert again.peak_bytes == mem.peak_bytes and again.allocations == mem.allocations
    top = again.top(1).row(0, named=True)
    assert any(f.startswith("_allocate") for f in top["stack"]) and top["bytes"] > 19 * 2**20
    tree = again.frame()
    assert tree.filter(tree["parent"] == "")["bytes"].sum() == again.stacks["bytes"].sum()
    assert "_allocate" in " ".join(again.figure().data[0].labels)


def test_python_allocator_tracing_counts_objects(tmp_path: Path) -> None:
    with profiling.memory("objects", tmp_path, python_allocators=True) as mem:
        _keep = [object() for _ in range(50_000)]  # noqa: F841
    with profiling.memory("arenas", tmp_path) as arenas:
        _keep = [object() for _ in range(50_000)]  # noqa: F841
    assert mem.allocations >= 50_000 > arenas.allocations


def test_profilers_detach_when_the_block_raises(tmp_path: Path) -> None:
    with pytest.raises(ZeroDivisionError), profiling.cpu("fails", tmp_path):
        1 / 0  # noqa: B018
    with pytest.raises(ZeroDivisionError), profiling.memory("fails", tmp_path):
        1 / 0  # noqa: B018
    # the autouse fixture checks nothing is left attached


def test_bad_names_and_missing_captures_are_refused(tmp_path: Path) -> None:
    with (
        pytest.raises(profiling.ProfilingError, match=r"Invalid profile name '../x'"),
        profiling.cpu("../x", tmp_path),
    ):
        pass
    with pytest.raises(profiling.ProfilingError, match="does not exist"):
        profiling.read_capture(tmp_path / "nope.bin")
    with pytest.raises(profiling.ProfilingError, match="after its `with` block"):
        profiling.CpuProfile("x", tmp_path).frame()


def test_overhead_is_a_ratio_to_plain(tmp_path: Path) -> None:
    ticks = iter(range(100))
    frame = profiling.overhead(lambda: None, tmp_path, repeat=1, clock=lambda: float(next(ticks)))
    assert frame["mode"].to_list() == ["plain", "pyinstrument", "memray"]
    assert frame.filter(frame["mode"] == "plain")["ratio"].item() == 1.0


def test_cell_magics_profile_a_cell(tmp_path: Path) -> None:
    from IPython import get_ipython
    from IPython.testing.globalipapp import start_ipython

    ip = start_ipython() or get_ipython()  # started once per process
    ip.run_line_magic("load_ext", "workbench.profiling")
    ip.user_ns["_work"] = _work
    ip.run_cell_magic("profile_cpu", f"magic-cpu --out {tmp_path}", "total = _work(50_000)")
    ip.run_cell_magic("profile_memory", f"magic-mem --out {tmp_path}", "blob = bytearray(8 * 2**20)")
    assert ip.user_ns["total"] == _work(50_000) and len(ip.user_ns["blob"]) == 8 * 2**20
    assert (tmp_path / "profiles" / "magic-cpu.cpu.html").exists()
    assert profiling.read_capture(tmp_path / "profiles" / "magic-mem.memray.bin").peak_bytes >= 8 * 2**20


def test_bad_magic_arguments_are_errors_not_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from IPython import get_ipython
    from IPython.testing.globalipapp import start_ipython

    monkeypatch.chdir(tmp_path)
    ip = start_ipython() or get_ipython()  # started once per process
    ip.run_line_magic("load_ext", "workbench.profiling")
    for line, why in (
        ("bad name!", "unexpected 'name!'"),
        ("bad!", "Invalid profile name 'bad!'"),
        ("x --out", "--out"),
        ("x --outt y", "unexpected '--outt y'"),
    ):
        with pytest.raises(profiling.ProfilingError, match=re.escape(why)):
            ip.run_cell_magic("profile_cpu", line, "1")
    assert list(tmp_path.iterdir()) == [], "a bad magic line made files"
    assert profiling.magic_arguments("memory", "") == ("cell-memory", None)
    assert profiling.magic_arguments("cpu", "'x' --out 'a b'") == ("x", "a b")


# ---- workbench profile ------------------------------------------------------------------------
def test_cli_profiles_a_command_and_saves_its_artifacts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from workbench.cli import main

    monkeypatch.setenv("WORKBENCH_PROGRESS", "0")
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(
        main, ["profile", "--out", str(out), "--", "generate", str(tmp_path / "ds"), "--scale", "tiny"]
    )
    assert result.exit_code == 0, result.output
    assert "CPU profile:" in result.output and "generate" in result.output
    assert (out / "profiles" / "generate-cpu.cpu.html").exists()
    result = runner.invoke(
        main,
        [
            "profile",
            "--memory",
            "--name",
            "again",
            "--out",
            str(out),
            "--",
            "generate",
            str(tmp_path / "ds"),
            "--scale",
            "tiny",
        ],
    )
    assert result.exit_code == 0, result.output
    assert re.search(
        r"Memory profile: memray heap peak [\d,.]+ MiB, [\d,]+ allocations, peak RSS", result.output
    )
    assert profiling.read_capture(out / "profiles" / "again.memray.bin").peak_bytes > 0


def test_memory_summary_says_what_each_figure_measures(tmp_path: Path) -> None:
    mem = profiling.MemoryProfile("m", tmp_path, peak_bytes=1072 * 2**20, peak_rss_bytes=433 * 2**20)
    heap, rss, why = mem.explain()
    assert heap.startswith("heap peak 1,072.0 MiB: memray's tracked allocations")
    assert rss.startswith("peak RSS 433.0 MiB: the process's resident pages")
    assert "the heap peak is the larger: allocated memory never touched" in why
    mem.peak_rss_bytes = 2000 * 2**20
    assert "RSS is the larger: the interpreter, libraries" in mem.explain()[2]


SCRIPT = """
import sys

def build(n):
    return [bytes(1024) for _ in range(n)]

if __name__ == "__main__":
    held = build(int(sys.argv[1]))
    print("built", len(held), sys.argv[2:])
    sys.exit(int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else 0)
"""


def test_cli_profiles_a_python_script_and_its_page_opens_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chromium_dom
) -> None:
    from click.testing import CliRunner

    from workbench.cli import main

    script = tmp_path / "my_job.py"
    script.write_text(SCRIPT)
    runner = CliRunner()
    out = tmp_path / "out"
    argv_before = sys.argv[:]
    result = runner.invoke(
        main, ["profile", "--memory", "--out", str(out), "--", "python", str(script), "20000", "--flag"]
    )
    assert result.exit_code == 0, result.output
    assert "built 20000 ['--flag']" in result.output  # run as __main__ with its own argv
    assert sys.argv == argv_before
    assert "heap peak" in result.output and "memray's tracked allocations" in result.output
    assert "peak RSS" in result.output and "resident pages" in result.output
    page = out / "profiles" / "my-job-memory.memory.html"
    assert page.exists() and f"Open {page}" in result.output
    assert profiling.read_capture(out / "profiles" / "my-job-memory.memray.bin").peak_bytes > 19 * 2**20
    dom = chromium_dom(page, budget_ms=10000)
    assert 'class="main-svg"' in dom, dom[:500]  # plotly drew the icicle with no network
    assert "build (my_job.py" in dom
    result = runner.invoke(main, ["profile", "--out", str(out), "--", "python", str(script), "10", "3"])
    assert result.exit_code == 1 and "exited with status 3" in result.output and "Saved:" in result.output
    result = runner.invoke(main, ["profile", "--out", str(out), "--", "python", str(tmp_path / "nope.py")])
    assert result.exit_code == 1 and "Script" in result.output and "not found" in result.output


def test_cli_profiles_a_module_and_a_workbench_command_spelled_out(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from workbench.cli import main

    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(main, ["profile", "--out", str(out), "--", "python", "-m", "json.tool", "--help"])
    assert result.exit_code == 0, result.output
    assert "CPU profile:" in result.output and (out / "profiles" / "tool-cpu.cpu.html").exists()
    result = runner.invoke(main, ["profile", "--out", str(out), "--", "workbench", "pg", "--help"])
    assert result.exit_code == 0, result.output
    assert (out / "profiles" / "pg-cpu.cpu.html").exists()


def test_cli_profile_reports_bad_commands(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from workbench.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["profile", "--out", str(tmp_path), "--", "nosuch"])
    assert result.exit_code == 1
    assert "Error: Unknown command 'nosuch' to profile: expected a Python script" in result.output
    assert "generate" in result.output and "ingest" in result.output
    result = runner.invoke(main, ["profile", "--out", str(tmp_path), "--", "profile", "--", "load"])
    assert result.exit_code == 1 and "cannot profile itself" in result.output
    # the profiled command's own error comes after its profile is saved
    result = runner.invoke(
        main,
        ["profile", "--out", str(tmp_path), "--", "load", str(tmp_path / "missing"), "--engine", "sqlite"],
    )
    assert result.exit_code != 0 and "Saved:" in result.output


# ---- the exported notebook 04 opens offline, profiles included --------------------------------
def test_notebook_04_report_opens_offline_with_its_profiles(tmp_path: Path, chromium_dom) -> None:
    import html as html_lib

    from workbench import report

    out = tmp_path / "reports"
    small = {
        "scale": "tiny",
        "engines": ["sqlite"],
        "reader_max_mb": 0.5,
        "reader_factor": 2,
        "variants": ["whole/orjson", "stream/orjson", "stream/msgspec"],
        "writer_rows": 2_000,
        "writers": ["executemany", "bulk"],
        "batch_sizes": [10, 100],
        "screen_seconds": 0.2,
        "sleeps_ms": [1],
    }
    report.build_report(out, small, only=["04_batch_streaming"], data_dir=tmp_path / "data", progress=False)
    page = (out / "04_batch_streaming.html").read_text()
    assert not re.search(r"<(script|link|img|iframe)[^>]*(src|href)=[\"']https?:", page), "a network resource"
    srcdoc = re.search(r'<iframe srcdoc="([^"]*)"', page)
    assert srcdoc, "the pyinstrument page is not embedded"
    inner = html_lib.unescape(srcdoc.group(1))
    assert "<script" in inner and "fonts.googleapis" not in inner
    assert "UserWarning" not in page and "PosixPath(" not in page  # no warning or repr in the report
    profiles = {p.name for p in (out / "profiles").iterdir()}
    assert {"04-slowest.cpu.html", "04-whole.memray.bin", "04-whole.memory.html", "plotly.min.js"} <= profiles
    saved = {
        v["item"]: v
        for v in json.loads((out / "04_batch_streaming" / "verdicts.json").read_text())
        if "item" in v
    }
    assert set(saved) == {"streaming", "success:memory", "batch_size", "fixed_sleep"}
    assert "the largest file in this run" in saved["streaming"]["detail"]  # short of the log day: said so
    assert saved["batch_size"]["conditions"]["rows"] == 2_000 and saved["batch_size"]["engine"] == "sqlite"
    dom = chromium_dom(out / "04_batch_streaming.html", budget_ms=20000)
    # every plotly chart drawn (scaling, writers, pacing, breakdown, CPU icicle, memory icicle, pools)
    assert dom.count('class="main-svg"') >= 7, dom[:500]
    assert "<iframe" in dom

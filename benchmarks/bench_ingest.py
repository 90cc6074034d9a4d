"""Ingest: our Claude Code ingest against ccusage and DuckDB on the same transcript tree, one run.

Builds a tree of --size MB in the real format from the four real fixtures
(tests/fixtures/claude-code) with fresh session/message/request/tool ids and shifted
timestamps (cached under --data), in one of two shapes (--shape):

  copies      whole copies of the fixtures: files of 38-286 KB, 40 project folders
  real        one heavy user's ~/.claude: thousands of files whose sizes are log-normal
              around a mean of 110 KB (median about 40 KB, a few MB at the tail), a
              project folder per 30 files (Zipf-spread), a fifth of them subagents

then measures side by side, each run a fresh subprocess (wall time, CPU time, and peak
memory of its whole process tree: the sum of RSS, sampled every 10 ms, and the sum of
PSS, which counts shared pages once, every 100 ms):

  workbench   workbench ingest TREE --out DS (all five tables, dedup, quarantine, side
              files), the command a user runs, progress bar off; by default one parser
              process beside the main one when it may run on two or more CPUs
  workbench-N the same with --workers N (0-4): N parser processes beside the main one
              (0: one process, the least memory)
  against-N   with --against DIR: the same command as workbench-N (0-1) run from DIR, a
              checkout of another commit (before/after comparisons)
  ccusage     ccusage daily --json --offline   (native binary; sums tokens only)
  duckdb      CREATE TABLE t AS SELECT * FROM read_ndjson(glob, union_by_name=true)

Targets: workbench wall time within 2x of ccusage's; peak RSS <= 250 MB at 1 GB and
within 20% of that at 100 MB.

    .venv/bin/python benchmarks/bench_ingest.py --shape real --size 1000 --repeat 3
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import math
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "claude-code" / "projects"
_ID = re.compile(
    rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|(?:msg|req|toolu)_[0-9A-Za-z]{10,}"
    rb"|a36efb2a1231c41e2|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
)


def _fresh(seed: bytes, token: bytes, hours: int) -> bytes:
    """A fresh id for ``token`` (the same for the same ``seed``), or a timestamp ``hours`` later."""
    if token[:1].isdigit() and token.endswith(b"Z") and b"T" in token:
        ts = datetime.strptime(token.decode(), "%Y-%m-%dT%H:%M:%S.%fZ") + timedelta(hours=hours)
        return (ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z").encode()
    digest = hashlib.blake2b(seed + b":" + token, digest_size=16).hexdigest()
    if token.startswith((b"msg_", b"req_", b"toolu_")):
        return token.split(b"_")[0] + b"_" + digest[: len(token) - token.index(b"_") - 1].encode()
    if token == b"a36efb2a1231c41e2":
        return b"a" + digest[:16].encode()
    return f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-a{digest[17:20]}-{digest[20:32]}".encode()


def _freshener(seed: bytes, hours: int, memo: dict[bytes, bytes] | None = None):
    """A ``re.sub`` callback giving every id its fresh one under ``seed`` (``memo``: fixed ones)."""
    memo = {} if memo is None else memo

    def sub(m: re.Match[bytes]) -> bytes:
        tok = m.group(0)
        if tok not in memo:
            memo[tok] = _fresh(seed, tok, hours)
        return memo[tok]

    return sub


def build_tree(dest: Path, size_mb: int) -> Path:
    """A ``<dest>/projects`` tree of about ``size_mb`` MB; reused when already built."""
    marker = dest / "BUILT"
    if marker.exists():
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    sources = [(p.relative_to(FIXTURES), p.read_bytes()) for p in sorted(FIXTURES.rglob("*.jsonl"))]
    per_copy = sum(len(b) for _, b in sources)
    copies = max(1, size_mb * 1_000_000 // per_copy)
    for copy in range(copies):
        sub = _freshener(b"%d" % copy, 6 * copy)
        for rel, data in sources:
            parts = [_ID.sub(sub, part.encode()).decode() for part in rel.parts[1:]]
            target = dest / "projects" / f"{rel.parts[0]}-{copy % 40}" / Path(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_ID.sub(sub, data))
    marker.write_text(f"{copies} copies of {per_copy} bytes\n")
    return dest


#: The real-shaped tree: file sizes log-normal around a mean of 110 KB (median about
#: 36 KB, a few MB at the tail), a Zipf spread over one project folder per 30 files, a
#: fifth of the files subagents under ``<session>/subagents/``: one heavy user's ~/.claude.
MEAN_KB, SIGMA, FILES_PER_PROJECT, AGENT_SHARE = 110, 1.5, 30, 0.2


def build_real_tree(dest: Path, size_mb: int, seed: int = 0) -> Path:
    """A ``<dest>/projects`` tree of about ``size_mb`` MB in thousands of files of a long
    tail of sizes, cut from the fixtures with fresh ids (each file its own session, each
    pass over a fixture within a file its own message ids); reused when already built."""
    marker = dest / "BUILT"
    if marker.exists():
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    rng = random.Random(seed)
    fixtures = sorted(FIXTURES.rglob("*.jsonl"))
    agent = next(p for p in fixtures if p.stem.startswith("agent-"))
    sessions = [(p.stem.encode(), p.read_bytes().splitlines(keepends=True)) for p in fixtures if p != agent]
    agent_lines = agent.read_bytes().splitlines(keepends=True)
    parent = agent.parent.parent.name.encode()  # the session the agent fixture belongs to
    sizes: list[int] = []
    mu = math.log(MEAN_KB * 1000) - SIGMA**2 / 2
    while sum(sizes) < size_mb * 1_000_000:
        sizes.append(min(64 << 20, int(rng.lognormvariate(mu, SIGMA))))
    projects = max(1, len(sizes) // FILES_PER_PROJECT)
    weights = [1 / (k + 1) for k in range(projects)]
    last_session: dict[int, str] = {}
    for n, size in enumerate(sizes):
        project = rng.choices(range(projects), weights)[0]
        folder = dest / "projects" / f"-home-user-src-project-{project:04d}"
        hours = rng.randrange(24 * 180)
        own = hashlib.blake2b(b"file %d" % n, digest_size=16).hexdigest()
        sid = f"{own[:8]}-{own[8:12]}-4{own[13:16]}-a{own[17:20]}-{own[20:32]}"
        if project in last_session and rng.random() < AGENT_SHARE:
            stem, lines = parent, agent_lines
            sid, agent_id = last_session[project], "a" + own[:16]
            fixed = {parent: sid.encode(), b"a36efb2a1231c41e2": agent_id.encode()}
            target = folder / sid / "subagents" / f"agent-{agent_id}.jsonl"
        else:
            stem, lines = rng.choices(sessions, [sum(map(len, lines)) for _, lines in sessions])[0]
            fixed = {stem: sid.encode()}
            target = folder / f"{sid}.jsonl"
            last_session[project] = sid
        out, written, start, wrap = [], 0, rng.randrange(len(lines)), 0
        while written < size or not out:  # one pass over the fixture at a time, fresh ids each
            taken = []
            for line in lines[start:]:
                taken.append(line)
                written += len(line)
                if written >= size:
                    break
            sub = _freshener(b"%d:%d" % (n, wrap), hours + 6 * wrap, dict(fixed))
            out.append(_ID.sub(sub, b"".join(taken)))
            start, wrap = 0, wrap + 1
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"".join(out))
    marker.write_text(f"{len(sizes)} files, {sum(sizes)} bytes, {projects} projects\n")
    return dest


SHAPES = {"copies": ("bench-ingest", build_tree), "real": ("bench-real", build_real_tree)}


def one_file(tree: Path) -> Path:
    """The same transcripts concatenated into one file (``<tree>-one/projects/p/one.jsonl``):
    the case of a single huge transcript; reused when already built."""
    dest = tree.with_name(tree.name + "-one")
    target = dest / "projects" / "p" / "one.jsonl"
    if (dest / "BUILT").exists():
        return dest
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        for p in sorted(tree.rglob("*.jsonl")):
            out.write(p.read_bytes())
    (dest / "BUILT").write_text(f"{tree.name} in one file\n")
    return dest


def _tree_memory(tree: list[psutil.Process], pss: bool) -> tuple[int, int]:
    """(sum of RSS, sum of PSS or 0 unless ``pss``) in bytes over the processes, now."""
    total_rss = total_pss = 0
    for p in tree:
        try:
            info = p.memory_full_info() if pss else p.memory_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total_rss += info.rss
        total_pss += getattr(info, "pss", info.rss) if pss else 0
    return total_rss, total_pss


def measure(args: list[str], env: dict[str, str] | None, cwd: Path) -> tuple[float, float, float, float]:
    """Wall seconds, the peak tree RSS and PSS (MiB), and the CPU seconds (user + sys, its
    children included) of one subprocess. CPU time holds better than wall time on a loaded machine.

    RSS is sampled every 10 ms, PSS (which reads /proc/PID/smaps_rollup) every 100 ms and
    the process tree every 200 ms: about 2% of a core. Sampling all of them every 10 ms
    took a third of a core, which slowed the tools that use both cores.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    root = psutil.Process(proc.pid)
    tree, peak_rss, peak_pss, tick = [root], 0, 0, 0
    while proc.poll() is None:
        with contextlib.suppress(psutil.NoSuchProcess):
            if tick % 20 == 0:
                tree = [root, *root.children(recursive=True)]
            rss, pss = _tree_memory(tree, pss=tick % 10 == 0)
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        tick += 1
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode:
        raise SystemExit(f"{args[:3]} failed ({proc.returncode}): {err[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return elapsed, peak_rss / 2**20, peak_pss / 2**20, cpu


def tree_arguments(doc: str | None, size: int, repeat: int) -> argparse.ArgumentParser:
    """The options of a bench over a transcript tree: --size, --shape, --repeat, --data."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=size, help=f"tree size in MB (default {size})")
    parser.add_argument(
        "--shape",
        choices=SHAPES,
        default="copies",
        help="copies: whole copies of the four fixtures (about 120 KB a file, 40 project folders); "
        "real: one heavy user's ~/.claude (a long tail of file sizes, a project folder per 30 files)",
    )
    parser.add_argument("--repeat", type=int, default=repeat, help="runs of each (median reported)")
    parser.add_argument("--data", default="data", help="where the tree is cached (default data/)")
    return parser


def tree(args: argparse.Namespace) -> Path:
    """The tree ``tree_arguments`` names, built (and cached) if need be."""
    name, build = SHAPES[args.shape]
    return build(Path(args.data).resolve() / f"{name}-{args.size}mb", args.size)


def main() -> None:
    parser = tree_arguments(__doc__, size=500, repeat=3)
    parser.add_argument(
        "--tools", default="workbench,workbench-0,ccusage,duckdb", help="comma-separated subset"
    )
    parser.add_argument(
        "--one-file", action="store_true", help="the same tree concatenated into one transcript file"
    )
    parser.add_argument(
        "--against",
        type=Path,
        help="a checkout of another commit (git worktree add /tmp/base COMMIT): adds against-0 "
        "and against-1 to the tools, its ingest with 0 and 1 workers",
    )
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from workbench.sources.claude_code import find_ccusage

    root = tree(args)
    if args.one_file:
        root = one_file(root)
    nbytes = sum(p.stat().st_size for p in root.rglob("*.jsonl"))
    nfiles = sum(1 for _ in root.rglob("*.jsonl"))
    # every tool runs in this scratch folder: `python -m` imports from the current folder
    # first, which must not be a checkout of the package
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-", dir=root.parent))
    python = sys.executable
    duck_code = (
        "import duckdb, sys; con = duckdb.connect(sys.argv[2]); "
        'con.execute("CREATE OR REPLACE TABLE t AS SELECT * FROM read_ndjson(?, union_by_name=true, '
        "ignore_errors=true, maximum_object_size=67108864)\", [sys.argv[1] + '/projects/**/*.jsonl']); "
        "print(con.sql('SELECT count(*) FROM t').fetchall(), file=sys.stderr)"
    )
    native = None
    try:
        wrapper = find_ccusage(ROOT)
        candidate = (
            wrapper.resolve().parent.parent.parent / "@ccusage" / "ccusage-linux-x64" / "bin" / "ccusage"
        )
        native = candidate if candidate.exists() else wrapper
    except Exception as e:  # a missing ccusage only drops its row
        print(f"ccusage not measured: {e}")
    ingest = [python, "-m", "workbench", "ingest", str(root), "--out", str(work / "ds")]
    ours = {"WORKBENCH_PROGRESS": "0", "PYTHONPATH": str(ROOT)}
    commands = {
        "workbench": (ingest, ours),
        **{f"workbench-{n}": ([*ingest, "--workers", str(n)], ours) for n in range(5)},
        **{
            f"against-{n}": (
                [*ingest, "--workers", str(n)],
                {**ours, "PYTHONPATH": str(args.against.resolve())},
            )
            for n in range(2 if args.against else 0)
        },
        "ccusage": (
            [str(native), "daily", "--json", "--offline"],
            {**os.environ, "CLAUDE_CONFIG_DIR": str(root)},
        ),
        "duckdb": ([python, "-c", duck_code, str(root), str(work / "t.duckdb")], None),
    }
    tools = args.tools + (",against-0,against-1" if args.against else "")
    chosen = [t for t in tools.split(",") if t in commands and (t != "ccusage" or native)]
    results: dict[str, list[tuple[float, float, float, float]]] = {t: [] for t in chosen}
    for _ in range(args.repeat):
        for tool in chosen:  # interleaved, so drift on the shared machine hits all tools alike
            for leftover in (work / "ds", work / "t.duckdb"):
                shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(True)
            cmd, env = commands[tool]
            results[tool].append(measure(cmd, {**os.environ, **(env or {})}, cwd=work))
    shutil.rmtree(work, ignore_errors=True)

    runs = f"{args.repeat} runs each (median)"
    print(f"\ntree ({args.shape}): {nbytes / 1e6:,.0f} MB in {nfiles:,} files, {runs}\n")
    cc = results.get("ccusage")
    base = [statistics.median(r[i] for r in cc) for i in (0, 3)] if cc else None
    print("| tool | wall time | MB/s | peak RSS (tree) | peak PSS (tree) | CPU | time / CPU vs ccusage |")
    print("|---|---|---|---|---|---|---|")
    for tool, runs in results.items():
        wall, cpu = (statistics.median(r[i] for r in runs) for i in (0, 3))
        rss, pss = max(r[1] for r in runs), max(r[2] for r in runs)
        ratios = f"{wall / base[0]:.2f}x / {cpu / base[1]:.2f}x" if base else "-"
        mem = f"{rss:,.0f} MiB | {pss:,.0f} MiB"
        print(f"| {tool} | {wall:.2f} s | {nbytes / 1e6 / wall:,.0f} | {mem} | {cpu:.2f} s | {ratios} |")


if __name__ == "__main__":
    main()

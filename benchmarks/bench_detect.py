"""Detect: throughput and peak memory of `workbench detect`'s pass against pgBadger, one run.

Generates a PostgreSQL log of --size MB in jsonlog and in stderr format (cached under
--data; seeded), written as PostgreSQL 15 writes them under log_min_duration_statement = 0:
requests of the service's read API over 16 pooled connections, each request the
sessions query then messages and windows per session (N+1) or the batch, in the
extended protocol (bind + execute lines, bound values in DETAIL), plus a share of
simple-protocol statements carrying literals (pgbench's UPDATE, each text new).
Then, side by side, each run a fresh process (wall time and peak RSS from /usr/bin/time):

  workbench   the analysis `workbench detect` runs (read, fingerprint, group, detect)
  pgbadger    pgbadger -j 1 -f jsonlog|stderr [-p PREFIX] -o report.html (one core)

Targets: throughput >= 10x pgBadger's; peak RSS <= 300 MB.

    .venv/bin/python benchmarks/bench_detect.py --size 250 --repeat 1
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "%m [%p] %q%u@%d/%a "
SESSIONS = (
    "SELECT id, project_id, external_id, title, model, git_branch, is_sidechain, message_count, created_at, "
    "updated_at FROM sessions WHERE project_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
)
MESSAGES = (
    "SELECT id, session_id, external_id, role, type, content, timestamp, model, input_tokens, output_tokens, "
    "cache_creation_tokens, cache_read_tokens FROM messages WHERE session_id = $1 ORDER BY timestamp, id"
)
WINDOWS = (
    "SELECT id, session_id, start_time, end_time, last_activity, message_count, total_tokens "
    "FROM session_windows WHERE session_id = $1 ORDER BY start_time, id"
)
BATCH_MESSAGES = MESSAGES.replace("= $1", "= ANY($1::bigint[])")
BATCH_WINDOWS = WINDOWS.replace("= $1", "= ANY($1::bigint[])")
LITERAL = "UPDATE pgbench_accounts SET abalance = abalance + {} WHERE aid = {}"


class Writer:
    def __init__(self, fmt: str, out) -> None:
        self.fmt, self.out = fmt, out
        self.line = 0

    def write(self, t: datetime, pid: int, message: str, detail: str | None = None) -> None:
        stamp = t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d} UTC"
        self.line += 1
        if self.fmt == "jsonlog":
            record = {
                "timestamp": stamp,
                "user": "app",
                "dbname": "chat",
                "pid": pid,
                "remote_host": "10.0.0.7",
                "remote_port": 40000 + pid % 1000,
                "session_id": f"6b15{pid:04x}.{pid:x}",
                "line_num": self.line,
                "ps": "SELECT",
                "session_start": "2026-12-06 09:00:00 UTC",
                "vxid": f"{pid % 64}/{self.line}",
                "txid": 0,
                "error_severity": "LOG",
                "message": message,
                "application_name": "chat-api",
                "backend_type": "client backend",
                "query_id": 0,
            }
            if detail:
                record["detail"] = detail
            self.out.write(orjson.dumps(record) + b"\n")
        else:
            head = f"{stamp} [{pid}] app@chat/chat-api "
            text = head + "LOG:  " + message + "\n"
            if detail:
                text += head + "DETAIL:  " + detail + "\n"
            self.out.write(text.encode())


def generate(path: Path, fmt: str, size_mb: int, seed: int = 7) -> Path:
    if path.exists() and path.stat().st_size >= size_mb * 1e6:
        return path
    rng = random.Random(seed)
    t = datetime(2026, 12, 6, 9, 0, 0)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as out:
        w = Writer(fmt, out)
        while out.tell() < size_mb * 1e6:
            pid = 5000 + rng.randrange(16)
            t += timedelta(milliseconds=rng.uniform(1, 150))
            if rng.random() < 0.15:  # simple protocol, literals: each text new
                sql = LITERAL.format(rng.randint(-5000, 5000), rng.randint(1, 10**7))
                w.write(t, pid, f"duration: {rng.uniform(0.05, 2):.3f} ms  statement: {sql}")
                continue
            statements = [(SESSIONS, f"$1 = '{rng.randrange(500)}', $2 = '20'")]
            ids = [rng.randrange(10**6) for _ in range(rng.randint(1, 20))]
            if rng.random() < 0.5:
                for i in ids:
                    statements += [(MESSAGES, f"$1 = '{i}'"), (WINDOWS, f"$1 = '{i}'")]
            else:
                arr = "'{" + ",".join(map(str, ids)) + "}'"
                statements += [(BATCH_MESSAGES, f"$1 = {arr}"), (BATCH_WINDOWS, f"$1 = {arr}")]
            for n, (sql, params) in enumerate(statements):
                name = f"stmtcache_{n % 3}"
                bind, run = rng.uniform(0.01, 0.05), rng.uniform(0.5, 10)
                t += timedelta(milliseconds=bind + rng.uniform(0.05, 0.3))
                w.write(t, pid, f"duration: {bind:.3f} ms  bind {name}: {sql}", params)
                t += timedelta(milliseconds=run)  # the time stamp is written as it ends
                w.write(t, pid, f"duration: {run:.3f} ms  execute {name}: {sql}", params)
    tmp.rename(path)
    return path


def timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of ``command`` in a fresh process."""
    with tempfile.NamedTemporaryFile("r") as f:
        subprocess.run(
            ["/usr/bin/time", "-f", "%e %M", "-o", f.name, *command],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "WORKBENCH_PROGRESS": "0"},
        )
        wall, kb = f.read().split()[-2:]
    return float(wall), int(kb) / 1024


def ours(path: Path, fmt: str) -> list[str]:
    code = (
        "import sys; from workbench.evidence import analysis; "
        "ev = analysis.analyse([sys.argv[1]], format=sys.argv[2], prefix=sys.argv[3], progress=False); "
        "assert not ev.findings.is_empty()"
    )
    return [sys.executable, "-c", code, str(path), fmt, PREFIX]


def pgbadger(path: Path, fmt: str, out: Path) -> list[str]:
    cmd = ["pgbadger", "-q", "-j", "1", "-f", fmt, "-o", str(out / "pgbadger.html")]
    if fmt == "stderr":
        cmd += ["-p", PREFIX]
    return [*cmd, str(path)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=250, help="MB per log file")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "bench_detect")
    ap.add_argument("--formats", default="jsonlog,stderr")
    args = ap.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for fmt in args.formats.split(","):
        path = generate(args.data / f"pg_{args.size}mb.{fmt}", fmt, args.size)
        mb = path.stat().st_size / 1e6
        results: dict[str, list[tuple[float, float]]] = {"workbench": [], "pgbadger": []}
        with tempfile.TemporaryDirectory() as out:
            for _ in range(args.repeat):
                results["workbench"].append(timed(ours(path, fmt)))
                results["pgbadger"].append(timed(pgbadger(path, fmt, Path(out))))
        walls = {k: statistics.median(w for w, _ in v) for k, v in results.items()}
        print(f"\n{fmt}: {mb:.0f} MB, {args.repeat} run(s) each, medians")
        print("| tool | wall s | MB/s | peak RSS MB |\n|---|---|---|---|")
        for k, v in results.items():
            rss = max(r for _, r in v)
            print(f"| {k} | {walls[k]:.1f} | {mb / walls[k]:.1f} | {rss:.0f} |")
        print(f"workbench / pgbadger throughput: {walls['pgbadger'] / walls['workbench']:.1f}x")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

"""The service against a minimal app on one endpoint: what the workbench's own layers cost.

``workbench serve --strategy batch`` and benchmarks/minimal_app.py (plain ASGI, an async
psycopg pool, orjson) serve ``/projects/{largest}/recent?limit=20`` from the same
database with the same pool size, one uvicorn process each. Their bodies are checked
equal first; then ``wrk -t2 -c16`` runs on each in turn, interleaved over ``--rounds``
(the machine is shared). ``--variants`` adds service settings to compare (e.g.
``trace_sql=true`` to see what the SQL trace comments cost). Target: the service within
1.25x of the minimal app's throughput. Each server process's CPU time per request is
measured too: less sensitive than throughput to how the shared machine's cores are split.

    .venv/bin/python benchmarks/bench_service_vs_minimal.py --url postgresql://.../medium --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import urllib.request
from pathlib import Path

import polars as pl
import psutil

from workbench import strategies
from workbench.engines import open_engine
from workbench.engines.server import free_port
from workbench.service.load import run_wrk
from workbench.service.process import ServiceProcess, answers, end_process, wait_until_ready
from workbench.service.settings import ServiceError, Settings

HERE = Path(__file__).resolve().parent


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


class MinimalApp:
    def __init__(self, url: str, pool_size: int) -> None:
        self.port = free_port()
        env = dict(os.environ, MINIMAL_APP_DATABASE_URL=url, MINIMAL_APP_POOL=str(pool_size))
        command = [sys.executable, "-m", "uvicorn", "--app-dir", str(HERE), "minimal_app:app"]
        command += [
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        self.proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until_ready(
            self.proc,
            lambda: answers(self.url + "/health"),
            "the minimal app",
            lambda: "",
            self.stop,
            ServiceError,
            30,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        return [self.proc.pid]

    def stop(self) -> None:
        end_process(self.proc)


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        t = psutil.Process(pid).cpu_times()
        total += t.user + t.system
    return total


def parse_variant(text: str) -> dict:
    key, value = text.split("=", 1)
    return {key: json.loads(value)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="a database with the dataset loaded")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--pool-size", type=int, default=8)
    parser.add_argument("--variants", default="", help="service settings to add, e.g. trace_sql=true")
    args = parser.parse_args()
    with open_engine("postgres", args.url) as engine:
        project_id, _ = strategies.largest_project(engine)
    path = f"/projects/{project_id}/recent?limit=20"
    configs = {"service": Settings(database_url=args.url, strategy="batch", pool_size=args.pool_size)}
    for variant in filter(None, args.variants.split(",")):
        configs[f"service {variant}"] = Settings(
            **(json.loads(configs["service"].to_json()) | parse_variant(variant))
        )
    print(f"load average before: {os.getloadavg()}")
    servers = {"minimal": MinimalApp(args.url, args.pool_size)}
    try:
        for name, settings in configs.items():
            servers[name] = ServiceProcess.start(settings)
        bodies = {name: json.loads(get(s.url + path)) for name, s in servers.items()}
        reference = bodies["minimal"]
        messages = sum(len(s["messages"]) for s in reference["sessions"])
        size = len(get(servers["minimal"].url + path))
        for name, body in bodies.items():
            assert body == reference, f"{name} answers differently from the minimal app"
        print(f"bodies equal: {len(reference['sessions'])} sessions, {messages} messages, {size:,} bytes")
        for s in servers.values():
            run_wrk(s.url + path, seconds=1)  # warm-up: prepared statements, caches
        rows = []
        for r in range(args.rounds):
            for name, s in servers.items():
                pids = s.pids()
                before = cpu_seconds(pids)
                w = run_wrk(s.url + path, threads=2, connections=16, seconds=args.seconds)
                cpu_ms = (cpu_seconds(pids) - before) * 1000 / max(1, w.requests)
                rows.append(
                    {
                        "round": r + 1,
                        "app": name,
                        "rps": round(w.ok_rps, 1),
                        "p50_ms": w.p50_ms,
                        "p99_ms": w.p99_ms,
                    }
                )
                rows[-1] |= {"cpu_ms_per_req": round(cpu_ms, 2), "non_2xx": w.status_errors}
                print(rows[-1], flush=True)
        health = run_wrk(servers["service"].url + "/health", threads=2, connections=16, seconds=args.seconds)
    finally:
        for s in servers.values():
            s.stop()
    table = pl.DataFrame(rows)
    medians = table.group_by("app", maintain_order=True).agg(
        pl.col("rps", "cpu_ms_per_req", "p50_ms", "p99_ms").median()
    )
    with pl.Config(tbl_cols=20, tbl_width_chars=200, tbl_hide_dataframe_shape=True):
        print(medians)
    minimal = table.filter(pl.col("app") == "minimal")["rps"].to_list()
    for name in configs:
        ours = table.filter(pl.col("app") == name)["rps"].to_list()
        ratios = [m / o for m, o in zip(minimal, ours, strict=True)]
        print(
            f"minimal / {name}: "
            + ", ".join(f"{x:.2f}x" for x in ratios)
            + f" (median {statistics.median(ratios):.2f}x)"
        )
        cpu = table.filter(pl.col("app") == name)["cpu_ms_per_req"].median()
        base = table.filter(pl.col("app") == "minimal")["cpu_ms_per_req"].median()
        print(f"CPU per request, {name} / minimal: {cpu:.2f} / {base:.2f} ms = {cpu / base:.2f}x")
    print(f"service /health: {health.ok_rps:,.0f} req/s")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()

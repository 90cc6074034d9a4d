"""The service's connection pool (psycopg_pool) under saturation and overload.

Two measurements, repeated in rounds (the machine is shared):

* **saturation**: ``wrk -t2 -c16`` on ``/projects/{largest}/recent?limit=20`` with the batch
  strategy and ``--pool-size`` connections: answers per second (all 200).
* **overload**: two connections, four waiters and a 100 ms wait budget, ``wrk -c32`` on
  ``/_sleep?ms=20`` (each request holds its connection 20 ms): the 200s and 503s per second,
  and whether every 503 is counted in ``/metrics`` (``pool_queue`` + ``pool_timeout``).

Prints one row per round, then medians, and the load average. The hand-written pool that
psycopg_pool replaced was measured beside it, interleaved, on the same two measurements
(docs/BENCHMARKS.md).

    .venv/bin/python benchmarks/bench_pool.py --url postgresql://.../medium --rounds 3 --seconds 5
"""

from __future__ import annotations

import argparse
import os
import re
import urllib.request

import polars as pl

from workbench import lab, strategies
from workbench.engines import open_engine
from workbench.service.load import run_wrk
from workbench.service.process import ServiceProcess
from workbench.service.settings import Settings
from workbench.sources.synthetic import generate


def counted_503s(url: str) -> int:
    text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    found = re.findall(r'^workbench_http_errors_total\{endpoint="sleep",kind="pool_\w+"\} (\S+)$', text, re.M)
    return int(sum(float(v) for v in found))


def one(url: str, project_id: int, pool_size: int, seconds: float) -> dict:
    row: dict = {}
    with ServiceProcess.start(Settings(database_url=url, strategy="batch", pool_size=pool_size)) as svc:
        target = f"{svc.url}/projects/{project_id}/recent?limit=20"
        run_wrk(target, seconds=1)  # warm-up: prepared statements, caches
        sat = run_wrk(target, threads=2, connections=16, seconds=seconds)
        row |= {"saturation_rps": round(sat.ok_rps, 1), "saturation_non2xx": sat.status_errors}
    overload = Settings(database_url=url, pool_size=2, max_waiting=4, pool_timeout=0.1, debug_routes=True)
    with ServiceProcess.start(overload) as svc:
        over = run_wrk(f"{svc.url}/_sleep?ms=20", threads=2, connections=32, seconds=seconds)
        counted = counted_503s(svc.url)
        row |= {
            "overload_200_rps": round(over.ok_rps, 1),
            "overload_503_rps": round(over.status_errors / over.seconds, 1),
            "overload_p50_ms": over.p50_ms,
            # wrk stops counting at its deadline with up to 32 requests in flight; the service
            # still answers (and counts) those.
            "503s_counted": over.status_errors <= counted <= over.status_errors + 32,
        }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a database with the dataset loaded (default: a throwaway server)")
    parser.add_argument("--scale", default="small", help="dataset to load when --url is not given")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--pool-size", type=int, default=4)
    args = parser.parse_args()
    url = args.url
    if not url:
        url = lab.postgres_url()
        with open_engine("postgres", url) as engine:
            engine.load(generate(lab.data_dir() / args.scale, args.scale, 7))
            strategies.ensure_indexes(engine)
    with open_engine("postgres", url) as engine:
        project_id, _ = strategies.largest_project(engine)
    print(f"load average before: {os.getloadavg()}")
    rows = []
    for r in range(args.rounds):
        rows.append({"round": r + 1} | one(url, project_id, args.pool_size, args.seconds))
        print(rows[-1], flush=True)
    table = pl.DataFrame(rows)
    medians = table.select(
        pl.col("saturation_rps", "overload_200_rps", "overload_503_rps", "overload_p50_ms").median(),
        pl.col("503s_counted").all(),
    )
    with pl.Config(tbl_cols=20, tbl_width_chars=200, tbl_hide_dataframe_shape=True):
        print(medians)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()

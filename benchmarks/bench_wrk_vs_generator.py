"""The workbench's load generator against wrk, side by side, and the generator's own ceiling.

Same service (``workbench serve --strategy batch``), same database (the profile's dataset
loaded into a throwaway PostgreSQL, or ``--url``), same endpoint
(``/projects/{largest}/recent?limit=20``), interleaved in each round:

* **Throughput at saturation.** ``wrk -t2 -c16`` (closed loop: 16 requests in flight,
  each sent when one returns) against the generator offering 1.5x what wrk reached (open
  loop: sends on a schedule, whatever comes back): answers per second.
* **Latency at equal rates.** The generator offering exactly the rate wrk reached, and
  half of it. wrk has no constant-rate mode (wrk2 is not packaged), so its latency is
  closed-loop: it is timed from the actual send and a slow answer holds back the next
  send (coordinated omission); the generator times from the intended send.
* **The generator's own ceiling.** Against ``/health`` (no database), rising rates, with
  and without ``--realtime`` (the real-time FIFO class): send lag P99 (actual − intended
  send) per rate; the ceiling is the highest rate with send lag P99 < 1 ms. Above it,
  drive the load with k6 and import its summary (``workbench loadtest --k6``).

``--placement split`` puts the generator (and wrk) on one CPU and the service and
PostgreSQL on the other (``workbench.service.placement``). Prints the tables with the
load average before and after.

    .venv/bin/python benchmarks/bench_wrk_vs_generator.py --rounds 2 --seconds 5 \\
        --ceiling-rates 400,800,1200,1600,2400 --placement split
"""

from __future__ import annotations

import argparse
import contextlib
import os

import polars as pl

from workbench import lab, strategies
from workbench.service.experiment import measured_run
from workbench.service.load import Profile, run_wrk
from workbench.service.load.generator import realtime_scheduling
from workbench.service.placement import Placement, pinned, this_thread
from workbench.service.process import ServiceProcess, postgres_pids
from workbench.service.settings import Settings


def generator(svc: ServiceProcess, path: str, rate: float, seconds: float, groups: dict, what: str) -> dict:
    requests = [("recent", path)] * (int(rate * seconds) + 1)
    run = measured_run(
        svc.url, Profile.constant(rate, seconds), requests, label=what, groups=groups, stats=False
    )
    s = run.summary().row(0, named=True)
    return {
        "tool": what,
        "offered_rps": round(rate, 1),
        "answers_rps": round(s["achieved_rps"], 1),
        "p50_ms": round(s["p50_ms"], 2),
        "p99_ms": round(s["p99_ms"], 2),
        "errors": s["errors"],
        "send_lag_p99_ms": round(run.lag_p99_ms, 3),
        "realtime": run.realtime,
        "generator_cores": round(run.usage["generator"]["cores"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help="a PostgreSQL URL (default: a throwaway server)")
    parser.add_argument("--profile", default=None, help="whose dataset to load (default profile)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--pool-size", type=int, default=4)
    parser.add_argument("--ceiling-rates", default="400,800,1200,1600,2400", help="req/s on /health")
    parser.add_argument("--placement", default="shared", help="shared or split")
    args = parser.parse_args()

    lab.setup()
    prof = lab.profile(args.profile)
    ds = lab.dataset(prof, lab.data_dir(None))
    url = lab.postgres_url(args.url)
    opened, _ = lab.open_engines(ds, "postgres", lab.data_dir(None), pg_url=url)
    with opened["postgres"] as engine:
        project_id, _ = strategies.largest_project(engine)
    path = f"/projects/{project_id}/recent?limit=20"
    placement = Placement.named(args.placement)
    print(f"load average before: {os.getloadavg()}; {placement.describe()}; endpoint {path}", flush=True)
    saturation, ceiling = [], []
    settings = Settings(database_url=url, strategy="batch", pool_size=args.pool_size)
    with ServiceProcess.start(settings) as svc, contextlib.ExitStack() as stack:
        if placement.pins:
            stack.enter_context(pinned(svc.pids() + postgres_pids(url), placement.servers))
            stack.enter_context(this_thread(placement.generator))  # the generator's thread and wrk
        groups = {"service": svc.pids, "generator": [os.getpid()]}
        generator(svc, path, 20, 2, groups, "warm-up")
        for round_ in range(args.rounds):
            w = run_wrk(svc.url + path, threads=2, connections=16, seconds=args.seconds)
            saturation.append(
                {
                    "round": round_ + 1,
                    "tool": "wrk -t2 -c16 (closed loop)",
                    "offered_rps": None,
                    "answers_rps": round(w.ok_rps, 1),
                    "p50_ms": w.p50_ms,
                    "p99_ms": w.p99_ms,
                    "errors": w.status_errors + w.socket_errors,
                }
            )
            for share, what in (
                (1.5, "generator at 1.5x wrk"),
                (1.0, "generator at wrk's rate"),
                (0.5, "generator at half"),
            ):
                row = generator(svc, path, max(1.0, w.ok_rps * share), args.seconds, groups, what)
                saturation.append({"round": round_ + 1} | row)
            for rate in [float(r) for r in args.ceiling_rates.split(",")]:
                for realtime in (False, True):
                    with realtime_scheduling() if realtime else contextlib.nullcontext(False):
                        row = generator(
                            svc, "/health", rate, args.seconds, groups, "fifo" if realtime else "plain"
                        )
                    ceiling.append({"round": round_ + 1} | row)
            print(f"round {round_ + 1} done, load average {os.getloadavg()[0]:.2f}", flush=True)
    with pl.Config(tbl_cols=20, tbl_width_chars=220, tbl_hide_dataframe_shape=True, tbl_rows=200):
        sat = pl.DataFrame(saturation)
        print(sat)
        print(
            sat.group_by("tool", maintain_order=True).agg(
                pl.col("offered_rps", "answers_rps", "p50_ms", "p99_ms", "send_lag_p99_ms").median()
            )
        )
        table = pl.DataFrame(ceiling)
        print(table)
        med = (
            table.group_by("offered_rps", "tool", maintain_order=True)
            .agg(pl.col("answers_rps", "send_lag_p99_ms", "generator_cores").median())
            .sort("tool", "offered_rps")
        )
        print(med)
        for tool in ("plain", "fifo"):
            held = med.filter((pl.col("tool") == tool) & (pl.col("send_lag_p99_ms") < 1.0))
            top = held["offered_rps"].max() if held.height else None
            print(f"generator ceiling ({tool}): {top} req/s with send lag P99 < 1 ms (median of rounds)")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()

"""The load generator's own cost, and the service's floor (the health endpoint).

Two questions, one run per rate against a service (``workbench.service``) answering
``/health`` (no database call):

* Does the generator keep its schedule? Send lag (actual start − intended start) at P50,
  P99 and max, and the generator process's CPU (cores and share of the machine). The
  target: send-lag P99 < 1 ms at the rates the notebook uses. Beside it, the P99 lag of
  a bare sleep loop on the same schedule (no HTTP) right after: the scheduling floor the
  machine allows at that moment; the generator's own cost is the difference.
* What does the service cost per request without the database? Service CPU ms per
  request, and the health endpoint's latency at P50/P99 (from intended send time): the
  floor under every endpoint's latency.

Each rate runs in up to four modes, interleaved: ``plain`` (what the library does: nothing
process-wide), ``fifo`` (the generator's threads in the real-time FIFO class: ``workbench
loadtest --realtime``), ``gc-off`` (the cyclic GC off for the run) and both. The
process carries ``--ballast`` long-lived objects, as a notebook kernel does, so a GC pass
costs what it would there. Prints a table and the machine's load average before and after.

    .venv/bin/python benchmarks/bench_loadgen.py --rates 50,200,800 --seconds 4 --rounds 2 \
        --modes plain,fifo,gc-off,fifo+gc-off
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import threading
import time
from collections.abc import Iterator

import numpy as np
import polars as pl

from workbench import lab
from workbench.service.experiment import measured_run
from workbench.service.load import Profile
from workbench.service.load.generator import realtime_scheduling
from workbench.service.process import ServiceProcess
from workbench.service.settings import Settings

MODES = ("plain", "fifo", "gc-off", "fifo+gc-off")


@contextlib.contextmanager
def mode(name: str) -> Iterator[None]:
    """``fifo``: :func:`realtime_scheduling` (what ``workbench loadtest --realtime`` does);
    ``gc-off``: the cyclic GC off for the run (no entry point offers it: it did not help)."""
    with contextlib.ExitStack() as stack:
        if "fifo" in name:
            stack.enter_context(realtime_scheduling())
        if "gc-off" in name:
            gc.disable()
            stack.callback(gc.enable)
        yield


def schedule_floor(rate: float, seconds: float) -> float:
    """P99 lag (ms) of a bare sleep-until-intended loop on uvloop, no HTTP, on its own thread
    (in the caller's scheduling class): what the OS scheduler alone allows on this machine
    right now (the floor under the generator's lag)."""
    import uvloop

    async def run() -> list[float]:
        lags, start = [], time.perf_counter() + 0.01
        for i in range(int(rate * seconds)):
            target = start + i / rate
            delay = target - time.perf_counter()
            await asyncio.sleep(delay if delay > 0 else 0)
            lags.append(time.perf_counter() - target)
        return lags

    out: list[float] = []

    def thread() -> None:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            out.extend(runner.run(run()))

    worker = threading.Thread(target=thread)
    worker.start()
    worker.join()
    return float(np.percentile(out, 99) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="100,200,400,800", help="req/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds of every rate and mode")
    parser.add_argument("--ballast", type=int, default=500_000, help="long-lived objects, as in a kernel")
    parser.add_argument("--modes", default="plain,fifo", help="some of " + ", ".join(MODES))
    parser.add_argument("--json", help="also write the table here")
    args = parser.parse_args()
    ballast = [{"i": i} for i in range(args.ballast)]  # noqa: F841 (kept alive: what a GC pass walks)
    rates = [float(r) for r in args.rates.split(",")]
    print(f"load average before: {os.getloadavg()}")
    url = lab.postgres_url()  # the pool opens its connections at start; /health uses none
    rows = []
    with ServiceProcess.start(Settings(database_url=url, pool_size=1)) as svc:
        groups = {"service": svc.pids, "generator": [os.getpid()]}
        requests = [("health", "/health")] * int(max(rates) * args.seconds + 1)
        measured_run(
            svc.url, Profile.constant(min(rates), 1.0), requests, label="warm-up", groups=groups, stats=False
        )
        for round_, rate, name in [
            (r, x, m) for r in range(args.rounds) for x in rates for m in args.modes.split(",")
        ]:
            with mode(name):
                run = measured_run(
                    svc.url,
                    Profile.constant(rate, args.seconds),
                    requests,
                    label="health",
                    groups=groups,
                    stats=False,
                )
                floor = schedule_floor(rate, args.seconds)
            s = run.summary().row(0, named=True)
            gen, srv = run.usage["generator"], run.usage["service"]
            rows.append(
                {
                    "round": round_ + 1,
                    "rate": rate,
                    "mode": name,
                    "realtime": run.realtime,
                    "achieved_rps": round(s["achieved_rps"], 1),
                    "lag_p50_ms": run.lag.get_value_at_percentile(50) / 1000,
                    "lag_p99_ms": run.lag.get_value_at_percentile(99) / 1000,
                    "lag_max_ms": run.lag.get_max_value() / 1000,
                    "bare_loop_lag_p99_ms": round(floor, 3),
                    "generator_cores": round(gen["cores"], 3),
                    "generator_share": round(gen["share"], 3),
                    "generator_cpu_us_per_req": round(gen["cpu_seconds"] / max(1, s["sent"]) * 1e6, 1),
                    "service_cpu_us_per_req": round(srv["cpu_seconds"] / max(1, s["ok"]) * 1e6, 1),
                    "health_p50_ms": s["p50_ms"],
                    "health_p99_ms": s["p99_ms"],
                    "errors": s["errors"],
                }
            )
    table = pl.DataFrame(rows)
    medians = (
        table.group_by("rate", "mode", maintain_order=True)
        .agg(pl.col("lag_p99_ms", "lag_max_ms", "bare_loop_lag_p99_ms", "generator_cpu_us_per_req").median())
        .sort("rate", "mode")
    )
    with pl.Config(tbl_cols=20, tbl_width_chars=200, tbl_hide_dataframe_shape=True, tbl_rows=100):
        print(table)
        print("medians over rounds:")
        print(medians)
    print(f"load average after: {os.getloadavg()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()

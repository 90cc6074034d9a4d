"""A soak: the service held at one rate for a long time (not in ``make report`` nor in
``make benchmarks``: it lasts 30 minutes by default); or the plan's spike.

Loads the profile's dataset into a throwaway PostgreSQL (or uses ``--url``), starts
``workbench serve`` (``--strategy``, pool ``--pool-size``) and holds ``--rate`` req/s of the
profile's traffic mix for ``--minutes`` in windows of ``--window`` seconds
(``workbench.service.stress.soak``; ``workbench loadtest --soak`` does the same against a
running service). Prints per window P50/P99, errors, send lag and the service's resident
memory, then memory growth per hour and P99 drift per hour (least-squares slopes), with the
load average before and after. The plan asks for 30 minutes or more.

With ``--spike``: the plan's spike instead, ``--rate`` for 5 s, five times it for 10 s, and
``--rate`` for 20 s (``workbench.service.stress.spike``): per second sent, 503s, other
errors and P99, and when the service held again (every later second error-free, P99 under
the profile's target).

    .venv/bin/python benchmarks/soak_and_spike.py --rate 40 --minutes 30
    .venv/bin/python benchmarks/soak_and_spike.py --rate 40 --spike
"""

from __future__ import annotations

import argparse
import os

import polars as pl

from workbench import lab
from workbench.service import experiment, stress
from workbench.service.load import paths, targets
from workbench.service.process import ServiceProcess
from workbench.service.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help="a PostgreSQL URL (default: a throwaway server)")
    parser.add_argument("--profile", default=None)
    parser.add_argument("--rate", type=float, default=40.0, help="the holding rate, req/s")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--window", type=float, default=60.0, help="seconds per window")
    parser.add_argument("--strategy", default="batch")
    parser.add_argument("--pool-size", type=int, default=4)
    parser.add_argument("--spike", action="store_true", help="the plan's 5x spike instead of a soak")
    args = parser.parse_args()

    lab.setup()
    prof = lab.profile(args.profile)
    ds = lab.dataset(prof, lab.data_dir(None))
    url = lab.postgres_url(args.url)
    lab.open_engines(ds, "postgres", lab.data_dir(None), pg_url=url)[0]["postgres"].close()
    mix = experiment.traffic(prof)
    requests = paths(mix, targets(ds, mix.hot_fraction), 200_000, seed=prof.data.seed)
    settings = Settings(database_url=url, strategy=args.strategy, pool_size=args.pool_size)
    print(f"load average before: {os.getloadavg()}; {settings.label}, {args.rate:g} req/s", flush=True)
    with ServiceProcess.start(settings) as svc:
        if args.spike:
            result = stress.spike(svc.url, args.rate, requests, p99_ms=prof.slo.p99_ms)
            with pl.Config(tbl_rows=100, tbl_hide_dataframe_shape=True, tbl_width_chars=200):
                print(result.seconds.drop("stage"))
            print(result.describe())
            print(f"load average after: {os.getloadavg()}")
            return
        windows = stress.soak(svc.url, args.rate, args.minutes * 60, requests, window=args.window)
    with pl.Config(tbl_rows=500, tbl_hide_dataframe_shape=True, tbl_width_chars=200):
        print(windows)
    print(stress.drift(windows))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()

"""Do notebook 05's verdicts hold? Its knee search and decisions at the defaults, run again and again.

Each repeat is what notebook 05 measures under the profile: the five configurations (N+1,
the plan's JOIN, batch at pool 4 and 8, batch with a 5 s cache), each ramped once, then
bisected in interleaved rounds (``experiment.find_knees``), on a database holding exactly
notebook 03's recommended indexes (``--out``: the report folder 03 exported them to).
Per repeat it prints each configuration's knee with its rounds' brackets, each change's
verdict, the decisions the lab derives from them (``slo.choose``: the strategy, the pool
size, the cache), the wall time and the load average before and after. A verdict that
holds is the same words in every repeat (its figure may move); the last table counts them.
With ``--placements shared,split`` each repeat runs the search once per CPU placement,
alternating (``workbench.service.placement``: ``split`` gives the generator its own CPU and
the service and PostgreSQL the other), and the tally is per placement.

    .venv/bin/python benchmarks/bench_knee_verdicts.py --out reports --repeats 3
    .venv/bin/python benchmarks/bench_knee_verdicts.py --out reports --repeats 3 --placements shared,split
    .venv/bin/python benchmarks/bench_knee_verdicts.py --out reports --repeats 3 --step-seconds 60  # thorough
"""

from __future__ import annotations

import argparse
import math
import os
import re
import time
from collections import Counter

from workbench import lab
from workbench.service import experiment, slo
from workbench.service.app import Settings
from workbench.service.load import paths, targets
from workbench.service.placement import Placement

CONFIGS = [("n_plus_one", 4, 0), ("joined", 4, 0), ("batch", 4, 0), ("batch", 8, 0), ("batch", 4, 5)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the report folder holding 03_indexes/migrations")
    parser.add_argument("--profile", default=None, help="a profile TOML or name (default: the default)")
    parser.add_argument("--repeats", type=int, default=3, help="whole searches, one after another")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per search (notebook: 3)")
    parser.add_argument("--step-seconds", type=float, default=1.5, help="steady runs (notebook: 1.5)")
    parser.add_argument("--placements", default="shared", help="shared, split or both, alternating")
    args = parser.parse_args()

    lab.setup()
    prof = lab.profile(args.profile)
    goal = slo.limits(prof.slo)
    ds = lab.dataset(prof, lab.data_dir(None))
    url = lab.postgres_url(None)
    opened, _ = lab.open_engines(ds, "postgres", lab.data_dir(None), pg_url=url)
    with opened["postgres"] as engine:
        experiment.apply_indexes(engine, args.out)
    mix = experiment.traffic(prof)
    requests = paths(mix, targets(ds, mix.hot_fraction), 20_000, seed=prof.data.seed)
    settings = [
        Settings(database_url=url, strategy=s, pool_size=p, workers=1, cache_seconds=c) for s, p, c in CONFIGS
    ]
    tally: dict[tuple[str, str], Counter] = {}
    for repeat, where in [(r, w) for r in range(args.repeats) for w in args.placements.split(",")]:
        placement = Placement.named(where)
        before, t0 = os.getloadavg(), time.perf_counter()
        knees = experiment.find_knees(
            settings,
            requests,
            rounds=args.rounds,
            step_seconds=args.step_seconds,
            targets=goal,
            placement=placement,
        )
        wall, after = time.perf_counter() - t0, os.getloadavg()
        summary = experiment.summary([run for k in knees for run in k.steps])
        maxima = slo.max_rate(summary, targets=goal)
        cap = slo.capacity(summary, prof.slo, prof.hardware.cores)
        choice = slo.choose(summary, maxima, cap, prof.slo, prof.hardware.cores)
        print(
            f"\nrepeat {repeat + 1}, {placement.describe()}: {wall:.0f} s, load average "
            f"{before[0]:.2f} -> {after[0]:.2f}",
            flush=True,
        )
        for r in maxima.iter_rows(named=True):
            rounds = ", ".join(
                f"{h:,.0f}-{f:,.0f}" if math.isfinite(f) else f">={h:,.0f}"
                for h, f in zip(r["round_rates"], r["round_failed"], strict=True)
            )
            print(f"  {r['label']:<30} knee {r['max_rate']:>6,.0f} req/s   rounds (held-failed): {rounds}")
        for r in slo.changes(summary, maxima).iter_rows(named=True):
            verdict = slo.change_verdict(r)[0]
            tally.setdefault((where, r["change"]), Counter())[re.sub(r"^[\d.]+x", "Nx", verdict)] += 1
            print(f"  {r['change']:<32} {verdict:<24} rounds {slo.ratios_text(r['round_ratios'])}")
        shipped = f"{choice['shipped']} (cache: {choice['cache_why']})"
        tally.setdefault((where, "shipped set"), Counter())[shipped] += 1
        print(f"  shipped set: {shipped}", flush=True)
    print(f"\nverdicts over {args.repeats} repeats ({args.rounds} rounds each):")
    for (where, change), counts in sorted(tally.items()):
        print(f"  {where:<7} {change:<32} " + "; ".join(f"{v} x{n}" for v, n in counts.most_common()))


if __name__ == "__main__":
    main()

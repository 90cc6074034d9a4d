"""Do notebook 05's verdicts hold? The knee search at the notebook's defaults, run again and again.

Each repeat is what notebook 05 measures: the five configurations (N+1, the plan's JOIN,
batch at pool 4 and 8, batch with a 5 s cache), each ramped once, then bisected in
interleaved rounds (``experiment.find_knees``). Per repeat it prints each
configuration's median holding rate with its rounds' range, each change's verdict
(``slo.change_verdict``), the wall time, and the load average before and after. A verdict
that holds is the same words in every repeat (its figure may move); the last table
counts them, with the figure written N.

    .venv/bin/python benchmarks/bench_knee_verdicts.py --repeats 3
    .venv/bin/python benchmarks/bench_knee_verdicts.py --repeats 3 --rounds 1   # one search each
"""

from __future__ import annotations

import argparse
import math
import os
import re
import time
from collections import Counter

from workbench import lab, strategies
from workbench.engines import open_engine
from workbench.service import experiment, slo
from workbench.service.app import Settings
from workbench.service.load import Mix, paths, targets
from workbench.sources.synthetic import generate

CONFIGS = [("n_plus_one", 4, 0), ("joined", 4, 0), ("batch", 4, 0), ("batch", 8, 0), ("batch", 4, 5)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="whole searches, one after another")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per search (notebook: 3)")
    parser.add_argument("--scale", default="small")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    lab.setup()
    ds = generate(lab.data_dir(None) / args.scale, args.scale, args.seed)
    url = lab.postgres_url(None)
    with open_engine("postgres", url) as engine:
        engine.load(ds)
        strategies.ensure_indexes(engine)
    mix = Mix()
    requests = paths(mix, targets(ds, mix.hot_fraction), 20_000, seed=args.seed)
    settings = [
        Settings(database_url=url, strategy=s, pool_size=p, workers=1, cache_seconds=c) for s, p, c in CONFIGS
    ]
    tally: dict[str, Counter] = {}
    for repeat in range(args.repeats):
        before, t0 = os.getloadavg(), time.perf_counter()
        knees = experiment.find_knees(settings, requests, rounds=args.rounds)  # notebook 05's defaults
        wall, after = time.perf_counter() - t0, os.getloadavg()
        summary = experiment.summary([run for k in knees for run in k.steps])
        maxima = slo.max_rate(summary)
        print(f"\nrepeat {repeat + 1}: {wall:.0f} s, load average {before[0]:.2f} -> {after[0]:.2f}")
        for r in maxima.iter_rows(named=True):
            rounds = ", ".join(
                f"{h:,.0f}-{f:,.0f}" if math.isfinite(f) else f">={h:,.0f}"
                for h, f in zip(r["round_rates"], r["round_failed"], strict=True)
            )
            print(
                f"  {r['label']:<24} holds to {r['max_rate']:>6,.0f} req/s   rounds (held-failed): {rounds}"
            )
        for r in slo.changes(summary, maxima).iter_rows(named=True):
            verdict = slo.change_verdict(r)[0]
            tally.setdefault(r["change"], Counter())[re.sub(r"^[\d.]+x", "Nx", verdict)] += 1
            print(f"  {r['change']:<32} {verdict:<24} rounds {slo.ratios_text(r['round_ratios'])}")
    print(f"\nverdicts over {args.repeats} repeats ({args.rounds} rounds each):")
    for change, counts in tally.items():
        print(f"  {change:<32} " + "; ".join(f"{v} x{n}" for v, n in counts.most_common()))


if __name__ == "__main__":
    main()

"""`workbench advise`'s work and stability, and keyset vs OFFSET at depth.

    .venv/bin/python benchmarks/bench_advise.py --scale small [--engines postgres,sqlite] [--runs 3]
        [--workload profile|endpoints|all] [--covering]

Per engine, ``--runs`` advisor runs on the same loaded database and workload (by default the
production profile's traffic mix): the seconds per stage (target: <= 60 s at the default
scale, hypothetical pass included), the recommended set of each run and whether every run
chose the same one (target: all runs agree), each index's write cost with its interval, and
the workload's DB time today against with the set (target: >= 50% lower). Then the latency
of the deepest page over page 1 at the profile's list page size for each pager (target:
keyset within 2x). The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from workbench import lab
from workbench.indexes import advisor, pagination
from workbench.indexes import workload as wl


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="small")
    ap.add_argument("--engines", default="postgres,sqlite")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3, help="advisor runs per engine (stability)")
    ap.add_argument("--data", default=None, help="data folder (default: a temporary one)")
    ap.add_argument("--workload", choices=("profile", "endpoints", "all"), default="profile")
    ap.add_argument("--covering", action="store_true", help="also measure INCLUDE variants (PostgreSQL)")
    args = ap.parse_args()
    prof = lab.profile(None)
    print(f"load before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data or tmp)
        ds = lab.open_dataset("synthetic", data, scale=args.scale, seed=7)
        engines, _ = lab.open_engines(ds, args.engines.split(","), data / "bench-advise")
        w = {
            "profile": lambda: wl.from_profile(prof),
            "endpoints": lambda: wl.from_folder(names=wl.ENDPOINTS),
            "all": lambda: wl.from_folder(),
        }[args.workload]()
        print(f"workload: {w.source}")
        for name, e in engines.items():
            sets = []
            for run in range(1, args.runs + 1):
                started = time.perf_counter()
                rep = advisor.advise(
                    e, w, out_dir=Path(tmp) / "out", repeat=args.repeat, covering=args.covering
                )
                took = time.perf_counter() - started
                stages = ", ".join(f"{k} {v:.1f} s" for k, v in rep.stages.items())
                sets.append(frozenset(s.label for s in rep.recommended()))
                print(f"{name} run {run}: advise {took:.1f} s ({stages}); load {os.getloadavg()[0]:.2f}")
                for line in advisor.ranked_lines(rep):
                    print(f"  {line}")
                rows = dict(
                    zip(rep.builds.per_index["table"], rep.builds.per_index["write_rows"], strict=False)
                )
                print(f"  write cost: paired rounds of {rows} rows")
                print(f"  {rep.verdict_sentence()}")
            same = len(set(sets)) == 1
            print(f"{name}: the same set in {max(sets.count(s) for s in sets)} of {len(sets)} runs ({same=})")
            hot = wl.draw(e)["hot"]["project_id"]
            size = prof.pages.list_sessions
            depth = pagination.depth_latency(e, hot, size=size, depths=(1, 10, 50), repeat=args.repeat)
            for row in pagination.growth(depth).iter_rows(named=True):
                print(
                    f"  {row['pager']}: page {row['deepest_page']} of {size} / page 1 = {row['ratio']:.2f}x"
                )
            e.close()
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()

"""`workbench advise`'s work on the PostgreSQL sample, and keyset vs OFFSET at depth.

    .venv/bin/python benchmarks/bench_advise.py --scale small [--engines postgres,sqlite] [--all] [--covering]

Prints the advisor's seconds per stage (target: <= 60 s at the default scale, hypothetical
pass included), the workload's DB time before/with the recommended set (target: >= 50%
lower), and per engine the latency of page 1,000 over page 1 (page size 1) for each pager
(target: keyset within 2x). The load average is printed before and after.
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
    ap.add_argument("--data", default=None, help="data folder (default: a temporary one)")
    ap.add_argument("--all", action="store_true", help="every query in queries/, not only the endpoints")
    ap.add_argument("--covering", action="store_true", help="also measure INCLUDE variants (PostgreSQL)")
    args = ap.parse_args()
    print(f"load before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data or tmp)
        ds = lab.open_dataset("synthetic", data, scale=args.scale, seed=7)
        engines, _ = lab.open_engines(ds, args.engines.split(","), data / "bench-advise")
        for name, e in engines.items():
            started = time.perf_counter()
            w = wl.from_folder() if args.all else wl.from_folder(names=wl.ENDPOINTS)
            rep = advisor.advise(e, w, out_dir=Path(tmp) / "out", repeat=args.repeat, covering=args.covering)
            took = time.perf_counter() - started
            stages = ", ".join(f"{k} {v:.1f} s" for k, v in rep.stages.items())
            print(f"{name}: advise {took:.1f} s ({stages}); {rep.notes or ''}")
            print(f"  recommended: {[s.label for s in rep.recommended()]}")
            for row in rep.selection.filter(rep.selection["index"].str.contains("INCLUDE")).iter_rows(
                named=True
            ):
                print(f"  {row['index']}: {row['decision']}; helped {row['queries_helped'] or 'none'}")
            print(f"  {rep.verdict_sentence()}")
            hot = wl.draw(e)["hot"]["project_id"]
            depth = pagination.depth_latency(e, hot, size=1, depths=(1, 10, 100, 1000), repeat=args.repeat)
            for row in pagination.growth(depth).iter_rows(named=True):
                print(f"  {row['pager']}: page {row['deepest_page']} / page 1 = {row['ratio']:.2f}x")
            e.close()
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()

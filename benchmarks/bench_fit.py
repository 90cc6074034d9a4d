"""Fitting a Dataset's shape and generating from it (`generate --like`): wall time, fresh subprocesses.

Targets: fitting a 1M-message Dataset in <= 30 s; generating >= 1M messages from the fitted
shape in <= 15 s (side by side with the plain generator at the same size).

    .venv/bin/python benchmarks/bench_fit.py --scale medium --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

STEP = """
import json, resource, sys, time
from workbench.dataset import Dataset
from workbench.sources.fit import Shape, fit
from workbench.sources.synthetic import generate, generate_like
step, folder, scale = sys.argv[1:4]
t = time.perf_counter()
if step == "generate":
    ds = generate(folder + "/src", scale, 7, overwrite=True)
elif step == "fit":
    fit(Dataset.open(folder + "/src")).save(folder + "/shape.json")
    ds = Dataset.open(folder + "/src")
else:
    ds = generate_like(folder + "/like", Shape.load(folder + "/shape.json"), 7, overwrite=True)
peak = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps({"seconds": time.perf_counter() - t, "messages": ds.counts["messages"], "peak_mib": peak}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", default="medium")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("load average:", os.getloadavg())
    results: dict[str, list[dict]] = {"generate": [], "fit": [], "like": []}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.repeat):
            for step in results:
                out = subprocess.run(
                    [sys.executable, "-c", STEP, step, folder, args.scale],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                results[step].append(json.loads(out.stdout))
    for step, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        peak = max(r["peak_mib"] for r in runs)
        print(f"{step:9} {runs[0]['messages']:>10,} messages  median {seconds:6.2f} s  peak {peak:,} MiB")
    print("load average:", os.getloadavg())


if __name__ == "__main__":
    main()

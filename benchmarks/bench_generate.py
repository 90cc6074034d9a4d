"""Generation: wall time and peak RSS per scale, each in a fresh subprocess.

Targets: `medium` (1M messages) in <= 15 s; `large` (10M messages) with peak RSS <= 2 GB.
Side by side, the alternative a user would reach for: a plain per-row Python generator
(`random` + list of dicts + `polars.DataFrame`) for the messages table alone, at the
same scale, so the ratio shows what the vectorised chunked generator buys.

    .venv/bin/python benchmarks/bench_generate.py --scales medium,large --repeat 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile

import polars as pl

PEAK = """
import resource
def peak():
    return {"peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
"""

OURS = (
    PEAK
    + """
import json, sys, time
from workbench.sources.synthetic import generate
t = time.perf_counter()
ds = generate(sys.argv[1], sys.argv[2], 7, overwrite=True)
print(json.dumps({"seconds": time.perf_counter() - t, "messages": ds.counts["messages"], **peak()}))
"""
)

# What a user would write without the workbench: one dict per message, then a frame.
NAIVE = (
    PEAK
    + """
import json, random, sys, time
from datetime import datetime, timedelta
from workbench.sources.synthetic import SCALES, WORDS
t = time.perf_counter()
scale = SCALES[sys.argv[2]]
rng = random.Random(7)
rows, start = [], datetime(2026, 5, 1)
per = scale.messages // scale.sessions
for s in range(scale.sessions):
    ts = start + timedelta(seconds=rng.randrange(180 * 86400))
    for i in range(per):
        ts += timedelta(seconds=rng.expovariate(1 / 9))
        rows.append({"id": len(rows) + 1, "session_id": s + 1, "role": "user" if i % 2 == 0 else "assistant",
                     "content": " ".join(rng.choices(WORDS, k=int(rng.lognormvariate(4.3, 1.0)))),
                     "timestamp": ts, "output_tokens": None if i % 2 == 0 else rng.randrange(1, 2000)})
import polars as pl
pl.DataFrame(rows).write_parquet(sys.argv[1] + ".parquet")
print(json.dumps({"seconds": time.perf_counter() - t, "messages": len(rows), **peak()}))
"""
)


def run(code: str, dest: str, scale: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, dest, scale], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scales", default="medium,large")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--naive", default="medium", help="scales to also run the naive generator on")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-gen-") as tmp:
        for scale in args.scales.split(","):
            repeat = args.repeat if scale != "large" else 1
            runs = [run(OURS, f"{tmp}/{scale}", scale) for _ in range(repeat)]
            row = {
                "scale": scale,
                "messages": runs[0]["messages"],
                "workbench s": round(statistics.median(r["seconds"] for r in runs), 2),
                "peak MiB": max(r["peak_mib"] for r in runs),
            }
            if scale in args.naive.split(","):
                naive = run(NAIVE, f"{tmp}/naive-{scale}", scale)
                row["naive python s (messages only)"] = round(naive["seconds"], 2)
                row["naive peak MiB"] = naive["peak_mib"]
                row["speedup"] = round(naive["seconds"] / row["workbench s"], 1)
            rows.append(row)
    pl.Config.set_tbl_hide_dataframe_shape(True)
    print("targets: medium <= 15 s; large peak RSS <= 2048 MiB")
    print(pl.DataFrame(rows))


if __name__ == "__main__":
    main()

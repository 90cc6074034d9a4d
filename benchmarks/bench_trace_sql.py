"""What the SQL trace comment costs one request: batched ``/recent`` with and without it.

With ``trace_sql`` every statement ends in ``/*traceparent='…'*/``, new for each request,
so psycopg never prepares it and PostgreSQL plans it every time. This times the batch
strategy's load (the work of ``/projects/{largest}/recent?limit=20``) through the
service's :class:`~workbench.service.context.RequestEngine`, without a comment and with a
fresh trace id, interleaved on one connection, and prints the medians and their ratio.

    .venv/bin/python benchmarks/bench_trace_sql.py --url postgresql://.../medium --repeat 150
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from workbench import strategies
from workbench.engines import open_engine
from workbench.service.context import RequestEngine, traceparent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="a database with the dataset loaded")
    parser.add_argument("--repeat", type=int, default=150)
    parser.add_argument("--limit", type=int, default=20)
    args = parser.parse_args()
    load = strategies.strategy("batch").load
    print(f"load average before: {os.getloadavg()}")
    with open_engine("postgres", args.url) as engine:
        project_id, _ = strategies.largest_project(engine)

        def once(parent: str | None) -> float:
            db = RequestEngine(engine, lambda seconds: None, parent)
            started = time.perf_counter()
            load(db, project_id, args.limit)
            return (time.perf_counter() - started) * 1000

        traced_db = RequestEngine(engine, lambda seconds: None, traceparent(None))
        assert load(traced_db, project_id, args.limit) == load(engine, project_id, args.limit)  # same rows
        for _ in range(20):  # warm-up: the plain statements get prepared
            once(None), once(traceparent(None))
        plain, traced = [], []
        for _ in range(args.repeat):
            plain.append(once(None))
            traced.append(once(traceparent(None)))
    a, b = statistics.median(plain), statistics.median(traced)
    print(f"plain {a:.2f} ms, traced {b:.2f} ms per request (median of {args.repeat}): {b / a:.2f}x")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()

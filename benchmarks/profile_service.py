"""Where the service's time goes under load: pyinstrument on its event loop, CPU per thread.

Runs ``workbench serve --strategy batch`` in this process (uvicorn on uvloop, the app from
:func:`workbench.service.app.create_app`), drives ``/projects/{largest}/recent?limit=20``
with ``wrk -t2 -c16`` from a helper thread, and prints

* the CPU seconds per request of the event-loop thread and of the handler threads
  (psutil's per-thread times), and
* pyinstrument's profile of the event-loop thread (routing, the request frame, metrics,
  JSON encoding) and of one handler thread's work, profiled on its own (the batch load:
  SQL, building the rows).

    .venv/bin/python benchmarks/profile_service.py --url postgresql://.../medium --seconds 8
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import psutil
import uvicorn
from pyinstrument import Profiler

from workbench import strategies
from workbench.engines import open_engine
from workbench.engines.server import free_port
from workbench.service.app import create_app
from workbench.service.context import RequestEngine
from workbench.service.load import run_wrk
from workbench.service.settings import Settings


def thread_cpu() -> dict[int, float]:
    return {t.id: t.user_time + t.system_time for t in psutil.Process().threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="a database with the dataset loaded")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--pool-size", type=int, default=8)
    args = parser.parse_args()
    with open_engine("postgres", args.url) as engine:
        project_id, _ = strategies.largest_project(engine)
    port = free_port()
    settings = Settings(database_url=args.url, strategy="batch", pool_size=args.pool_size)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False
        )
    )
    result: dict = {}
    loop_thread = threading.get_native_id()

    def drive() -> None:
        while not server.started:
            time.sleep(0.05)
        target = f"http://127.0.0.1:{port}/projects/{project_id}/recent?limit=20"
        run_wrk(target, seconds=1)  # warm-up
        before = thread_cpu()
        result["wrk"] = run_wrk(target, threads=2, connections=16, seconds=args.seconds)
        after = thread_cpu()
        result["cpu"] = {t: after[t] - before.get(t, 0.0) for t in after}
        server.should_exit = True

    print(f"load average before: {os.getloadavg()}")
    driver = threading.Thread(target=drive, daemon=True)
    profiler = Profiler(interval=0.001)
    driver.start()
    profiler.start()
    server.run()
    profiler.stop()
    driver.join(5)
    requests = result["wrk"].requests
    cpu = result["cpu"]
    loop_ms = cpu.get(loop_thread, 0.0) * 1000 / requests
    other_ms = sum(v for t, v in cpu.items() if t != loop_thread) * 1000 / requests
    print(f"{requests} requests, {result['wrk'].ok_rps:.1f} req/s")
    print(f"CPU per request: event loop {loop_ms:.2f} ms, handler and other threads {other_ms:.2f} ms")
    print(profiler.output_text(unicode=False, color=False))

    # The handler's work alone, on this thread: what pyinstrument cannot follow into the pool.
    load = strategies.strategy("batch").load
    with open_engine("postgres", args.url) as engine:
        for _ in range(20):
            load(engine, project_id, 20)
        work = Profiler(interval=0.0005)
        work.start()
        for _ in range(100):
            load(RequestEngine(engine, lambda seconds: None), project_id, 20)
        work.stop()
    print(work.output_text(unicode=False, color=False))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()

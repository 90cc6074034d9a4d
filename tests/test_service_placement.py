"""CPU placement: the generator on its own CPU, the servers on the rest, applied, recorded, undone."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import service_db

from workbench.service import experiment
from workbench.service.load import Mix, paths, targets
from workbench.service.placement import Placement, pinned, this_thread, threads
from workbench.service.process import postgres_pids
from workbench.service.settings import Settings

loaded_url = service_db.loaded_url  # the shared fixture
two_cpus = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="placement needs two CPUs")


def test_split_gives_the_generator_the_highest_cpu_and_the_servers_the_rest():
    p = Placement.split(cpus=[0, 1, 2, 3])
    assert (p.generator, p.servers, p.pins) == ((3,), (0, 1, 2), True)
    assert p.describe() == (
        "generator on CPU 3; service and PostgreSQL on CPU 0,1,2 (other work on the machine not moved)"
    )
    assert not Placement.split(cpus=[5]).pins  # one CPU: nothing to split
    assert Placement.named(None) == Placement.named("shared") == Placement.shared()
    with pytest.raises(ValueError, match="placement 'apart'"):
        Placement.named("apart")


@two_cpus
def test_pinned_moves_every_thread_of_a_process_and_puts_them_back():
    code = "import threading, time; threading.Thread(target=time.sleep, args=(30,)).start(); time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        while len(threads(child.pid)) < 2:  # until its second thread exists (bounded by its 30 s)
            assert child.poll() is None
        before = {t: os.sched_getaffinity(t) for t in threads(child.pid)}
        with pinned([child.pid], {0}) as moved:
            assert sorted(moved) == sorted(before)
            assert all(os.sched_getaffinity(t) == {0} for t in moved)
        assert {t: os.sched_getaffinity(t) for t in threads(child.pid)} == before
    finally:
        child.kill()
        child.wait()
    with pinned([child.pid], {0}) as moved:  # gone: skipped, not an error
        assert moved == []


@two_cpus
def test_this_thread_pins_the_caller_until_exit():
    before = os.sched_getaffinity(0)
    with this_thread({1}):
        assert os.sched_getaffinity(0) == {1}
    assert os.sched_getaffinity(0) == before


@two_cpus
def test_runs_record_their_placement_and_the_servers_are_released_after(loaded_url, tiny):
    split = Placement.split()
    postgres = postgres_pids(loaded_url)
    before = {pid: os.sched_getaffinity(pid) for pid in postgres}
    settings = Settings(database_url=loaded_url, strategy="batch", pool_size=2)
    runs = experiment.confirm(
        [(settings, 40, "placed")],
        paths(Mix(), targets(tiny), 100, seed=4),
        responses=40,
        min_seconds=0.5,
        warmup_seconds=0.2,
        placement=split,
    )
    assert runs[0].settings["placement"] == split.describe()
    assert experiment.summary(runs)["placement"].to_list() == [split.describe()]
    assert {pid: os.sched_getaffinity(pid) for pid in postgres} == before  # PostgreSQL released
    assert os.sched_getaffinity(0) == set(split.generator + split.servers)  # and the caller

"""The knee search end to end: real services over PostgreSQL, a short ramp, interleaved rounds."""

from __future__ import annotations

import socket
from urllib.parse import urlparse

import pytest
import service_db

from workbench.service import experiment, slo
from workbench.service.app import Settings
from workbench.service.load import Mix, paths, targets

pytestmark = pytest.mark.postgres
loaded_url = service_db.loaded_url  # the shared fixture


def _short_search(configs, tiny, seed):
    """Two rounds of a one-second ramp and two half-second steps: the search's logic, quickly."""
    requests = paths(Mix(), targets(tiny), 500, seed=seed)
    return experiment.find_knees(
        configs,
        requests,
        rounds=2,
        ramp=(20, 80),
        ramp_seconds=1.0,
        steps=2,
        step_seconds=0.5,
        warmup_seconds=0.2,
        extend=0,
    )


def test_find_knees_ramps_each_configuration_then_interleaves_its_rounds(loaded_url, tiny, monkeypatch):
    runs = []
    real = experiment.measured_run

    def watched(*args, **kw):
        runs.append(real(*args, **kw))  # the real run, only remembered in order
        return runs[-1]

    monkeypatch.setattr(experiment, "measured_run", watched)
    configs = [
        Settings(database_url=loaded_url, strategy="n_plus_one", pool_size=2),
        Settings(database_url=loaded_url, strategy="batch", pool_size=2),
    ]
    knees = _short_search(configs, tiny, seed=1)
    labels = [experiment.name(c) for c in configs]
    assert (
        [experiment.name(k.settings) for k in knees]
        == labels
        == ["N+1 (today), pool of 2", "batch, pool of 2"]
    )
    # Both ramps first, then round 0 in the given order, then round 1 rotated by one.
    order = [(r.label, r.settings.get("round", "ramp")) for r in runs]
    blocks = [key for i, key in enumerate(order) if i == 0 or order[i - 1] != key]
    assert blocks == [
        (labels[0], "ramp"),
        (labels[1], "ramp"),
        (labels[0], 0),
        (labels[1], 0),
        (labels[1], 1),
        (labels[0], 1),
    ]
    summary = experiment.summary([run for k in knees for run in k.steps])
    assert summary["round"].to_list() == [r.settings["round"] for k in knees for r in k.steps]
    maxima = slo.max_rate(summary)
    assert maxima["rounds"].to_list() == [2, 2] and all(len(r) == 2 for r in maxima["round_rates"])
    for r in runs:
        assert not r.partial and r.usage["service"]["cpu_seconds"] > 0
    # Every service was stopped: its port no longer answers.
    for url in {r.url for r in runs}:
        parsed = urlparse(url)
        with pytest.raises(OSError), socket.create_connection((parsed.hostname, parsed.port), timeout=1):
            pass


def test_a_service_that_dies_mid_search_ends_its_own_search_not_the_others(loaded_url, tiny, monkeypatch):
    started = []
    real_start = experiment.ServiceProcess.start

    def start(settings, *args, **kw):
        started.append(real_start(settings, *args, **kw))
        return started[-1]

    real_run = experiment.measured_run

    def run_then_crash(*args, **kw):
        run = real_run(*args, **kw)
        if started[0].proc.poll() is None:
            started[0].kill()  # the first configuration's service dies right after its ramp
        return run

    monkeypatch.setattr(experiment.ServiceProcess, "start", start)
    monkeypatch.setattr(experiment, "measured_run", run_then_crash)
    configs = [
        Settings(database_url=loaded_url, strategy="n_plus_one", pool_size=2),
        Settings(database_url=loaded_url, strategy="batch", pool_size=2),
    ]
    knees = _short_search(configs, tiny, seed=2)
    dead, alive = knees
    assert dead.ramp is not None and not dead.steps  # its ramp is kept; no steady run was possible
    assert dead.stopped.startswith("N+1 (today), pool of 2: the service exited (code -9) after 0 steady runs")
    assert {r.settings["round"] for r in alive.steps} == {0, 1} and not any(r.partial for r in alive.steps)


def test_confirmation_runs_are_long_enough_and_share_a_service_per_configuration(loaded_url, tiny):
    requests = paths(Mix(), targets(tiny), 500, seed=3)
    one = Settings(database_url=loaded_url, strategy="batch", pool_size=2)
    other = Settings(database_url=loaded_url, strategy="n_plus_one", pool_size=2)
    runs = experiment.confirm(
        [(one, 40, "shipped, at today's knee"), (one, 60, "shipped, at its knee"), (other, 40, "today")],
        requests,
        responses=60,
        min_seconds=0.5,
        warmup_seconds=0.2,
    )
    assert [r.settings["purpose"] for r in runs] == [
        "shipped, at today's knee",
        "shipped, at its knee",
        "today",
    ]
    assert [r.stage_seconds for r in runs] == [[1.5], [1.0], [1.5]]  # 60 responses at 40 and 60 req/s
    assert runs[0].url == runs[1].url != runs[2].url  # one fresh service per configuration
    summary = experiment.summary(runs)
    assert summary["purpose"].to_list() == [r.settings["purpose"] for r in runs]
    assert summary["sent"].to_list() == [60, 60, 60] and summary["seconds"].to_list() == [1.5, 1.0, 1.5]

"""`workbench serve` and `workbench loadtest`: errors name the value; a real short run prints verdicts."""

from __future__ import annotations

import json
import os
import socket

import pytest
import service_db
from click.testing import CliRunner
from test_service_load import K6_SUMMARY_EXPORT

from workbench.cli import main
from workbench.engines.server import free_port
from workbench.service.process import ServiceProcess
from workbench.service.settings import Settings

loaded_url = service_db.loaded_url  # the shared fixture


def _run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_loadtest_imports_a_k6_summary(tmp_path):
    path = tmp_path / "k6.json"
    path.write_text(json.dumps(K6_SUMMARY_EXPORT))
    result = _run("loadtest", "--k6", str(path), "--save", str(tmp_path / "out.csv"))
    assert result.exit_code == 0, result.output
    assert "API P99 < 200 ms" in result.output and "120.5 ms" in result.output
    assert (tmp_path / "out.csv").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "0"], "Error: Arrival rate 0.0 req/s: it must be a positive number"),
        (["--rate", "10", "--seconds", "-5"], "Error: Duration -5.0 s: it must be a positive number"),
        (["--url", "http//nowhere", "--rate", "5", "--seconds", "1"], "Error: Malformed URL 'http//nowhere'"),
        (["--ramp", "10-20"], "Error: Invalid --ramp '10-20': use START:STOP"),
        (["--mix", "recent"], "Error: Invalid --mix 'recent'"),
        (["--rate", "10", "--soak", "ten minutes"], "Error: Invalid --soak 'ten minutes': use a duration"),
        (["--rate", "10", "--rate", "20", "--soak", "10m"], "Error: --soak holds one rate"),
    ],
)
def test_loadtest_bad_input_names_the_value(tiny, args, message):
    result = _run("loadtest", "--dataset", str(tiny.path), *args)
    assert result.exit_code == 1
    assert message in result.output


def test_loadtest_refused_target_is_named(tiny):
    url = f"http://127.0.0.1:{free_port()}"
    result = _run("loadtest", "--dataset", str(tiny.path), "--url", url, "--rate", "5", "--seconds", "1")
    assert result.exit_code == 1
    assert f"Error: Nothing answers at {url} (connection refused)" in result.output


def test_serve_refuses_a_port_in_use():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = _run("serve", "--url", "postgresql://postgres@127.0.0.1:1/x", "--port", str(port))
    assert result.exit_code == 1
    assert f"Error: Port {port} on 127.0.0.1 is in use" in result.output


@pytest.mark.postgres
def test_loadtest_runs_against_a_service_and_prints_verdicts(loaded_url, tiny):
    with ServiceProcess.start(Settings(database_url=loaded_url, strategy="joined", pool_size=2)) as svc:
        result = _run(
            "loadtest",
            "--dataset",
            str(tiny.path),
            "--url",
            svc.url,
            "--rate",
            "10",
            "--rate",
            "20",
            "--seconds",
            "1",
            "--realtime",
        )
    assert result.exit_code == 0, result.output
    assert "API P50 < 50 ms" in result.output and "send_lag_p99_ms" in result.output
    # The opt-in ended with the command: this process is as it was.
    assert os.sched_getscheduler(0) == os.SCHED_OTHER

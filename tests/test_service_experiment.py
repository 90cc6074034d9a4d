"""The knee search's logic: ramp slices judged by intended send time, the bracket, the bisection."""

from __future__ import annotations

import uuid
from pathlib import Path

import polars as pl
import pytest

from workbench.service import experiment
from workbench.service.load import new_histogram
from workbench.service.load.results import LoadRun


def _ramp(latency_at) -> LoadRun:
    """A 4 s ramp of 10 sends a second whose latency is ``latency_at(intended_s)`` (None: a 503)."""
    times = [i / 10 for i in range(40)]
    lat = [latency_at(t) for t in times]
    frame = pl.DataFrame(
        {
            "stage": [0] * 40,
            "endpoint": ["jobs"] * 40,
            "intended_s": times,
            "sent_s": times,
            "latency_ms": lat,
            "status": [200 if v is not None else 503 for v in lat],
            "outcome": ["ok" if v is not None else "http_503" for v in lat],
        }
    )
    return LoadRun("cfg", "http://127.0.0.1:1", "ramp", frame, {}, new_histogram(), [10.0], [4.0])


def test_slices_judge_latency_and_errors_by_intended_send_time():
    # Holds for the first 2 s, then P99 over 200 ms; one 503 in the last second.
    run = _ramp(lambda t: 10.0 if t < 2 else (500.0 if t < 3.9 else None))
    slices = experiment.ramp_slices(run, seconds=1.0)
    assert slices["sent"].to_list() == [10, 10, 10, 10]
    assert slices["offered_rps"].to_list() == [10.0] * 4
    assert slices["holds"].to_list() == [True, True, False, False]
    assert slices["error_rate"].to_list() == [0, 0, 0, 0.1]
    assert experiment.bracket(slices) == (10.0, 10.0)


def test_a_noisy_slice_or_two_does_not_end_the_ramp():
    slices = pl.DataFrame(
        {
            "slice": [0, 1, 2, 3, 4, 5, 6, 7],
            "offered_rps": [20.0, 40, 60, 80, 100, 120, 140, 160],
            "holds": [True, False, False, True, False, False, False, True],
        }
    )
    assert experiment.bracket(slices) == (80.0, 100.0)
    assert experiment.bracket(slices.head(6)) == (80.0, 100.0)  # failing to the ramp's end
    assert experiment.bracket(slices.with_columns(holds=pl.lit(True))) == (160.0, None)
    assert experiment.bracket(slices.with_columns(holds=pl.lit(False))) == (None, 20.0)


def test_bisection_verifies_the_ramp_then_narrows_to_a_held_rate():
    search = experiment.Bisection(lo=200, hi=300, resolution=0.05)
    assert search.next() == 200  # the ramp's estimate is verified first
    search.record(200, True)
    assert search.next() == 300  # and so is the ramp's failure
    search.record(300, False)
    assert search.next() == 250
    search.record(250, False)
    assert search.next() == 225
    search.record(225, True)
    assert search.next() == 240  # (225 + 250) / 2 = 237.5, in steps of 5
    search.record(240, True)
    assert search.next() is None  # within 5% of the lowest failure
    assert (search.held, search.failed) == (240, 250)


def test_bisection_steps_down_when_the_ramp_was_optimistic_and_up_when_it_was_not():
    search = experiment.Bisection(lo=120, hi=140)
    search.record(search.next(), False)  # 120 fails when held for seconds
    assert search.next() == 85  # 0.7 x 120, in steps of 5
    search.record(85, False)
    assert search.next() == 60  # 0.7 x 85
    search.record(60, True)
    assert search.next() == 70  # (60 + 85) / 2 = 72.5
    noisy = experiment.Bisection(lo=240, hi=300)  # the ramp failed at 300 by a burst of noise
    noisy.record(noisy.next(), True)
    noisy.record(noisy.next(), True)
    assert noisy.tried == [(240, True), (300, True)] and noisy.next() == 430  # 300 / 0.7, stepping up
    noisy.record(430, False)
    assert noisy.next() == 365  # (300 + 430) / 2
    never = experiment.Bisection(lo=600, hi=None)  # the ramp held to its top
    never.record(never.next(), True)
    assert never.next() is None and never.held == 600
    with pytest.raises(ValueError):
        experiment.Bisection(None, None)


def test_the_runs_table_for_people_has_no_raw_dicts_and_units_in_headers():
    assert experiment.errors_text('{"timeout": 1, "http_503": 3}') == "http_503 3, timeout 1"
    assert experiment.errors_text("{}") == "none"
    summary = pl.DataFrame(
        {
            "label": ["batch, pool of 4"],
            "offered_rps": [100.0],
            "ok": [150],
            "p50_ms": [5.0],
            "p99_ms": [40.2],
            "p99_lo": [35.0],
            "p99_hi": [51.0],
            "error_rate": [0.0],
            "errors_by_kind": ["{}"],
            "service_cores": [0.31],
        }
    )
    html = experiment.people(summary)._repr_html_()
    assert "{" not in html and "none" in html and ">40<" in html and "35–51" in html
    assert "offered (req/s)" in html and "service CPU (cores)" in html and ">150<" in html


def test_configurations_are_named_for_people_and_the_mix_is_the_profiles():
    from workbench.profile import loads
    from workbench.service.app import Settings

    url = "postgresql://x@127.0.0.1/db"
    assert experiment.name(Settings(database_url=url)) == "N+1 (today), pool of 4"
    assert (
        experiment.name(Settings(url, "batch", 8, workers=2, cache_seconds=5))
        == "batch, pool of 8, 2 workers, 5 s cache"
    )
    prof = loads(
        "[pages]\nrecent_sessions = 50\n[traffic]\nhot_share = 0.6\n[traffic.weights]\nrecent = 1\njobs = 3\n"
    )
    mix = experiment.traffic(prof)
    assert (mix.weights, mix.hot_share, mix.page_limit) == ({"recent": 1.0, "jobs": 3.0}, 0.6, 50)


def test_a_steady_run_offers_its_scheduled_rate_not_its_send_count_over_time():
    frame = _ramp(lambda t: 10.0).requests.head(29)  # 29 sends scheduled by 19.5 req/s x 1.5 s
    run = LoadRun("cfg", "http://127.0.0.1:1", "steady", frame, {}, new_histogram(), [19.5], [1.5])
    assert run.summary()["offered_rps"][0] == 19.5
    cut = LoadRun("cfg", "http://127.0.0.1:1", "bounded", frame.head(15), {}, new_histogram(), [19.5], [1.5])
    assert cut.summary()["offered_rps"][0] == 10.0  # a bound on the count stopped it at 15 sends


@pytest.mark.postgres
def test_the_service_database_holds_exactly_notebook_03s_recommended_indexes(
    postgres_server_url, tiny, tmp_path
):
    import psycopg

    from workbench import strategies
    from workbench.engines import open_engine
    from workbench.errors import WorkbenchError
    from workbench.indexes import migrations
    from workbench.indexes.candidates import IndexSpec

    name = f"svc_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    url = postgres_server_url.rsplit("/", 1)[0] + "/" + name
    try:
        with open_engine("postgres", url) as engine:
            engine.load(tiny)
            strategies.ensure_indexes(engine)  # a second list, as 05 used to build: it must go
            with pytest.raises(WorkbenchError, match="run notebook 03_indexes first"):
                experiment.apply_indexes(engine, tmp_path)  # 03 has not exported: no fallback list
            assert len(engine.list_indexes()) == len(strategies.ACCESS_PATH_INDEXES)  # nothing changed
            chosen = [
                IndexSpec("messages", ("session_id", "timestamp")),
                IndexSpec("jobs", ("status", "created_at"), (False, True)),
            ]
            changes = [migrations.Change(s, "evidence") for s in chosen]
            migrations.write(tmp_path / "03_indexes", changes, ["postgres"])
            indexes = experiment.apply_indexes(engine, tmp_path)  # as 05 reads 03's out folder
        assert sorted(indexes["name"]) == sorted(s.name for s in chosen)
        columns = dict(zip(indexes["name"], indexes["columns"], strict=True))
        assert columns["ix_jobs_status_created_at_desc"] == "status, created_at DESC"
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_notebooks_03_and_05_share_the_profiles_traffic_mix():
    root = Path(__file__).resolve().parents[1] / "notebooks"
    nb05 = (root / "05_service_slo.py").read_text()
    assert "prof = lab.profile(profile)" in nb05 and "mix = experiment.traffic(prof)" in nb05
    assert "Mix(" not in nb05 and "ensure_indexes" not in nb05  # no mix or index list of its own
    assert "experiment.apply_indexes(engine, out_dir)" in nb05
    nb03 = (root / "03_indexes.py").read_text()
    if "prof.traffic" not in nb03:
        pytest.xfail("notebook 03 does not weight its workload by prof.traffic yet (its owner's change)")
    assert "lab.profile(profile)" in nb03

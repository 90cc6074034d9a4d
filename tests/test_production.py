"""The N+1 fix judged under the production profile: measured through the proxy, decided."""

from __future__ import annotations

import polars as pl
import pytest

from workbench import profile
from workbench.engines import open_engine
from workbench.measure import Results
from workbench.strategies import ensure_indexes, largest_project, production
from workbench.verdicts import DECISIONS


def tiny_profile(rtt_ms: float, page: int = 20) -> profile.Profile:
    return profile.loads(
        f'name = "rtt{rtt_ms:g}"\nengine = "postgres"\n[network]\nrtt_ms = {rtt_ms}\n'
        f'[pages]\nrecent_sessions = {page}\n[data]\nscale = "tiny"\n'
    )


@pytest.fixture
def pg(postgres_url, tiny):
    """The tiny dataset with its message texts cut short, in a database of the test's own: the
    work per session shrinks to the statements', so the round trip decides even on a busy machine."""
    with open_engine("postgres", postgres_url) as engine:
        engine.load(tiny)
        engine.execute("UPDATE messages SET content = left(content, 16)")
        ensure_indexes(engine)
        yield engine


FEW = ["n_plus_one", "joined", "batch"]  # shorter rounds: less drift between the paired runs


def test_the_decision_moves_with_the_round_trip_as_the_sweep_predicts(pg):
    """At a larger round trip N+1's 1 + 2N statements cost more: the fix's effect grows."""
    project_id, sessions = largest_project(pg)
    verdicts = {}
    for rtt in (0.0, 2.0):
        prof = tiny_profile(rtt, page=50)  # the whole project: 85 statements for N+1
        head = production.measure(pg, prof, project_id, strategies=FEW, repeat=10, warmup=2, budget_s=0.3)
        assert head.sessions == sessions and head.rtt_ms == rtt
        assert head.added_rtt_ms is not None and (
            rtt == 0 or head.added_rtt_ms > rtt / 2
        )  # sleeps never end early
        verdicts[rtt] = production.verdict(head, prof, max_load=float("inf"))
    near, far = verdicts[0.0], verdicts[2.0]
    for v in (near, far):
        assert v.item == "n_plus_one" and v.decision in DECISIONS and v.unit == "x"
        assert v.evidence == "02_n_plus_one.html" and "05" in v.governs
        assert v.conditions["profile"] == f"rtt{v.conditions['rtt_ms']:g}"
        assert v.conditions["page"] == sessions
        assert v.low <= v.effect <= v.high
    # 85 statements against 1-3: 2 ms more per round trip is 170 ms more for N+1 alone.
    assert far.low > near.high, (near, far)
    # A fix ships at 2 ms whatever it was at 0 (never towards "don't ship" as the round trip grows).
    assert far.decision in ("ship", "ship changed") and far.artifact.startswith("queries/")


def fake_runs(ms: dict[str, list[float]], load: float = 0.1) -> Results:
    rows = [
        {"engine": "postgres", "strategy": s, "sessions": 20, "run": i, "wall_ns": int(t * 1e6)}
        | {"statements": 41 if s == "n_plus_one" else 1, "load_before": load, "load_after": load}
        for s, times in ms.items()
        for i, t in enumerate(times)
    ]
    return Results.from_runs(rows, {})


BOOK = pl.DataFrame(
    [
        {
            "strategy": "n_plus_one",
            "messages": 100,
            "windows": 30,
            "rows": 150,
            "bytes": 9000,
            "statements": 41,
        },
        {"strategy": "joined", "messages": 100, "windows": 30, "rows": 400, "bytes": 30000, "statements": 1},
        {"strategy": "batch", "messages": 100, "windows": 30, "rows": 150, "bytes": 9000, "statements": 3},
    ]
)


def head(ms: dict[str, list[float]], load: float = 0.1) -> production.Headline:
    return production.Headline(fake_runs(ms, load), BOOK, "postgres", 20, 1, 0.5, 0.52)


def jitter(base: float) -> list[float]:
    return [base * (1 + 0.01 * (i % 5)) for i in range(20)]


def test_ship_ship_changed_and_dont_ship_follow_the_intervals():
    prof = tiny_profile(0.5, 20)
    ship = production.verdict(
        head({"n_plus_one": jitter(30), "joined": jitter(10), "batch": jitter(10.5)}), prof
    )
    assert ship.decision == "ship" and ship.effect == pytest.approx(3, rel=0.05)
    assert "ship the plan's JOIN, 3" in ship.verdict and "project_sessions_joined" in ship.artifact
    assert "400 rows for 130 real ones" in ship.cost
    changed = production.verdict(
        head({"n_plus_one": jitter(30), "joined": jitter(20), "batch": jitter(6)}), prof
    )
    assert changed.decision == "ship changed" and "batch" in changed.verdict
    assert changed.effect == pytest.approx(5, rel=0.05) and "messages_for_sessions" in changed.artifact
    dont = production.verdict(
        head({"n_plus_one": jitter(10), "joined": jitter(14), "batch": jitter(12)}), prof
    )
    assert dont.decision == "don't ship" and dont.artifact == "" and "slower" in dont.verdict
    busy = production.verdict(
        head({"n_plus_one": jitter(30), "joined": jitter(10), "batch": jitter(10.5)}, load=9.0),
        prof,
        max_load=1.8,
    )
    assert (
        busy.decision == "not measured here"
        and "not ranked" in busy.verdict
        and "Load average 9.00" in busy.detail
    )


def test_flips_come_from_the_sweeps():
    sweep = pl.DataFrame(
        {
            "rtt_ms": [0.0, 0.0, 0.5, 0.5, 2.0, 2.0],
            "strategy": ["n_plus_one", "joined"] * 3,
            "sessions": [20] * 6,
            "statements": [41, 1] * 3,
            "n": [12] * 6,
            "median_ms": [5.0, 8.0, 26.0, 9.0, 90.0, 11.0],
            "lo_ms": [4.9, 7.9, 25.0, 8.9, 88.0, 10.9],
            "hi_ms": [5.1, 8.1, 27.0, 9.1, 92.0, 11.1],
            "work_ms": [5.0, 8.0] * 3,
        }
    )
    flip = production.rtt_flip(sweep, "joined")
    assert flip["measured_from_ms"] == 0.5 and flip["model_from_ms"] == pytest.approx(3 / 40)
    scaling = pl.DataFrame(
        {
            "engine": ["postgres"] * 6,
            "strategy": ["n_plus_one", "joined"] * 3,
            "sessions": [5, 5, 22, 22, 100, 100],
            "statements": [11, 1, 45, 1, 201, 1],
            "median_ms": [1.0, 0.5, 4.0, 3.0, 15.0, 30.0],
            "median_lo": [0.95, 0.45, 3.9, 2.9, 14.5, 29.0],
            "median_hi": [1.05, 0.55, 4.1, 3.1, 15.5, 31.0],
        }
    )
    (loopback,) = production.page_flip(scaling, "postgres", "joined", 0.0)
    assert loopback["faster_below"] == "joined" and 22 < loopback["sessions"] < 100
    # At 0.5 ms N+1 pays 200 more round trips at 100 sessions: the JOIN stays ahead.
    assert production.page_flip(scaling, "postgres", "joined", 0.5) == []
    v = production.verdict(
        head({"n_plus_one": jitter(30), "joined": jitter(10), "batch": jitter(10.5)}),
        tiny_profile(0.5, 20),
        sweep=sweep,
        scaling=scaling,
    )
    assert "from 0.5 ms of round trip" in v.flips
    assert "Page size at 0.5 ms (the scaling sweep plus statements × RTT), no swap" in v.flips
    assert "for comparison at loopback, the plan's JOIN faster below ~" in v.flips


def test_the_artifact_is_the_sql_to_ship_written_beside_the_report(tmp_path):
    runs = {"n_plus_one": jitter(30), "joined": jitter(20), "batch": jitter(6)}
    v = production.verdict(head(runs), tiny_profile(0.5, 20), out_dir=tmp_path)
    assert v.artifact == "02_n_plus_one/ship_batch.postgres.sql"
    sql = (tmp_path / v.artifact).read_text()
    assert sql.startswith("-- The N+1 fix to ship under the profile 'rtt0.5': the batch select-in")
    assert sql.count("-- ") >= 4 and "= ANY( CAST(:session_ids AS BIGINT[]) )" in " ".join(sql.split())
    dont = production.verdict(
        head({"n_plus_one": jitter(10), "joined": jitter(14), "batch": jitter(12)}),
        tiny_profile(0.5, 20),
        out_dir=tmp_path,
    )
    assert dont.artifact == ""

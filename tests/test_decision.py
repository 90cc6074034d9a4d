"""The decision page: one row per plan item from the labs' verdicts, contradictions caught."""

import os
from pathlib import Path

import pytest

from workbench import decision
from workbench.decision import NOT_MEASURED, ReconcileError
from workbench.verdicts import PLAN_ITEMS, SUCCESS_CRITERIA, Verdict

UNDER = {"profile": "default", "engine": "postgres"}


def v(decision_: str, item: str = "n_plus_one", governs: str = "", **kw) -> Verdict:
    return Verdict(
        f"topic {item}",
        f"said {decision_}",
        item=item,
        decision=decision_,
        governs=governs,
        **{"conditions": UNDER, **kw},
    )


def rows_by_item(saved):
    return {r.item: r for r in decision.decide(saved, "default", "postgres")}


def test_every_plan_item_and_criterion_gets_a_row_in_the_plans_order():
    rows = decision.decide({}, "default", "postgres")
    assert [r.item for r in rows] == [*SUCCESS_CRITERIA, *PLAN_ITEMS]
    assert {r.decision for r in rows} == {NOT_MEASURED}


def test_one_lab_decides_its_item():
    row = rows_by_item({"02": [v("ship", effect=1.4, low=1.3, high=1.5, unit="x")]})["n_plus_one"]
    assert (row.decision, row.sources, row.conflict) == ("ship", ["02"], "")
    assert row.verdict.interval() == "1.4x (1.3-1.5)"


def test_labs_that_agree_are_named_together():
    row = rows_by_item({"02": [v("ship")], "05": [v("ship")]})["n_plus_one"]
    assert (row.decision, row.sources, len(row.others)) == ("ship", ["02", "05"], 1)


def test_a_contradiction_without_a_reason_is_an_error():
    rows = decision.decide({"02": [v("ship")], "05": [v("don't ship")]}, "default", "postgres")
    row = {r.item: r for r in rows}["n_plus_one"]
    assert row.decision == "labs disagree"
    assert "02 says 'ship', 05 says \"don't ship\"; no lab states why it governs" in row.conflict
    with pytest.raises(ReconcileError, match="the N\\+1 fix .*: 02 says 'ship'.*Set `governs`"):
        decision.check(rows)


def test_the_lab_that_states_why_it_governs_decides_and_the_other_is_shown():
    saved = {"02": [v("ship changed", governs="measures the profile's round trip")], "05": [v("don't ship")]}
    rows = decision.decide(saved, "default", "postgres")
    decision.check(rows)  # a stated reason reconciles them
    row = {r.item: r for r in rows}["n_plus_one"]
    assert (row.decision, row.sources, [n for n, _ in row.others]) == ("ship changed", ["02"], ["05"])
    page = decision.to_html(rows, "Profile default")
    assert (
        "also measured by 1 more, and which governs" in page
        and "measures the profile&#x27;s round trip" in page
    )


def test_two_labs_claiming_to_govern_differently_is_still_a_contradiction():
    saved = {"02": [v("ship", governs="a")], "05": [v("don't ship", governs="b")]}
    with pytest.raises(ReconcileError, match="two labs claim to govern"):
        decision.check(decision.decide(saved, "default", "postgres"))


def test_another_profiles_verdicts_are_left_out_and_listed():
    old = v("don't ship", conditions={"profile": "cross_zone", "engine": "postgres"})
    saved = {"02": [v("ship")], "05": [old]}
    assert rows_by_item(saved)["n_plus_one"].sources == ["02"]
    assert decision.stale(saved, "default") == ["05"]


def test_the_profiles_engine_decides_and_another_engine_stands_in_only_alone():
    duck = v("don't ship", engine="duckdb", conditions={"profile": "default", "engine": "duckdb"})
    pg = v("ship", engine="postgres")
    assert rows_by_item({"02": [duck, pg]})["n_plus_one"].decision == "ship"
    only = rows_by_item({"02": [duck]})["n_plus_one"]
    assert (only.decision, decision._conditions(only.verdict)) == ("don't ship", "duckdb")


def test_other_recommended_indexes_follow_the_plans_indexes():
    items = [
        r.item
        for r in decision.decide(
            {"03": [v("ship", item="index:messages(timestamp, id)")]}, "default", "postgres"
        )
    ]
    at = items.index("index:messages(timestamp, id)")
    assert items[at - 1 : at + 2] == [
        "index:jobs(status, created_at DESC)",
        "index:messages(timestamp, id)",
        "index_desc",
    ]


def test_plain_findings_are_not_rows():
    rows = rows_by_item({"01": [Verdict("heavy tail", "top 1% hold 11%")]})
    assert all(r.decision == NOT_MEASURED for r in rows.values())


def test_the_page_shows_conditions_cost_flips_and_what_to_apply():
    row = v(
        "ship",
        item="index:messages(session_id, timestamp)",
        effect=3.2,
        low=2.9,
        high=3.6,
        unit="x",
        cost="writes 1.1x (1.0-1.2), 2.1 MB",
        flips="below 1,000 messages per session",
        evidence="03_indexes.html",
        artifact="03_indexes/migrations/postgres/000002_create_x.up.sql",
        conditions={**UNDER, "rtt_ms": 0.5, "recent_sessions": 20},
    )
    page = decision.to_html(
        decision.decide({"03_indexes": [row]}, "default", "postgres"), "Profile default (x)"
    )
    for text in (
        "3.2x (2.9-3.6)",
        "writes 1.1x (1.0-1.2), 2.1 MB",
        "flips: below 1,000 messages per session",
        "postgres, RTT 0.5 ms, pages of 20",
        "href='03_indexes/migrations/postgres/000002_create_x.up.sql'",
        "What to ship (1 ship, 11 not measured here)",
    ):
        assert text in page


def test_the_labs_of_this_run_agree_under_one_profile():
    """After the notebooks ran in this session (nbval runs notebooks/ first), their verdicts
    must not contradict each other on any plan item without a stated reason."""
    out = Path(os.environ.get("WORKBENCH_OUT_DIR", ""))
    saved = decision.gather(out, sorted(p.parent.name for p in out.glob("*/verdicts.json")))
    if not any(v.decision for vs in saved.values() for v in vs):
        if os.environ.get("CI"):
            pytest.fail(
                "No notebook wrote plan verdicts in this session: nbval must run notebooks/ before tests/"
            )
        pytest.skip("No notebook ran in this session (run `pytest notebooks tests`); nothing to reconcile")
    decision.check(decision.decide(saved, "default", "postgres"))

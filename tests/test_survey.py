"""Notebook 01's verdicts, computed from the data."""

import polars as pl

from workbench import shape, survey


def test_verdicts_answer_notebook_01s_questions(tiny, tmp_path):
    sample = tiny.sample(tmp_path / "sample", fraction=0.5, seed=7)
    stats = tiny.session_stats()
    comparison = shape.compare(tiny, sample)
    verdicts = survey.verdicts(tiny, stats, comparison, {"duckdb": tiny.counts, "sqlite": tiny.counts})
    by_topic = {v.topic: v for v in verdicts}
    tail = by_topic["heavy tail of session sizes"]
    assert (
        tail.verdict.startswith("top 1% of sessions hold") and f"{stats['messages'].max():,}" in tail.detail
    )
    same = by_topic["same rows in every engine"]
    assert same.verdict == "same rows" and same.engine == "duckdb, sqlite"
    assert f"{sum(tiny.counts.values()):,} rows" in same.detail


def test_engines_that_disagree_are_named(tiny):
    wrong = {**tiny.counts, "messages": tiny.counts["messages"] - 1}
    verdict = survey._agreement(tiny.counts, {"duckdb": tiny.counts, "sqlite": wrong})
    assert verdict.verdict == "rows differ"
    assert (
        f"sqlite messages: {wrong['messages']:,} rows, expected {tiny.counts['messages']:,}" in verdict.detail
    )


def test_a_sample_that_loses_its_tail_is_called_so():
    def comparison(p90, p99, largest):
        metrics = ["sessions", "messages/session p50", "messages/session p90", "messages/session p99"]
        ratios = [0.1, 1.0, p90, p99]
        if largest is not None:
            metrics.append("messages/session max")
            ratios.append(largest)
        return pl.DataFrame(
            {
                "metric": metrics,
                "source": [1000.0] * len(metrics),
                "sample": [100.0] * len(metrics),
                "ratio": ratios,
            }
        )

    assert survey._sample(comparison(1.0, 1.1, 1.0)).verdict == "tail kept"
    assert survey._sample(comparison(1.0, 0.5, 0.2)).verdict == "tail shifted: p99 0.50x, max 0.20x"
    assert survey._sample(comparison(1.0, 1.0, None)).verdict == "tail shifted: max missing"

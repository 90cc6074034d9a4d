"""Fitting the generator to real transcripts, and generating their shape at any size.

The four real fixture transcripts are too few sessions for a tail, so the tree fitted here
is 240 copies of them with fresh ids and varied lengths (see ``tests/replicas.py``).
"""

import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from replicas import FIXTURES, replicate

from workbench.cli import main
from workbench.dataset import Dataset
from workbench.sources.claude_code import ingest
from workbench.sources.fit import MINIMUM, SHAPE_VERSION, Shape, ShapeError, fit
from workbench.sources.synthetic import generate_like


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> Dataset:
    root = tmp_path_factory.mktemp("replicas")
    ingest([replicate(root / "tree", sessions=240, seed=0)], root / "ds", progress=False)
    return Dataset.open(root / "ds")


@pytest.fixture(scope="module")
def shape(real) -> Shape:
    return fit(real)


def _quantiles(values) -> list[float]:
    return [float(np.quantile(values, q, method="nearest")) for q in (0.5, 0.9, 0.99)]


def test_like_reproduces_messages_and_windows_per_session(real, tmp_path):
    result = CliRunner().invoke(
        main, ["generate", str(tmp_path / "like"), "--like", str(real.path), "--scale", "10"]
    )
    assert result.exit_code == 0, result.output
    source, like = real.session_stats(), Dataset.open(tmp_path / "like").session_stats()
    assert like.height == 10 * source.height
    for got, want in zip(_quantiles(like["messages"]), _quantiles(source["messages"]), strict=True):
        assert abs(got / want - 1) <= 0.15, (got, want)
    assert abs(like["windows"].mean() / source["windows"].mean() - 1) <= 0.15
    assert _quantiles(like["windows"])[:2] == _quantiles(source["windows"])[:2]


def test_fitted_counts_hold_the_quantiles_at_any_size(real, shape):
    drawn = shape.draw_counts(np.random.default_rng(0), 200_000)
    for got, want in zip(_quantiles(drawn), _quantiles(real.session_stats()["messages"]), strict=True):
        assert abs(got / want - 1) <= 0.15, (got, want)


def test_shape_holds_no_content_and_no_identifiers(real, shape, tmp_path):
    text = shape.save(tmp_path / "s.json").read_text()
    assert len(text) < 40_000
    strings = set()
    for table, columns in {
        "messages": ["external_id", "content", "model"],
        "sessions": ["external_id", "title", "git_branch"],
        "projects": ["name", "path"],
    }.items():
        for column in columns:
            strings |= {s for s in real.read(table)[column].drop_nulls().unique().to_list() if len(s) >= 4}
    for table in ("messages", "sessions", "projects"):
        strings |= {str(i) for i in real.read(table)["id"].to_list()}
    found = [s for s in strings if s in text]
    assert not found, found[:5]
    words = {w for w in json.loads(text)["kinds"]["assistant"]["types"]}
    assert words <= {"text", "tool_use", "thinking"}  # the schema's type names, nothing else


def test_deterministic_by_seed(shape, tmp_path):
    a = generate_like(tmp_path / "a", shape, seed=3, sessions=100)
    b = generate_like(tmp_path / "b", shape, seed=3, sessions=100)
    c = generate_like(tmp_path / "c", shape, seed=4, sessions=100)
    assert a.content_hash == b.content_hash != c.content_hash
    assert a.counts["sessions"] == 100


def test_shape_file_round_trip_and_cli(shape, tmp_path):
    runner = CliRunner()
    path = shape.save(tmp_path / "s.json")
    assert Shape.load(path) == shape
    result = runner.invoke(main, ["generate", str(tmp_path / "d"), "--shape", str(path), "--sessions", "50"])
    assert result.exit_code == 0, result.output
    assert Dataset.open(tmp_path / "d").manifest["source"]["shape"] == shape.digest


def test_another_schema_version_is_refused_naming_both(shape, tmp_path):
    data = dict(shape.data, version=SHAPE_VERSION + 1)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    with pytest.raises(
        ShapeError, match=f"schema version {SHAPE_VERSION + 1}, this workbench reads version {SHAPE_VERSION}"
    ):
        Shape.load(path)
    result = CliRunner().invoke(main, ["generate", str(tmp_path / "d"), "--shape", str(path)])
    assert result.exit_code == 1 and f"reads version {SHAPE_VERSION}" in result.output


def test_too_small_names_the_table_and_minimum(tmp_path):
    ingest([FIXTURES], tmp_path / "fx", progress=False)
    with pytest.raises(ShapeError, match=rf"Table 'sessions' has 4 rows: .* at least {MINIMUM['sessions']}"):
        fit(Dataset.open(tmp_path / "fx"))


def test_jobs_are_fitted_when_there_are_some(tiny):
    fitted = fit(tiny).data["jobs"]
    assert set(fitted["status"]) <= {"completed", "failed", "pending", "running", "cancelled"}
    assert fitted["per_session"] == tiny.counts["jobs"] / tiny.counts["sessions"]


def test_cli_refuses_conflicting_options(real, tmp_path):
    runner = CliRunner()
    dest = str(tmp_path / "d")
    cases = {
        ("--like", str(real.path), "--scale", "small"): "--scale is a factor",
        ("--scale", "10"): "needs --like or --shape",
        ("--like", str(real.path), "--messages", "9"): "--messages cannot be set",
        ("--save-shape", "x.json"): "--save-shape needs --like",
        ("--like", str(real.path), "--scale", "2", "--sessions", "9"): "not both",
    }
    for args, message in cases.items():
        result = runner.invoke(main, ["generate", dest, *args])
        assert result.exit_code == 1 and message in result.output, (args, result.output)


def test_usage_sits_on_the_fitted_share_of_assistant_messages(real, shape, tmp_path):

    def share(ds: Dataset) -> dict[str, float]:
        frame = ds.read("messages").filter(pl.col("role") == "assistant")
        rows = frame.group_by("type").agg(pl.col("output_tokens").is_not_null().mean()).rows()
        return dict(rows)

    like = generate_like(tmp_path / "like", shape, seed=1, scale=4)
    want, got = share(real), share(like)
    assert want.keys() == got.keys() and all(abs(got[k] - want[k]) < 0.05 for k in want), (want, got)

import polars as pl
import pytest

from workbench.errors import DatasetError, WorkbenchError
from workbench.sources.synthetic import SCALES, Scale, generate, resolve_scale


def test_tiny_has_the_exact_counts(tiny):
    scale = SCALES["tiny"]
    assert tiny.counts["messages"] == scale.messages
    assert tiny.counts["sessions"] == scale.sessions
    assert tiny.counts["projects"] == scale.projects
    assert tiny.counts["jobs"] == scale.jobs


def test_deterministic_for_a_seed(tiny, tmp_path):
    again = generate(tmp_path / "again", "tiny", seed=7)
    other = generate(tmp_path / "other", "tiny", seed=8)
    assert again.content_hash == tiny.content_hash
    assert other.content_hash != tiny.content_hash


def test_referential_integrity_and_consistency(tiny):
    sessions, messages = tiny.read("sessions"), tiny.read("messages")
    assert sessions["project_id"].is_in(tiny.read("projects")["id"].implode()).all()
    assert messages["session_id"].is_in(sessions["id"].implode()).all()
    per_session = messages.group_by("session_id").agg(
        n=pl.len(), first=pl.col("timestamp").min(), last=pl.col("timestamp").max()
    )
    joined = sessions.join(per_session, left_on="id", right_on="session_id")
    assert (joined["message_count"] == joined["n"]).all()
    assert (joined["created_at"] == joined["first"]).all() and (joined["updated_at"] == joined["last"]).all()
    assert messages["id"].is_unique().all() and messages["external_id"].is_unique().all()
    windows = tiny.read("session_windows")
    assert windows["message_count"].sum() == tiny.counts["messages"]


def test_realistic_shape(tmp_path):
    ds = generate(tmp_path / "s", Scale(projects=20, sessions=1_000, messages=50_000, jobs=500), 1)
    stats = ds.session_stats()
    median, largest = stats["messages"].median(), stats["messages"].max()
    assert largest > 20 * median, "no heavy tail"
    per_project = stats.group_by("project_id").len()["len"].sort(descending=True)
    assert per_project[0] > 3 * per_project.median(), "sessions per project are not skewed"
    messages = ds.read("messages")
    hours = messages["timestamp"].dt.hour().value_counts()["count"]
    assert hours.max() > 4 * hours.min(), "no daily rhythm"
    assistant = messages.filter(pl.col("role") == "assistant")
    assert assistant["output_tokens"].null_count() == 0
    assert messages.filter(pl.col("role") == "user")["output_tokens"].null_count() > 0
    length = messages["content"].str.len_chars()
    assert 100 < length.median() < 1_000 and length.max() > 10_000
    assert (stats["windows"] > 1).mean() > 0.05, "no session spans several windows"
    status = ds.read("jobs")["status"].value_counts(normalize=True)
    assert status.filter(pl.col("status") == "completed")["proportion"].item() > 0.8


def test_existing_dataset_reused_or_refused(tiny, tmp_path):
    dest = tmp_path / "d"
    first = generate(dest, "tiny", seed=1)
    mtime = (dest / "manifest.json").stat().st_mtime_ns
    assert generate(dest, "tiny", seed=1).content_hash == first.content_hash
    assert (dest / "manifest.json").stat().st_mtime_ns == mtime
    with pytest.raises(DatasetError, match="holds a different dataset"):
        generate(dest, "tiny", seed=2)
    assert generate(dest, "tiny", seed=2, overwrite=True).manifest["seed"] == 2


@pytest.mark.parametrize(
    ("scale", "overrides", "message"),
    [
        ("huge", {}, "Unknown scale 'huge': expected one of tiny, small, medium, large"),
        ("tiny", {"messages": 10}, "fewer than two per session"),
        ("tiny", {"sessions": 0}, "sessions must be at least 1"),
    ],
)
def test_bad_scales(scale, overrides, message):
    with pytest.raises(WorkbenchError, match=message):
        resolve_scale(scale, **overrides)


def test_one_project_dominates_and_small_has_a_thousand_sessions_in_it():
    from workbench.sources.synthetic import project_sizes

    for scale in SCALES.values():
        sizes = project_sizes(scale)
        assert sizes.sum() == scale.sessions and sizes.min() >= 1 and (sizes[:-1] >= sizes[1:]).all()
        assert 0.6 < sizes[0] / scale.sessions < 0.75  # cf. 1,166 of 1,803 in a real heavy user's tree
    assert project_sizes(SCALES["small"])[0] >= 1000  # notebook 02 loads 1 ... 1,000 sessions of it


def test_a_dataset_from_an_older_generator_is_regenerated(tiny, tmp_path):
    import json

    dest = tmp_path / "old"
    generate(dest, "tiny", seed=7)
    manifest = json.loads((dest / "manifest.json").read_bytes())
    manifest["source"]["generator_version"] = 0
    (dest / "manifest.json").write_text(json.dumps(manifest))
    assert generate(dest, "tiny", seed=7).content_hash == tiny.content_hash
    with pytest.raises(DatasetError, match="holds a different dataset"):
        generate(dest, "tiny", seed=8)  # another request is still refused

import json

import polars as pl
import pytest

from workbench import dataset as dataset_module
from workbench.dataset import Dataset, DatasetWriter
from workbench.errors import DatasetError


def test_open_checks_counts_and_columns(tiny):
    ds = Dataset.open(tiny.path, verify=True)
    assert ds.counts == tiny.manifest["counts"]
    assert ds.scan("messages").select(pl.len()).collect().item() == ds.counts["messages"]


def copy_of(tiny, tmp_path):
    import shutil

    dest = tmp_path / "copy"
    shutil.copytree(tiny.path, dest)
    return dest


def test_missing_parquet_file_is_named_with_the_fix(tiny, tmp_path):
    dest = copy_of(tiny, tmp_path)
    (dest / "messages.parquet").unlink()
    with pytest.raises(DatasetError, match=r"messages.parquet' is missing: regenerate it"):
        Dataset.open(dest)


def test_corrupt_parquet_file(tiny, tmp_path):
    dest = copy_of(tiny, tmp_path)
    (dest / "sessions.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DatasetError, match=r"sessions.parquet' is not a readable Parquet file"):
        Dataset.open(dest)


def test_corrupt_or_missing_manifest(tiny, tmp_path):
    dest = copy_of(tiny, tmp_path)
    (dest / "manifest.json").write_text("{ truncated")
    with pytest.raises(DatasetError, match="manifest.json' is not valid JSON"):
        Dataset.open(dest)
    (dest / "manifest.json").unlink()
    with pytest.raises(DatasetError, match="manifest.json' is missing"):
        Dataset.open(dest)


def test_row_count_mismatch_and_checksum(tiny, tmp_path):
    dest = copy_of(tiny, tmp_path)
    manifest = json.loads((dest / "manifest.json").read_bytes())
    manifest["files"]["jobs"]["rows"] += 1
    (dest / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match="jobs.parquet' has 120 rows, the manifest says 121"):
        Dataset.open(dest)


def test_writer_leaves_nothing_behind_on_error(tmp_path):
    dest = tmp_path / "ds"
    with pytest.raises(RuntimeError), DatasetWriter(dest, source={"kind": "test"}) as w:
        w.write("projects", pl.DataFrame({"id": [1], "name": ["p"], "path": ["/p"], "created_at": [None]}))
        raise RuntimeError("interrupted")
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_incomplete_datasets_and_foreign_folders(tmp_path):
    with pytest.raises(DatasetError, match="without tables"), DatasetWriter(tmp_path / "a", source={}):
        pass
    assert not (tmp_path / "a").exists()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="not a workbench dataset"):
        DatasetWriter(foreign, source={}, overwrite=True)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_writer_casts_strictly(tmp_path):
    with pytest.raises(DatasetError, match="missing columns"), DatasetWriter(tmp_path / "b", source={}) as w:
        w.write("projects", pl.DataFrame({"id": [1]}))


def test_sample_is_a_cluster_sample(tiny, tmp_path):
    part = tiny.sample(tmp_path / "s", fraction=0.3, seed=1)
    sessions = set(part.read("sessions")["id"])
    assert len(sessions) == round(0.3 * tiny.counts["sessions"])
    full = tiny.read("messages").filter(pl.col("session_id").is_in(sessions))
    assert part.read("messages").sort("id").equals(full.sort("id"))
    windows = tiny.read("session_windows").filter(pl.col("session_id").is_in(sessions))
    assert part.counts["session_windows"] == windows.height
    assert set(part.read("projects")["id"]) == set(part.read("sessions")["project_id"])
    jobs = part.read("jobs")
    assert jobs.filter(pl.col("session_id").is_not_null())["session_id"].is_in(sessions).all()


def test_sample_keeps_the_heavy_tail_and_is_reproducible(tiny, tmp_path):
    a = tiny.sample(tmp_path / "a", sessions=6, seed=3)
    b = tiny.sample(tmp_path / "b", sessions=6, seed=3)
    assert a.content_hash == b.content_hash
    largest = tiny.session_stats().sort("messages")["session_id"][-1]
    assert largest in set(a.read("sessions")["id"])  # its size class is never emptied
    assert a.counts["sessions"] == 6


def test_sample_reuses_identical_and_refuses_different(tiny, tmp_path):
    first = tiny.sample(tmp_path / "s", fraction=0.5, seed=1)
    assert tiny.sample(tmp_path / "s", fraction=0.5, seed=1).path == first.path
    with pytest.raises(DatasetError, match="holds a different dataset"):
        tiny.sample(tmp_path / "s", fraction=0.4, seed=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fraction": 1.5}, "Sample fraction 1.5 is out of range"),
        ({"sessions": 0}, "Sample size 0 is out of range: use 1..60"),
        ({}, "Give exactly one of fraction"),
    ],
)
def test_sample_bad_arguments(tiny, tmp_path, kwargs, message):
    with pytest.raises(DatasetError, match=message):
        tiny.sample(tmp_path / "x", **kwargs)


@pytest.mark.parametrize(
    ("sizes", "target", "expected"),
    [
        ([30, 20, 10], 6, [3, 2, 1]),  # proportional
        ([3, 5, 10, 15, 12, 8, 4, 2, 1], 6, [0, 0, 1, 1, 1, 0, 1, 1, 1]),  # empty classes, largest first
        ([100, 1], 10, [9, 1]),  # the single largest session always survives
        ([5, 5], 10, [5, 5]),  # everything
    ],
)
def test_allocation_per_size_class(sizes, target, expected):
    take = dataset_module.allocate(sizes, target)
    assert take == expected
    assert sum(take) == target and all(t <= n for t, n in zip(take, sizes, strict=True))


def test_sample_files_are_byte_identical_across_runs(tmp_path):
    """Row order is part of the content hash: the streaming semi-join must keep it."""
    from workbench.sources.synthetic import Scale, generate

    source = generate(tmp_path / "src", Scale(projects=10, sessions=400, messages=40_000, jobs=100), 3)
    hashes = set()
    for i in range(3):
        part = source.sample(tmp_path / f"s{i}", fraction=0.2, seed=1)
        assert part.read("messages")["id"].is_sorted() and part.read("session_windows")["id"].is_sorted()
        hashes.add(part.content_hash)
    assert len(hashes) == 1


@pytest.mark.parametrize("value", ["café/ü", 2**70])
def test_manifest_round_trips_any_json_value(tiny, tmp_path, value):
    """The manifest is written by orjson, or by the standard library for integers beyond
    64 bits: either way it reads back as written, non-ASCII text included."""
    with DatasetWriter(tmp_path / "ds", source={"kind": "test", "note": value}) as w:
        for table in dataset_module.schema.TABLES:
            w.write(table, tiny.read(table))
    ds = Dataset.open(tmp_path / "ds", verify=True)
    assert ds.manifest["source"]["note"] == value
    assert ds.counts == tiny.counts

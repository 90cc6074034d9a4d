"""What notebooks do first: parameters checked, the profile's data, engines opened or refused."""

import pytest

from workbench import lab, profile, report
from workbench.errors import EngineError, WorkbenchError


def test_an_unknown_notebook_parameter_fails_fast_naming_the_nearest(tmp_path):
    nb = report.NOTEBOOKS / "01_data.ipynb"
    with pytest.raises(Exception) as e:
        report.execute(nb, tmp_path / "out.ipynb", {"scael": "tiny"})
    assert "Unknown notebook parameter 'scael': did you mean 'scale'?" in str(e.value)
    # it failed in the first code cell after the parameters, before any data was built
    assert not (tmp_path / "tiny").exists()


@pytest.mark.parametrize(
    ("history", "fine"),
    [
        (["", "a = 1\nb = 2", "# Parameters\na = 3\n", "lab.setup()"], True),
        (["", "a = 1", "lab.setup()"], True),  # run by hand: nothing injected
        (["", "a = 1", "# Parameters\nc = 3\n"], False),
        (
            ["", "a = 1  # comment\nb: int = 2", "# Parameters\nb = 3\n"],
            False,
        ),  # annotated names are not parameters
    ],
)
def test_parameter_check_known_answers(history, fine):
    if fine:
        lab.check_parameters(history)
    else:
        with pytest.raises(WorkbenchError, match="Unknown notebook parameter"):
            lab.check_parameters(history)


def test_the_profiles_data_unless_a_parameter_overrides_it(tmp_path):
    prof = profile.loads('[data]\nscale = "tiny"\nseed = 3\n')
    ds = lab.dataset(prof, tmp_path)
    assert (ds.name, ds.manifest["seed"]) == ("tiny", 3)
    assert lab.dataset(prof, tmp_path / "other", seed=7).manifest["seed"] == 7
    with pytest.raises(WorkbenchError, match="Unknown source 'nowhere'"):
        lab.dataset(prof, tmp_path, source="nowhere")


def test_engines_as_a_comma_separated_string(tiny, tmp_path):
    opened, loads = lab.open_engines(tiny, "duckdb, sqlite", tmp_path)
    try:
        assert list(opened) == ["duckdb", "sqlite"]
        assert set(loads["engine"].to_list()) == {"duckdb", "sqlite"}
    finally:
        for e in opened.values():
            e.close()


def test_no_engine_opened_is_an_error_that_says_why(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_PG_BINDIR", str(tmp_path / "no-postgres"))
    monkeypatch.delenv("WORKBENCH_POSTGRES_URL", raising=False)
    monkeypatch.setattr(lab, "_servers", [])
    with pytest.raises(EngineError, match=r"No engine could be opened \(postgres: .*\)\. Install PostgreSQL"):
        lab.open_engines(tiny, "postgres", tmp_path)

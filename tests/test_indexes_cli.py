"""`workbench advise` end to end on SQLite, and its errors."""

from __future__ import annotations

from click.testing import CliRunner

from workbench.cli import main


def test_advise_prints_a_ranked_table_and_writes_migrations(tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    q = tmp_path / "q"
    q.mkdir()
    (q / "jobs_queue.sql").write_text(
        "SELECT id FROM jobs WHERE status = :status ORDER BY created_at, id LIMIT :limit\n"
    )
    (q / "search.sql").write_text("SELECT id FROM sessions WHERE title LIKE '%fix%'\n")
    result = CliRunner().invoke(
        main,
        [
            "advise",
            "--engine",
            "sqlite",
            "--dataset",
            str(tiny.path),
            "--queries",
            str(q),
            "--repeat",
            "2",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "jobs(status, created_at, id)" in result.output
    assert "Not indexable: search" in result.output and "pg_trgm" in result.output
    assert (tmp_path / "out" / "migrations" / "sqlite").is_dir()


def test_advise_unknown_workload_format_is_an_error(tmp_path):
    f = tmp_path / "w.txt"
    f.write_text("x\n")
    result = CliRunner().invoke(main, ["advise", "--engine", "sqlite", "--workload", str(f)])
    assert result.exit_code == 1 and "Error: Unknown workload file format" in result.output


BRANCH = "SELECT id, title FROM sessions WHERE git_branch = :git_branch ORDER BY created_at DESC LIMIT 5\n"


def _advise(tiny, tmp_path, *extra):
    return CliRunner().invoke(
        main,
        ["advise", "--engine", "sqlite", "--dataset", str(tiny.path), "--queries", str(tmp_path / "q"),
         "--repeat", "2", "--out", str(tmp_path / "out"), *extra],
    )  # fmt: skip


def test_advise_a_parameter_without_a_value_is_an_error_naming_it_and_the_fix(tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "branch.sql").write_text(BRANCH)
    result = _advise(tiny, tmp_path)
    assert result.exit_code == 1
    assert "Error: Query 'branch' has parameter :git_branch that the workbench cannot draw" in result.output
    assert "--values FILE" in result.output


def test_advise_takes_values_and_writes_beside_a_teams_migrations(tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "branch.sql").write_text(BRANCH)
    values = tmp_path / "values.toml"
    values.write_text(
        '[git_branch]\nquery = "SELECT git_branch FROM sessions GROUP BY git_branch ORDER BY count(*) DESC"\n'
    )
    repo = tmp_path / "repo" / "db" / "migrations"
    repo.mkdir(parents=True)
    (repo / "000001_init.up.sql").write_text("CREATE INDEX ix_team ON jobs (status);\n")
    result = _advise(
        tiny, tmp_path, "--values", str(values), "--migrations-dir", str(repo), "--min-saving", "0"
    )
    assert result.exit_code == 0, result.output
    assert "sessions(git_branch, created_at)" in result.output
    assert (repo / "000001_init.up.sql").read_text() == "CREATE INDEX ix_team ON jobs (status);\n"
    assert all(p.name.startswith(("000001_init", "000002_", "000003_")) for p in repo.iterdir())


def test_advise_generates_its_data_under_workbench_data_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "scratch"))
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "jobs.sql").write_text("SELECT id FROM jobs WHERE status = :status\n")
    result = CliRunner().invoke(
        main,
        ["advise", "--engine", "sqlite", "--scale", "tiny", "--queries", str(tmp_path / "q"), "--repeat", "2",
         "--out", str(tmp_path / "out")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "scratch" / "tiny" / "manifest.json").exists()
    assert not (tmp_path / "data").exists()

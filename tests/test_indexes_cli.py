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

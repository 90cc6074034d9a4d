"""The command line: exact messages and exit codes, real files and servers."""

import sqlite3

import pytest
from click.testing import CliRunner

from workbench.cli import main


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORKBENCH_PROGRESS", "0")
    monkeypatch.delenv("WORKBENCH_POSTGRES_URL", raising=False)
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, list(map(str, args)), catch_exceptions=False)

    return invoke


def test_help_explains_every_command(run):
    result = run("--help")
    assert result.exit_code == 0
    for command in ("generate", "sample", "ingest", "load", "pg", "report", "refresh"):
        assert command in result.output
        assert run(command, "--help").exit_code == 0


def test_generate_then_reuse(run, tmp_path):
    first = run("generate", "data/t", "--scale", "tiny")
    assert first.exit_code == 0, first.output
    assert "messages                3,000" in first.output
    again = run("generate", "data/t", "--scale", "tiny")
    assert again.output == first.output


def test_generate_refuses_a_different_dataset(run):
    run("generate", "data/t", "--scale", "tiny")
    result = run("generate", "data/t", "--scale", "tiny", "--seed", "1")
    assert result.exit_code == 1
    assert result.output == (
        "Error: 'data/t' holds a different dataset (synthetic, seed 7): pass overwrite=True "
        "(--overwrite) to replace it, or choose another path\n"
    )


def test_unknown_scale_and_engine(run):
    result = run("generate", "data/t", "--scale", "huge")
    assert (
        result.exit_code == 2 and "'huge' is not one of 'tiny', 'small', 'medium', 'large'" in result.output
    )
    result = run("load", "data/t", "--engine", "postgress")
    assert (
        result.exit_code == 2 and "'postgress' is not one of 'duckdb', 'sqlite', 'postgres'" in result.output
    )
    result = run("report", "--engines", "duckdb,oracle")
    assert result.exit_code == 1
    assert result.output == "Error: Unknown engine 'oracle': expected one of duckdb, sqlite, postgres\n"


def test_sample_prints_the_comparison(run):
    run("generate", "data/t", "--scale", "tiny")
    result = run("sample", "data/t", "data/t-half", "--fraction", "0.5")
    assert result.exit_code == 0, result.output
    assert "sessions                   30" in result.output
    assert "messages/session p99" in result.output
    assert run("sample", "data/t", "data/x").exit_code == 2  # neither --fraction nor --sessions


def test_missing_dataset(run):
    result = run("load", "nowhere", "--engine", "duckdb")
    assert result.exit_code == 1
    assert result.output == (
        "Error: Dataset folder 'nowhere' does not exist: regenerate it (workbench generate PATH) "
        "or point at another dataset\n"
    )


def test_load_embedded_then_reuse_then_refuse_foreign(run, tmp_path):
    run("generate", "data/t", "--scale", "tiny")
    result = run("load", "data/t", "--engine", "sqlite")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("data/t.sqlite loaded data/t (3,")
    assert "already holds" in run("load", "data/t", "--engine", "sqlite").output
    with sqlite3.connect(tmp_path / "app.db") as con:
        con.execute("CREATE TABLE accounts (id INTEGER)")
    result = run("load", "data/t", "--engine", "sqlite", "--target", "app.db")
    assert result.exit_code == 1
    assert "Error: app.db already holds tables the workbench did not create (accounts)" in result.output


def test_load_postgres_without_a_server_says_what_to_do(run):
    run("generate", "data/t", "--scale", "tiny")
    result = run("load", "data/t", "--engine", "postgres")
    assert result.exit_code == 1
    assert result.output == (
        "Error: No PostgreSQL URL: pass --target URL, set WORKBENCH_POSTGRES_URL, "
        "or start a throwaway server with `workbench pg start`\n"
    )


def test_load_postgres_by_url_masks_the_password(run, postgres_url):
    run("generate", "data/t", "--scale", "tiny")
    ok = run("load", "data/t", "--engine", "postgres", "--target", postgres_url)
    assert ok.exit_code == 0, ok.output
    bad = run("load", "data/t", "--engine", "postgres", "--target", "postgresql://me:s3cr3t@127.0.0.1:1/x")
    assert bad.exit_code == 1
    assert "s3cr3t" not in bad.output and "postgresql://me:***@127.0.0.1:1/x" in bad.output


def test_pg_start_status_stop(run, monkeypatch, tmp_path, pg_bindir):
    monkeypatch.setattr("workbench.cli.STATE", tmp_path / "state" / "postgres.json")
    started = run("pg", "start")
    assert started.exit_code == 0, started.output
    url = started.output.strip()
    assert url.startswith("postgresql://postgres@127.0.0.1:")
    try:
        assert run("pg", "start").output.strip() == url  # already running: same server
        status = run("pg", "status")
        assert status.exit_code == 0 and url in status.output
        run("generate", "data/t", "--scale", "tiny")
        assert run("load", "data/t", "--engine", "postgres").exit_code == 0
    finally:
        assert run("pg", "stop").output.startswith("Stopped the server on port")
    assert run("pg", "status").exit_code == 3


def test_pg_start_on_a_port_in_use(run):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = run("pg", "start", "--port", port)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: Port {port} on 127.0.0.1 is in use: choose another with --port, "
        "or leave it out to pick a free one\n"
    )


def test_pg_start_without_binaries_says_how_to_install(run, monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_PG_BINDIR", str(tmp_path / "nowhere"))
    result = run("pg", "start")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: PostgreSQL server binaries (initdb, pg_ctl) not found in {tmp_path / 'nowhere'}: "
        "install them with: sudo apt-get install postgresql postgresql-15-hypopg, "
        "or set WORKBENCH_PG_BINDIR to the folder holding initdb and pg_ctl\n"
    )


def test_sample_from_a_database_url(run, tmp_path):
    run("generate", "data/t", "--scale", "tiny")
    assert run("load", "data/t", "--engine", "sqlite").exit_code == 0
    result = run(
        "sample", "--from", f"sqlite:///{tmp_path / 'data' / 't.sqlite'}", "data/db-half", "--fraction", 0.5
    )
    assert result.exit_code == 0, result.output
    assert "sessions                   30" in result.output
    both = run("sample", "data/t", "data/x", "--from", "sqlite:///x.db", "--fraction", 0.5)
    assert both.exit_code == 2 and "not both" in both.output
    missing = run("sample", "--from", "postgresql://u:pw@127.0.0.1:1/db", "data/y", "--fraction", 0.5)
    assert missing.exit_code == 1 and "pw@" not in missing.output and "Error:" in missing.output


def test_ingest_fixtures_then_nothing_new(run):
    from workbench.report import ROOT

    tree = ROOT / "tests" / "fixtures" / "claude-code"
    first = run("ingest", tree, "--out", "data/cc")
    assert first.exit_code == 0, first.output
    assert "4 new" in first.output and "streamed duplicates collapsed: 56" in first.output
    again = run("ingest", tree, "--out", "data/cc")
    assert again.exit_code == 0 and "4 unchanged" in again.output and "read 0 lines" in again.output
    missing = run("ingest", "no/such/tree", "--out", "data/x")
    assert missing.exit_code == 1 and "no/such/tree" in missing.output


def test_generate_transcripts_then_ingest_them(run):
    result = run("generate", "data/t", "--scale", "tiny", "--transcripts", "tree")
    assert result.exit_code == 0, result.output
    assert "Transcripts tree:" in result.output
    ingested = run("ingest", "tree", "--out", "data/back")
    assert ingested.exit_code == 0, ingested.output
    assert "sessions 60" in ingested.output and "quarantined: 0" in ingested.output
    again = run("generate", "data/t", "--scale", "tiny", "--transcripts", "tree")
    assert again.exit_code == 1 and "is not empty" in again.output

"""The log-sync job: every reader, decoder and writer counted; bad input; dead letters."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from workbench.processing import (
    DECODERS,
    LINE_READERS,
    WRITERS,
    AdaptivePause,
    FixedSleep,
    ProcessingError,
    ReadStats,
    Sink,
    dead_rows,
    process,
    read_rows,
    replay,
    sync,
)
from workbench.processing.read import batched

FIXTURES = Path(__file__).parent / "fixtures" / "claude-code" / "projects"


def _message(uuid: str, content: object = "hello", tokens: int = 1) -> dict:
    return {
        "type": "assistant",
        "uuid": uuid,
        "sessionId": "s1",
        "timestamp": "2026-01-01T00:00:00.000Z",
        "message": {
            "role": "assistant",
            "content": content,
            "model": "m",
            "usage": {"input_tokens": tokens, "output_tokens": 2},
        },
    }


def _line(d: dict) -> bytes:
    return json.dumps(d, separators=(",", ":")).encode() + b"\n"


@pytest.fixture(scope="module")
def expected() -> dict:
    rows = list(read_rows(FIXTURES, reader="stream", decode="json"))
    return {"rows": len(rows), "uuids": sorted(r[0] for r in rows), "rows_list": rows}


@pytest.fixture
def bad_tree(tmp_path: Path) -> Path:
    """One file per kind of bad input, beside a good file; 8 valid messages in all."""
    root = tmp_path / "projects" / "-p"
    root.mkdir(parents=True)
    (root / "good.jsonl").write_bytes(b"".join(_line(_message(f"g{i}")) for i in range(3)))
    mixed = _line(_message("m1")) + b'{"type":"assistant","uuid":\n' + b'{"type":"summary","summary":"x"}\n'
    mixed += b'{"type":"user","uuid":"bad-utf8","message":{"content":"\xff\xfe"}}\n' + _line(_message("m2"))
    mixed += b'{"type":"user","uuid":"no-session","timestamp":"t","message":{"content":"x"}}\n'
    (root / "mixed.jsonl").write_bytes(mixed)
    (root / "truncated.jsonl").write_bytes(
        _line(_message("t1")) + b'{"type":"assistant","uuid":"t2","sessionId"'
    )
    big = "x" * (20 * 2**20)  # a 20 MB line, valid: it must arrive whole
    (root / "big.jsonl").write_bytes(_line(_message("b1", big)) + _line(_message("b2")))
    (root / "folder.jsonl").mkdir()  # unreadable as a file
    (root / "dangling.jsonl").symlink_to(root / "missing-target.jsonl")
    return tmp_path / "projects"


EXPECTED_ISSUES = {
    ("-p/dangling.jsonl", None, "unreadable file"),
    ("-p/folder.jsonl", None, "unreadable file"),
    ("-p/mixed.jsonl", 2, "malformed JSON"),
    ("-p/mixed.jsonl", 4, "invalid UTF-8"),
    ("-p/mixed.jsonl", 6, "missing field"),
    ("-p/truncated.jsonl", 2, "truncated last line"),
}


# ---- readers and decoders ----------------------------------------------------------------
@pytest.mark.parametrize("reader", LINE_READERS)
@pytest.mark.parametrize("decode", DECODERS)
def test_line_readers_agree_row_for_row(reader: str, decode: str, expected: dict) -> None:
    stats = ReadStats()
    rows = list(read_rows(FIXTURES, reader=reader, decode=decode, stats=stats))
    assert rows == expected["rows_list"]
    assert stats.rows == len(rows) and stats.issues == []
    assert stats.lines == stats.rows + stats.skipped


@pytest.mark.parametrize("reader", ["polars", "duckdb"])
def test_tree_readers_give_the_same_messages(reader: str, expected: dict) -> None:
    rows = list(read_rows(FIXTURES, reader=reader))
    assert sorted(r[0] for r in rows) == expected["uuids"]
    by_uuid = {r[0]: r for r in expected["rows_list"]}
    same = [1, 2, 3, 4, 7, 8, 9, 10]  # session, file, line, role, time, model, tokens
    for r in rows:  # and the text; block lists are JSON either way
        ref = by_uuid[r[0]]
        assert [r[i] for i in same] == [ref[i] for i in same]
        if r[5] == "text":  # the content was a string
            assert r[6] == ref[6]


def test_rows_match_the_ingest_reference(tmp_path: Path, expected: dict) -> None:
    from workbench.sources.claude_code import ingest

    report = ingest([FIXTURES], tmp_path / "ds", progress=False, workers=0)
    assert report.dataset.counts["messages"] == expected["rows"]


@pytest.mark.parametrize("reader", LINE_READERS)
@pytest.mark.parametrize("decode", DECODERS)
def test_bad_input_is_reported_and_valid_rows_kept(reader: str, decode: str, bad_tree: Path) -> None:
    stats = ReadStats()
    rows = list(read_rows(bad_tree, reader=reader, decode=decode, stats=stats, chunk_bytes=4096))
    assert sorted(r[0] for r in rows) == ["b1", "b2", "g0", "g1", "g2", "m1", "m2", "t1"]
    assert len(next(r for r in rows if r[0] == "b1")[6]) == 20 * 2**20
    assert {(i.file, i.line, i.reason) for i in stats.issues} == EXPECTED_ISSUES
    assert stats.lines == stats.rows + stats.skipped + sum(i.line is not None for i in stats.issues)


@pytest.mark.parametrize("reader", LINE_READERS)
def test_a_line_over_the_limit_is_reported_and_skipped(reader: str, bad_tree: Path) -> None:
    stats = ReadStats()
    rows = list(
        read_rows(
            bad_tree / "-p" / "big.jsonl", reader=reader, stats=stats, max_line_bytes=2**20, chunk_bytes=65536
        )
    )
    assert [r[0] for r in rows] == ["b2"]
    assert [(i.line, i.reason) for i in stats.issues] == [(1, "line too long")]


def test_chunked_reader_splits_lines_across_tiny_blocks(expected: dict) -> None:
    assert list(read_rows(FIXTURES, reader="chunked", chunk_bytes=7)) == expected["rows_list"]


def test_chunked_reader_stops_its_thread_when_abandoned(expected: dict) -> None:
    import threading

    before = threading.active_count()
    it = read_rows(FIXTURES, reader="chunked", chunk_bytes=64)
    next(it)
    it.close()
    assert threading.active_count() == before


def test_chunked_reader_never_reads_more_than_its_queue_ahead_of_a_slow_consumer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Backpressure, by counting: with the consumer holding block k, the reader thread gets
    exactly queue + 1 blocks ahead (the queue full, one block in hand) and reads no further."""
    import threading

    from workbench.processing import read

    lines = [_line(_message(f"u{i:03d}")) for i in range(40)]
    assert len(set(map(len, lines))) == 1  # one line per block
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(lines))
    queue_size, blocks = 3, len(lines)
    progress = threading.Condition()
    state = {"read": 0, "allowed": 0, "overrun": []}

    class CountingFile:
        def __init__(self, f) -> None:
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.f.close()

        def read(self, size: int) -> bytes:
            block = self.f.read(size)
            with progress:
                if block:
                    state["read"] += 1
                    if state["read"] > state["allowed"] + queue_size + 1:
                        state["overrun"].append((state["read"], state["allowed"]))
                progress.notify_all()
            return block

    wrapped = lambda p, mode: CountingFile(open(p, mode))  # noqa: E731, SIM115 (closed by CountingFile)
    monkeypatch.setattr(read, "open", wrapped, raising=False)
    it = read._chunked(path, read.MAX_LINE_BYTES, chunk_bytes=len(lines[0]), queue_chunks=queue_size)
    for k in range(1, blocks + 1):
        with progress:
            state["allowed"] = k  # the consumer may now take block k from the queue
        n, raw, _ = next(it)
        assert (n, raw) == (k, lines[k - 1][:-1])
        ahead = min(k + queue_size + 1, blocks)
        with progress:  # the reader gets as far ahead as the queue lets it (30 s: a hang guard)
            assert progress.wait_for(lambda a=ahead: state["read"] >= a, timeout=30), state
    assert list(it) == [] and state["overrun"] == []


@pytest.mark.parametrize("reader", ["polars", "duckdb"])
def test_library_readers_quarantine_per_line_like_the_line_reader(reader: str, bad_tree: Path) -> None:
    # A message missing a field in a file the library reads whole (no fallback needed).
    missing = (
        _line(_message("k1")) + b'{"type":"user","uuid":"k2","timestamp":"t","message":{"content":"x"}}\n'
    )
    (bad_tree / "-p" / "missing.jsonl").write_bytes(
        missing + _line({"type": "summary"}) + _line(_message("k3"))
    )
    line, library = ReadStats(), ReadStats()
    reference = list(read_rows(bad_tree, reader="stream", stats=line))
    rows = list(read_rows(bad_tree, reader=reader, stats=library))
    assert sorted(r[0] for r in rows) == sorted(r[0] for r in reference)
    assert len(rows) == library.rows == line.rows == 10
    assert {(r[0], r[2], r[3]) for r in rows} == {(r[0], r[2], r[3]) for r in reference}  # file, line
    issues = {(i.file, i.line, i.reason) for i in library.issues}
    assert issues == {(i.file, i.line, i.reason) for i in line.issues}
    assert issues == EXPECTED_ISSUES | {("-p/missing.jsonl", 2, "missing field")}
    assert (library.files, library.lines, library.skipped) == (line.files, line.lines, line.skipped)
    assert library.fallbacks == 2  # mixed and truncated; the library read the others itself


@pytest.mark.parametrize("reader", ["polars", "duckdb"])
def test_library_readers_keep_every_row_past_blank_lines(reader: str, tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(_line(_message("a")) + b"\n" + _line(_message("b")) + b"\n")
    line, library = ReadStats(), ReadStats()
    rows = list(read_rows(path, reader=reader, stats=library))
    assert [r[3] for r in read_rows(path, stats=line)] == [1, 3]
    assert (library.rows, library.issues) == (line.rows, line.issues) == (2, [])
    # Libraries skip blank lines without numbering them (the module's docstring says so).
    assert [(r[0], r[3]) for r in rows] == [("a", 1), ("b", 2)]
    assert (line.lines, library.lines) == (4, 2)


def test_a_library_refusing_mid_file_hands_over_only_the_lines_it_did_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.processing import read

    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(_line(_message(f"u{i}")) for i in range(1, 7)))

    def refuses_after_three(p: Path):
        for n in (1, 2, 4):  # out of order, as a parallel library may hand them over
            yield n, None, (f"u{n}", "s1", "assistant", "text", "hello", "t", "m", 1, 2)
        raise RuntimeError("the library gave up")

    monkeypatch.setitem(read._LIBRARY_READERS, "duckdb", refuses_after_three)
    stats = ReadStats()
    rows = list(read_rows(path, reader="duckdb", stats=stats))
    assert [(r[0], r[3]) for r in rows] == [(f"u{n}", n) for n in (1, 2, 4, 3, 5, 6)]
    assert (stats.rows, stats.lines, stats.fallbacks, stats.issues) == (6, 6, 1, [])


def test_unknown_names_are_refused_with_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ProcessingError, match="Unknown reader 'lines': expected one of whole, stream"):
        list(read_rows(FIXTURES, reader="lines"))
    with pytest.raises(
        ProcessingError, match="Unknown decoder 'ujson': expected one of json, orjson, msgspec"
    ):
        list(read_rows(FIXTURES, decode="ujson"))
    with pytest.raises(ProcessingError, match="does not exist"):
        list(read_rows(tmp_path / "nope"))
    with pytest.raises(ProcessingError, match="Batch size 0 is too small"):
        list(batched(iter([]), 0))


# ---- writers ------------------------------------------------------------------------------
def _target(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if engine == "postgres":
        return request.getfixturevalue("postgres_url")
    return str(tmp_path / f"sync.{engine}")


ENGINES = ["duckdb", "sqlite", "postgres"]


@pytest.mark.parametrize("engine", ENGINES)
def test_every_writer_lands_every_row_once(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest, expected: dict
) -> None:
    rows = expected["rows_list"]
    with Sink(engine, _target(engine, tmp_path, request)) as sink:
        for writer in WRITERS:
            sink.truncate()
            for batch in batched(iter(rows), 40):
                assert sink.write(batch, writer) == len(batch)
            sink.finish()
            assert sink.uuids() == expected["uuids"], writer
            assert sink.totals()["input_tokens"] == sum(r[9] or 0 for r in rows)


def test_values_writer_splits_under_the_parameter_limit(tmp_path: Path) -> None:
    rows = [(f"u{i}", "s", "f", i, "user", "text", "c", "t", None, i, None) for i in range(7000)]
    with Sink("sqlite", str(tmp_path / "v.sqlite")) as sink:
        sink.write(rows, "values")  # 77,000 parameters > SQLite's 32,766
        assert sink.totals()["rows"] == 7000


def test_sink_refuses_a_database_it_did_not_create(tmp_path: Path) -> None:
    import sqlite3

    from workbench.errors import UnsafeTargetError

    path = tmp_path / "theirs.sqlite"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE accounts (id INTEGER)")
    with pytest.raises(UnsafeTargetError, match=r"holds tables the sync job did not create \(accounts\)"):
        Sink("sqlite", str(path))


# ---- the batch processor -----------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("writer", WRITERS)
def test_failed_batch_is_dead_lettered_and_replayed_exactly(
    engine: str, writer: str, tmp_path: Path, request: pytest.FixtureRequest, expected: dict
) -> None:
    rows = expected["rows_list"]
    clash = rows[57]  # in the 6th batch of 10: rows 50-59 fail on the primary key
    dead = tmp_path / "dead.jsonl"
    with Sink(engine, _target(engine, tmp_path, request)) as sink:
        sink.write(
            [(clash[0], "other", "elsewhere", 1, "user", "text", "x", "t", None, None, None)], "executemany"
        )
        report = process(
            iter(rows), sink, batch_size=10, writer=writer, retries=1, dead_letter=dead, sleep=lambda s: None
        )
        assert (report.rows_in, report.rows_written, report.rows_dead) == (len(rows), len(rows) - 10, 10)
        assert (report.failed_batches, report.retries) == (1, 1)
        assert sink.totals()["rows"] == len(rows) - 10 + 1
        (record,) = [json.loads(t) for t in dead.read_text().splitlines()]
        assert record["batch"] == 6 and record["rows"] == 10 and record["attempts"] == 2
        assert record["ranges"] == [
            {"file": rows[50][2], "first_line": rows[50][3], "last_line": rows[59][3]}
        ]
        assert any(
            w in record["reason"].lower() for w in ("unique", "primary key", "duplicate", "constraint")
        )
        assert list(dead_rows(dead)) == rows[50:60]
        # The cause fixed (the clashing row removed), the replay loads exactly the missing rows.
        sink.con.execute("DELETE FROM sync_messages WHERE session_id = 'other'")
        again = replay(dead, sink, batch_size=4, writer=writer, dead_letter=tmp_path / "dead2.jsonl")
        assert (again.rows_in, again.rows_written, again.rows_dead) == (10, 10, 0)
        assert sink.uuids() == expected["uuids"]
        assert not (tmp_path / "dead2.jsonl").exists()


def test_without_a_dead_letter_file_the_job_stops_naming_the_batch(tmp_path: Path, expected: dict) -> None:
    rows = expected["rows_list"]
    with Sink("sqlite", str(tmp_path / "s.sqlite")) as sink:
        sink.write([rows[3]], "row")
        with pytest.raises(
            ProcessingError,
            match=r"Batch 1 \(.*\.jsonl lines 5-14\) failed after 3 attempts: IntegrityError.*dead-letter",
        ):
            process(iter(rows), sink, batch_size=10, sleep=lambda s: None)
        assert sink.totals()["rows"] == 1


class FlakySink(Sink):
    """A real sink whose first ``failures`` writes raise (a dropped connection, say)."""

    failures = 2

    def write(self, rows, writer="executemany"):  # type: ignore[override]
        if self.failures:
            self.failures -= 1
            raise ConnectionError("server closed the connection")
        return super().write(rows, writer)


def test_a_transient_failure_is_retried_not_dead_lettered(tmp_path: Path, expected: dict) -> None:
    rows = expected["rows_list"]
    slept: list[float] = []
    with FlakySink("duckdb", str(tmp_path / "f.duckdb")) as sink:
        report = process(
            iter(rows), sink, batch_size=50, retries=2, dead_letter=tmp_path / "d.jsonl", sleep=slept.append
        )
        assert (report.rows_written, report.rows_dead, report.retries) == (len(rows), 0, 2)
        assert sink.uuids() == expected["uuids"]
    assert len(slept) == 2 and report.backoff_seconds == pytest.approx(sum(slept))


def test_retries_back_off_exponentially(tmp_path: Path, expected: dict) -> None:
    import tenacity

    rows = expected["rows_list"][:20]
    slept: list[float] = []
    with FlakySink("sqlite", str(tmp_path / "b.sqlite")) as sink:
        sink.failures = 3
        report = process(
            iter(rows),
            sink,
            batch_size=20,
            retries=3,
            wait=tenacity.wait_exponential(multiplier=0.1),  # no jitter: the waits are exact
            sleep=slept.append,
        )
        assert slept == pytest.approx([0.1, 0.2, 0.4]) and report.backoff_seconds == pytest.approx(0.7)
        assert (report.retries, report.rows_written, sink.totals()["rows"]) == (3, 20, 20)


def test_backoff_has_jitter_under_an_exponential_cap(tmp_path: Path, expected: dict) -> None:
    import random

    from workbench.processing import batch

    rows = expected["rows_list"][:10]
    random.seed(3)  # tenacity draws the jitter from the random module
    slept: list[float] = []
    dead = tmp_path / "dead.jsonl"
    with FlakySink("sqlite", str(tmp_path / "j.sqlite")) as sink:
        sink.failures = 10**6  # never recovers: every attempt fails, then the batch is dead-lettered
        report = process(iter(rows), sink, batch_size=5, retries=4, dead_letter=dead, sleep=slept.append)
    assert (report.rows_dead, report.failed_batches, report.retries) == (10, 2, 8)
    assert len(slept) == 8 and len(set(slept)) == 8  # jittered: no two waits alike
    for n, wait in enumerate(slept[:4], start=1):  # retry n waits up to BACKOFF x 2^n
        assert 0 <= wait <= min(batch.BACKOFF * 2**n, batch.MAX_BACKOFF)
    assert [json.loads(t)["attempts"] for t in dead.read_text().splitlines()] == [5, 5]
    assert list(dead_rows(dead)) == rows


class FakeTime:
    def __init__(self, batch_seconds: list[float]) -> None:
        self.now, self.slept, self.batch_seconds, self.calls = 0.0, [], iter(batch_seconds), 0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_fixed_sleep_pauses_after_every_batch_and_adaptive_only_when_lagging(
    tmp_path: Path, expected: dict
) -> None:
    rows = expected["rows_list"][:40]
    with Sink("sqlite", str(tmp_path / "p.sqlite")) as sink:
        fake = FakeTime([])
        seen = []
        report = process(
            iter(rows),
            sink,
            batch_size=10,
            pacer=FixedSleep(0.5),
            clock=fake.clock,
            sleep=fake.sleep,
            progress=seen.append,
        )
        assert fake.slept == [0.5] * 4 and report.slept_seconds == 2.0
        assert [(p.batch, p.rows_written) for p in seen] == [(1, 10), (2, 20), (3, 30), (4, 40)]
        assert seen[-1].seconds == 2.0
    pause = AdaptivePause(target_seconds=0.1, max_seconds=0.3)
    assert [pause.pause(s) for s in (0.05, 0.1, 0.15, 2.0)] == [0.0, 0.0, pytest.approx(0.05), 0.3]
    with pytest.raises(ProcessingError, match="negative"):
        FixedSleep(-1)


def test_sync_counts_read_issues_and_rows(bad_tree: Path, tmp_path: Path) -> None:
    with Sink("duckdb", str(tmp_path / "s.duckdb")) as sink:
        report = sync(bad_tree, sink, reader="chunked", decode="msgspec", batch_size=3, writer="bulk")
        assert report.summary()["rows_written"] == 8 == sink.totals()["rows"]
        assert {
            (i["file"], i["line"], i["reason"]) for i in report.issues_frame().to_dicts()
        } == EXPECTED_ISSUES


def test_one_file_reads_like_a_folder_holding_it(tmp_path: Path) -> None:
    one = next(FIXTURES.rglob("*.jsonl"))
    shutil.copy(one, tmp_path / "one.jsonl")
    assert list(read_rows(tmp_path / "one.jsonl")) == list(read_rows(tmp_path))


# ---- experiments ----------------------------------------------------------------------------
def test_replicated_transcript_keeps_every_message_distinct(tmp_path: Path, expected: dict) -> None:
    from workbench.processing import experiments as ex

    made = ex.make_transcript(FIXTURES, tmp_path / "big.jsonl", 2 * 2**20)
    assert made["bytes"] >= 2 * 2**20
    n = ex.check_readers_agree(tmp_path / "big.jsonl")
    assert (made["copies"] - 1) * expected["rows"] <= n <= made["copies"] * expected["rows"]
    assert len({r[0] for r in read_rows(tmp_path / "big.jsonl")}) == n


def test_reader_scaling_counts_then_measures_each_variant(tmp_path: Path) -> None:
    from workbench.processing import experiments as ex

    frame = ex.reader_scaling(FIXTURES, [0.5, 1], tmp_path, ["whole/orjson", "stream/msgspec", "ingest"])
    assert frame.height == 6 and frame["rows"].n_unique() == 2
    assert (frame["peak_rss_mib"] > 0).all() and (frame["rows_per_s"] > 0).all()
    flat = ex.flatness(frame)
    assert flat["variant"].to_list() == ["whole/orjson", "stream/msgspec", "ingest"]


@pytest.mark.parametrize("mode", ["tuples", "objects", "buffers"])
def test_batch_modes_hand_over_the_same_rows(mode: str, expected: dict) -> None:
    from workbench.processing import experiments as ex

    seen: list = []

    def keep(batch):
        if mode == "buffers":
            seen.extend(zip(*batch, strict=True))
        else:
            seen.extend(r.astuple() if mode == "objects" else r for r in batch)

    assert ex.build_batches(iter(expected["rows_list"]), mode, 17, keep) == expected["rows"]
    assert seen == expected["rows_list"]


def test_knee_is_the_smallest_batch_near_the_best() -> None:
    import polars as pl

    from workbench.processing import experiments as ex

    sweep = pl.DataFrame(
        {
            "engine": ["e"] * 4,
            "writer": ["w"] * 4,
            "batch_size": [1, 10, 100, 1000],
            "rows_per_s": [100.0, 850.0, 950.0, 1000.0],
        }
    )
    (knee,) = ex.knees(sweep).to_dicts()
    assert (knee["knee_batch"], knee["best_rows_per_s"]) == (100, 1000.0)


def test_writer_sweep_and_pacing_count_rows(tmp_path: Path, expected: dict) -> None:
    from workbench.processing import experiments as ex

    rows = expected["rows_list"][:60]
    sweep = ex.writer_sweep(
        rows, {"sqlite": str(tmp_path / "w.sqlite")}, ["row", "bulk"], [1, 50], max_statements=20
    )
    assert sweep.select("writer", "batch_size", "rows").rows() == [
        ("row", 1, 20),
        ("row", 50, 60),
        ("bulk", 1, 20),
        ("bulk", 50, 60),
    ]
    now = [0.0]

    def clock() -> float:
        now[0] += 0.001  # every reading of the clock: 1 ms of "work"
        return now[0]

    def sleep(s: float) -> None:
        now[0] += s

    frame = ex.pacing(rows, "sqlite", str(tmp_path / "p.sqlite"), [10], [5], clock=clock, sleep=sleep)
    by = {r["pacing"]: r for r in frame.to_dicts()}
    assert by["fixed"]["slept_s"] == pytest.approx(6 * 0.005) and by["fixed"]["batches"] == 6
    assert by["adaptive"]["slept_s"] == 0.0 and by["none"]["kept"] == pytest.approx(1.0)
    assert by["fixed"]["kept"] < 1.0 and by["fixed"]["kept_high"] < 1.0
    assert by["none"]["kept_mean"] == 1.0 and len(by["none"]["per_row_s"]) == 6
    # each batch's write spans one clock tick (1 ms of "work"), then the fixed sleep's 5 ms
    assert by["fixed"]["kept_mean"] == pytest.approx(1 / 6)


def test_writer_sweep_is_time_boxed_and_counts_what_it_wrote(tmp_path: Path, expected: dict) -> None:
    from workbench.processing import experiments as ex

    rows = ex.replicate(expected["rows_list"], 500)
    assert len({r[0] for r in rows}) == 500
    now = [0.0]

    def clock() -> float:
        now[0] += 0.01  # every reading of the clock: 10 ms
        return now[0]

    sweep = ex.writer_sweep(
        rows, {"sqlite": str(tmp_path / "t.sqlite")}, ["bulk"], [50], max_seconds=0.1, clock=clock
    )
    by = {(r["writer"], r["batch_size"]): r for r in sweep.to_dicts()}
    assert set(by) == {("row", 1), ("bulk", 50)}  # today's insert is always the baseline
    assert by["bulk", 50]["cut"] and 0 < by["bulk", 50]["rows"] < 500 and by["bulk", 50]["rows"] % 50 == 0
    assert by["bulk", 50]["batches"] == len(by["bulk", 50]["per_row_s"]) == by["bulk", 50]["rows"] // 50
    assert 0 < by["bulk", 50]["low"] <= by["bulk", 50]["high"]
    full = ex.writer_sweep(rows, {"sqlite": str(tmp_path / "t.sqlite")}, ["bulk"], [50], baseline=False)
    assert full.select("writer", "rows", "batches", "cut").rows() == [("bulk", 500, 10, False)]
    knee = ex.chosen(ex.knees(sweep), "sqlite")
    assert (knee["writer"], knee["knee_batch"]) == ("bulk", 50)
    with pytest.raises(ProcessingError, match="No writer was measured on 'duckdb'"):
        ex.chosen(ex.knees(sweep), "duckdb")
    effect, low, high = ex.speedup([2.0, 2.0, 2.2], [1.0, 1.0, 1.1])
    assert effect == pytest.approx(2.0) and low <= effect <= high


def test_time_breakdown_splits_a_profile_by_stage(tmp_path: Path) -> None:
    from workbench import profiling
    from workbench.processing import experiments as ex

    with profiling.cpu("sync", tmp_path) as prof, Sink("sqlite", str(tmp_path / "t.sqlite")) as sink:
        for _ in range(3):
            sink.truncate()
            sync(FIXTURES, sink, decode="json", batch_size=1, writer="row")
    frame = ex.time_breakdown(prof)
    assert set(frame["stage"]) <= {"decode", "read", "driver + engine", "batching", "other"}
    assert frame["share"].sum() == pytest.approx(1.0)
    assert "driver + engine" in set(frame["stage"])


# ---- conclusions -------------------------------------------------------------------------------
def test_verdicts_are_built_from_the_numbers() -> None:
    import polars as pl

    from workbench.processing import conclude

    scaling = pl.DataFrame(
        {
            "size_mb": [10.0, 100.0] * 4,
            "variant": ["whole/orjson"] * 2 + ["stream/json"] * 2 + ["stream/msgspec"] * 2 + ["duckdb"] * 2,
            "rows_per_s": [1e4, 1e4, 2e4, 2e4, 6e4, 6e4, 5e3, 5e3],
            "peak_rss_mib": [40.0, 220.0, 16.0, 16.0, 16.0, 16.5, 150.0, 400.0],
        }
    )
    whole, decoder, library = conclude.reader_verdicts(scaling, 500, day_mb=1024, conditions={"profile": "p"})
    assert whole.item == "streaming" and whole.decision == "ship"
    assert whole.verdict == "stream/msgspec: 16 MiB flat; whole file 220 MiB at 100 MB"
    assert whole.effect == pytest.approx(220 / 16.5) and whole.conditions["largest_mb"] == 100
    # nothing claimed beyond the largest file: the log day is named as beyond it, the growth measured
    assert "the profile's log day (1,024 MB) is beyond it" in whole.detail
    assert "grew 2.0 MiB per MB of file between 10 MB and 100 MB" in whole.detail
    assert "2,068" not in whole.detail and "Extrapolated" not in whole.detail
    at_day = conclude.reader_verdicts(scaling, 200, day_mb=100)[0]
    assert "measured up to the profile's log day (100 MB)" in at_day.detail
    assert "peaked at 220 MiB (over the 200 MiB target)" in at_day.detail
    assert decoder.verdict == "msgspec, 3.0x json"
    assert library.verdict == "grows: duckdb"
    memory = conclude.memory_success(scaling, 1024, {"profile": "p"})
    assert (memory.item, memory.decision, memory.unit) == ("success:memory", "ship", "%")
    assert memory.effect == pytest.approx((1 - 16.5 / 220) * 100)
    sweep = pl.DataFrame(
        {
            "engine": ["e"] * 4,
            "writer": ["row", "row", "bulk", "bulk"],
            "batch_size": [1, 100, 100, 1000],
            "rows": [50, 500, 100_000, 100_000],
            "rows_per_s": [10.0, 50.0, 1000.0, 1050.0],
        }
    )
    from workbench.processing import experiments as ex

    (writer,) = conclude.writer_verdicts(sweep, ex.knees(sweep))
    assert (writer.verdict, writer.engine) == ("bulk, batch 100", "e") and "105x today's" in writer.detail
    assert "(10 rows/s, over 50 rows)" in writer.detail
    assert conclude.writer_verdicts(sweep, ex.knees(sweep), skip="e") == []
    confirm = {
        "rows": 100_000,
        "batches": 1000,
        "rows_per_s": 990.0,
        "effect": 98.0,
        "low": 90.0,
        "high": 105.0,
        "row_bytes": 2048,
    }
    shipped = conclude.batch_verdict(sweep, ex.knees(sweep), confirm, "e", {"profile": "p"})
    assert (shipped.item, shipped.decision, shipped.artifact) == (
        "batch_size",
        "ship",
        "batch_size = 100, writer = bulk",
    )
    assert (shipped.effect, shipped.low, shipped.high) == (98.0, 90.0, 105.0)
    assert "100,000 rows in 1,000 batches of 100" in shipped.detail and "0.2 MiB at 100 rows" in shipped.cost
    assert shipped.conditions == {"profile": "p", "engine": "e", "rows": 100_000, "batches": 1000}
    pace = pl.DataFrame(
        {
            "batch_size": [10, 10, 10],
            "pacing": ["none", "fixed", "adaptive"],
            "sleep_ms": [0.0, 5.0, 40.0],
            "rows": [1000] * 3,
            "batches": [100] * 3,
            "seconds": [1.0, 2.0, 1.0],
            "slept_s": [0.0, 1.0, 0.0],
            "kept": [1.0, 0.5, 1.0],
            "kept_mean": [1.0, 0.5, 0.98],
            "kept_low": [1.0, 0.45, 0.9],
            "kept_high": [1.0, 0.55, 1.05],
        }
    )
    v = conclude.pacing_verdict(pace, {"profile": "p"}, day_rows=10_000)
    assert (v.item, v.decision, v.effect) == ("fixed_sleep", "don't ship", 50.0)
    assert v.verdict == "costs 50% of the throughput: pause adaptively"
    assert "kept 50% (45%-55%)" in v.detail and "50% of the job asleep" in v.detail
    assert "1,000 batches: 5.0 s asleep" in v.detail
    screen = pl.DataFrame({"batch_size": [10, 100], "rows": [500, 0], "rows_per_s": [2000.0, None]})
    flips = conclude.pacing_verdict(pace.with_columns(batch_size=pl.lit(1000)), screen=screen).flips
    assert flips.endswith("the sleep's share of the job at batch 10: 50%")  # 5 ms sleep on 5 ms batches
    harmless = conclude.pacing_verdict(pace.with_columns(kept_high=pl.Series([1.0, 0.95, 1.0])))
    assert harmless.decision == "ship" and harmless.verdict == "costs under 10% here"
    pools = pl.DataFrame(
        {
            "mode": ["tuples", "objects", "buffers"],
            "allocations": [100, 110, 105],
            "allocations_per_row": [10.0, 11.0, 10.5],
            "peak_mib": [1.0, 1.1, 1.0],
        }
    )
    pooled = conclude.pools_verdict(pools)
    assert pooled.verdict == "not worth it"
    assert "11 allocations per row with a per-row object and 10 with reused column buffers (5% fewer" in (
        pooled.detail
    )
    assert "a plain tuple per row needs 10, so the row object is 9% of a row's allocations" in pooled.detail
    more = pools.with_columns(
        allocations=pl.Series([100, 110, 125]), allocations_per_row=pl.Series([10.0, 11.0, 12.5])
    )
    assert "(14% more;" in conclude.pools_verdict(more).detail
    breakdown = pl.DataFrame(
        {
            "profile": ["the plan's sync"] * 2 + ["the fastest sync"] * 2,
            "stage": ["driver + engine", "decode"] * 2,
            "seconds": [0.99, 0.01, 0.012, 0.012],
            "share": [0.99, 0.01, 0.5, 0.5],
        }
    )
    where = conclude.breakdown_verdict(breakdown)
    assert where.verdict == "driver + engine: 99% of the slowest sync"
    assert where.detail.startswith(
        "the plan's sync: driver + engine 99% of its CPU samples; the fastest sync:"
    )


def test_reference_sync_is_the_workbench_ingest_and_load(tmp_path: Path, expected: dict) -> None:
    from workbench.processing import experiments as ex

    ref = ex.reference_sync(FIXTURES, "duckdb", tmp_path)
    assert ref["rows"] == expected["rows"] and ref["seconds"] >= ref["ingest_s"]
    from workbench.engines import open_engine

    with open_engine("duckdb", str(tmp_path / "reference.duckdb")) as eng:
        assert eng.table_counts()["messages"] == expected["rows"]


def test_sink_accepts_a_database_the_workbench_loaded(tmp_path: Path, tiny) -> None:
    from workbench.engines import open_engine

    with open_engine("sqlite", str(tmp_path / "wb.sqlite")) as eng:
        eng.load(tiny)
    with Sink("sqlite", str(tmp_path / "wb.sqlite")) as sink:
        assert sink.totals()["rows"] == 0


def test_the_shipped_reader_is_the_fastest_that_stays_flat() -> None:
    import polars as pl

    from workbench.processing import conclude

    scaling = pl.DataFrame(
        {
            "size_mb": [1.0, 1024.0] * 3,
            "variant": ["whole/orjson"] * 2 + ["stream/msgspec"] * 2 + ["chunked/orjson"] * 2,
            "rows_per_s": [1e4, 1e4, 2e4, 2e4, 4e4, 4e4],  # chunked fastest, but it grows
            "peak_rss_mib": [17.0, 2095.0, 16.0, 16.0, 17.7, 25.6],
        }
    )
    assert conclude.shipped_reader(scaling) == "stream/msgspec"
    (whole,) = conclude.reader_verdicts(scaling, 500, day_mb=1024)[:1]
    assert whole.decision == "ship" and "measured up to the profile's log day (1,024 MB)" in whole.detail
    assert "peaked at 2,095 MiB (over the 500 MiB target)" in whole.detail


def test_sync_targets_leave_out_postgres_when_it_cannot_start(tmp_path: Path) -> None:
    from workbench.errors import EngineError
    from workbench.processing import experiments as ex

    def no_server() -> str:
        raise EngineError("PostgreSQL's server binaries are not installed")

    targets, left_out = ex.sync_targets(["postgres"], tmp_path, "x", no_server)
    assert targets == {"sqlite": str(tmp_path / "x.sqlite")}
    assert left_out == {"postgres": "PostgreSQL's server binaries are not installed; sqlite stands in"}
    targets, left_out = ex.sync_targets(["postgres", "duckdb"], tmp_path, "x", no_server)
    assert list(targets) == ["duckdb"] and left_out == {
        "postgres": "PostgreSQL's server binaries are not installed"
    }


def test_paced_runs_can_stop_after_a_share_of_the_free_run(tmp_path: Path, expected: dict) -> None:
    from workbench.processing import experiments as ex

    rows = expected["rows_list"][:100]
    now = [0.0]

    def clock() -> float:
        now[0] += 0.001
        return now[0]

    def sleep(s: float) -> None:
        now[0] += s

    frame = ex.pacing(
        rows, "sqlite", str(tmp_path / "p.sqlite"), [10], [5], clock=clock, sleep=sleep, paced_share=0.3
    )
    by = {r["pacing"]: r for r in frame.to_dicts()}
    assert by["none"]["rows"] == 100 and by["none"]["batches"] == 10
    assert 0 < by["fixed"]["rows"] < 100 and by["fixed"]["rows"] == 10 * by["fixed"]["batches"]
    assert by["fixed"]["kept_mean"] == pytest.approx(1 / 6)  # the rate, not the row count, compared

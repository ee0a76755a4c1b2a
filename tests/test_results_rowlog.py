"""The results table's row log (``OUT/results.appended.jsonl``): an append is one line between compactions,
a kill at any point leaves a readable table, a damaged line is one sentence, a compaction keeps every row.

The append cost itself (flat from 100 to 100,000 rows) is measured by
``tests/benchmarks/bench_results_append.py``, not timed here.
"""

from __future__ import annotations

import logging
import threading

import pandas as pd
import pytest

from ecgsearch.errors import UserError
from ecgsearch.results import ResultsTable, read_results
from ecgsearch.results import table as table_module
from ecgsearch.results.table import RESULTS_FILE, RESULTS_LOG

ROWS = 40  # enough that an append after them is a log line, not a compaction


def _row(i: int, **extra) -> dict:
    return {"trial_id": f"t{i:04d}", "status": "ok" if i % 3 else "failed", "error": None if i % 3 else "OOM",
            "architecture": "resnet" if i % 2 else "convnext", "hp.batch_size": 32 * (1 + i % 2),
            "hp.act": "gelu" if i % 4 else 3, "hp.nesterov": bool(i % 2), "val.macro_auroc": i / 100,
            "epochs": i % 5, "cost.flops": 1000 * i, **extra}


def _filled(folder, n: int = ROWS) -> ResultsTable:
    table = ResultsTable(folder)
    for i in range(n):
        assert table.append(_row(i)) is True
    return table


def _log_lines(folder) -> list[bytes]:
    path = folder / RESULTS_LOG
    return path.read_bytes().splitlines(keepends=True) if path.exists() else []


def test_an_append_is_one_line_and_leaves_the_parquet_file_alone(tmp_path):
    table = _filled(tmp_path)
    table.compact()
    parquet = (tmp_path / RESULTS_FILE).read_bytes()
    assert table.append(_row(ROWS)) is True
    assert (tmp_path / RESULTS_FILE).read_bytes() == parquet
    assert len(_log_lines(tmp_path)) == 1
    frame = read_results(tmp_path)
    assert len(frame) == ROWS + 1 and frame["trial_id"].iloc[-1] == f"t{ROWS:04d}"
    assert ResultsTable(tmp_path).finished_ids() == {f"t{i:04d}" for i in range(ROWS + 1)}
    assert table.append(_row(ROWS)) is False and len(_log_lines(tmp_path)) == 1  # already recorded


def test_the_log_is_compacted_once_it_holds_a_quarter_of_the_rows(tmp_path):
    table = _filled(tmp_path)
    table.compact()
    stored = len(pd.read_parquet(tmp_path / RESULTS_FILE))
    every = int(stored * table_module.COMPACT_FRACTION)
    for i in range(ROWS, ROWS + every - 1):
        table.append(_row(i))
    assert len(_log_lines(tmp_path)) == every - 1
    table.append(_row(ROWS + every))
    assert not (tmp_path / RESULTS_LOG).exists()
    assert len(pd.read_parquet(tmp_path / RESULTS_FILE)) == ROWS + every


def test_a_compaction_keeps_every_row_and_its_dtypes(tmp_path, monkeypatch):
    monkeypatch.setattr(table_module, "COMPACT_FRACTION", 0.0)
    reference = _filled(tmp_path / "reference")  # every row compacted as it came: no log
    monkeypatch.setattr(table_module, "COMPACT_FRACTION", 1e9)  # after the first row, every row is a log line
    table = _filled(tmp_path)
    assert len(_log_lines(tmp_path)) == ROWS - 1
    before = read_results(tmp_path)
    assert table.compact() is True and not (tmp_path / RESULTS_LOG).exists()
    after = pd.read_parquet(tmp_path / RESULTS_FILE)  # what a user reading the file with pandas sees
    pd.testing.assert_frame_equal(before, after)
    pd.testing.assert_frame_equal(after, read_results(tmp_path / "reference"))
    assert reference.compact() is False  # nothing to fold in
    assert list(after["hp.act"][:5]) == ["3", "gelu", "gelu", "gelu", "3"]  # a choice over [gelu, 3]
    assert after["hp.nesterov"].dtype == bool and after["hp.batch_size"].dtype == "int64"


def test_a_line_cut_short_by_a_kill_is_skipped_with_a_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(table_module, "COMPACT_FRACTION", 1e9)
    _filled(tmp_path, 6)
    lines = _log_lines(tmp_path)
    (tmp_path / RESULTS_LOG).write_bytes(b"".join(lines[:-1]) + lines[-1][:17])  # killed mid-write
    with caplog.at_level(logging.WARNING, logger="ecgsearch.results.rowlog"):
        frame = read_results(tmp_path)
    assert list(frame["trial_id"]) == [f"t{i:04d}" for i in range(5)]
    assert "ignoring its last line, a write cut short (17 bytes without a newline)" in caplog.text
    resumed = ResultsTable(tmp_path)  # a resumed run: the half line goes before a new line follows it
    assert resumed.finished_ids() == {f"t{i:04d}" for i in range(5)}
    assert resumed.append(_row(5)) is True
    assert list(read_results(tmp_path)["trial_id"]) == [f"t{i:04d}" for i in range(6)]
    assert all(line.endswith(b"\n") for line in _log_lines(tmp_path))


@pytest.mark.parametrize("damage, reason", [
    (b"{not json\n", "not JSON: "),
    (b"[1, 2]\n", "a JSON list, not an object"),
    (b'{"trial_id": "t9"}\n', "no trial_id or no status"),
])
def test_a_damaged_line_is_one_sentence(tmp_path, monkeypatch, damage, reason):
    monkeypatch.setattr(table_module, "COMPACT_FRACTION", 1e9)
    _filled(tmp_path, 4)
    lines = _log_lines(tmp_path)
    (tmp_path / RESULTS_LOG).write_bytes(lines[0] + damage + b"".join(lines[1:]))
    with pytest.raises(UserError) as error:
        read_results(tmp_path, "report")
    message = str(error.value)
    assert message.startswith(f"report: {tmp_path / RESULTS_LOG} line 2 cannot be read ({reason}")
    assert message.endswith("; it is not a row written by `ecgsearch run`: restore the file from a copy, or "
                            "delete that line (that trial's row is then lost).")
    assert message.count(". ") == 0 and "Traceback" not in message
    with pytest.raises(UserError, match="line 2 cannot be read"):
        ResultsTable(tmp_path)  # the writer of a resumed run refuses it too


def test_a_resume_over_a_damaged_log_is_refused(tmp_path, monkeypatch):
    from ecgsearch.engine.run import check_out_dir

    monkeypatch.setattr(table_module, "COMPACT_FRACTION", 1e9)
    _filled(tmp_path, 3)
    with (tmp_path / RESULTS_LOG).open("ab") as log:
        log.write(b"\x00\x00garbage\n")
    with pytest.raises(UserError, match=r"^run --resume: .*results.appended.jsonl line 3 cannot be read "):
        check_out_dir(tmp_path, resume=True)


def test_killed_between_the_rename_and_the_log_removal(tmp_path, monkeypatch):
    """The compacted parquet file is in place and the log still holds its rows: each row reads once."""
    monkeypatch.setattr(table_module, "COMPACT_FRACTION", 1e9)
    _filled(tmp_path, 8)
    log = (tmp_path / RESULTS_LOG).read_bytes()
    ResultsTable(tmp_path).compact()
    (tmp_path / RESULTS_LOG).write_bytes(log)
    frame = read_results(tmp_path)
    assert list(frame["trial_id"]) == [f"t{i:04d}" for i in range(8)]
    table = ResultsTable(tmp_path)
    assert table.append(_row(8)) is True and table.append(_row(3)) is False
    assert list(read_results(tmp_path)["trial_id"]) == [f"t{i:04d}" for i in range(9)]


def test_a_first_append_cut_short_leaves_an_empty_table_that_resumes(tmp_path, caplog):
    (tmp_path / RESULTS_LOG).write_bytes(b'{"trial_id":"t0000","sta')  # killed in the very first append
    with caplog.at_level(logging.WARNING, logger="ecgsearch.results.rowlog"):
        assert read_results(tmp_path).empty
    table = ResultsTable(tmp_path)
    assert table.finished_ids() == set() and table.append(_row(0)) is True
    assert list(pd.read_parquet(tmp_path / RESULTS_FILE)["trial_id"]) == ["t0000"]
    assert not (tmp_path / RESULTS_LOG).exists()


def test_a_log_without_its_parquet_file_is_the_table(tmp_path, monkeypatch):
    monkeypatch.setattr(table_module, "COMPACT_FRACTION", 1e9)
    _filled(tmp_path, 4)
    (tmp_path / RESULTS_FILE).unlink()  # deleted by hand: the rows after the first are still in the log
    assert list(read_results(tmp_path)["trial_id"]) == ["t0001", "t0002", "t0003"]
    with pytest.raises(FileNotFoundError):
        read_results(tmp_path / "elsewhere")


def test_the_search_ends_with_a_compacted_table(tmp_path, monkeypatch):
    from ecgsearch.engine.callbacks import ResultsCallback

    monkeypatch.setattr(table_module, "COMPACT_FRACTION", 1e9)
    callback = ResultsCallback(str(tmp_path), "macro_auroc")
    for i in range(5):
        callback._record(_row(i))
    assert (tmp_path / RESULTS_LOG).exists()
    callback.on_experiment_end([])
    assert not (tmp_path / RESULTS_LOG).exists()
    assert list(pd.read_parquet(tmp_path / RESULTS_FILE)["trial_id"]) == [f"t{i:04d}" for i in range(5)]


def test_a_reader_racing_appends_and_compactions_sees_a_growing_whole_table(tmp_path, monkeypatch):
    monkeypatch.setattr(table_module, "COMPACT_FRACTION", 0.5)  # many compactions in the race
    table = _filled(tmp_path, 4)
    stop = threading.Event()

    def write() -> None:
        i = 4
        while not stop.is_set():
            table.append(_row(i))
            i += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        frames = [read_results(tmp_path) for _ in range(150)]
    finally:
        stop.set()
        writer.join()
    sizes = [len(f) for f in frames]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]
    for frame in frames:  # every read a prefix of the rows, each once, typed as the rows are
        assert list(frame["trial_id"]) == [f"t{i:04d}" for i in range(len(frame))]
        assert frame["hp.batch_size"].dtype == "int64" and frame["val.macro_auroc"].dtype == "float64"

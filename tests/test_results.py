"""The results table: contract columns and order, atomic rewrites, no duplicate trial."""

from __future__ import annotations

import math

import pytest

from ecgsearch.engine.callbacks import error_summary, result_row
from ecgsearch.results import ResultsTable, column_order, read_results


def _row(trial_id: str, **extra) -> dict:
    return {"trial_id": trial_id, "status": "ok", "error": None, "architecture": "resnet", "optimizer": "sgd",
            "hp.batch_size": 32, "val.macro_auroc": 0.8, "test.macro_auroc": 0.7, "epochs": 2,
            "train_seconds": 1.5, "cost.params": 10, "cost.macs": 100, "cost.flops": 200, **extra}


def test_column_order_follows_the_contract():
    cols = ["cost.flops", "val.b", "hp.x", "latency.torch-cpu.p50_ms", "trial_id", "test.b", "status", "epochs",
            "error", "optimizer", "architecture", "train_seconds", "cost.params", "cost.macs"]
    assert column_order(cols) == ["trial_id", "status", "error", "architecture", "optimizer", "hp.x", "val.b",
                                  "test.b", "epochs", "train_seconds", "cost.params", "cost.macs", "cost.flops",
                                  "latency.torch-cpu.p50_ms"]


def test_every_append_is_on_disk_and_duplicates_are_ignored(tmp_path):
    table = ResultsTable(tmp_path)
    table.append(_row("t0000"))
    assert len(read_results(tmp_path)) == 1
    assert table.append(_row("t0001", **{"hp.architecture.resnet.depth": 8})) is True
    assert table.append(_row("t0001")) is False
    frame = read_results(tmp_path / "results.parquet")
    assert list(frame["trial_id"]) == ["t0000", "t0001"]
    assert math.isnan(frame["hp.architecture.resnet.depth"][0]) and frame["hp.architecture.resnet.depth"][1] == 8
    assert ResultsTable(tmp_path).finished_ids() == {"t0000", "t0001"}  # reopened from disk
    assert not list(tmp_path.glob("*.tmp*"))


def test_mixed_type_choices_are_stored(tmp_path):
    table = ResultsTable(tmp_path)
    table.append(_row("t0", **{"hp.act": "gelu"}))
    table.append(_row("t1", **{"hp.act": 3}))
    assert list(read_results(tmp_path)["hp.act"]) == ["gelu", "3"]


def test_unknown_status_is_refused(tmp_path):
    with pytest.raises(ValueError, match="status must be one of"):
        ResultsTable(tmp_path).append(_row("t0", status="weird"))


def test_row_from_a_stopped_trial():
    config = {"_trial_id": "t0003", "_costs": {"cost.params": 5, "cost.macs": 7, "cost.flops": 14},
              "architecture": "resnet", "optimizer": "adamw", "architecture.resnet.depth": 8, "batch_size": 32}
    result = {"status": "running", "val.macro_auroc": 0.7, "test.macro_auroc": 0.6, "epochs": 1,
              "train_seconds": 2.0, "current.val.macro_auroc": 0.7, "objective": 0.7}
    row = result_row(config, result)
    assert row == {"trial_id": "t0003", "config_id": "t0003", "status": "stopped", "error": None,
                   "architecture": "resnet", "optimizer": "adamw", "schedule": "constant",
                   "hp.architecture.resnet.depth": 8, "hp.batch_size": 32,
                   "val.macro_auroc": 0.7, "test.macro_auroc": 0.6, "epochs": 1, "train_seconds": 2.0,
                   "cost.params": 5, "cost.macs": 7, "cost.flops": 14}
    seeded = result_row({**config, "_seed": 300_012}, result)  # a drawn trial's own training seed is kept
    assert seeded == {**row, "seed": 300_012}
    assert list(column_order(seeded)).index("seed") == list(column_order(seeded)).index("epochs") - 1
    repeat = result_row({**config, "_trial_id": "t0003r1", "_config_id": "t0003", "_repeat": 1}, result)
    assert repeat == {**row, "trial_id": "t0003r1"}  # a repeat: its own trial id, its configuration's id


def test_error_summary_takes_the_exception_line():
    text = "Traceback (most recent call last):\n  File 'x', line 1\nray.exceptions.RayTaskError(RuntimeError): " \
           "ray::f()\n  File 'y'\nRuntimeError: injected fault: this architecture always raises\n"
    assert error_summary(text) == "RuntimeError: injected fault: this architecture always raises"


def test_reading_while_a_trial_is_appended_never_sees_a_torn_file(tmp_path):
    """The table is replaced atomically, but pyarrow opening the path twice (footer, then pages) read an
    old footer with new pages about once in 40 reads ('Page was smaller than expected'); one read of the
    bytes sees one file."""
    import threading

    from ecgsearch.results import ResultsTable, read_results

    table = ResultsTable(tmp_path)
    table.append({"trial_id": "x0", "status": "ok", "val.a": 0.5})
    stop = threading.Event()

    def write() -> None:
        i = 1
        while not stop.is_set():
            table.append({"trial_id": f"x{i}", "status": "ok", "val.a": i / 7,
                          **{f"hp.c{k}": k * i for k in range(i % 20)}})
            i += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        sizes = [len(read_results(tmp_path)) for _ in range(300)]
    finally:
        stop.set()
        writer.join()
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]

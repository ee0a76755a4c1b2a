"""Signals written straight into the cache entry: the .npy file, moved (not copied) into the entry."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from ecgsearch.data import EcgArrays
from ecgsearch.data.cache import open_dataset, prepare_dataset
from ecgsearch.data.signal_writer import FILE, SignalWriter, written_file


def batches(rows: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, 3, 40)).astype(np.float32) for n in (rows // 2, 0, rows - rows // 2)]


@pytest.mark.parametrize("in_memory", [True, False])
def test_rows_appended_in_order_fewer_than_capacity(tmp_path, in_memory):
    writer = SignalWriter(None if in_memory else tmp_path, capacity=9000, row_shape=(3, 40))
    parts = batches(7)
    for part in parts:
        writer.append(part)
    signals = writer.finish()
    np.testing.assert_array_equal(signals, np.concatenate(parts))
    assert signals.dtype == np.float32 and signals.shape == (7, 3, 40)
    if not in_memory:  # a standard .npy file of exactly the rows written, its header rewritten in place
        assert isinstance(signals, np.memmap) and not signals.flags.writeable
        np.testing.assert_array_equal(np.load(tmp_path / FILE), signals)
        assert (tmp_path / FILE).stat().st_size == 128 + 7 * 3 * 40 * 4
        assert written_file(signals, tmp_path) == tmp_path / FILE
    else:  # nothing to move: the cache writes it out
        assert written_file(signals, tmp_path) is None


def test_only_the_finished_array_itself_is_moved(tmp_path):
    writer = SignalWriter(tmp_path, capacity=4, row_shape=(3, 40))
    writer.append(batches(4)[0])
    signals = writer.finish()
    assert written_file(signals, tmp_path) == tmp_path / FILE
    for other in (signals[1:], signals[::-1], np.array(signals), np.load(tmp_path / FILE, mmap_mode="r")):
        assert written_file(other, tmp_path) is None
    assert written_file(signals, tmp_path / "elsewhere") is None


@pytest.mark.parametrize("in_memory", [True, False])
def test_rows_put_in_any_order(tmp_path, in_memory):
    writer = SignalWriter(None if in_memory else tmp_path, capacity=6, row_shape=(3, 40))
    rows = batches(6)[0].repeat(2, axis=0)[:6] + np.arange(6, dtype=np.float32)[:, None, None]
    writer.put([4, 5, 0], rows[[4, 5, 0]])
    writer.put([3, 1], rows[[3, 1]])
    signals = writer.finish()
    assert signals.shape == (6, 3, 40)
    np.testing.assert_array_equal(signals[[0, 1, 3, 4, 5]], rows[[0, 1, 3, 4, 5]])
    assert not signals[2].any()  # never written: zeros


def test_too_many_rows_or_a_wrong_shape_is_refused(tmp_path):
    writer = SignalWriter(tmp_path, capacity=2, row_shape=(3, 40))
    with pytest.raises(ValueError, match=re.escape("cannot write rows of shape (3, 3, 40) at rows 0-2 of at "
                                                   "most 2 rows of shape (3, 40)")):
        writer.append(np.zeros((3, 3, 40), np.float32))
    with pytest.raises(ValueError, match=re.escape("cannot write rows of shape (1, 2, 40) at rows 0-0")):
        writer.append(np.zeros((1, 2, 40), np.float32))
    with pytest.raises(ValueError, match=re.escape("at rows 2-2 of at most 2 rows")):
        writer.put([2], np.zeros((1, 3, 40), np.float32))
    assert writer.finish().shape == (0, 3, 40)  # nothing written: an empty in-memory array


class WritingSource:
    """A source that decodes into a SignalWriter in its workdir, as physionet2021 does."""

    def fingerprint(self) -> dict:
        return {"writer": 1}

    def build(self, workdir: Path, progress=None) -> EcgArrays:
        writer = SignalWriter(workdir, capacity=10, row_shape=(3, 40))
        for part in batches(6, seed=1):
            writer.append(part)
        return EcgArrays(signals=writer.finish(), targets=np.zeros((6, 1), np.float32), target_names=["a"],
                         split=np.array(["train", "val", "test"] * 2), sampling_rate=4.0,
                         leads=["I", "II", "III"], record_ids=np.arange(6).astype(str))


def test_the_cache_moves_the_written_file_into_the_entry(tmp_path):
    entry = prepare_dataset("writing", WritingSource(), tmp_path)
    np.testing.assert_array_equal(open_dataset(entry).signals, np.concatenate(batches(6, seed=1)))
    assert not (entry / "work" / FILE).exists()  # moved, not copied

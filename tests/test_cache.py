"""The dataset cache: round trip, memory mapping, hits without builds, keys, concurrency, crash safety."""

from __future__ import annotations

import json
import logging
import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from ecgsearch.data import EcgArrays
from ecgsearch.data.cache import CACHE_FORMAT, cache_key, default_cache_root, open_dataset, prepare_dataset


class FakeSource:
    """A deterministic source that counts its builds (in memory and, for other processes, in a file)."""

    def __init__(self, records: int = 12, seed: int = 0, log_file: Path | None = None,
                 delay: float = 0.0, fail: bool = False) -> None:
        self.records, self.seed, self.log_file, self.delay, self.fail = records, seed, log_file, delay, fail
        self.builds = 0

    def fingerprint(self) -> dict:
        return {"records": self.records, "seed": self.seed, "leads": ("I", "II")}

    def build(self, workdir: Path, progress=None) -> EcgArrays:
        import time

        self.builds += 1
        assert workdir.is_dir()
        if self.log_file is not None:
            with open(self.log_file, "a") as handle:
                handle.write("built\n")
        time.sleep(self.delay)
        if progress:
            progress(self.records, self.records, "fake")
        if self.fail:
            (workdir / "partial.bin").write_bytes(b"x" * 10)
            raise RuntimeError("decoder exploded")
        rng = np.random.default_rng(self.seed)
        n = self.records
        return EcgArrays(
            signals=rng.normal(size=(n, 2, 50)).astype(np.float32),
            targets=(rng.random((n, 3)) > 0.5).astype(np.float32),
            target_names=["a", "b", "c"],
            split=np.array(["train", "val", "test"] * (n // 3)),
            sampling_rate=50.0,
            leads=["I", "II"],
            record_ids=np.array([f"R{i:03d}" for i in range(n)]),
            extra={"class_counts": {"a": 1}, "np": np.int64(3)},
        )


def test_round_trip_preserves_every_array_and_fact(tmp_path):
    source = FakeSource()
    expected = source.build(tmp_path)
    entry = prepare_dataset("fake", source, tmp_path / "cache")
    assert entry == tmp_path / "cache" / cache_key("fake", source.fingerprint())
    data = open_dataset(entry)
    np.testing.assert_array_equal(data.signals, expected.signals)
    np.testing.assert_array_equal(data.targets, expected.targets)
    np.testing.assert_array_equal(data.split, expected.split)
    np.testing.assert_array_equal(data.record_ids, expected.record_ids)
    assert data.signals.dtype == np.float32 and data.targets.dtype == np.float32
    assert (data.target_names, data.sampling_rate, data.leads) == (["a", "b", "c"], 50.0, ["I", "II"])
    assert data.extra == {"class_counts": {"a": 1}, "np": 3}
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["format"] == CACHE_FORMAT and meta["dataset"] == "fake"
    assert meta["fingerprint"] == {"records": 12, "seed": 0, "leads": ["I", "II"]}
    assert meta["created"]


def test_signals_are_memory_mapped_read_only(tmp_path):
    data = open_dataset(prepare_dataset("fake", FakeSource(), tmp_path))
    assert isinstance(data.signals, np.memmap)
    with pytest.raises(ValueError):
        data.signals[0, 0, 0] = 1.0
    assert not isinstance(data.targets, np.memmap)


def test_hit_does_not_build_and_logs_the_key(tmp_path, caplog):
    source = FakeSource()
    caplog.set_level(logging.INFO, logger="ecgsearch.data.cache")
    first = prepare_dataset("fake", source, tmp_path)
    assert "miss" in caplog.text and first.name in caplog.text
    caplog.clear()
    second = prepare_dataset("fake", source, tmp_path,
                             progress=lambda *a: pytest.fail("no progress on a hit"))
    assert first == second and source.builds == 1
    assert "hit" in caplog.text and first.name in caplog.text


def test_key_depends_on_dataset_and_every_fingerprint_value(tmp_path):
    base = cache_key("fake", {"records": 12, "seed": 0})
    assert base.startswith("fake-") and len(base) == len("fake-") + 16
    assert cache_key("fake", {"seed": 0, "records": 12}) == base  # key order is irrelevant
    assert cache_key("fake", {"records": 12, "seed": 1}) != base
    assert cache_key("other", {"records": 12, "seed": 0}).split("-")[1] != base.split("-")[1]
    a, b = FakeSource(seed=0), FakeSource(seed=1)
    entry_a, entry_b = prepare_dataset("fake", a, tmp_path), prepare_dataset("fake", b, tmp_path)
    assert entry_a != entry_b and a.builds == b.builds == 1
    assert not np.array_equal(open_dataset(entry_a).signals, open_dataset(entry_b).signals)


def test_default_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ECGSEARCH_CACHE", str(tmp_path / "c"))
    assert default_cache_root() == tmp_path / "c"
    monkeypatch.delenv("ECGSEARCH_CACHE")
    assert default_cache_root() == Path.home() / ".cache" / "ecgsearch"


def _prepare_in_child(root: str, log_file: str, barrier, results) -> None:
    barrier.wait()
    try:
        entry = prepare_dataset("fake", FakeSource(log_file=Path(log_file), delay=0.5), Path(root))
    except Exception as error:  # reported to the test instead of leaving it waiting
        results.put(f"error: {error!r}")
    else:
        results.put(str(entry))


def test_two_processes_preparing_one_key_build_once(tmp_path):
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    log_file = tmp_path / "builds.log"
    children = [context.Process(target=_prepare_in_child,
                                args=(str(tmp_path / "cache"), str(log_file), barrier, results))
                for _ in range(2)]
    for child in children:
        child.start()
    entries = [results.get(timeout=60) for _ in children]
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0
    assert not [e for e in entries if e.startswith("error")], entries
    assert log_file.read_text().splitlines() == ["built"]
    assert entries[0] == entries[1]
    assert open_dataset(Path(entries[0])).signals.shape == (12, 2, 50)


def test_failing_build_leaves_no_entry_and_propagates(tmp_path):
    with pytest.raises(RuntimeError, match="decoder exploded"):
        prepare_dataset("fake", FakeSource(fail=True), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == []
    healthy = FakeSource()
    open_dataset(prepare_dataset("fake", healthy, tmp_path))
    assert healthy.builds == 1


def test_leftover_temp_dir_and_half_entry_are_never_used(tmp_path):
    source = FakeSource()
    key = cache_key("fake", source.fingerprint())
    crashed = tmp_path / f".{key}.tmp-crashed"
    crashed.mkdir()
    np.save(crashed / "signals.npy", np.zeros((1, 1, 1), np.float32))
    (crashed / "meta.json").write_text(json.dumps({"format": CACHE_FORMAT}))
    half = tmp_path / key  # an entry without meta.json (e.g. copied by hand, interrupted)
    half.mkdir()
    np.save(half / "signals.npy", np.zeros((1, 1, 1), np.float32))
    with pytest.raises(FileNotFoundError, match="not a complete dataset cache entry"):
        open_dataset(half)
    entry = prepare_dataset("fake", source, tmp_path)
    assert source.builds == 1 and entry == half
    assert open_dataset(entry).signals.shape == (12, 2, 50)
    assert not crashed.exists()

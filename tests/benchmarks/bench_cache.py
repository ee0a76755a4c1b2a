"""The dataset cache vs reading the WFDB files every time, on Challenge-format records.

Run:  python tests/benchmarks/bench_cache.py [--records 400] [--repeats 5] [--workers 0]

Writes N Challenge 2021 records (12 leads, 500 Hz, 10 s, int16 ``val`` in MATLAB v4 ``.mat``, headers
in the original layout with ``#Dx:``; generated signals) into a temporary folder, then measures side by
side, the sides alternating (their order rotating each repeat) so machine noise hits them alike:

(a) building the ``physionet2021`` cache entry (100 Hz, 0.5 Hz high-pass, z-score; a fresh cache each
    repeat, written and fsynced) vs a plain loop of ``wfdb.rdrecord`` + ``ecgsearch.preprocess.resample``
    to 100 Hz over the same records (float32 in, float32 out: the library's own resampler on its
    fastest path; the cache's output minus band-pass and z-score), and vs ``wfdb.rdrecord`` alone;
(b) one epoch's read of every record from the memory-mapped cache (random order, batches of 64, as
    torch tensors) vs one epoch of that wfdb loop producing the same batches.

Then a per-stage profile (one pass over the records, ms per record) says where the time goes.
The build wins (a) with its own MATLAB v4 reader, float32 and batched FFT forms of the filters
(``ecgsearch.spectral``); the cache pays off in (b), once per epoch of every trial.
torch and wfdb are imported inside the functions that use them: the build's worker processes (when
there are enough records for them) are spawned and re-import this script, and must not pay for torch.
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ecgsearch.cache import open_dataset, prepare_dataset
from ecgsearch.plugins import get_registries
from ecgsearch.preprocess import STANDARD_LEADS, Preprocessing, bandpass, normalize, resample

FS, SECONDS, TARGET_HZ, BATCH = 500, 10, 100, 64
# A few of the 26 scored SNOMED-CT codes (sinus rhythm, AF, RBBB, LAD, ...), as Dx lists draw them.
DX_CODES = ("426783006", "164889003", "59118001", "39732003", "164934002", "427084000", "270492004")


def _signal(rng: np.random.Generator) -> np.ndarray:
    """A cheap ECG-like int16 trace per lead (spikes at a heart rate, wander, noise), in 1000/mV units."""
    t = np.arange(FS * SECONDS) / FS
    beat = 60.0 / rng.uniform(50, 110)
    phase = (t % beat) / beat
    qrs = np.exp(-((phase - 0.3) / 0.012) ** 2) - 0.25 * np.exp(-((phase - 0.6) / 0.05) ** 2)
    leads = []
    for _ in STANDARD_LEADS:
        wander = 0.2 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 6.3))
        leads.append(rng.uniform(-1.5, 1.5) * qrs + wander + 0.02 * rng.standard_normal(t.size))
    return np.clip(np.round(np.array(leads) * 1000), -32767, 32767).astype("<i2")


def write_record(folder: Path, name: str, raw: np.ndarray, dx: list[str], age: int, sex: str) -> None:
    """``name.mat`` (MATLAB v4: 20-byte header, ``val``, int16, column-major) and ``name.hea``."""
    leads, samples = raw.shape
    head = struct.pack("<5i", 30, leads, samples, 0, 4) + b"val\x00"  # type 30: little-endian int16
    (folder / f"{name}.mat").write_bytes(head + raw.T.tobytes())
    lines = [f"{name} {leads} {FS} {samples} 05-Feb-2020 11:39:16"]
    for lead, row in zip(STANDARD_LEADS, raw):
        checksum = int(row.astype(np.int64).sum()) & 0xFFFF
        checksum -= 65536 if checksum >= 32768 else 0
        lines.append(f"{name}.mat 16+24 1000/mV 16 0 {int(row[0])} {checksum} 0 {lead}")
    lines += [f"#Age: {age}", f"#Sex: {sex}", f"#Dx: {','.join(dx)}", "#Rx: Unknown", "#Hx: Unknown",
              "#Sx: Unknown"]
    (folder / f"{name}.hea").write_text("\n".join(lines) + "\n")


def write_records(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """N records named A9xxxxx (a CPSC-style prefix); returns their paths without extension."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"A9{i:04d}" for i in range(n)]
    for name in names:
        dx = sorted(set(rng.choice(DX_CODES, size=int(rng.integers(1, 3)))))
        write_record(folder, name, _signal(rng), list(dx), int(rng.integers(20, 90)),
                     str(rng.choice(["Male", "Female"])))
    return [folder / name for name in names]


def wfdb_record(path: Path) -> np.ndarray:
    """One record as the plain loop reads it: wfdb decoding, then the library's resampling (float32)."""
    import wfdb

    record = wfdb.rdrecord(str(path))
    return resample(record.p_signal.T.astype(np.float32), record.fs, TARGET_HZ)


def wfdb_read(path: Path) -> np.ndarray:
    """One record decoded by wfdb only (the floor of any loop over wfdb.rdrecord)."""
    import wfdb

    return wfdb.rdrecord(str(path)).p_signal


def loop(paths: list[Path], read: Callable[[Path], np.ndarray]) -> float:
    """Seconds to run ``read`` on every record in order."""
    started = time.perf_counter()
    for path in paths:
        read(path)
    return time.perf_counter() - started


def build_cache(root: Path, cache_root: Path, workers: int) -> tuple[float, Path]:
    """Seconds to build the physionet2021 entry into an empty cache, and the entry."""
    info = get_registries().datasets.get("physionet2021")
    started = time.perf_counter()
    entry = prepare_dataset("physionet2021", info.create(root=str(root), sampling_rate=TARGET_HZ,
                                                         workers=workers), cache_root)
    return time.perf_counter() - started, entry


def cache_epoch(entry: Path, seed: int) -> float:
    """Seconds for one epoch of batches from the memory-mapped signals, in random order, as tensors."""
    import torch

    started = time.perf_counter()
    signals = open_dataset(entry).signals
    order = np.random.default_rng(seed).permutation(len(signals))
    for i in range(0, len(order), BATCH):
        batch = torch.from_numpy(np.ascontiguousarray(signals[np.sort(order[i:i + BATCH])]))
        assert batch.dtype == torch.float32
    return time.perf_counter() - started


def wfdb_epoch(paths: list[Path], seed: int) -> float:
    """Seconds for the same epoch decoded from the WFDB files: same order, batch size and tensors."""
    import torch

    started = time.perf_counter()
    order = np.random.default_rng(seed).permutation(len(paths))
    for i in range(0, len(order), BATCH):
        batch = torch.from_numpy(np.stack([wfdb_record(paths[j]) for j in order[i:i + BATCH]]))
        assert batch.dtype == torch.float32
    return time.perf_counter() - started


def profile(paths: list[Path]) -> dict[str, float]:
    """Median ms per record of each stage, one record at a time (the build batches the filters)."""
    from ecgsearch_plugins.datasets._wfdb_header import read_header, read_raw, to_physical

    stages: dict[str, list[float]] = {}
    prep = Preprocessing(sampling_rate=TARGET_HZ)

    def timed(name: str, call: Callable[[], object]) -> object:
        started = time.perf_counter()
        value = call()
        stages.setdefault(name, []).append((time.perf_counter() - started) * 1000)
        return value

    for path in paths:
        hea = path.with_suffix(".hea")
        timed("wfdb.rdrecord", lambda: wfdb_read(path))
        header = timed("our header", lambda: read_header(hea))
        raw = timed("our .mat read", lambda: read_raw(header, hea))
        physical = timed("to_physical (float32)", lambda: to_physical(raw, header, np.float32))
        x = timed("resample to 100 Hz", lambda: resample(physical, FS, TARGET_HZ))
        x = timed("band-pass (0.5 Hz)", lambda: bandpass(x, TARGET_HZ, 0.5))
        timed("z-score", lambda: normalize(x))
        timed("Preprocessing.apply (all)", lambda: prep.apply(physical, FS, STANDARD_LEADS))
    return {name: statistics.median(values) for name, values in stages.items()}


def load() -> str:
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=0,
                        help="most decoding processes of the cache build (0: the plugin's default)")
    args = parser.parse_args()
    print(f"start: {load()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "records"
        started = time.perf_counter()
        paths = write_records(data, args.records)
        print(f"wrote {len(paths)} records (12 leads, {FS} Hz, {SECONDS} s) in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        builds, loops, reads = [], [], []
        entry = Path(tmp)
        for r in range(args.repeats):
            sides = [("build", lambda: build_cache(data, Path(tmp) / f"cache{r}", args.workers)),
                     ("loop", lambda: (loop(paths, wfdb_record), None)),
                     ("read", lambda: (loop(paths, wfdb_read), None))]
            timings = {}
            for name, run in sides[r % 3:] + sides[:r % 3]:  # rotate the order each repeat
                timings[name], result = run()
                entry = result or entry
            builds.append(timings["build"])
            loops.append(timings["loop"])
            reads.append(timings["read"])
            print(f"(a) repeat {r}: cache build {builds[-1]:.3f} s, wfdb+resample loop {loops[-1]:.3f} s "
                  f"(ratio {loops[-1] / builds[-1]:.2f}), wfdb.rdrecord alone {reads[-1]:.3f} s "
                  f"(ratio {reads[-1] / builds[-1]:.2f})", flush=True)
        epochs, decodes = [], []
        for r in range(args.repeats):
            epochs.append(cache_epoch(entry, seed=r))
            decodes.append(wfdb_epoch(paths, seed=r))
            print(f"(b) repeat {r}: cache epoch {epochs[-1] * 1000:.1f} ms, wfdb epoch {decodes[-1]:.2f} s, "
                  f"ratio {decodes[-1] / epochs[-1]:.1f}", flush=True)
        shape = open_dataset(entry).signals.shape
        stages = profile(paths)
    build_ratios = [l / b for l, b in zip(loops, builds)]
    read_only_ratios = [r / b for r, b in zip(reads, builds)]
    epoch_ratio = statistics.median(d / c for d, c in zip(decodes, epochs))
    print(f"cached signals: {shape} float32 ({np.prod(shape) * 4 / 1e6:.1f} MB)")
    print("profile, median ms per record: " + ", ".join(f"{k} {v:.3f}" for k, v in stages.items()))
    print(f"(a) build: median cache build {statistics.median(builds):.3f} s, median wfdb+resample loop "
          f"{statistics.median(loops):.3f} s, median ratio {statistics.median(build_ratios):.2f} "
          f"(range {min(build_ratios):.2f}-{max(build_ratios):.2f}; target >= 5); vs wfdb.rdrecord alone "
          f"{statistics.median(reads):.3f} s, median ratio {statistics.median(read_only_ratios):.2f} "
          f"(range {min(read_only_ratios):.2f}-{max(read_only_ratios):.2f})")
    print(f"(b) epoch: median cache epoch {statistics.median(epochs) * 1000:.1f} ms, median wfdb epoch "
          f"{statistics.median(decodes):.2f} s, median ratio {epoch_ratio:.0f} (target >= 50)")
    print(f"end: {load()}")
    return 0 if epoch_ratio >= 50 and statistics.median(build_ratios) >= 5 else 1


if __name__ == "__main__":
    sys.exit(main())

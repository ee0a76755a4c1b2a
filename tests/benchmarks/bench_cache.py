"""The dataset cache vs reading the WFDB files every time, on Challenge-format records.

Run:  python tests/benchmarks/bench_cache.py [--records 2000] [--repeats 5] [--workers 0]

Writes N Challenge 2021 records (12 leads, 500 Hz, 10 s, int16 ``val`` in MATLAB v4 ``.mat``, headers
in the original layout with ``#Dx:``; generated signals) into a temporary folder, then measures side by
side, the sides alternating (their order rotating each repeat) so machine noise hits them alike:

(a) building the ``physionet2021`` cache entry (100 Hz, 0.5 Hz high-pass, z-score; a fresh cache each
    repeat, the previous repeat's removed, written and fsynced) vs plain loops over the same records:
    ``wfdb.rdrecord`` + ``ecgsearch.data.preprocess.resample`` to 100 Hz (float32 in, float32 out: the
    library's own resampler on its fastest path; the cache's output minus band-pass and z-score),
    ``wfdb.rdrecord`` alone (the floor of any such loop), and ``wfdb.rdrecord`` +
    ``scipy.signal.resample_poly`` (the resampler the library used before, the same numbers). The
    target (>= 5x) holds against the first two. Wall-clock and this process's CPU seconds, after one
    untimed round of every side (page cache, imports and filter plans then warm for all alike);
(b) one epoch's read of every record from the memory-mapped cache (random order, batches of 64, as
    torch tensors) vs one epoch of that wfdb loop producing the same batches.

Then a per-stage profile (one pass over the records, CPU ms per record) says where the time goes.
The build wins (a) with its own MATLAB v4 reader, float32 and batched FFT forms of the filters
(``ecgsearch.data.spectral``), a helper thread preprocessing one batch while the next is read, and the
signals written straight into the entry (``ecgsearch.data.signal_writer``); the cache pays off in (b),
once per epoch of every trial.
torch and wfdb are imported inside the functions that use them: the build's worker processes (when
there are enough records for them) are spawned and re-import this script, and must not pay for torch.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ecgsearch.data.cache import open_dataset, prepare_dataset
from ecgsearch.data.preprocess import STANDARD_LEADS, Preprocessing, bandpass, normalize, resample
from ecgsearch.plugins import get_registries

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


def wfdb_scipy_record(path: Path) -> np.ndarray:
    """The same with scipy's own ``resample_poly`` (what the library called before; the same numbers)."""
    import wfdb
    from scipy.signal import resample_poly

    record = wfdb.rdrecord(str(path))
    return resample_poly(record.p_signal.T.astype(np.float32), 1, FS // TARGET_HZ, axis=-1)


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
    """Median CPU ms per record of each stage (CPU time: on a busy machine a long call is preempted
    more often than a short one, which biases wall-clock medians towards short calls)."""
    from ecgsearch_plugins.datasets._wfdb_header import read_header, read_raw, to_physical

    stages: dict[str, list[float]] = {}
    prep = Preprocessing(sampling_rate=TARGET_HZ)

    def timed(name: str, call: Callable[[], object]) -> object:
        started = time.process_time()
        value = call()
        stages.setdefault(name, []).append((time.process_time() - started) * 1000)
        return value

    from scipy import signal as sps

    sos = sps.butter(4, 0.5, btype="highpass", fs=TARGET_HZ, output="sos")
    batch = []
    for path in paths:
        hea = path.with_suffix(".hea")
        timed("wfdb.rdrecord", lambda: wfdb_read(path))
        header = timed("our header", lambda: read_header(hea))
        raw = timed("our .mat read", lambda: read_raw(header, hea))
        physical = timed("to_physical (float32)", lambda: to_physical(raw, header, np.float32))
        timed("scipy resample_poly (v1)", lambda: sps.resample_poly(physical, 1, FS // TARGET_HZ, axis=-1))
        x = timed("resample (FFT form)", lambda: resample(physical, FS, TARGET_HZ))
        timed("scipy sosfiltfilt (v1)", lambda: sps.sosfiltfilt(sos, x, axis=-1, padlen=15))
        x = timed("band-pass (FFT form)", lambda: bandpass(x, TARGET_HZ, 0.5))
        timed("z-score", lambda: normalize(x))
        timed("Preprocessing.apply", lambda: prep.apply(physical, FS, STANDARD_LEADS))
        batch.append(physical.T)
        if len(batch) == 8:  # as the build runs it: 8 records, time-major, one call
            stacked = np.stack(batch)
            started = time.process_time()
            prep.apply_batch(stacked, FS, STANDARD_LEADS, leads_last=True)
            stages.setdefault("apply_batch of 8, per record", []).append((time.process_time() - started) * 125)
            batch = []
    return {name: statistics.median(values) for name, values in stages.items()}


def load() -> str:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg()) + f"; {cpus} of {os.cpu_count()} CPUs"


BASELINES = {  # side name -> (what it is, the per-record function of the loop)
    "loop": ("wfdb.rdrecord + library resample", wfdb_record),
    "read": ("wfdb.rdrecord alone", wfdb_read),
    "scipy": ("wfdb.rdrecord + scipy resample_poly", wfdb_scipy_record),
}


TARGETS = ("loop", "read")  # the build must be >= 5x faster than these loops


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} (range {min(values):.2f}-{max(values):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=0,
                        help="most decoding processes of the cache build (0: the plugin's default)")
    args = parser.parse_args()
    print(f"start: {load()}", flush=True)
    get_registries()  # loading the plugins is not part of a build (nor of the loop)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "records"
        started = time.perf_counter()
        paths = write_records(data, args.records)
        print(f"wrote {len(paths)} records (12 leads, {FS} Hz, {SECONDS} s) in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        seconds: dict[str, list[float]] = {name: [] for name in ("build", *BASELINES)}
        cpu: dict[str, list[float]] = {name: [] for name in seconds}  # this process's CPU seconds
        # An untimed round first: file pages in the page cache, imports and filter plans are then warm
        # for every side alike (printed, for the record).
        cold = {"build": build_cache(data, Path(tmp) / "warm-up", args.workers)[0]}
        shutil.rmtree(Path(tmp) / "warm-up")
        for name in BASELINES:
            cold[name] = loop(paths, BASELINES[name][1])
        print("warm-up round (untimed): "
              + "; ".join(f"{name} {value:.3f} s" for name, value in cold.items()), flush=True)
        entry = Path(tmp)
        for r in range(args.repeats):
            sides = list(seconds)
            for name in sides[r % len(sides):] + sides[:r % len(sides)]:  # the order rotates each repeat
                started = time.process_time()
                if name == "build":
                    if entry != Path(tmp):  # one entry at a time, as a node keeps one per key
                        shutil.rmtree(entry.parent)
                    elapsed, entry = build_cache(data, Path(tmp) / f"cache{r}", args.workers)
                else:
                    elapsed = loop(paths, BASELINES[name][1])
                seconds[name].append(elapsed)
                cpu[name].append(time.process_time() - started)
            build = seconds["build"][-1]
            print(f"(a) repeat {r}: cache build {build:.3f} s; " + "; ".join(
                f"{label} {seconds[name][-1]:.3f} s (ratio {seconds[name][-1] / build:.2f})"
                for name, (label, _) in BASELINES.items()), flush=True)
        epochs, decodes = [], []
        for r in range(args.repeats):
            epochs.append(cache_epoch(entry, seed=r))
            decodes.append(wfdb_epoch(paths, seed=r))
            print(f"(b) repeat {r}: cache epoch {epochs[-1] * 1000:.1f} ms, wfdb epoch {decodes[-1]:.2f} s, "
                  f"ratio {decodes[-1] / epochs[-1]:.1f}", flush=True)
        shape = open_dataset(entry).signals.shape
        stages = profile(paths)
    ratios = {name: [b / a for a, b in zip(seconds["build"], seconds[name])] for name in BASELINES}
    cpu_ratios = {name: [b / a for a, b in zip(cpu["build"], cpu[name])] for name in BASELINES}
    epoch_ratio = statistics.median(d / c for d, c in zip(decodes, epochs))
    print(f"cached signals: {shape} float32 ({np.prod(shape) * 4 / 1e6:.1f} MB)")
    print("profile, median ms per record: " + ", ".join(f"{k} {v:.3f}" for k, v in stages.items()))
    print(f"(a) build: median cache build {statistics.median(seconds['build']):.3f} s "
          f"(CPU {statistics.median(cpu['build']):.3f} s)")
    for name, (label, _) in BASELINES.items():
        target = " (target >= 5)" if name in TARGETS else ""
        print(f"    vs {label}: median {statistics.median(seconds[name]):.3f} s, ratio {spread(ratios[name])}"
              f"{target}; CPU {statistics.median(cpu[name]):.3f} s, CPU ratio {spread(cpu_ratios[name])}")
    print(f"(b) epoch: median cache epoch {statistics.median(epochs) * 1000:.1f} ms, median wfdb epoch "
          f"{statistics.median(decodes):.2f} s, median ratio {epoch_ratio:.0f} (target >= 50)")
    print(f"end: {load()}")
    return 0 if epoch_ratio >= 50 and all(statistics.median(ratios[name]) >= 5 for name in TARGETS) else 1


if __name__ == "__main__":
    sys.exit(main())

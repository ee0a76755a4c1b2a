"""The ``deepfake`` dataset: 8-lead DeepFake ECGs (Pulse2Pulse GAN) with measured HR, PR, QRS and QT.

The synthetic-to-real transfer study trained interval regressors on GAN ECGs (Thambawita et al. 2021,
``pip install deepfake-ecg``) whose targets were *measured*, not known by construction: here neurokit2
delineates lead II (``ecg_peaks`` + ``ecg_delineate``, DWT, at the generator's 500 Hz), takes the
per-beat intervals and keeps each record's median. Records that cannot be delineated, or whose values
fall outside physiological ranges, are dropped and listed in ``extra["skipped"]`` with the reason.

The package's own ``generate()`` writes text files from unseeded noise, so this module builds the
generator itself, loads the shipped state dict with ``weights_only=True`` and seeds the uniform(-1, 1)
noise of every batch from ``(seed, batch index)``. The GAN output times 6000 is in µV (the convention of
the paper's MUSE-derived training data); signals here are in mV.
"""

from __future__ import annotations

import importlib.metadata
import logging
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ecgsearch import (
    DatasetInfo,
    EcgArrays,
    LabelSet,
    Progress,
    SplitShares,
    check_int,
    check_number,
    fix_length,
    float_param,
    hookimpl,
    int_param,
    list_param,
    resample,
    standard_leads,
)
from ecgsearch_plugins._delineation import DelineationError, beat_intervals, delineate, positive_median
from ecgsearch_plugins.datasets._targets import check_targets, chosen_columns, named_targets, targets_param

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1  # bump when the arrays or targets change for the same parameters
GAN_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")  # the generator's channel order
GAN_HZ = 500.0
GAN_SAMPLES = 5000  # 10 s at 500 Hz
GAN_SCALE_MV = 6000.0 / 1000.0  # tanh output x 6000 = µV (as the package writes it); / 1000 -> mV
WEIGHTS = "checkpoints/g_stat.pt"  # inside the deepfakeecg package; a dict {"stat_dict": state_dict}
MEASURE_LEAD = "II"
TARGET_KINDS = ("intervals",)
TARGET_NAMES = ("hr_bpm", "pr_ms", "qrs_ms", "qt_ms")
# Physiological ranges (bpm, ms); a record with a median outside them is dropped, not clipped.
TARGET_RANGES = {"hr_bpm": (30.0, 220.0), "pr_ms": (80.0, 400.0), "qrs_ms": (40.0, 250.0),
                 "qt_ms": (200.0, 700.0)}
MIN_RECORDS = 10
MAX_BATCH_SIZE = 1024
SAMPLING_RATE_RANGE = (50.0, 1000.0)
SECONDS_RANGE = (2.0, 10.0)  # the generator makes 10 s; shorter takes the centre window
PROGRESS_WHAT = "generating DeepFake ECGs"








def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def weights_path() -> Path:
    """The GAN weights shipped inside the ``deepfakeecg`` wheel."""
    import deepfakeecg

    return Path(deepfakeecg.__file__).resolve().parent / WEIGHTS


def load_generator() -> Any:
    """The Pulse2Pulse generator with the shipped weights, in eval mode on the CPU.

    ``weights_only=True``: the checkpoint is a plain state dict, so no pickled code is ever run.
    """
    import deepfakeecg
    import torch

    checkpoint = torch.load(weights_path(), map_location="cpu", weights_only=True)
    with warnings.catch_warnings():  # the package calls the deprecated nn.init.kaiming_normal
        warnings.simplefilter("ignore")
        model = deepfakeecg.Generator()
    model.load_state_dict(checkpoint["stat_dict"])
    return model.eval()


def batch_noise(seed: int, batch_index: int, size: int) -> Any:
    """Uniform(-1, 1) input noise ``(size, 8, 5000)`` drawn from a generator seeded by (seed, batch)."""
    import torch

    state = np.random.SeedSequence([seed, batch_index]).generate_state(1, dtype=np.uint64)[0]
    rng = torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)
    return torch.empty(size, len(GAN_LEADS), GAN_SAMPLES).uniform_(-1, 1, generator=rng)


def measure_intervals(lead_ii_mv: np.ndarray, hz: float = GAN_HZ) -> tuple[np.ndarray | None, str]:
    """``([hr_bpm, pr_ms, qrs_ms, qt_ms], "")`` measured on lead II, or ``(None, reason)``.

    Per beat: PR = QRS onset - P onset, QRS = QRS offset - QRS onset, QT = T offset - QRS onset; HR from
    the median RR interval. Each value is the median over the beats where it could be measured. The
    signal is not pre-filtered: on the raw GAN output the medians are plausible (PR/QRS/QT about
    134/88/362 ms), while ``ecg_clean``'s high-pass moved the DWT P onsets late (PR < 80 ms on ~45%).
    """
    try:
        rpeaks, waves = delineate(lead_ii_mv, hz)
    except DelineationError as error:
        return None, f"{error} (lead {MEASURE_LEAD})"
    values = {"hr_bpm": 60.0 / (np.median(np.diff(rpeaks)) / hz)}
    for name, series in beat_intervals(waves, hz).items():
        values[name] = positive_median(series)
        if math.isnan(values[name]):
            return None, f"delineation found no beat with a measurable {name[:-3].upper()} interval"
    for name in TARGET_NAMES:
        lo, hi = TARGET_RANGES[name]
        if not lo <= values[name] <= hi:
            return None, f"{name} {values[name]:.0f} outside the physiological range {lo:g}-{hi:g}"
    return np.array([values[name] for name in TARGET_NAMES], dtype=np.float32), ""


class DeepFakeEcg:
    """An ``EcgSource`` of DeepFake 8-lead ECGs with measured HR (bpm), PR, QRS and QT (ms) targets.

    records: how many to generate (fewer remain when some cannot be measured); sampling_rate (Hz) and
    seconds: the output grid (resampled from 500 Hz, centre window of the 10 s); leads: names from I,
    II, V1-V6 in the wanted channel order; targets: ``"intervals"``, or a list of target names to keep
    only those (``["qrs_ms"]``); seed: the noise of batch ``b`` is
    drawn from ``(seed, b)``; val/test_fraction: split sizes; batch_size: records per generator call
    (part of the fingerprint: it decides which noise each record gets); workers: CPU threads for torch
    (0: ``min(2, cpu_count)``; results do not depend on it).
    """

    def __init__(self, records: int = 200, sampling_rate: float = 500, seconds: float = 10,
                 leads: Sequence[str] | None = None, targets: str | Sequence[str] = "intervals", seed: int = 0,
                 val_fraction: float = 0.15, test_fraction: float = 0.15, batch_size: int = 16,
                 workers: int = 0) -> None:
        check_int("deepfake", "records", records, low=MIN_RECORDS)
        check_number("deepfake", "sampling_rate", sampling_rate, *SAMPLING_RATE_RANGE, what="a number of Hz")
        check_number("deepfake", "seconds", seconds, *SECONDS_RANGE, note=", the generator makes 10 s records")
        chosen = check_targets("deepfake", targets, TARGET_KINDS, TARGET_NAMES)
        self.split = SplitShares.checked("deepfake", val_fraction, test_fraction, seed, total_below=0.9)
        check_int("deepfake", "batch_size", batch_size, low=1, high=MAX_BATCH_SIZE)
        check_int("deepfake", "workers", workers, note=", 0 for automatic")
        self.records = int(records)
        self.sampling_rate = float(sampling_rate)
        self.seconds = float(seconds)
        self.leads = standard_leads(leads, "deepfake", GAN_LEADS)
        self.targets = chosen
        self.seed = self.split.seed
        self.batch_size = int(batch_size)
        self.workers = int(workers)

    def fingerprint(self) -> dict[str, Any]:
        """Every parameter that changes the arrays (not ``workers``), plus generator/measurer versions."""
        return {
            "records": self.records, "sampling_rate": self.sampling_rate, "seconds": self.seconds,
            "leads": list(self.leads), "targets": self.targets, **self.split.fingerprint(),
            "batch_size": self.batch_size, "generator": GENERATOR_VERSION,
            "deepfake_ecg": _version("deepfake-ecg"), "neurokit2": _version("neurokit2"),
        }

    def resolved_workers(self) -> int:
        return self.workers or min(2, os.cpu_count() or 1)

    def build(self, workdir: Path | None, progress: Progress | None = None) -> EcgArrays:
        """Generate in seeded batches, measure lead II, drop unmeasurable records, resample, split."""
        import torch

        started = time.perf_counter()
        report = progress or (lambda done, total, what: None)
        report(0, self.records, PROGRESS_WHAT)
        samples = round(self.seconds * self.sampling_rate)
        lead_index = [GAN_LEADS.index(lead) for lead in self.leads]
        ii = GAN_LEADS.index(MEASURE_LEAD)
        kept_signals: list[np.ndarray] = []
        kept_targets: list[np.ndarray] = []
        kept_ids: list[str] = []
        skipped: list[dict[str, str]] = []
        workers = self.resolved_workers()
        batches = [(start, min(start + self.batch_size, self.records))
                   for start in range(0, self.records, self.batch_size)]
        # Delineation (~0.15 s a record) dominates; worker processes for it measured slower than one
        # process on a 2-core machine (51 s vs 32 s for 200 records), so it runs here, in order.
        threads = torch.get_num_threads()
        torch.set_num_threads(workers)
        try:
            model = load_generator()
            for batch, (start, stop) in enumerate(batches):
                with torch.inference_mode():
                    mv = model(batch_noise(self.seed, batch, stop - start)).numpy().astype(np.float64)
                mv *= GAN_SCALE_MV
                for offset, record in enumerate(mv):
                    values, reason = measure_intervals(record[ii])
                    record_id = f"DF{start + offset + 1:05d}"
                    if values is None:
                        skipped.append({"record": record_id, "reason": reason})
                        continue
                    grid = fix_length(resample(record[lead_index], GAN_HZ, self.sampling_rate), samples)
                    kept_signals.append(grid.astype(np.float32))
                    kept_targets.append(values)
                    kept_ids.append(record_id)
                report(stop, self.records, PROGRESS_WHAT)
        finally:
            torch.set_num_threads(threads)
        if not kept_signals:
            reasons = sorted({item["reason"].split(":")[0] for item in skipped})[:3]
            raise ValueError(f"deepfake: none of the {self.records} generated records could be measured "
                             f"on lead II ({'; '.join(reasons)}); try another seed or more records.")
        for item in skipped:
            log.info("deepfake: skipped %s: %s", item["record"], item["reason"])
        split = self.assign_splits(len(kept_ids))
        log.info("generated %d DeepFake ECGs, kept %d (%d leads, %g Hz, %g s) in %.1f s", self.records,
                 len(kept_ids), len(self.leads), self.sampling_rate, self.seconds,
                 time.perf_counter() - started)
        targets = np.stack(kept_targets).astype(np.float32)
        kept, names = chosen_columns(targets, TARGET_NAMES, self.targets)
        return EcgArrays(
            signals=np.stack(kept_signals), targets=kept, target_names=names,
            split=split, sampling_rate=self.sampling_rate, leads=list(self.leads),
            record_ids=np.array(kept_ids), extra=self._extra(targets, split, skipped),
        )

    def assign_splits(self, kept: int) -> np.ndarray:
        """Random train/val/test of the kept records by seed; train gets at least one record."""
        order = np.random.default_rng([self.seed, 3]).permutation(kept)
        n_val, n_test = self.split.counts(kept)
        n_val = min(n_val, max(kept - 1, 0))
        n_test = min(n_test, max(kept - 1 - n_val, 0))
        if not (n_val and n_test):
            log.warning("deepfake: only %d record(s) could be measured; some splits are empty", kept)
        split = np.full(kept, "train", dtype="<U5")
        split[order[:n_val]] = "val"
        split[order[n_val:n_val + n_test]] = "test"
        return split

    def _extra(self, targets: np.ndarray, split: np.ndarray, skipped: list[dict[str, str]]) -> dict[str, Any]:
        return {
            "skipped": skipped,
            "split_counts": {name: int((split == name).sum()) for name in ("train", "val", "test")},
            "target_units": {"hr_bpm": "bpm", "pr_ms": "ms", "qrs_ms": "ms", "qt_ms": "ms"},
            "target_ranges": {name: list(TARGET_RANGES[name]) for name in TARGET_NAMES},
            "target_medians": {name: float(np.median(targets[:, i])) for i, name in enumerate(TARGET_NAMES)},
            "generator": {
                "model": "Pulse2Pulse GAN (Thambawita et al. 2021), deepfake-ecg weights g_stat.pt; "
                         "noise uniform(-1, 1) seeded by (seed, batch index)",
                "deepfake_ecg": _version("deepfake-ecg"), "neurokit2": _version("neurokit2"),
                "version": GENERATOR_VERSION, "native_hz": GAN_HZ, "units": "mV",
                "measurement": "neurokit2 ecg_peaks + ecg_delineate(method='dwt') on lead II "
                               "at 500 Hz; per-beat intervals, median per record",
            },
        }


def target_names(params: Mapping[str, Any]) -> list[str] | None:
    """The target names the data parameters give (``DatasetInfo.target_names``): the 4 intervals or the listed
    ones."""
    return named_targets(params.get("targets", "intervals"), {"intervals": TARGET_NAMES}, TARGET_NAMES)


@hookimpl
def ecgsearch_register_datasets() -> list[DatasetInfo]:
    return [DatasetInfo(
        name="deepfake",
        description="DeepFake 8-lead ECGs from the Pulse2Pulse GAN with HR, PR, QRS and QT measured "
                    "on lead II by neurokit2; no download",
        factory="ecgsearch_plugins.datasets.deepfake:DeepFakeEcg",
        label_param="targets",
        label_sets={"intervals": LabelSet(("regression", "probabilistic"), members=TARGET_NAMES,
                                          doc="HR, PR, QRS, QT measured on lead II")},
        target_names=target_names,
        provides=(),
        requires=("deepfakeecg", "neurokit2"),
        install_hint="pip install deepfake-ecg",
        params={
            "records": int_param(MIN_RECORDS, 10_000_000, doc="records generated, before dropping unmeasurable ones"),
            "sampling_rate": float_param(*SAMPLING_RATE_RANGE, doc="resampled rate (Hz)"),
            "seconds": float_param(*SECONDS_RANGE, doc="the central `seconds` of the 10 s records"),
            "leads": list_param("str", choices=GAN_LEADS, ignore_case=True, nullable=True,
                                doc="a subset of the 8 leads (null: all 8)"),
            "targets": targets_param(TARGET_KINDS, TARGET_NAMES, doc="`intervals`: HR, PR, QRS and QT measured "
                                     "on lead II"),
            "seed": int_param(0, 2**32 - 1, doc="the GAN's input noise is drawn per (seed, batch)"),
            "val_fraction": float_param(0, 1, low_open=True, high_open=True, doc="validation share"),
            "test_fraction": float_param(0, 1, low_open=True, high_open=True, doc="test share"),
            "batch_size": int_param(1, MAX_BATCH_SIZE, doc="records per generator call (decides each record's noise)"),
            "workers": int_param(0, 1024, doc="torch threads for generation (0: up to 2)"),
        }
    )]

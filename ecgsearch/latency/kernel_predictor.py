"""Kernel-level latency prediction: a model's measured kernels, summed, corrected by a learned model.

The whole-model predictor (``latency.predictor``) guesses latency from cost features; two models with
the same FLOPs but different layers run at different speeds, and it cannot tell them apart. This one
looks at what the runtime runs (nn-Meter's idea, with measured kernels instead of predicted ones):

1. the model's ONNX graph is cut into the kernels the runtime fuses (``latency.kernels``);
2. each kernel's latency is looked up in the backend's kernel table, measured once per backend, options,
   batch size and input shape and cached on disk (``latency.kernel_table``);
3. ``KernelSum`` adds them up per kernel class (convolution, matrix product, pooling, other), each
   kernel less the runtime's per-call overhead, which the whole model pays once;
4. a correction learned on a measured calibration set (whole models timed on the backend) maps the
   sums to the model's latency: ``latency = c + sum_k a_k * class_ms_k + b * kernels + d * output_mb
   + e * concats + w * weight_mb``, fitted to minimise the *relative* error (what latency limits care
   about), c and a_k non-negative, b, d, e and w of either sign. It absorbs what standalone kernels do not
   show: caches warm across kernels, a runtime's per-kernel cost, memory traffic between kernels, weights
   that stay in the core's cache while one kernel is timed alone but not while a model runs, and what a
   kernel pays only standalone. Before fitting, the prediction is the plain sum.

``fit`` also measures the predictor's own error: the relative errors of k-fold cross-validation on the
calibration set, summarised as ``error_band`` (their 90th percentile), which ``latency.screen`` uses to
decide which candidates are measured rather than judged on a prediction.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from scipy.optimize import lsq_linear

from ecgsearch.latency.kernel_table import KernelTable, KernelTiming
from ecgsearch.latency.kernels import KERNEL_CLASSES, FusionRules, Kernel, fusion_rules, model_kernels
from ecgsearch.latency.options import BackendOptions
from ecgsearch.latency.predictor import TOLERANCE, error_band, relative_errors

MIN_CALIBRATION = 4  # fewer measured models than this: the plain sum, uncorrected
CV_FOLDS = 5
STATS = ("p50_ms", "min_ms")  # the kernel statistic summed: the median, or the least disturbed call


@dataclass(frozen=True)
class KernelSum:
    """One model's kernels as measured on one backend: what the correction learns from (milliseconds)."""

    kernels: int
    overhead_ms: float  # the runtime's per-call overhead, paid once by the whole model
    class_ms: tuple[float, ...]  # per ``KERNEL_CLASSES``: the kernels' medians less the overhead (>= 0 each)
    output_mb: float  # megabytes the kernels write (and the next ones read)
    concats: int = 0  # Concat ops: alone a kernel copies the branches it joins, a model may write them in place
    weight_mb: float = 0.0  # megabytes of weights the kernels read: cached when a kernel repeats alone, not in a model

    @property
    def total_ms(self) -> float:
        """The plain fusion-aware sum: every kernel's own time, and the call overhead once."""
        return self.overhead_ms + sum(self.class_ms)

    def design_row(self) -> list[float]:
        """The correction's inputs: a constant, the class sums, the kernel count, the megabytes written, the
        Concat ops, the megabytes of weights."""
        return [1.0, *self.class_ms, float(self.kernels), self.output_mb, float(self.concats), self.weight_mb]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def kernel_sum(kernels: Sequence[Kernel], timings: Sequence[KernelTiming], overhead_ms: float,
               stat: str = "p50_ms") -> KernelSum:
    """The sums of one model's kernels (``timings[i]`` is the table's timing of ``kernels[i]``, ``stat``
    the statistic summed: ``p50_ms`` or ``min_ms``, and ``overhead_ms`` the same statistic of the overhead)."""
    by_class = dict.fromkeys(KERNEL_CLASSES, 0.0)
    for kernel, timing in zip(kernels, timings, strict=True):
        by_class[kernel.kind] += max(0.0, getattr(timing, stat) - overhead_ms)
    return KernelSum(kernels=len(kernels), overhead_ms=overhead_ms, class_ms=tuple(by_class.values()),
                     output_mb=sum(k.output_bytes for k in kernels) / 1e6,
                     concats=sum(op == "Concat" for k in kernels for op in k.ops),
                     weight_mb=sum(k.weight_bytes for k in kernels) / 1e6)


SIGNED = 4  # the last design columns (kernels, megabytes written, Concat ops, megabytes of weights): costs that
# differ between a kernel timed alone and the same kernel in a model


def fit_correction(sums: Sequence[KernelSum], measured_ms: Sequence[float]) -> np.ndarray:
    """Coefficients of the correction with the least squared *relative* error: the constant and the class
    sums non-negative, the per-kernel, per-megabyte, per-Concat and per-weight-megabyte terms of either sign (a
    runtime's cost per kernel in a model, what a kernel pays only standalone, such as converting its inputs'
    layout, or what a model pays and a kernel repeated alone does not, such as reading its weights from
    beyond the core's cache).

    Each row is divided by its measured latency, so a 1 ms model weighs as much as a 100 ms one.
    """
    design = np.array([s.design_row() for s in sums], dtype=float)
    target = np.asarray(measured_ms, dtype=float)
    low = np.zeros(design.shape[1])
    low[-SIGNED:] = -np.inf
    return lsq_linear(design / target[:, None], np.ones(len(target)), bounds=(low, np.inf)).x


def corrected(sums: Sequence[KernelSum], coefficients: np.ndarray) -> np.ndarray:
    """The correction applied to sums, never below the call overhead (a signed term can overshoot)."""
    return np.maximum(np.array([s.design_row() for s in sums]) @ coefficients,
                      [s.overhead_ms for s in sums])


def cross_validated_errors(sums: Sequence[KernelSum], measured_ms: Sequence[float], folds: int = CV_FOLDS,
                           seed: int = 0) -> np.ndarray:
    """Relative error of each calibration model, predicted by a correction fitted without it (k-fold)."""
    measured = np.asarray(measured_ms, dtype=float)
    folds = min(folds, len(measured))
    order = np.random.default_rng(seed).permutation(len(measured))
    errors = np.empty(len(measured))
    for k in range(folds):
        held = order[k::folds]
        kept = np.setdiff1d(order, held)
        predicted = corrected([sums[i] for i in held], fit_correction([sums[i] for i in kept], measured[kept]))
        errors[held] = relative_errors(predicted, measured[held])
    return errors


class KernelPredictor:
    """``kernel_sum(model, example)`` measures (once) and sums a model's kernels; ``fit`` learns the
    correction on measured models; ``predict(sums) -> milliseconds``; ``error_band`` is its measured error.

    stat: the kernels' statistic summed, ``p50_ms`` (default: the median, as whole models are measured)
    or ``min_ms`` (the least disturbed call, to predict a whole model's ``min_ms`` on a busy machine).
    """

    def __init__(self, backend: str, options: BackendOptions | None = None, batch_size: int = 1,
                 cache_dir: Path | None = None, table: KernelTable | None = None,
                 rules: FusionRules | None = None, seed: int = 0, stat: str = "p50_ms") -> None:
        if stat not in STATS:
            raise ValueError(f"stat must be one of {', '.join(STATS)}, got {stat!r}")
        self.backend, self.stat = backend, stat
        self.options, self.batch_size, self.cache_dir = options or BackendOptions(), batch_size, cache_dir
        self._table = table
        self.rules = rules or fusion_rules(backend)  # how the backend fuses ops into kernels
        self.seed = seed
        self.coefficients: np.ndarray | None = None
        self.errors = np.array([])  # cross-validated relative errors on the calibration set
        self.error_band = math.inf  # their 90th percentile (inf until fitted on enough models)

    @property
    def table(self) -> KernelTable:
        """The backend's kernel table, opened on first use (fitting and predicting from sums need none)."""
        if self._table is None:
            self._table = KernelTable(self.backend, self.options, self.batch_size, self.cache_dir)
        return self._table

    def kernel_sum(self, model: torch.nn.Module, example: torch.Tensor) -> KernelSum:
        """The model's kernels for inputs shaped like ``example``; kernels not in the table are measured."""
        kernels = model_kernels(model, example, self.rules)
        return kernel_sum(kernels, self.table.times(kernels), getattr(self.table.overhead(), self.stat), self.stat)

    def fit(self, sums: Sequence[KernelSum], measured_ms: Sequence[float]) -> KernelPredictor:
        """Learn the correction on a calibration set (and measure its error by cross-validation)."""
        measured = np.asarray(measured_ms, dtype=float)
        if len(sums) != len(measured) or len(measured) < MIN_CALIBRATION:
            raise ValueError(f"the kernel-level predictor of {self.backend} needs >= {MIN_CALIBRATION} measured "
                             f"models with their kernel sums, got {len(measured)}")
        if not np.all(np.isfinite(measured) & (measured > 0)):
            raise ValueError("measured latencies must be finite and positive")
        self.coefficients = fit_correction(sums, measured)
        self.errors = cross_validated_errors(sums, measured, seed=self.seed)
        self.error_band = error_band(self.errors)
        return self

    def predict(self, sums: Sequence[KernelSum]) -> np.ndarray:
        """Milliseconds per call: the corrected sums (the plain sums before ``fit``)."""
        if not sums:
            return np.array([])
        if self.coefficients is None:
            return np.array([s.total_ms for s in sums])
        return corrected(sums, self.coefficients)

    def within(self) -> float:
        """The cross-validated fraction of calibration models predicted within +-10% (nan before fit)."""
        return float(np.mean(self.errors <= TOLERANCE)) if len(self.errors) else math.nan

"""Latency measurement: the backend contract, the adaptive measuring loop, the isolated measuring
process, the numerics check, latency in the search, and the latency predictor (docs/latency.md).

Modules, one job each: ``options`` (vocabulary, option records), ``stats`` (``LatencyStats`` and the
measuring loop), ``backend`` (the plugin contract), ``request``/``worker``/``runner`` (measuring in a
separate process), ``dataset_checks`` (INT8 calibration and accuracy), ``plan`` (what a search measures),
``predictor`` (latency from cost features), ``kernels``/``kernel_table``/``kernel_predictor`` (latency from
the model's fused kernels, each measured once per backend), ``screen`` (``max_latency_ms`` screening with a
predictor's measured error), ``bench`` (measuring the trials of a finished run). May
import analysis (Pareto fronts), search (the predictor's surrogate), train (models from configurations),
the run folder, space, data and the contracts; no runtime is imported until a backend is created.
Read ``backend.py`` first.
"""

from ecgsearch.latency.options import BackendOptions, MeasureSettings
from ecgsearch.latency.stats import LatencyStats, measure_latency

__all__ = ["BackendOptions", "LatencyStats", "MeasureSettings", "measure_latency"]

"""The kernel table: each kernel's latency on a backend, measured once and cached on disk.

A ``KernelRunner`` compiles one kernel's ONNX model with exactly the session settings of its backend
plugin (threads, precision, hint, optimisation level) and returns a ``time_once`` for the shared
measuring loop (``latency.stats.measure_latency``). Runners exist for ``onnxruntime-cpu`` and
``openvino-cpu``; ``kernel_runner`` says so in one sentence for any other backend.

``KernelTable`` is the cache: one JSON file per backend, precision, threads, hint, optimisation level,
batch size and runtime version, under ``$ECGSEARCH_CACHE/kernels`` (default ``~/.cache/ecgsearch/
kernels``), holding ``signature -> timings`` (the signature carries the kernel's ops and input shapes,
``latency.kernels``). ``times(kernels)`` measures only the kernels not in the file, then writes it
(merged with what another process wrote meanwhile, replaced atomically), so a second build of the same
models measures nothing. Each table also records the runtime's per-call overhead (a one-``Relu`` model),
which every standalone kernel pays once and the whole model pays once in all.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from ecgsearch.data.cache import default_cache_root
from ecgsearch.errors import UserError
from ecgsearch.latency.kernels import Kernel
from ecgsearch.latency.options import BackendOptions, MeasureSettings
from ecgsearch.latency.stats import measure_latency

TABLE_FORMAT = 1
OVERHEAD = "__call_overhead__"  # the table entry of the per-call overhead (a one-op model)
KERNEL_SETTINGS = MeasureSettings(time_budget_s=0.1, warmup_s=0.02, warmup_runs=3, min_repeats=10,
                                  rel_tolerance=0.02)
ROUNDS = 3  # passes over the missing kernels; a kernel's median is the median of its passes' medians
ORT_LEVELS = {"all": "ORT_ENABLE_ALL", "extended": "ORT_ENABLE_EXTENDED", "basic": "ORT_ENABLE_BASIC",
              "disabled": "ORT_DISABLE_ALL"}
OV_PRECISIONS = {"fp32": "f32", "fp16": "f16", "bf16": "bf16"}


def kernel_cache_dir() -> Path:
    """``$ECGSEARCH_CACHE/kernels`` (default ``~/.cache/ecgsearch/kernels``)."""
    return default_cache_root() / "kernels"


def random_feeds(inputs: Iterable[tuple[str, tuple[int, ...], Any]]) -> dict[str, np.ndarray]:
    """Inputs for a kernel: standard normal floats, zeros for integer tensors (indices, shapes)."""
    rng = np.random.default_rng(0)
    return {name: rng.standard_normal(shape).astype(dtype) if np.dtype(dtype).kind == "f"
            else np.zeros(shape, dtype=dtype) for name, shape, dtype in inputs}


class KernelRunner(ABC):
    """Compiles one kernel (ONNX bytes) as the backend plugin would and returns ``time_once() -> seconds``."""

    backend: str = ""
    precisions: tuple[str, ...] = ("fp32",)

    def __init__(self, options: BackendOptions) -> None:
        if options.precision not in self.precisions:
            raise UserError(f"the kernel table of {self.backend} cannot measure precision '{options.precision}' "
                            f"(it measures {', '.join(self.precisions)}); predict at one of those or measure the "
                            "model itself.")
        self.options = options

    @abstractmethod
    def version(self) -> str:
        """The runtime's version: a new runtime gets a new table."""

    @abstractmethod
    def load(self, model: bytes) -> Callable[[], float]:
        """``time_once`` for the compiled kernel on fixed random inputs."""


class OnnxRuntimeKernels(KernelRunner):
    """ONNX Runtime's CPU execution provider, sequential, the backend's threads and optimisation level."""

    backend = "onnxruntime-cpu"

    def version(self) -> str:
        import onnxruntime  # deferred: an optional runtime

        return f"onnxruntime-{onnxruntime.__version__}"

    def load(self, model: bytes) -> Callable[[], float]:
        import onnxruntime  # deferred: an optional runtime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = getattr(onnxruntime.GraphOptimizationLevel,
                                                   ORT_LEVELS[self.options.optimization])
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        if self.options.threads:
            options.intra_op_num_threads = self.options.threads
            options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        types = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
                 "tensor(bool)": np.bool_, "tensor(double)": np.float64}
        feeds = random_feeds((i.name, tuple(i.shape), types.get(i.type, np.float32)) for i in session.get_inputs())

        def time_once() -> float:
            started = time.perf_counter()
            session.run(None, feeds)
            return time.perf_counter() - started

        return time_once


class OpenVinoKernels(KernelRunner):
    """OpenVINO on the CPU: the backend's performance hint, inference precision and threads."""

    backend = "openvino-cpu"
    precisions = tuple(OV_PRECISIONS)

    def version(self) -> str:
        import openvino  # deferred: an optional runtime

        # "-inner": kernels timed on inputs bound once, less their boundary layout conversions (tables timed
        # with a copy per call and every conversion are not reused)
        return f"openvino-{openvino.get_version().split('-')[0]}-inner"

    def load(self, model: bytes) -> Callable[[], float]:
        """A kernel's time as it runs inside a model: inputs bound once and outputs left in the request
        (``infer(feeds)`` would copy every input and output of every kernel, 60-90 us per kernel here), and
        less the ``Reorder`` nodes OpenVINO adds at the kernel's own inputs and outputs (plain to blocked
        layout and back, which a whole model does only at its inputs and outputs: 2.7 of 7.4 ms of one
        RegNet's kernels, 0.3 of 5.4 ms of the model; docs/benchmarks.md). Those are read from the runtime's
        per-node profile of the same call."""
        import openvino  # deferred: an optional runtime

        core = openvino.Core()
        with tempfile.TemporaryDirectory(prefix="ecgsearch-kernel-") as tmp:
            path = Path(tmp) / "kernel.onnx"
            path.write_bytes(model)
            ov_model = core.read_model(str(path))
        config: dict[str, Any] = {"PERFORMANCE_HINT": self.options.hint.upper(), "PERF_COUNT": True,
                                  "INFERENCE_PRECISION_HINT": OV_PRECISIONS[self.options.precision]}
        if self.options.threads:
            config["INFERENCE_NUM_THREADS"] = self.options.threads
        compiled = core.compile_model(ov_model, "CPU", config)
        boundary = boundary_reorders(compiled.get_runtime_model())
        request = compiled.create_infer_request()
        feeds = random_feeds((str(k), tuple(int(d) for d in port.get_shape()), port.get_element_type().to_dtype())
                             for k, port in enumerate(compiled.inputs))
        for k, values in feeds.items():
            request.set_input_tensor(int(k), openvino.Tensor(values, shared_memory=True))

        def time_once() -> float:
            started = time.perf_counter()
            request.infer()
            elapsed = time.perf_counter() - started
            return elapsed - sum(node.real_time.total_seconds() for node in request.profiling_info
                                 if node.node_name in boundary)

        time_once.inputs = feeds  # type: ignore[attr-defined]  # the bound arrays live as long as the timer
        return time_once


def boundary_reorders(runtime_model: Any) -> set[str]:
    """The names of an OpenVINO execution graph's ``Reorder`` nodes that read a model input or feed an output."""
    def layer(node: Any) -> str:
        info = node.get_rt_info()
        return str(info["layerType"].astype(str)) if "layerType" in info else node.get_type_name()

    names = set()
    for op in runtime_model.get_ordered_ops():
        if layer(op) != "Reorder":
            continue
        sources = {layer(i.get_source_output().get_node()) for i in op.inputs()}
        targets = {layer(t.get_node()) for o in op.outputs() for t in o.get_target_inputs()}
        if "Input" in sources or "Output" in targets:
            names.add(op.get_friendly_name())
    return names


KERNEL_RUNNERS: dict[str, type[KernelRunner]] = {"onnxruntime-cpu": OnnxRuntimeKernels,
                                                 "openvino-cpu": OpenVinoKernels}
RUNTIME_PACKAGES = {"onnxruntime-cpu": "onnxruntime", "openvino-cpu": "openvino"}


def kernel_runner(backend: str, options: BackendOptions) -> KernelRunner:
    """The runner of ``backend``; one sentence (``UserError``) for a backend without one or not installed."""
    if backend not in KERNEL_RUNNERS:
        raise UserError(f"the kernel-level latency predictor has no kernel runner for backend '{backend}' "
                        f"(it has {', '.join(KERNEL_RUNNERS)}); use one of those, or the whole-model predictor "
                        "(LatencyPredictor) for this backend.")
    package = RUNTIME_PACKAGES[backend]
    try:
        __import__(package)
    except ImportError:
        raise UserError(f"the kernel table of {backend} needs {package}, which is not installed here; "
                        f"pip install {package} onnx (or the latency extra).") from None
    return KERNEL_RUNNERS[backend](options)


@dataclass(frozen=True)
class KernelTiming:
    """One kernel's standalone timings (milliseconds per call, the call overhead included)."""

    p50_ms: float
    min_ms: float
    repeats: int
    label: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"p50_ms": self.p50_ms, "min_ms": self.min_ms, "repeats": self.repeats, "label": self.label}


def measure_kernel(runner: KernelRunner, model: bytes, label: str, settings: MeasureSettings) -> KernelTiming:
    stats = measure_latency(runner.load(model), settings)
    return KernelTiming(stats.p50_ms, stats.min_ms, stats.repeats, label)


def combine_rounds(rounds: list[KernelTiming]) -> KernelTiming:
    """One kernel's passes as one timing: the median of their medians, the least of their fastest calls."""
    return KernelTiming(float(np.median([t.p50_ms for t in rounds])), min(t.min_ms for t in rounds),
                        sum(t.repeats for t in rounds), rounds[0].label)


def overhead_model() -> bytes:
    """A one-``Relu`` model on four numbers: what a call costs when the kernel costs nothing."""
    from onnx import TensorProto, helper  # deferred: an optional dependency

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "overhead",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


@dataclass
class BuildLog:
    """What building (or extending) a table cost: kernels measured and seconds spent measuring them."""

    measured: int = 0
    seconds: float = 0.0
    reused: int = 0
    labels: list[str] = field(default_factory=list)


class KernelTable:
    """``signature -> KernelTiming`` of one backend configuration, cached in ``path`` (see the module)."""

    def __init__(self, backend: str, options: BackendOptions, batch_size: int = 1, cache_dir: Path | None = None,
                 settings: MeasureSettings = KERNEL_SETTINGS, runner: KernelRunner | None = None,
                 rounds: int = ROUNDS) -> None:
        self.backend, self.options, self.batch_size, self.settings = backend, options, int(batch_size), settings
        self.rounds = max(1, int(rounds))
        self.runner = runner or kernel_runner(backend, options)
        self.path = Path(cache_dir or kernel_cache_dir()) / self.file_name()
        self.entries: dict[str, KernelTiming] = read_table(self.path)
        self.log = BuildLog()

    def file_name(self) -> str:
        """The cache key: backend, runtime version, precision, threads, hint, optimisation, batch size."""
        o = self.options
        parts = (self.backend, self.runner.version(), o.precision, f"t{o.threads or 0}", o.hint, o.optimization,
                 f"b{self.batch_size}")
        return "_".join(p.replace("/", "-").replace(" ", "") for p in parts) + ".json"

    def overhead(self) -> KernelTiming:
        """The runtime's per-call overhead (measured once per table, with 3x a kernel's budget)."""
        if OVERHEAD not in self.entries:
            settings = MeasureSettings(**{**self.settings.as_dict(), "time_budget_s": 3 * self.settings.time_budget_s})
            self._measure({OVERHEAD: (overhead_model(), "overhead")}, settings)
        return self.entries[OVERHEAD]

    @property
    def overhead_ms(self) -> float:
        """The median of the per-call overhead."""
        return self.overhead().p50_ms

    def times(self, kernels: Iterable[Kernel]) -> list[KernelTiming]:
        """Each kernel's timing; the ones not in the table are measured first (each once) and saved."""
        kernels = list(kernels)
        missing = {k.signature: (k.onnx, k.label) for k in kernels if k.signature not in self.entries}
        self.log.reused += len(kernels) - len(missing)
        if missing:
            self._measure(missing, self.settings)
        return [self.entries[k.signature] for k in kernels]

    def _measure(self, missing: Mapping[str, tuple[bytes, str]], settings: MeasureSettings) -> None:
        """Each missing kernel measured in ``rounds`` passes over all of them: a machine whose speed drifts
        by +-10% over minutes (a shared host) shifts one pass, not the median of passes spread in time."""
        started = time.perf_counter()
        passes: dict[str, list[KernelTiming]] = {signature: [] for signature in missing}
        for _ in range(self.rounds):
            for signature, (model, label) in missing.items():
                passes[signature].append(measure_kernel(self.runner, model, label, settings))
        for signature, (_, label) in missing.items():
            self.entries[signature] = combine_rounds(passes[signature])
            self.log.labels.append(label)
        self.log.measured += len(missing)
        self.log.seconds += time.perf_counter() - started
        self.save()

    def save(self) -> None:
        """Merge with the file as it is now (another process may have added kernels) and replace it atomically."""
        self.entries = {**read_table(self.path), **self.entries}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"format": TABLE_FORMAT, "backend": self.backend, "runtime": self.runner.version(),
                   "options": self.options.as_kwargs(), "batch_size": self.batch_size,
                   "kernels": {s: t.as_json() for s, t in sorted(self.entries.items())}}
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".kernels-", suffix=".json")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(payload, out, indent=0)
        os.replace(temporary, self.path)


def read_table(path: Path) -> dict[str, KernelTiming]:
    """The timings of a kernel table file ({} when there is none); one sentence when it cannot be read."""
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != TABLE_FORMAT:
            raise ValueError(f"format {raw.get('format')!r}, expected {TABLE_FORMAT}")
        return {s: KernelTiming(float(t["p50_ms"]), float(t["min_ms"]), int(t["repeats"]), str(t.get("label", "")))
                for s, t in raw["kernels"].items()}
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise UserError(f"{path}: the kernel table cannot be read ({type(error).__name__}: {error}); delete the "
                        "file and its kernels are measured again.") from None

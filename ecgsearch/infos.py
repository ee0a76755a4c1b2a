"""The frozen info dataclasses that plugins return from the collection hooks.

Every kind of plugin (architecture, optimizer, dataset, task, metric, latency backend, surrogate)
describes itself with one of these records. The record carries a *factory* that may be a callable or a
``"module:attr"`` string: the string form lets a plugin with heavy or optional dependencies be listed
(and explained when unusable) without importing them.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping


@dataclass(frozen=True)
class PluginInfo:
    """What every registered item has in common.

    name: unique within its kind; the name used in space files.
    description: one line for ``ecgsearch plugins``.
    factory: a callable, or ``"module:attr"`` imported on first use.
    default_space: the item's default sub-space, in space-file form (``{"width": {"choice": [16, 32]}}``);
        ``{default: true}`` in a space file starts from it.
    requires: import names needed to use the item (checked without importing them).
    install_hint: what fixes a missing requirement, e.g. ``"pip install onnxruntime"``.
    plugin: the registering plugin's name, filled in by the registry.
    """

    kind: ClassVar[str] = "item"

    name: str
    description: str
    factory: Callable[..., Any] | str
    default_space: Mapping[str, Any] = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    install_hint: str = ""
    plugin: str = ""

    def available(self) -> tuple[bool, str]:
        """Return ``(usable, reason)``; the reason says what is missing and how to install it."""
        for module in self.requires:
            if importlib.util.find_spec(module.split(".")[0]) is None:
                hint = self.install_hint or f"pip install {module.split('.')[0]}"
                return False, f"needs the Python package '{module}' ({hint})"
        return True, ""

    def load(self) -> Callable[..., Any]:
        """Resolve the factory, importing a ``"module:attr"`` string on first use."""
        return resolve(self.factory)

    def create(self, *args: Any, **kwargs: Any) -> Any:
        """Call the factory."""
        return self.load()(*args, **kwargs)


@dataclass(frozen=True)
class ArchitectureInfo(PluginInfo):
    """A model family: ``factory(in_leads, num_samples, num_outputs, **hparams) -> torch.nn.Module``.

    The module takes ``(batch, leads, samples)`` float tensors and returns ``(batch, num_outputs)``.
    family: the family a named variant belongs to (``resnet1d`` for ``resnet1d_tiny``).
    """

    kind: ClassVar[str] = "architecture"
    family: str = ""


@dataclass(frozen=True)
class OptimizerInfo(PluginInfo):
    """A training optimizer: ``factory(parameters, **hparams) -> torch.optim.Optimizer``.

    Capability flags say which hyperparameters make sense for it.
    """

    kind: ClassVar[str] = "optimizer"
    has_momentum: bool = False
    decoupled_weight_decay: bool = False


@dataclass(frozen=True)
class DatasetInfo(PluginInfo):
    """A data source: ``factory(**data_params) -> ecgsearch.EcgSource``.

    tasks: the task kinds its labels support (``multilabel``, ``regression``, ...).
    evaluator: optional, a callable or ``"module:attr"``: ``evaluator(labels_dir, outputs_dir)`` scores a
        folder of model outputs against this dataset's labels the dataset's official way (``ecgsearch
        evaluate --dataset NAME``); it returns a mapping of numbers (printed as JSON with ``--json``)
        whose ``str()`` is the text report. A bad folder or file is a ``UserError``.
    """

    kind: ClassVar[str] = "dataset"
    tasks: tuple[str, ...] = ("multilabel",)
    evaluator: Callable[..., Any] | str | None = None


@dataclass(frozen=True)
class TaskInfo(PluginInfo):
    """A learning task: ``factory(num_outputs, **params) -> ecgsearch.Task`` (head, loss, scores).

    default_metric: the metric a space file gets when it names none.
    """

    kind: ClassVar[str] = "task"
    default_metric: str = ""


@dataclass(frozen=True)
class MetricInfo(PluginInfo):
    """A metric: ``factory() -> callable(y_true, y_score, label_names) -> float``.

    mode: ``"max"`` when larger is better, ``"min"`` otherwise; the search direction comes from here.
    tasks: the task kinds it applies to.
    thresholded: the metric reads binary outputs: its factory takes ``thresholds`` (one per class),
        which the trial fits on the validation split only (``ecgsearch.train.thresholds``) and reuses on test.
    per_target: the trial also scores each target column alone, as ``val.<name>.<target>`` (e.g.
        ``val.mae.hr_bpm``), so a regression's error is visible per quantity in its own units.
    """

    kind: ClassVar[str] = "metric"
    mode: str = "max"
    tasks: tuple[str, ...] = ("multilabel",)
    thresholded: bool = False
    per_target: bool = False


@dataclass(frozen=True)
class ScheduleInfo(PluginInfo):
    """A learning-rate schedule: ``factory(optimizer, run, **hparams) -> ecgsearch.Schedule``.

    ``run`` is an ``ecgsearch.ScheduleRun`` (epochs, steps per epoch, the metric's mode) that
    the trial supplies; the space file only gives ``hparams``.
    """

    kind: ClassVar[str] = "schedule"


@dataclass(frozen=True)
class BackendInfo(PluginInfo):
    """A latency backend: ``factory(**options) -> backend`` with ``available()``, ``prepare``, ``measure``.

    device: the hardware it measures (``cpu``, ``cuda``, ``mps``, ``npu``, ...).

    ``available()`` checks the packages of ``requires`` only; whether the device and runtime are there
    too is ``ecgsearch.latency.backend.backend_status(info)`` (it creates the backend).
    """

    kind: ClassVar[str] = "backend"
    device: str = "cpu"


@dataclass(frozen=True)
class SurrogateInfo(PluginInfo):
    """A performance model: ``factory(seed, **params) -> regressor`` with ``fit``/``predict``.

    has_uncertainty: whether it can also return a predictive standard deviation.
    """

    kind: ClassVar[str] = "surrogate"
    has_uncertainty: bool = False


def resolve(ref: Callable[..., Any] | str) -> Callable[..., Any]:
    """A callable as given, or the object a ``"module:attr"`` string names (imported now)."""
    if callable(ref):
        return ref
    module_name, _, attr = str(ref).partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


INFO_TYPES: tuple[type[PluginInfo], ...] = (
    ArchitectureInfo,
    OptimizerInfo,
    DatasetInfo,
    TaskInfo,
    MetricInfo,
    BackendInfo,
    SurrogateInfo,
    ScheduleInfo,
)

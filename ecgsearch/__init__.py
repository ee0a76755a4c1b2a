"""ecgsearch: a plugin-based AutoML search engine for ECG neural networks.

The public face: what a plugin author or a notebook user imports, ``from ecgsearch import ...``.

- Contracts, always loaded: ``hookimpl``, the info records a plugin registers (``ArchitectureInfo``,
  ``DatasetInfo``, ...), the declarations they carry (``ParamSpec`` and ``int_param``, ``float_param``, ...;
  a dataset's ``LabelSet``), and the errors (``UserError``, ``SpaceError``, ``PluginError``).
- For plugin authors, loaded on first use (so ``import ecgsearch`` stays light): the dataset contract
  (``EcgSource``, ``EcgArrays``, ``Progress``, ``SignalWriter``, ``Preprocessing``, ``SplitShares`` and
  the readers' helpers), the architecture helpers (``Costs``, ``Tally``, ``AnalyticFactory``, ``Span``,
  ``trace_span``, ``freeze_stages``; ``Estimator`` for a features-and-fitted-model kind), the task, schedule and metric contracts (``Task``, ``Schedule``,
  ``ScheduleRun``, ``binarize``; for a task that sees the inputs ``Batch``, ``Augmentation``,
  ``AugmentationParams``, ``random_crop``) and the latency backend base class (``LatencyBackend``).
- For notebooks, loaded on first use: the Python API (docs/python-api.md): ``Space``, ``run``, ``load_run``,
  ``Run``, ``EcgModel``; and the stages' entry points ``load_space``, ``parse_space``, ``run_search``, ``open_run``,
  ``read_results``, ``get_registries``; ``export_trial`` (a run's trial as an ONNX model, for trackers).

Built-in plugins import only this module and the contract modules (``hookspecs``, ``infos``, ``errors``),
exactly as a third-party plugin would (``tests/test_layout.py`` checks it). The package's stages live in
its subpackages; docs/design.md draws the data flow through them.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings
from typing import TYPE_CHECKING, Any

from ecgsearch.errors import PluginError, SpaceError, UserError
from ecgsearch.hookspecs import hookimpl
from ecgsearch.infos import (
    ArchitectureInfo,
    BackendInfo,
    DatasetInfo,
    LabelSet,
    MetricInfo,
    OptimizerInfo,
    ParamSpec,
    ScheduleInfo,
    SchedulerInfo,
    SearcherInfo,
    SurrogateInfo,
    TaskInfo,
    TrackerInfo,
    any_param,
    bool_param,
    either,
    float_param,
    int_param,
    list_param,
    str_param,
)
from ecgsearch.lazy import lazy_names

__version__ = "0.1.0"

# name -> the module that defines it, imported on first use (PEP 562)
_LAZY: dict[str, str] = {
    # datasets
    **dict.fromkeys(("EcgArrays", "EcgSource", "Progress", "SPLITS"), "ecgsearch.data.source"),
    **dict.fromkeys(("Preprocessing", "STANDARD_LEADS", "LEAD_SETS", "standard_leads", "resample", "fix_length"),
                    "ecgsearch.data.preprocess"),
    **dict.fromkeys(("SplitShares", "check_int", "check_number", "is_int", "is_number"), "ecgsearch.data.params"),
    "SignalWriter": "ecgsearch.data.signal_writer",
    # architectures
    **dict.fromkeys(("AnalyticFactory", "Costs", "Tally", "Span"), "ecgsearch.train.analytic"),  # no torch
    "trace_span": "ecgsearch.train.receptive_field",
    **dict.fromkeys(("freeze_stages", "check_model"), "ecgsearch.train.models"),
    "Estimator": "ecgsearch.train.estimators",
    # tasks, schedules, metrics
    **dict.fromkeys(("Task", "Batch"), "ecgsearch.train.tasks"),
    **dict.fromkeys(("Augmentation", "random_crop"), "ecgsearch.data.augment"),
    "AugmentationParams": "ecgsearch.data.augment_params",  # no torch
    **dict.fromkeys(("Schedule", "ScheduleRun"), "ecgsearch.train.schedules"),
    "binarize": "ecgsearch.train.thresholds",
    # searchers and schedulers
    **dict.fromkeys(("SearchProblem", "SchedulerRun", "RandomSearcher", "SurrogateSearcher", "GridSearcher",
                     "ConstrainedSearcher", "WarmPoint", "LearningCurveRule", "predict_final"), "ecgsearch.search"),
    # latency backends
    **dict.fromkeys(("LatencyBackend", "BackendUnavailable"), "ecgsearch.latency.backend"),
    # notebooks: the Python API (docs/python-api.md), then the stages' own entry points
    **dict.fromkeys(("Space", "Run", "run", "load_run"), "ecgsearch.api"),
    "EcgModel": "ecgsearch.api.model",
    **dict.fromkeys(("load_space", "parse_space"), "ecgsearch.space"),
    "run_search": "ecgsearch.engine",
    **dict.fromkeys(("open_run", "read_results"), "ecgsearch.results"),
    "get_registries": "ecgsearch.plugins",
    # trackers: the best trial as a deployable model
    "export_trial": "ecgsearch.deploy.export",
}

__all__ = [
    "ArchitectureInfo", "BackendInfo", "DatasetInfo", "LabelSet", "MetricInfo", "OptimizerInfo", "PluginError",
    "ScheduleInfo", "SchedulerInfo", "SearcherInfo", "SpaceError", "SurrogateInfo", "TaskInfo", "TrackerInfo", "UserError", "hookimpl",
    "__version__", "ParamSpec", "any_param", "bool_param", "either", "float_param", "int_param", "list_param",
    "str_param", *sorted(_LAZY),
]


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())


if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from ecgsearch.api import Run, Space, load_run, run
    from ecgsearch.api.model import EcgModel
    from ecgsearch.data.augment import Augmentation, random_crop
    from ecgsearch.data.augment_params import AugmentationParams
    from ecgsearch.data.params import (
        SplitShares,
        check_int,
        check_number,
        is_int,
        is_number,
    )
    from ecgsearch.data.preprocess import (
        LEAD_SETS,
        STANDARD_LEADS,
        Preprocessing,
        fix_length,
        resample,
        standard_leads,
    )
    from ecgsearch.data.signal_writer import SignalWriter
    from ecgsearch.data.source import SPLITS, EcgArrays, EcgSource, Progress
    from ecgsearch.deploy.export import export_trial
    from ecgsearch.engine import run_search
    from ecgsearch.latency.backend import BackendUnavailable, LatencyBackend
    from ecgsearch.plugins import get_registries
    from ecgsearch.results import open_run, read_results
    from ecgsearch.search import (
        ConstrainedSearcher,
        GridSearcher,
        LearningCurveRule,
        RandomSearcher,
        SchedulerRun,
        SearchProblem,
        SurrogateSearcher,
        WarmPoint,
        predict_final,
    )
    from ecgsearch.space import load_space, parse_space
    from ecgsearch.train.analytic import AnalyticFactory, Costs, Span, Tally
    from ecgsearch.train.estimators import Estimator
    from ecgsearch.train.models import check_model, freeze_stages
    from ecgsearch.train.receptive_field import trace_span
    from ecgsearch.train.schedules import Schedule, ScheduleRun
    from ecgsearch.train.tasks import Batch, Task
    from ecgsearch.train.thresholds import binarize


# --- old import paths (before the stages got their subpackages): importable for one more release ------

MOVED: dict[str, tuple[str, ...]] = {
    "ecgsearch.accel": ("ecgsearch.train.accel",),
    "ecgsearch.analysis_cli": ("ecgsearch.cli.analysis",),
    "ecgsearch.analysis.features": ("ecgsearch.search.features",),
    "ecgsearch.analysis.model": ("ecgsearch.search.surrogate_model",),
    "ecgsearch.augment": ("ecgsearch.data.augment",),
    "ecgsearch.bench_cli": ("ecgsearch.cli.latency",),
    "ecgsearch.cache": ("ecgsearch.data.cache",),
    "ecgsearch.checkpoints": ("ecgsearch.train.checkpoints", "ecgsearch.results.folder"),
    "ecgsearch.costs": ("ecgsearch.train.costs",),
    "ecgsearch.data_inspect": ("ecgsearch.data.inspect", "ecgsearch.cli.data"),
    "ecgsearch.display": ("ecgsearch.cli.display",),
    "ecgsearch.faults": ("ecgsearch.engine.faults",),
    "ecgsearch.jobs.cli": ("ecgsearch.cli.jobs",),
    "ecgsearch.jobs.entry": ("ecgsearch.cli.job_entry",),
    "ecgsearch.latency.deploy": ("ecgsearch.deploy.export",),
    "ecgsearch.models": ("ecgsearch.train.models",),
    "ecgsearch.precision": ("ecgsearch.train.precision",),
    "ecgsearch.predict": ("ecgsearch.deploy.predict", "ecgsearch.deploy.model"),
    "ecgsearch.prepare": ("ecgsearch.data.prepare",),
    "ecgsearch.preprocess": ("ecgsearch.data.preprocess",),
    "ecgsearch.prune_cli": ("ecgsearch.analysis.prune", "ecgsearch.cli.analysis"),
    "ecgsearch.receptive_field": ("ecgsearch.train.receptive_field",),
    "ecgsearch.registry": ("ecgsearch.plugins",),
    "ecgsearch.report.rundir": ("ecgsearch.analysis.run",),
    "ecgsearch.schedules": ("ecgsearch.train.schedules",),
    "ecgsearch.signal_writer": ("ecgsearch.data.signal_writer",),
    "ecgsearch.spectral": ("ecgsearch.data.spectral",),
    "ecgsearch.storage": ("ecgsearch.engine.storage",),
    "ecgsearch.tasks": ("ecgsearch.train.tasks",),
    "ecgsearch.thresholds": ("ecgsearch.train.thresholds",),
    "ecgsearch.transfer": ("ecgsearch.train.transfer",),
    "ecgsearch.trial": ("ecgsearch.train.trial", "ecgsearch.train.context", "ecgsearch.train.setup",
                        "ecgsearch.train.loop", "ecgsearch.train.scoring", "ecgsearch.results.folder"),
    "ecgsearch.tune_faults": ("ecgsearch.engine.worker", "ecgsearch.engine.callbacks", "ecgsearch.engine.run"),
    "ecgsearch.tune_glue": ("ecgsearch.engine.worker", "ecgsearch.engine.callbacks"),
}
"""Old module path -> the modules its names live in now (the first is where to import from)."""


class _MovedModule(types.ModuleType):
    """Stands at an old path; each attribute comes from the module that holds it now."""

    __targets__: tuple[str, ...] = ()

    def __getattr__(self, name: str) -> Any:
        for target in self.__targets__:
            module = importlib.import_module(target)
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(f"module {self.__name__!r} (moved to {self.__targets__[0]}) has no attribute {name!r}")


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes ``import ecgsearch.trial`` (an old path) work, with a DeprecationWarning naming the new one."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: Any) -> types.ModuleType:
        targets = MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {targets[0]}; import from there (the old path will be removed in "
                      "the next release)", DeprecationWarning, stacklevel=2)
        module = _MovedModule(spec.name, f"Moved: use {targets[0]}.")
        module.__targets__ = targets
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
    sys.meta_path.append(_MovedFinder())

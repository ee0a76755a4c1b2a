"""Hand-built registries for the space tests: no dependency on the real built-in plugins.

Loaded by path (``load_fakes()`` in each test module) so it works whether or not tests/ is a package.
"""

from __future__ import annotations

from ecgsearch.infos import (
    ArchitectureInfo,
    BackendInfo,
    DatasetInfo,
    MetricInfo,
    OptimizerInfo,
    SchedulerInfo,
    SearcherInfo,
    TaskInfo,
    int_param,
    str_param,
)
from ecgsearch.plugins import Registries


def resnet(in_leads, num_samples, num_outputs, depth=18, channels=64, kernel=7, stem=None):
    return ("resnet", depth, channels, kernel, stem)


def convnext(in_leads, num_samples, num_outputs, stages=3, width=32, kernel=7, depths=(2, 2, 6, 2)):
    return ("convnext", stages, width, kernel, depths)


def kwargsnet(in_leads, num_samples, num_outputs, **hparams):
    return ("kwargsnet", hparams)


def adamw(parameters, lr=1e-3, weight_decay=1e-2, betas=(0.9, 0.999)):
    return ("adamw", lr, weight_decay, betas)


def sgd(parameters, lr=0.1, momentum=0.0, nesterov=False):
    return ("sgd", lr, momentum, nesterov)


def synthetic(records=1000, sampling_rate=100, seconds=10, leads=None, seed=0):
    return ("synthetic", records, sampling_rate, seconds, leads, seed)


def multilabel_task(num_outputs, pos_weight=None):
    return ("multilabel", num_outputs, pos_weight)


def regression_task(num_outputs):
    return ("regression", num_outputs)


def metric_factory():
    return lambda y_true, y_score, context: 0.0


def backend_factory(**options):
    return ("backend", options)


def fifo(run):
    return ("fifo", run)


def asha(run, grace_period=1, reduction_factor=2):
    return ("asha", run, grace_period, reduction_factor)


def random_search(problem):
    return ("random", problem)


def surrogate_search(problem, surrogate="random_forest", initial_trials=8, acquisition="ei"):
    return ("surrogate", problem, surrogate, initial_trials, acquisition)


RESNET_DEFAULT_SPACE = {
    "depth": {"choice": [8, 10]},
    "channels": {"choice": [16, 32]},
    "stem": {"width": {"choice": [16, 32]}, "kernel": 7},
}


def fake_registries() -> Registries:
    regs = Registries()
    regs.architectures.add(ArchitectureInfo(name="resnet", description="1D ResNet", factory=resnet,
                                            default_space=RESNET_DEFAULT_SPACE))
    regs.architectures.add(ArchitectureInfo(name="convnext", description="1D ConvNeXt", factory=convnext,
                                            default_space={"width": {"choice": [16, 32]}}))
    regs.architectures.add(ArchitectureInfo(name="kwargsnet", description="takes **hparams",
                                            factory=kwargsnet))
    regs.optimizers.add(OptimizerInfo(name="adamw", description="AdamW", factory=adamw,
                                      default_space={"lr": {"loguniform": [1.0e-4, 1.0e-2]}}))
    regs.optimizers.add(OptimizerInfo(name="sgd", description="SGD", factory=sgd, has_momentum=True))
    regs.datasets.add(DatasetInfo(name="synthetic", description="synthetic ECGs", factory=synthetic))
    regs.tasks.add(TaskInfo(name="multilabel", description="multi-label classification",
                            factory=multilabel_task, default_metric="macro_auroc"))
    regs.tasks.add(TaskInfo(name="regression", description="regression", factory=regression_task,
                            default_metric="mae"))
    regs.metrics.add(MetricInfo(name="macro_auroc", description="macro AUROC", factory=metric_factory,
                                mode="max", tasks=("multilabel",)))
    regs.metrics.add(MetricInfo(name="challenge_score", description="PhysioNet 2021 score",
                                factory=metric_factory, mode="max", tasks=("multilabel",)))
    regs.metrics.add(MetricInfo(name="mae", description="mean absolute error", factory=metric_factory,
                                mode="min", tasks=("regression",)))
    regs.backends.add(BackendInfo(name="torch-cpu", description="PyTorch on CPU", factory=backend_factory))
    regs.backends.add(BackendInfo(name="onnxruntime-cpu", description="ONNX Runtime on CPU",
                                  factory=backend_factory))
    regs.schedulers.add(SchedulerInfo(name="fifo", description="every trial to the end", factory=fifo))
    regs.schedulers.add(SchedulerInfo(name="asha", description="successive halving", factory=asha,
                                      params={"grace_period": int_param(1), "reduction_factor": int_param(2)}))
    regs.searchers.add(SearcherInfo(name="random", description="random candidates", factory=random_search))
    regs.searchers.add(SearcherInfo(name="surrogate", description="model-based", factory=surrogate_search,
                                    params={"surrogate": str_param("random_forest", "xgboost"),
                                            "initial_trials": int_param(1),
                                            "acquisition": str_param("ei", "ucb")}))
    return regs

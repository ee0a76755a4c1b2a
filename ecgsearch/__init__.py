"""ecgsearch: a plugin-based AutoML search engine for ECG neural networks."""

from ecgsearch.hookspecs import hookimpl
from ecgsearch.infos import (
    ArchitectureInfo,
    BackendInfo,
    DatasetInfo,
    MetricInfo,
    OptimizerInfo,
    ScheduleInfo,
    SurrogateInfo,
    TaskInfo,
)

__version__ = "0.1.0"

__all__ = [
    "ArchitectureInfo",
    "BackendInfo",
    "DatasetInfo",
    "MetricInfo",
    "OptimizerInfo",
    "ScheduleInfo",
    "SurrogateInfo",
    "TaskInfo",
    "hookimpl",
    "__version__",
]

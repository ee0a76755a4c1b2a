"""The ``transfer:`` section and the training rules that span sections (precision vs resources).

```yaml
transfer:
  pretrain:
    data: {targets: intervals}        # merged over the top-level data; naming a dataset starts afresh
    task: regression                  # a task name or {name: ..., factory params}
    metric: mae                       # optional: the pretraining task's default metric
    epochs: 3
  freeze_stages: {choice: [0, 1, 2]}  # stem + the first N stages frozen while fine-tuning (default 0)
  compare_scratch: true               # also train each configuration from scratch (default false)
```

``freeze_stages`` is searched like any trial parameter: it joins the space as ``freeze_stages``
(results column ``hp.freeze_stages``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ecgsearch.plugins import Registries
from ecgsearch.space.fields import MISSING_PROBLEM, Number, check_keys, mapping
from ecgsearch.space.messages import Context, show
from ecgsearch.space.model import Param, Space, TrialParam
from ecgsearch.space.params import trial_param
from ecgsearch.space.sections import check_data_task, parse_data, parse_metric, parse_task
from ecgsearch.space.spec import DataSpec, PretrainSpec, ResourceSpec, TransferSpec

FREEZE_PARAM = "freeze_stages"
TRANSFER_KEYS = ("pretrain", FREEZE_PARAM, "compare_scratch")
PRETRAIN_KEYS = ("data", "task", "metric", "epochs")
_FREEZE = TrialParam(0, Number(integer=True, low=0), "stem + first N stages frozen while fine-tuning")


def parse_transfer(ctx: Context, value: Any, data: DataSpec, registries: Registries) -> tuple[TransferSpec, Param]:
    """The transfer section, and the ``freeze_stages`` parameter it adds to the space."""
    section = mapping(ctx, "transfer", value)
    check_keys(ctx, "transfer", section, TRANSFER_KEYS, "a transfer setting")
    if section.get("pretrain") is None:
        raise ctx.error("transfer.pretrain", MISSING_PROBLEM)
    pretrain = _parse_pretrain(ctx, section["pretrain"], data, registries)
    compare = section.get("compare_scratch", False)
    if not isinstance(compare, bool):
        raise ctx.error("transfer.compare_scratch", f"{show(compare)} is not true or false")
    given = section.get(FREEZE_PARAM)
    freeze = trial_param(ctx, f"transfer.{FREEZE_PARAM}", 0 if given is None else given, _FREEZE)
    return TransferSpec(pretrain=pretrain, compare_scratch=compare), Param(FREEZE_PARAM, freeze)


def _parse_pretrain(ctx: Context, value: Any, data: DataSpec, registries: Registries) -> PretrainSpec:
    where = "transfer.pretrain"
    section = mapping(ctx, where, value)
    check_keys(ctx, where, section, PRETRAIN_KEYS, "a pretraining setting")
    for key in ("task", "epochs"):
        if section.get(key) is None:
            raise ctx.error(f"{where}.{key}", MISSING_PROBLEM)
    own = mapping(ctx, f"{where}.data", section.get("data") or {})
    if "dataset" not in own or own["dataset"] == data.dataset:  # overrides of the target's data section
        own = {"dataset": data.dataset, **({"cache_dir": data.cache_dir} if data.cache_dir else {}),
               **dict(data.params), **own}
    pre_data = parse_data(ctx, own, registries, where=f"{where}.data")
    task = parse_task(ctx, section["task"], registries, where=f"{where}.task")
    check_data_task(ctx, pre_data, task, registries, data_key=f"{where}.data", task_key=f"{where}.task")
    metric, mode = parse_metric(ctx, section.get("metric"), task, registries, where=f"{where}.metric")
    epochs = Number(integer=True, low=1).check(ctx, f"{where}.epochs", section["epochs"])
    return PretrainSpec(data=pre_data, task=task, metric=metric, mode=mode, epochs=int(epochs))


def with_param(space: Space, param: Param) -> Space:
    """The space with one more unconditional parameter (sampled after all the others)."""
    return dataclasses.replace(space, parameters=(*space.parameters, param))


def check_precision(ctx: Context, space: Space, resources: ResourceSpec) -> None:
    """fp16 autocast is CUDA-only: refuse a space that can sample it for trials without a GPU."""
    if resources.gpu > 0:
        return
    for param in space.parameters:
        if param.name == "precision" and "fp16" in param.dist.edges():
            raise ctx.error("space.precision", "'fp16' needs a CUDA GPU but resources.gpu is 0; use bf16 or "
                            "fp32 on the CPU, or reserve a GPU with resources: {gpu: 1}")

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

``pretrain`` may also be a non-empty list of such mappings, each with an optional ``name`` (letters,
digits and underscores; by default the targets it chooses, else its task name, made unique): every trial
then pretrains one model per entry and fine-tunes their fusion (``ecgsearch.train.fusion``), reporting
``pretrain.<name>.*`` per entry instead of ``pretrain.*``:

```yaml
transfer:
  pretrain:
    - {name: qrs, data: {targets: [qrs_ms]}, task: regression, epochs: 3}
    - {name: qt, data: {targets: [qt_ms]}, task: regression, epochs: 3}
  freeze_stages: 1                    # of every encoder
```

``freeze_stages`` is searched like any trial parameter: it joins the space as ``freeze_stages``
(results column ``hp.freeze_stages``).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from ecgsearch.plugins import Registries
from ecgsearch.space.fields import MISSING_PROBLEM, Number, check_keys, mapping
from ecgsearch.space.messages import Context, show
from ecgsearch.space.model import Param, Space, TrialParam
from ecgsearch.space.params import trial_param
from ecgsearch.space.sections import check_data_task, parse_data, parse_metric, parse_task
from ecgsearch.space.spec import DataSpec, PretrainSpec, ResourceSpec, TransferSpec
from ecgsearch.space.yamlio import item_key

FREEZE_PARAM = "freeze_stages"
TRANSFER_KEYS = ("pretrain", FREEZE_PARAM, "compare_scratch")
PRETRAIN_KEYS = ("data", "task", "metric", "epochs")
NAMED_PRETRAIN_KEYS = (*PRETRAIN_KEYS, "name")
PRETRAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")  # a column prefix: pretrain.<name>.val.mae
_FREEZE = TrialParam(0, Number(integer=True, low=0), "stem + first N stages frozen while fine-tuning")


def parse_transfer(ctx: Context, value: Any, data: DataSpec, registries: Registries) -> tuple[TransferSpec, Param]:
    """The transfer section, and the ``freeze_stages`` parameter it adds to the space."""
    section = mapping(ctx, "transfer", value)
    check_keys(ctx, "transfer", section, TRANSFER_KEYS, "a transfer setting")
    if section.get("pretrain") is None:
        raise ctx.error("transfer.pretrain", MISSING_PROBLEM)
    pretrain = _parse_pretrainings(ctx, section["pretrain"], data, registries)
    compare = section.get("compare_scratch", False)
    if not isinstance(compare, bool):
        raise ctx.error("transfer.compare_scratch", f"{show(compare)} is not true or false")
    given = section.get(FREEZE_PARAM)
    freeze = trial_param(ctx, f"transfer.{FREEZE_PARAM}", 0 if given is None else given, _FREEZE)
    return TransferSpec(pretrain=pretrain, compare_scratch=compare), Param(FREEZE_PARAM, freeze)


def _parse_pretrainings(ctx: Context, value: Any, data: DataSpec, registries: Registries
                        ) -> tuple[PretrainSpec, ...]:
    """One mapping (columns ``pretrain.*``) or a non-empty list of them, each named (``pretrain.<name>.*``)."""
    where = "transfer.pretrain"
    if not isinstance(value, list):
        return (_parse_pretrain(ctx, where, value, data, registries, PRETRAIN_KEYS),)
    if not value:
        raise ctx.error(where, "[] is an empty list; give one pretraining (a mapping) or a list of them")
    given = _given_names(ctx, where, value)
    parsed = [_parse_pretrain(ctx, item_key(where, i), item, data, registries, NAMED_PRETRAIN_KEYS)
              for i, item in enumerate(value)]
    taken = {name for name in given if name}
    named = []
    for name, spec in zip(given, parsed):
        name = name or _unique(_default_name(spec, registries), taken)
        taken.add(name)
        named.append(dataclasses.replace(spec, name=name))
    return tuple(named)


def _given_names(ctx: Context, where: str, items: list[Any]) -> list[str | None]:
    """Each list entry's own ``name`` (None where it gives none), checked: a column-prefix name, not the name
    of an earlier entry."""
    names: list[str | None] = []
    for index, item in enumerate(items):
        key = item_key(where, index)
        name = mapping(ctx, key, item, "a mapping of data, task, metric, epochs and name").get("name")
        if name is not None and (not isinstance(name, str) or not PRETRAIN_NAME.fullmatch(name)):
            raise ctx.error(f"{key}.name", f"{show(name)} is not a name of at most 40 letters, digits and "
                            "underscores starting with a letter (it names the columns pretrain.<name>.*)")
        if name is not None and name in names:
            raise ctx.error(f"{key}.name", f"{show(name)} is already the name of {item_key(where, names.index(name))}; "
                            "give each pretraining its own name")
        names.append(name)
    return names


def _default_name(pretrain: PretrainSpec, registries: Registries) -> str:
    """The targets the pretraining's data chooses (``targets: [qrs_ms]`` -> ``qrs_ms``), else its task's name."""
    param = registries.datasets.get(pretrain.data.dataset).label_param
    chosen = pretrain.data.params.get(param) if param else None
    words = chosen if isinstance(chosen, list) else [chosen] if isinstance(chosen, str) else [pretrain.task.name]
    name = re.sub(r"[^A-Za-z0-9_]+", "_", "_".join(str(w) for w in words)).strip("_")[:36]
    return name if name[:1].isalpha() else f"p_{name}"


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name_2``, ``name_3``... when another pretraining has it."""
    suffix = 2
    candidate = name
    while candidate in taken:
        candidate, suffix = f"{name}_{suffix}", suffix + 1
    return candidate


def _parse_pretrain(ctx: Context, where: str, value: Any, data: DataSpec, registries: Registries,
                    keys: tuple[str, ...]) -> PretrainSpec:
    section = mapping(ctx, where, value)
    check_keys(ctx, where, section, keys, "a pretraining setting")
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

"""The ``transfer:`` section and the training rules that span sections (precision vs resources).

```yaml
transfer:
  pretrain:
    data: {targets: intervals}        # merged over the top-level data; naming a dataset starts afresh
    task: regression                  # a task name or {name: ..., factory params}
    metric: mae                       # optional: the pretraining task's default metric
    epochs: 3
  freeze_stages: {choice: [0, 1, 2]}  # stem + the first N stages frozen while fine-tuning (default 0)
  mode: {choice: [finetune, linear_probe]}  # linear_probe: only the output layer trains (default finetune);
                                      # scratch: this trial does not pretrain (SL next to SSL in one search)
  compare_scratch: true               # also train each configuration from scratch (default false)
  cache: true                         # reuse a pretrained encoder across trials (default true)
```

A pretraining may take a self-supervised task (``task: {name: masked_reconstruction}``, ``contrastive``)
and a searchable share of its training split, ``data_fraction`` (the data axis of a pretraining scaling
law; default 1). Trials that agree on everything the pretraining depends on share one pretrained encoder
(``cache``, ``ecgsearch.train.encoder_cache``).

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

``freeze_stages``, ``mode`` and each pretraining's ``data_fraction`` are searched like any trial parameter:
they join the space as ``freeze_stages``, ``transfer_mode`` and ``pretrain_data_fraction`` (list form:
``pretrain_<name>_data_fraction``), results columns ``hp.<name>``.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from ecgsearch.plugins import Registries
from ecgsearch.space.fields import MISSING_PROBLEM, Number, check_keys, mapping
from ecgsearch.space.messages import Context, show
from ecgsearch.space.model import Among, Param, Space, TrialParam
from ecgsearch.space.params import trial_param
from ecgsearch.space.sections import check_data_task, check_task_needs, parse_data_over, parse_metric, parse_task
from ecgsearch.space.spec import DataSpec, PretrainSpec, ResourceSpec, TransferSpec
from ecgsearch.space.yamlio import item_key

FREEZE_PARAM = "freeze_stages"
MODE_PARAM = "transfer_mode"
TRANSFER_MODES = ("finetune", "linear_probe", "scratch")
TRANSFER_KEYS = ("pretrain", FREEZE_PARAM, "mode", "compare_scratch", "cache")
PRETRAIN_KEYS = ("data", "task", "metric", "epochs", "data_fraction")
NAMED_PRETRAIN_KEYS = (*PRETRAIN_KEYS, "name")
PRETRAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")  # a column prefix: pretrain.<name>.val.mae
_FREEZE = TrialParam(0, Number(integer=True, low=0), "stem + first N stages frozen while fine-tuning")
_MODE = TrialParam("finetune", Among(TRANSFER_MODES),
                   "finetune; linear_probe: only the output layer trains; scratch: no pretraining (supervised only)")
_FRACTION = TrialParam(1.0, Number(low=0, high=1, low_open=True), "share of the pretraining's training split")


def fraction_param(pretrain_name: str) -> str:
    """The trial parameter of a pretraining's ``data_fraction``: ``pretrain_data_fraction`` for the single
    form, ``pretrain_<name>_data_fraction`` for a named entry of the list form."""
    return f"pretrain_{pretrain_name}_data_fraction" if pretrain_name else "pretrain_data_fraction"


def parse_transfer(ctx: Context, value: Any, data: DataSpec, registries: Registries
                   ) -> tuple[TransferSpec, list[Param]]:
    """The transfer section, and the parameters it adds to the space (``freeze_stages``, ``transfer_mode``,
    each pretraining's data fraction)."""
    section = mapping(ctx, "transfer", value)
    check_keys(ctx, "transfer", section, TRANSFER_KEYS, "a transfer setting")
    if section.get("pretrain") is None:
        raise ctx.error("transfer.pretrain", MISSING_PROBLEM)
    pretrain = _parse_pretrainings(ctx, section["pretrain"], data, registries)
    switches = {}
    for key, default in (("compare_scratch", False), ("cache", True)):
        switches[key] = section.get(key, default)
        if not isinstance(switches[key], bool):
            raise ctx.error(f"transfer.{key}", f"{show(switches[key])} is not true or false")
    params = [Param(name, trial_param(ctx, key, default if section.get(given) is None else section[given], spec))
              for name, key, given, default, spec in (
                  (FREEZE_PARAM, f"transfer.{FREEZE_PARAM}", FREEZE_PARAM, 0, _FREEZE),
                  (MODE_PARAM, "transfer.mode", "mode", "finetune", _MODE))]
    if len(pretrain) > 1 and "scratch" in params[1].dist.edges():
        raise ctx.error("transfer.mode", f"'scratch' trains one model without pretraining, and a fusion of "
                        f"{len(pretrain)} pretrained encoders is another model; leave scratch out of transfer.mode, "
                        "or use compare_scratch: true for a from-scratch baseline of each trial")
    listed = isinstance(section["pretrain"], list)
    for index, (spec, entry) in enumerate(zip(pretrain, section["pretrain"] if listed else [section["pretrain"]])):
        key = f"{item_key('transfer.pretrain', index) if listed else 'transfer.pretrain'}.data_fraction"
        given = entry.get("data_fraction")
        fraction = trial_param(ctx, key, 1.0 if given is None else given, _FRACTION)
        params.append(Param(fraction_param(spec.name), fraction))
    return TransferSpec(pretrain=pretrain, **switches), params


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
    pre_data = parse_data_over(ctx, own, data, registries, f"{where}.data")
    task = parse_task(ctx, section["task"], registries, where=f"{where}.task")
    check_data_task(ctx, pre_data, task, registries, data_key=f"{where}.data", task_key=f"{where}.task")
    check_task_needs(ctx, pre_data, task, registries, data_key=f"{where}.data", task_key=f"{where}.task")
    metric, mode = parse_metric(ctx, section.get("metric"), task, registries, where=f"{where}.metric")
    epochs = Number(integer=True, low=1).check(ctx, f"{where}.epochs", section["epochs"])
    return PretrainSpec(data=pre_data, task=task, metric=metric, mode=mode, epochs=int(epochs))


def with_param(space: Space, *params: Param) -> Space:
    """The space with more unconditional parameters (sampled after all the others)."""
    return dataclasses.replace(space, parameters=(*space.parameters, *params))


def check_precision(ctx: Context, space: Space, resources: ResourceSpec) -> None:
    """fp16 autocast is CUDA-only: refuse a space that can sample it for trials without a GPU."""
    if resources.gpu > 0:
        return
    for param in space.parameters:
        if param.name == "precision" and "fp16" in param.dist.edges():
            raise ctx.error("space.precision", "'fp16' needs a CUDA GPU but resources.gpu is 0; use bf16 or "
                            "fp32 on the CPU, or reserve a GPU with resources: {gpu: 1}")

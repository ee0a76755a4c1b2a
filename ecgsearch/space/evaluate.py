"""``evaluate:``: what every trained model is also scored on, out of distribution (docs/evaluation.md).

```yaml
evaluate:
  corruptions:                                    # of the test split (ecgsearch.data.corrupt says exactly how)
    - {name: noise_10db, kind: gaussian_noise, snr_db: 10}
    - {kind: baseline_wander, amplitude: 0.5}     # name by default: kind and value (wander_0p5)
    - {kind: lead_dropout, leads: 2}
    - {kind: amplitude_scale, factor: 0.5}
    - {kind: clipping, level: 0.5}
  datasets:                                       # other data, scored with the trained model
    - {name: other_seed, data: {seed: 7}}         # merged over the top-level data section
    - {name: ptbxl, data: {dataset: ptbxl, root: /data/ptbxl, labels: rhythm}}
```

Each entry gives the columns ``ood.<name>.loss`` and ``ood.<name>.<metric>`` (every metric of the task). A
``data`` section without ``dataset`` (or naming the run's) changes the run's own data section; naming another
dataset starts afresh, like ``transfer.pretrain.data``. An OOD dataset's classes are matched to the model's by
clinical meaning (``ecgsearch.data.harmonise``): one sharing none with the trained task (or, for a task other than
multilabel, lacking one of its targets) is refused here, before any data is read, when both data sections' targets
follow from their parameters (``DatasetInfo.target_names``); otherwise when the run prepares it
(``ecgsearch.train.ood.plan_evaluate``), with the same sentence (``harmonise.match_task_classes``).
"""

from __future__ import annotations

import re
from typing import Any

from ecgsearch.data.corrupt import KINDS, Corruption, default_name
from ecgsearch.data.harmonise import ClassMismatch, match_task_classes
from ecgsearch.plugins import Registries
from ecgsearch.space.fields import MISSING_PROBLEM, Number, check_keys, mapping
from ecgsearch.space.messages import Context, show
from ecgsearch.space.sections import parse_data_over
from ecgsearch.space.spec import DataSpec, EvaluateSpec, OodDataSpec
from ecgsearch.space.yamlio import child_key, item_key, load_yaml, read_text

EVALUATE_KEYS = ("corruptions", "datasets")
DATASET_KEYS = ("name", "data")
OOD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")  # one part of a column name: ood.<name>.loss
NAME_RULE = "a name of at most 40 letters, digits and underscores starting with a letter (it names the columns " \
            "ood.<name>.*)"


def parse_evaluate(ctx: Context, value: Any, data: DataSpec, task: str, registries: Registries,
                   where: str = "evaluate") -> EvaluateSpec:
    """The section's corruptions and datasets, every value checked, every name unique, every dataset's classes
    checked against the trained task's where both are known from the parameters (``_check_classes``).

    data: the run's data section (the model's targets); task: the run's task kind.
    """
    section = mapping(ctx, where, value, "a mapping of corruptions and datasets")
    check_keys(ctx, where, section, EVALUATE_KEYS, "an evaluate setting")
    corruptions = tuple(_parse_corruption(ctx, item_key(f"{where}.corruptions", i), item)
                        for i, item in enumerate(_items(ctx, f"{where}.corruptions", section.get("corruptions"))))
    datasets = tuple(_parse_dataset(ctx, item_key(f"{where}.datasets", i), item, data, registries)
                     for i, item in enumerate(_items(ctx, f"{where}.datasets", section.get("datasets"))))
    if not corruptions and not datasets:
        raise ctx.error(where, "the section names no corruption and no dataset; list some under corruptions or "
                        "datasets, or remove the section")
    _check_unique(ctx, where, corruptions, datasets)
    for i, dataset in enumerate(datasets):
        _check_classes(ctx, f"{item_key(f'{where}.datasets', i)}.data", dataset.data, data, task, registries)
    return EvaluateSpec(corruptions=corruptions, datasets=datasets)


def load_evaluate(path: str, data: DataSpec, task: str, registries: Registries) -> tuple[EvaluateSpec, Context]:
    """The ``evaluate:`` section of a YAML file that holds only that section (``evaluate-run --evaluate``), and
    the file's context (its lines, for the messages of later checks); data and task: the run's."""
    document, lines = load_yaml(read_text(path), str(path))
    ctx = Context(str(path), lines)
    section = mapping(ctx, "", document, "a mapping with one key, evaluate")
    check_keys(ctx, "", section, ("evaluate",), "the evaluate section (this file holds only that)")
    if section.get("evaluate") is None:
        raise ctx.error("evaluate", MISSING_PROBLEM)
    return parse_evaluate(ctx, section["evaluate"], data, task, registries), ctx


def _items(ctx: Context, key: str, value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ctx.error(key, f"{show(value)} is not a list of mappings")
    return value


def _parse_corruption(ctx: Context, key: str, value: Any) -> Corruption:
    """``{kind, name?, <the kind's settings>}``: the kind known, each setting in its range, none missing."""
    entry = mapping(ctx, key, value, "a mapping with kind and the kind's settings")
    if entry.get("kind") is None:
        raise ctx.error(f"{key}.kind", MISSING_PROBLEM, KINDS)
    kind = entry["kind"]
    if kind not in KINDS:
        raise ctx.error(f"{key}.kind", f"{show(kind)} is not a corruption kind", KINDS, word=kind)
    settings = KINDS[kind].settings
    check_keys(ctx, key, entry, ("kind", "name", *(s.name for s in settings)), f"a setting of {kind}")
    params: dict[str, float] = {}
    for setting in settings:
        given = entry.get(setting.name)
        if given is None and setting.default is None:
            raise ctx.error(child_key(key, setting.name), f"{MISSING_PROBLEM} ({setting.doc})")
        number = Number(integer=setting.integer, low=setting.low, high=setting.high, low_open=setting.low_open)
        params[setting.name] = number.check(ctx, child_key(key, setting.name),
                                            setting.default if given is None else given)
    name = entry.get("name")
    name = default_name(kind, params) if name is None else _name(ctx, f"{key}.name", name)
    return Corruption(name=name, kind=kind, params=params)


def _parse_dataset(ctx: Context, key: str, value: Any, data: DataSpec, registries: Registries) -> OodDataSpec:
    """``{name, data}``: a data section, merged over the run's own when it names no other dataset."""
    entry = mapping(ctx, key, value, "a mapping with name and data")
    check_keys(ctx, key, entry, DATASET_KEYS, "an OOD dataset setting")
    for needed in DATASET_KEYS:
        if entry.get(needed) is None:
            raise ctx.error(f"{key}.{needed}", MISSING_PROBLEM)
    name = _name(ctx, f"{key}.name", entry["name"])
    own = mapping(ctx, f"{key}.data", entry["data"])
    return OodDataSpec(name=name, data=parse_data_over(ctx, own, data, registries, f"{key}.data"))


def _check_classes(ctx: Context, key: str, ood: DataSpec, data: DataSpec, task: str,
                   registries: Registries) -> None:
    """The run's rule for an OOD dataset's classes (``harmonise.match_task_classes``), applied before any data is
    read where both datasets declare the targets their parameters give (``DatasetInfo.target_names``); where
    either is known only from the data, the run checks it once it has prepared both."""
    model = registries.datasets.get(data.dataset).known_targets(data.params)
    theirs = registries.datasets.get(ood.dataset).known_targets(ood.params)
    if model is None or theirs is None:
        return
    try:
        match_task_classes(model, theirs, task, ood.dataset)
    except ClassMismatch as problem:
        raise ctx.error(key, str(problem)) from None


def _name(ctx: Context, key: str, value: Any) -> str:
    if not isinstance(value, str) or not OOD_NAME.fullmatch(value):
        raise ctx.error(key, f"{show(value)} is not {NAME_RULE}")
    return value


def _check_unique(ctx: Context, where: str, corruptions: tuple[Corruption, ...],
                  datasets: tuple[OodDataSpec, ...]) -> None:
    """Two evaluations with one name would write the same columns: refuse the second."""
    seen: dict[str, str] = {}
    keyed = [(item_key(f"{where}.corruptions", i), c.name) for i, c in enumerate(corruptions)] + \
        [(item_key(f"{where}.datasets", i), d.name) for i, d in enumerate(datasets)]
    for key, name in keyed:
        if name in seen:
            raise ctx.error(f"{key}.name", f"{show(name)} is already the name of {seen[name]}; give each "
                            "evaluation its own name (it names the columns ood.<name>.*)", at=key)
        seen[name] = key

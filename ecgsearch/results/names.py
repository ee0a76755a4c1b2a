"""The run folder's file names (``ecgsearch.results.folder`` draws the layout) and the results table's metric
column names, without pandas: the CLI's help texts name the files while building its parser, which must stay
fast, and the trials (writing the columns) and the reports (reading them) share the column names from here."""

from __future__ import annotations

from collections.abc import Iterable

SPACE_COPY = "space.yaml"
PRUNED_FILE = "space.pruned.yaml"  # what `ecgsearch prune` writes by default
RUN_FILE = "run.json"  # what the run was started with beyond its space file (the --trials it ran)
TRIALS_DIR = "trials"
BEST_CHECKPOINT = "best.pt"
ESTIMATOR_DIR = "estimator"  # an estimator trial's fitted model (ecgsearch.train.estimators)

SOURCE = "source"  # the word before a source's name: val.source.<source>.<metric>


def metric_column(split: str, metric: str, *, label_group: str | None = None, source: str | None = None) -> str:
    """The column of a metric on a split (``val.macro_auroc``); on one label group of the dataset's classes,
    ``val.<group>.<metric>`` (``val.arrhythmia.macro_auroc``); on the records of one source,
    ``val.source.<source>.<metric>`` (``test.source.Georgia.challenge_score``)."""
    if source is not None:
        return f"{split}.{SOURCE}.{source}.{metric}"
    if label_group is not None:
        return f"{split}.{label_group}.{metric}"
    return f"{split}.{metric}"


def target_column(split: str, stem: str, target: str) -> str:
    """The column of a metric on one target or class alone: ``val.mae.hr_bpm``, ``val.auroc.164889003``."""
    return f"{split}.{stem}.{target}"


def source_columns(columns: Iterable[str], split: str, metric: str) -> dict[str, str]:
    """``{source: column}`` of a metric's per-source columns among ``columns`` (``metric_column(..., source=)``),
    by source name. Metric names hold no dot, so a source's name is whatever lies between the two ends."""
    head, tail = f"{split}.{SOURCE}.", f".{metric}"
    found = {c[len(head):-len(tail)]: c for c in columns
             if c.startswith(head) and c.endswith(tail) and len(c) > len(head) + len(tail)}
    return dict(sorted(found.items()))


# the training compute a trial spent (pretraining included): results of training, not properties of the
# model known before it, so a surrogate or latency predictor never takes them as features
TRAINING_COSTS = ("cost.train_flops", "cost.train_samples")


def prior_costs(columns: Iterable[str]) -> list[str]:
    """The ``cost.*`` columns among ``columns`` known before a trial trains (params, FLOPs...: counted on the
    model), sorted; the training compute (``TRAINING_COSTS``) is left out."""
    return sorted(c for c in columns if c.startswith("cost.") and c not in TRAINING_COSTS)


def label_group_columns(columns: Iterable[str], split: str, metric: str) -> dict[str, str]:
    """``{group: column}`` of a metric's per-label-group columns among ``columns`` (``metric_column(...,
    label_group=)``), by group name. A group's name holds no dot, which tells its columns from the per-source
    ones (``val.source.<source>.<metric>``) and the per-class ones (``val.auroc.<class>``, ending in a class)."""
    head, tail = f"{split}.", f".{metric}"
    found = {c[len(head):-len(tail)]: c for c in columns if c.startswith(head) and c.endswith(tail)}
    return dict(sorted((group, c) for group, c in found.items() if group and "." not in group))

"""``ecgsearch evaluate-run RUN_DIR``: a finished run's trained models scored out of distribution, no retraining.

Each trial with saved weights (``OUT/trials/<id>/best.pt``) is rebuilt (``ecgsearch.deploy.model.trained_model``)
and scored on every evaluation of an ``evaluate:`` section, the run's own (its space file's) or one given in a
file, exactly as a trial scores them after its last epoch (``ecgsearch.train.ood``); its ``ood.<name>.*``
columns are added to the results table, or overwrite those already there (``ecgsearch.results.table.set_columns``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ecgsearch.data.cache import open_dataset
from ecgsearch.data.prepare import prepare_data
from ecgsearch.deploy.model import trained_model
from ecgsearch.errors import UserError
from ecgsearch.plugins import get_registries
from ecgsearch.results import open_run
from ecgsearch.results.names import BEST_CHECKPOINT, TRIALS_DIR
from ecgsearch.results.table import set_columns
from ecgsearch.space.evaluate import load_evaluate
from ecgsearch.space.messages import Context
from ecgsearch.train.ood import ModelOnData, ood_columns, plan_evaluate

log = logging.getLogger(__name__)

COMMAND = "evaluate-run"


@dataclass(frozen=True)
class EvaluatedRun:
    """What ``evaluate_run`` did: the trials scored, the evaluations' names, the columns written."""

    out_dir: Path
    trials: tuple[str, ...]
    names: tuple[str, ...]
    columns: tuple[str, ...]


def evaluate_run(run_dir: str | Path, evaluate_file: str | None = None, progress: Any = None) -> EvaluatedRun:
    """Score every trial of the run that has saved weights on the evaluations, and record the ``ood.*`` columns.

    evaluate_file: a YAML file holding an ``evaluate:`` section (None: the run's space file's section).
    """
    run = open_run(run_dir, COMMAND)
    spec = run.spec
    if evaluate_file is not None:
        evaluate, ctx = load_evaluate(evaluate_file, spec.data, spec.task.name, get_registries())
    elif spec.evaluate is not None:
        evaluate, ctx = spec.evaluate, Context(spec.path, spec.lines)
    else:
        raise UserError(f"{COMMAND}: {run.path}'s space file has no evaluate section; pass --evaluate FILE.yaml, a "
                        "file holding one (evaluate: {corruptions: [...], datasets: [...]}).")
    results = run.results()
    trials = [str(t) for t in results.get("trial_id", []) if run.checkpoint_path(str(t)).is_file()]
    if not trials:
        raise UserError(f"{COMMAND}: {run.path} has no trial with saved weights ({TRIALS_DIR}/<id>/{BEST_CHECKPOINT}), "
                        "so there is no model to score; evaluate a run whose trials finished an epoch.")
    entry = prepare_data(spec.data, f"{spec.path}: data", progress)
    plan = plan_evaluate(evaluate, spec.seed, spec.task.name, entry, ctx, progress)
    data = open_dataset(entry)
    scoring = SimpleNamespace(metric=spec.metric, metrics=())  # what Scorer reads of a trial context
    values = {}
    for trial_id in trials:
        trained = trained_model(run, trial_id, data)
        scored = ModelOnData(data, trained.model, trained.task, trained.ref.samples)
        values[trial_id] = ood_columns(plan, scored, trained.targets, trained.thresholds, scoring)
        log.info("%s: trial %s scored on %s", COMMAND, trial_id, ", ".join(evaluate.names))
    set_columns(run.path, values)
    columns = tuple(dict.fromkeys(c for cells in values.values() for c in cells))
    return EvaluatedRun(out_dir=run.path, trials=tuple(trials), names=evaluate.names, columns=columns)

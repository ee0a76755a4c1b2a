"""The ``mlflow`` tracker: one parent run per search, one nested run per trial, the best model as an artifact.

A resumed search (``ecgsearch run --resume``) continues its parent run: the run folder records the parent's
id (``mlflow_run.json``); trials that were running when the driver stopped have their nested runs marked
``KILLED`` and get new ones when they run again.

The parent run holds the search's settings as parameters and the space file as an artifact; each trial's
nested run holds its hyperparameters (``architecture``, ``hp.*``), its per-epoch series (``epoch/loss``,
``epoch/val.<metric>``, step = epoch), its final row's ``val.*``/``test.*``/``cost.*``/``latency.*`` as
metrics and its ``status`` as a tag. When the search ends the best trial is exported as ONNX (what
``ecgsearch export`` writes) into the parent's ``best_model/`` artifacts. Everything goes through
``MlflowClient`` (no global active run), to ``tracking_uri`` or MLflow's default.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any, Mapping

from ecgsearch import TrackerInfo, bool_param, hookimpl, str_param
from ecgsearch_plugins.tracking._shared import Tracker, final_metrics, scalar, with_best_model

PARENT_TAG = "mlflow.parentRunId"  # what makes a run nested in MLflow's UI
TRIAL_TAG = "ecgsearch.trial_id"
BEST_TAG = "ecgsearch.best_trial"
MODEL_ARTIFACTS = "best_model"
# what MLflow accepts in a metric or parameter name; anything else (the "|" of merged PhysioNet classes in a
# per-class column, val.auroc.713427006|59118001) becomes "_"
REFUSED_IN_KEYS = re.compile(r"[^\w\-. :/]")


def mlflow_key(name: str) -> str:
    """``name`` as MLflow takes it: letters, digits, ``_ - . : /`` and spaces kept, any other character ``_``."""
    return REFUSED_IN_KEYS.sub("_", name)


PARENT_FILE = "mlflow_run.json"  # in the run folder: the parent run a resumed search continues
log = logging.getLogger(__name__)
RUN_STATUS = {"ok": "FINISHED", "stopped": "FINISHED", None: "KILLED"}  # others (failed, diverged): FAILED
# MLflow 3 prints each ended run's URL to stdout, which the search's progress display owns (unless you say so)
QUIET_URLS = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"


class MlflowTracker(Tracker):
    """Logs one search to an MLflow tracking store (a server, a database or a folder)."""

    def __init__(self, spec: Any, out_dir: Path, tracking_uri: str | None = None, experiment: str | None = None,
                 log_model: bool = True) -> None:
        super().__init__(out_dir)
        from mlflow import MlflowClient  # deferred: mlflow is an optional extra, heavy to import

        os.environ.setdefault(QUIET_URLS, "true")
        self.client = MlflowClient(tracking_uri)
        self.log_model = log_model
        self.experiment_id = self._experiment(experiment or spec.name)
        self.trial_runs: dict[str, str] = {}
        self.parent = self._resumed_parent() or self._new_parent(spec)

    def _new_parent(self, spec: Any) -> str:
        parent = self._create_run(spec.name, {"ecgsearch.run_folder": str(self.out_dir)})
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / PARENT_FILE).write_text(json.dumps({"run_id": parent, "experiment_id": self.experiment_id}))
        self._log_search(parent, spec)
        return parent

    def _resumed_parent(self) -> str | None:
        """The parent run this folder's search started, reopened, when it is in this store and experiment;
        its trials' runs left open by a stopped driver are marked ``KILLED``."""
        recorded = self.out_dir / PARENT_FILE
        if not recorded.is_file():
            return None
        try:
            run_id = str(json.loads(recorded.read_text())["run_id"])
            run = self.client.get_run(run_id)
        except Exception as error:  # unreadable file, or a run this store does not have
            log.warning("mlflow: %s names a parent run this tracking store does not hold (%s); a new parent run "
                        "is started", recorded, str(error).splitlines()[0][:200])
            return None
        if run.info.experiment_id != self.experiment_id or run.info.lifecycle_stage != "active":
            log.warning("mlflow: the parent run %s recorded in %s is deleted or in another experiment; a new parent "
                        "run is started", run_id, recorded)
            return None
        self.client.update_run(run_id, status="RUNNING")
        for trial in self._nested_runs(run_id):
            if trial.info.status == "RUNNING":
                self.client.set_terminated(trial.info.run_id, "KILLED")
            elif trial.info.status == "FINISHED":  # the run the best trial's tag goes to
                self.trial_runs[trial.data.tags.get(TRIAL_TAG, "")] = trial.info.run_id
        return run_id

    def _nested_runs(self, parent: str) -> list[Any]:
        """Every run nested in ``parent`` (MLflow answers a search in pages)."""
        runs, token = [], None
        while True:
            page = self.client.search_runs([self.experiment_id], f"tags.`{PARENT_TAG}` = '{parent}'",
                                           page_token=token)
            runs += list(page)
            token = page.token
            if not token:
                return runs

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        return found.experiment_id if found is not None else self.client.create_experiment(name)

    def _create_run(self, name: str, tags: Mapping[str, str]) -> str:
        return self.client.create_run(self.experiment_id, run_name=name, tags=dict(tags)).info.run_id

    def _log_search(self, parent: str, spec: Any) -> None:
        params = {"space_file": Path(spec.path).name, "name": spec.name, "seed": spec.seed,
                  "algorithm": spec.search.algorithm, "metric": spec.metric, "mode": spec.mode,
                  "trials": spec.budget.trials, "epochs": spec.budget.epochs, "dataset": spec.data.dataset}
        self._params(parent, params)
        if Path(spec.path).is_file():
            self.client.log_artifact(parent, spec.path)

    def _params(self, run_id: str, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param  # deferred: mlflow is an optional extra

        self.client.log_batch(run_id, params=[Param(mlflow_key(k), str(scalar(v))) for k, v in params.items()])

    def _metrics(self, run_id: str, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric  # deferred: mlflow is an optional extra

        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(mlflow_key(k), v, now, step) for k, v in metrics.items()])

    def open_trial(self, trial_id: str, params: Mapping[str, Any]) -> str:
        run_id = self._create_run(trial_id, {PARENT_TAG: self.parent, TRIAL_TAG: trial_id})
        self._params(run_id, params)
        self.trial_runs[trial_id] = run_id
        return run_id

    def log_epoch(self, run: str, epoch: int, metrics: Mapping[str, float]) -> None:
        self._metrics(run, metrics, epoch)

    def close_trial(self, run: str, trial_id: str, row: Mapping[str, Any] | None) -> None:
        status = row.get("status") if row is not None else None
        if row is not None:
            self._metrics(run, final_metrics(row), int(row.get("epochs") or 0))
            self.client.set_tag(run, "status", str(status))
            if row.get("error"):
                self.client.set_tag(run, "error", str(row["error"]))
        self.client.set_terminated(run, RUN_STATUS.get(status, "FAILED"))

    def close_search(self, results: Any) -> None:
        if self.log_model:
            with_best_model(self.out_dir, self._log_best)
        self.client.set_terminated(self.parent, "FINISHED")

    def _log_best(self, trial_id: str, folder: Path) -> None:
        self.client.log_artifacts(self.parent, str(folder), MODEL_ARTIFACTS)
        self.client.set_tag(self.parent, BEST_TAG, trial_id)
        if trial_id in self.trial_runs:
            self.client.set_tag(self.trial_runs[trial_id], BEST_TAG, trial_id)


@hookimpl
def ecgsearch_register_trackers() -> list[TrackerInfo]:
    return [TrackerInfo(
        name="mlflow", factory=MlflowTracker, requires=("mlflow",), install_hint="pip install 'ecgsearch[mlflow]'",
        description="MLflow: a parent run per search, a nested run per trial, the best trial's ONNX model",
        params={"tracking_uri": str_param(nullable=True, doc="where runs go (a server URL, sqlite:///FILE, a "
                                          "folder); default: $MLFLOW_TRACKING_URI, else MLflow's default"),
                "experiment": str_param(nullable=True, doc="the MLflow experiment; default: the run's name"),
                "log_model": bool_param(doc="export the best trial as ONNX into the parent run's best_model/")})]

"""The ``wandb`` tracker: one Weights & Biases run per trial (config: its hyperparameters), grouped by search.

Offline by default: the runs are written under ``OUT/wandb/`` and uploaded later with ``wandb sync``; each
run logs its per-epoch series (step = epoch) and ends with its final row in the run's summary. Runs of
concurrent trials are open together (``reinit="create_new"``, W&B 0.19.10 or later).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ecgsearch import TrackerInfo, hookimpl, str_param
from ecgsearch_plugins.tracking._shared import Tracker, final_metrics, output_dir

MODES = ("offline", "online", "disabled")


class WandbTracker(Tracker):
    """W&B runs of one search: project ``project``, group ``group`` (default: the run's name)."""

    def __init__(self, spec: Any, out_dir: Path, project: str = "ecgsearch", group: str | None = None,
                 entity: str | None = None, mode: str = "offline", log_dir: str | None = None) -> None:
        super().__init__(out_dir)
        self.init = {"project": project, "group": group or spec.name, "entity": entity, "mode": mode,
                     "dir": str(output_dir(out_dir, log_dir, "."))}

    def open_trial(self, trial_id: str, params: Mapping[str, Any]) -> Any:
        import wandb  # deferred: wandb is an optional extra, heavy to import

        # silent, no console capture: the driver's stdout belongs to the search's progress display
        return wandb.init(name=trial_id, config=dict(params), job_type="trial", reinit="create_new",
                          settings=wandb.Settings(console="off", silent=True), **self.init)

    def log_epoch(self, run: Any, epoch: int, metrics: Mapping[str, float]) -> None:
        run.log(dict(metrics), step=epoch)

    def close_trial(self, run: Any, trial_id: str, row: Mapping[str, Any] | None) -> None:
        if row is not None:
            run.summary.update({**final_metrics(row), "status": str(row.get("status"))})
        run.finish(exit_code=0 if row is not None and row.get("status") in ("ok", "stopped") else 1)


@hookimpl
def ecgsearch_register_trackers() -> list[TrackerInfo]:
    return [TrackerInfo(
        name="wandb", factory=WandbTracker, requires=("wandb",), install_hint="pip install 'ecgsearch[wandb]'",
        description="Weights & Biases: a run per trial grouped by search, offline unless told otherwise",
        params={"project": str_param(doc="the W&B project"),
                "group": str_param(nullable=True, doc="the runs' group; default: the run's name"),
                "entity": str_param(nullable=True, doc="the W&B team or user; default: yours"),
                "mode": str_param(*MODES, doc="offline: written under the run folder for wandb sync"),
                "log_dir": str_param(nullable=True, doc="where the wandb/ folder goes (relative: inside the run "
                                     "folder); default: the run folder")})]

"""The ``tensorboard`` tracker: per-epoch scalars of each trial in ``log_dir/<trial_id>``, and the trial's
hyperparameters with its final metrics for TensorBoard's HParams dashboard (``tensorboard --logdir LOG_DIR``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ecgsearch import TrackerInfo, hookimpl, str_param
from ecgsearch_plugins.tracking._shared import Tracker, final_metrics, output_dir

DEFAULT_DIR = "tensorboard"  # inside the run folder


class TensorBoardTracker(Tracker):
    """A ``torch.utils.tensorboard.SummaryWriter`` per trial."""

    def __init__(self, spec: Any, out_dir: Path, log_dir: str | None = None) -> None:
        super().__init__(out_dir)
        self.log_dir = output_dir(out_dir, log_dir, DEFAULT_DIR)

    def open_trial(self, trial_id: str, params: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
        from torch.utils.tensorboard import SummaryWriter  # deferred: needs the optional tensorboard package

        return SummaryWriter(str(self.log_dir / trial_id)), dict(params)

    def log_epoch(self, run: tuple[Any, dict[str, Any]], epoch: int, metrics: Mapping[str, float]) -> None:
        writer, _ = run
        for key, value in metrics.items():
            writer.add_scalar(key, value, epoch)
        writer.flush()

    def close_trial(self, run: tuple[Any, dict[str, Any]], trial_id: str, row: Mapping[str, Any] | None) -> None:
        writer, params = run
        if row is not None:  # run_name ".": the HParams summary beside the trial's scalars, not in a subfolder
            writer.add_hparams({**params, "status": str(row.get("status"))}, final_metrics(row), run_name=".")
        writer.close()


@hookimpl
def ecgsearch_register_trackers() -> list[TrackerInfo]:
    return [TrackerInfo(
        name="tensorboard", factory=TensorBoardTracker, requires=("tensorboard",),
        install_hint="pip install 'ecgsearch[tensorboard]'",
        description="TensorBoard: per-epoch scalars per trial and the HParams dashboard",
        params={"log_dir": str_param(nullable=True, doc="the event files' folder (relative: inside the run "
                                     "folder); default: OUT/tensorboard")})]

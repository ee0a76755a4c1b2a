"""A run folder (``OUT`` of ``ecgsearch run``): what it holds, and ``open_run``, the one way a verb opens it.

Layout::

    OUT/results.parquet        one row per finished trial (``ecgsearch.results.table``)
    OUT/results.appended.jsonl the rows of trials ended since results.parquet was last written, merged
                               on read (``ecgsearch.results.rowlog``; none once the search ended)
    OUT/space.yaml             the copy of the space file that produced the run
    OUT/space.pruned.yaml      the narrower space ``ecgsearch prune`` derived from the results
    OUT/run.json               what the run started with beyond its space file (``trials``)
    OUT/trials/<id>/best.pt    a trial's best weights, config and validation thresholds
    OUT/faults/                the fault log (``ecgsearch.engine.faults``)
    OUT/tune/                  Ray Tune's experiment state (what ``--resume`` restores)

``report``, ``scale``, ``prune``, ``bench``, ``export`` and ``predict`` all start with ``open_run``, so a
wrong folder is the same sentence whichever verb was given it.
"""

from __future__ import annotations

import functools
import json
import math
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ecgsearch.errors import UserError
from ecgsearch.results.configs import ranked
from ecgsearch.results.names import (
    BEST_CHECKPOINT,
    ESTIMATOR_DIR,
    PRUNED_FILE,  # noqa: F401 (the run folder's names, re-exported)
    RUN_FILE,
    SPACE_COPY,
    TRIALS_DIR,
)
from ecgsearch.results.table import RESULTS_FILE, read_results

if TYPE_CHECKING:
    from ecgsearch.space import SearchSpec

_BLOCKED = re.compile(r"GLOBAL ([\w.]+)")
_UNSUPPORTED = re.compile(r"Unsupported operand \d+|Unsupported class [\w.]+")


def write_run_record(out_dir: str | Path, trials: int) -> None:
    """Remember the budget the run started with (``--trials`` may differ from the space file's)."""
    path = Path(out_dir) / RUN_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"trials": int(trials)}))
    tmp.replace(path)


def recorded_trials(out_dir: str | Path) -> int | None:
    """The trials the run in ``out_dir`` started with (None for a run from before run.json existed)."""
    try:
        return int(json.loads((Path(out_dir) / RUN_FILE).read_text())["trials"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def checkpoint_path(out_dir: str | Path, trial_id: str) -> Path:
    """Where a trial's best weights are kept: ``OUT/trials/<trial_id>/best.pt``."""
    return Path(out_dir) / TRIALS_DIR / trial_id / BEST_CHECKPOINT


def estimator_folder(out_dir: str | Path, trial_id: str) -> Path:
    """Where an estimator trial keeps its fitted model (no weights file): ``OUT/trials/<trial_id>/estimator/``."""
    return Path(out_dir) / TRIALS_DIR / trial_id / ESTIMATOR_DIR


def load_weights(path: str | Path, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; a non-data pickle or a broken file is a ``UserError``.

    The one way ecgsearch reads any weights file (trial checkpoints, best weights, the latency worker's).
    """
    import torch  # deferred: reading a run's table must not import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        found = _BLOCKED.search(str(error))
        if found:
            raise UserError(f"{path}: refused to load: the file holds a pickled Python object ({found.group(1)}) "
                            "that is not a tensor or plain data, and ecgsearch never runs code from a checkpoint; "
                            "use a checkpoint written by ecgsearch or a torch.save of tensors and state "
                            "dicts.") from None
        detail = _UNSUPPORTED.search(str(error))
        raise UserError(f"{path}: refused to load: not a data-only PyTorch checkpoint "
                        f"({detail.group(0) if detail else 'unreadable pickle'}); the file is damaged or holds "
                        "pickled objects, and ecgsearch never runs code from a checkpoint.") from None
    except FileNotFoundError:
        raise UserError(f"{path}: no such checkpoint file.") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"{path}: not a readable PyTorch checkpoint ({first}); the file is damaged or "
                        "was not written by torch.save.") from None


@dataclass(frozen=True)
class RunFolder:
    """An opened run folder: its space file, results table and trial weights, read when asked."""

    path: Path
    command: str = ""

    @functools.cached_property
    def spec(self) -> SearchSpec:
        """The run's space file, parsed (its copy in the folder)."""
        # deferred: the parser loads the plugin registries
        from ecgsearch.space import load_space

        return load_space(self.path / SPACE_COPY, check_trackers=False)  # a run is read without its trackers

    def results(self) -> pd.DataFrame:
        """The results table, read through the guarded reader (a damaged file is one sentence)."""
        return read_results(self.path / RESULTS_FILE, self.command or None)

    def checkpoint_path(self, trial_id: str) -> Path:
        return checkpoint_path(self.path, trial_id)

    def load_checkpoint(self, trial_id: str) -> dict[str, Any]:
        """A trial's saved best weights (``state_dict``, ``config``, ``thresholds``, ``epoch``)."""
        path = self.checkpoint_path(trial_id)
        fitted = estimator_folder(self.path, trial_id)
        if not path.is_file() and fitted.is_dir():
            raise UserError(f"{self.path}: trial {trial_id} is an estimator model (features + fitted model, kept "
                            f"in {fitted}), and {self.command} serves networks only; choose a network trial "
                            "with --trial.")
        if not path.is_file():
            raise UserError(f"{path}: trial {trial_id} has no saved weights (it never finished an epoch with a "
                            "validation score); choose another trial with --trial.")
        return load_weights(path)  # weights_only: a checkpoint holding code is refused, never run

    def choose_trial(self, trial_id: str | None, results: pd.DataFrame | None = None) -> str:
        """The requested trial, or the best finished one by the run's metric (with repeats, of the configuration
        best by its mean over seeds, the seed with the best value: ``configs.ranked``)."""
        results = self.results() if results is None else results
        if trial_id is not None:
            if trial_id not in set(results["trial_id"]):
                raise UserError(f"{self.path}: there is no trial '{trial_id}' in {RESULTS_FILE}; "
                                f"choose one of {', '.join(sorted(results['trial_id']))}.")
            return trial_id
        key = f"val.{self.spec.metric}"
        finite = results.get(key, pd.Series(math.nan, index=results.index)).map(
            lambda v: v is not None and not math.isnan(v))
        ok = results[(results["status"] == "ok") & finite]
        if ok.empty:
            raise UserError(f"{self.path}: no trial finished with a {key}; there is no model to use.")
        ok = ok[[not estimator_folder(self.path, str(t)).is_dir() for t in ok["trial_id"]]]
        if ok.empty:
            raise UserError(f"{self.path}: every finished trial is an estimator model, and {self.command} serves "
                            "networks only; add a network architecture to the space and run again.")
        return str(ranked(ok, key, self.spec.mode).iloc[0]["trial_id"])


def open_run(run_dir: str | Path, command: str) -> RunFolder:
    """The run in ``run_dir``; a path that is not a run folder is one ``UserError`` naming ``command``."""
    path = Path(run_dir)
    if not path.is_dir():
        raise UserError(f"{command}: {path} is not a folder; pass the --out folder of an `ecgsearch run`.")
    for needed in (RESULTS_FILE, SPACE_COPY):
        if not (path / needed).is_file():
            raise UserError(f"{command}: {path} has no {needed}, so it is not a run folder; pass the --out "
                            "folder of an `ecgsearch run`.")
    return RunFolder(path, command)

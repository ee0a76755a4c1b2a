"""``run`` a search and ``load_run`` a finished one; a ``Run`` answers in Python what the CLI verbs print.

``ecgsearch run`` is ``prepare_search(...).run(display)`` and ``ecgsearch validate`` is
``Space.validate``: the command line prints what these return, nothing more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ecgsearch.api.space import Space
from ecgsearch.errors import UserError
from ecgsearch.hookspecs import hookimpl

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ecgsearch.analysis.run import RunData
    from ecgsearch.analysis.scaling import ScalingFit
    from ecgsearch.api.model import EcgModel
    from ecgsearch.report import Report
    from ecgsearch.results import RunFolder
    from ecgsearch.space import SearchSpec

SpaceLike = Space | str | Path | Mapping[str, Any]


def as_space(space: SpaceLike) -> Space:
    """A ``Space`` from a ``Space``, a space file's path, or a mapping of its sections."""
    if isinstance(space, Space):
        return space
    if isinstance(space, Mapping):
        return Space.from_dict(space)
    if isinstance(space, (str, Path)):
        return Space.from_yaml(space)
    raise UserError(f"run: expected a Space, a space file's path or a dict, got {type(space).__name__}; "
                    "pass e.g. 'spaces/quickstart.yaml'.")


@dataclass(frozen=True)
class Search:
    """A search ready to start: the validated space (with its budget on resume) and where it writes."""

    space: Space
    spec: SearchSpec
    out: Path | str  # a folder, or a storage URI (s3://..., gs://...)
    resume: bool

    def run(self, display: Any = None) -> Run:
        """Run (or resume) the search; ``display``: the CLI's progress display (a lifecycle-hook plugin)."""
        from ecgsearch.engine import run_search  # deferred: the engine imports Ray and torch
        from ecgsearch.plugins import get_registries

        manager = get_registries().manager
        listener = display if display is not None else TrialLines(self.spec.budget.trainings, self.spec.metric)
        manager.register(listener)
        try:
            outcome = run_search(self.spec, self.out, resume=self.resume, display=display,
                                 space_text=None if self.space.path is not None else self.space.to_yaml())
        finally:
            manager.unregister(listener)
        return Run(outcome.out_dir)


def prepare_search(space: SpaceLike, out: str | Path | None = None, trials: int | None = None,
                   resume: bool = False) -> Search:
    """Validate ``space`` and check ``out`` (default ``runs/<name>``) before anything is computed."""
    # deferred: the engine imports Ray and torch
    from ecgsearch.engine import check_out_dir, resumed_spec
    from ecgsearch.engine.storage import is_uri

    if resume and trials is not None:
        raise UserError("--trials cannot change the budget of a resumed run (it continues with the trials it "
                        "started with); drop --trials, or start a new run in another --out.")
    chosen = as_space(space)
    chosen = chosen.with_trials(trials) if trials is not None else chosen
    spec = chosen.spec
    if out is not None and is_uri(str(out)):  # s3://, gs://...: checked when opened (ecgsearch.engine.storage)
        return Search(chosen, spec, str(out), resume)
    folder = Path(out) if out is not None else Path("runs") / spec.name
    check_out_dir(folder, resume)  # before any output or work
    return Search(chosen, resumed_spec(spec, folder) if resume else spec, folder, resume)


def run(space: SpaceLike, out: str | Path | None = None, trials: int | None = None, resume: bool = False) -> Run:
    """Run the search ``space`` describes (a ``Space``, a path or a dict) into ``out`` (default
    ``runs/<name>``) and return the finished ``Run``; ``trials`` overrides ``budget.trials``; ``resume``
    continues the run in ``out``. One line is printed per finished trial."""
    return prepare_search(space, out, trials, resume).run()


def load_run(run_dir: str | Path) -> Run:
    """The run in ``run_dir`` (the ``out`` folder of a search); refused in one sentence if it is not one."""
    from ecgsearch.results import open_run  # deferred: the results table imports pandas

    return Run(open_run(run_dir, "load_run").path)


class TrialLines:
    """Prints one line per finished trial (a notebook's progress), as a lifecycle-hook plugin."""

    def __init__(self, trials: int, metric: str) -> None:
        self.trials, self.metric, self.done = trials, metric, 0

    @hookimpl
    def ecgsearch_trial_finished(self, trial_id: str, row: Mapping[str, Any]) -> None:
        self.done += 1
        value = row.get(f"val.{self.metric}")
        shown = f"{value:.4f}" if isinstance(value, float) and math.isfinite(value) else "-"
        print(f"trial {trial_id} {row.get('status')} ({self.done}/{self.trials}): {row.get('architecture')}, "
              f"val.{self.metric} {shown}", flush=True)


class Run:
    """A run folder: its results, best trials, fronts, models, predictions, report and scaling laws.

    Everything is read from the folder when asked, so a ``Run`` of a search still running sees new rows.
    """

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)

    def __repr__(self) -> str:
        return f"Run({str(self.out_dir)!r})"

    @property
    def folder(self) -> RunFolder:
        from ecgsearch.results import open_run  # deferred: the results table imports pandas

        return open_run(self.out_dir, "load_run")

    @property
    def space(self) -> Space:
        """The run's space file (its copy in the folder)."""
        from ecgsearch.results import SPACE_COPY  # deferred: the results table imports pandas

        return Space.from_yaml(self.out_dir / SPACE_COPY)

    @property
    def spec(self) -> SearchSpec:
        return self.folder.spec

    @property
    def results(self) -> pd.DataFrame:
        """Every trial's row (hyperparameters ``hp.*``, metrics ``val.*``/``test.*``, costs ``cost.*``...)."""
        return self.folder.results()

    def analysed(self, metric: str | None = None, command: str = "load_run") -> RunData:
        """The trials with a value of ``val.<metric>`` (default: the run's), with the metric's direction;
        refused in one sentence when no trial has one yet. With repeats, ``trials`` has one row per
        configuration (the mean over its seeds, see ``best``) and ``seed_rows`` one per seed."""
        from ecgsearch.analysis.run import load_run as analysed_run  # deferred: the analysis imports SciPy

        return analysed_run(self.out_dir, metric, command=command)

    def best(self, n: int = 5, metric: str | None = None) -> pd.DataFrame:
        """The ``n`` best finished trials by ``val.<metric>`` (default: the searched metric), best first;
        empty while no trial has finished with a value of the run's own metric. A run with repeats ranks its
        configurations: each row the mean over the configuration's seeds (``trial_id`` is its ``config_id``),
        with ``<metric column>.sd``, ``repeats`` (seeds averaged) and the 95% Student-t interval of the mean
        ``val.<metric>.ci_low``/``.ci_high`` (``ecgsearch.analysis.repeats.per_config``)."""
        from ecgsearch.analysis.run import analysed_trials  # deferred: the analysis imports SciPy

        folder = self.folder
        if metric is None:
            results = folder.results()
            if f"val.{folder.spec.metric}" not in results.columns:  # every trial failed
                return results.head(0)
        data = analysed_trials(self.out_dir, metric, command="best")
        return data.trials.sort_values(data.column, ascending=data.mode == "min", kind="stable").head(n)

    def pareto(self, x: str = "cost.flops", metric: str | None = None, group_by: str | None = None) -> pd.DataFrame:
        """The trials no other beats on both ``val.<metric>`` and the cost column ``x`` (``cost.params``,
        ``latency.onnxruntime-cpu.p50_ms``, ...), cheapest first; ``group_by``: one front per value. With
        repeats, the front of the configurations' means, with their spread columns (as ``best``'s)."""
        from ecgsearch.analysis.pareto import pareto_front  # deferred: the analysis imports SciPy

        data = self.analysed(metric, "pareto")
        return pareto_front(data.trials, data.column, data.mode, cost=x, group_by=group_by)

    def scaling(self, axis: str = "compute", metric: str | None = None, pareto: bool = True,
                level: float = 0.95) -> ScalingFit:
        """The power law ``E = E_inf + A x^-alpha`` of the error on ``axis`` (compute, parameters or data),
        with its ``level`` intervals (``fit.ci``) and the reasons not to trust it (``fit.warnings``); with
        repeats, fitted to one point per configuration (the mean over its seeds)."""
        # deferred: the analysis imports SciPy
        from ecgsearch.analysis.run import train_records
        from ecgsearch.analysis.scaling import fit_scaling

        data = self.analysed(metric, "scaling")
        records = train_records(data.spec) if axis == "data" else None
        return fit_scaling(data.trials, data.metric, data.mode, axis, pareto=pareto, train_records=records,
                           level=level)

    def report(self, out_dir: str | Path | None = None, **options: Any) -> Report:
        """Write the run's report (``ecgsearch report``); ``options`` as ``ecgsearch.report.build_report``'s."""
        from ecgsearch.report import build_report  # deferred: the report imports plotting libraries

        return build_report(self.out_dir, out_dir=out_dir, **options)

    def model(self, trial_id: str | None = None) -> EcgModel:
        """Trial ``trial_id``'s trained network (default: the best) in eval mode with its best weights, as a
        ``torch.nn.Module`` that also knows its inputs (``preprocessing``) and outputs (``targets``)."""
        from ecgsearch.api.model import load_model  # deferred: the model imports torch

        folder = self.folder
        return load_model(folder, folder.choose_trial(trial_id))

    def predict(self, records: str | Path | np.ndarray, trial_id: str | None = None,
                labels: bool = False) -> pd.DataFrame:
        """Scores of trial ``trial_id`` (default: the best) on ``records``: a folder the run's dataset can
        read, or an array ``(records, leads, samples)`` at the run's sampling rate. One row per record, one
        column per target; ``labels``: the thresholded decisions instead of the scores."""
        return self.model(trial_id).predict(records, labels=labels)

"""``compare_runs(paths, out)``: several runs in one self-contained HTML page, labelled by run.

The page has the report's machinery (``html``, ``plots``, the Pareto section's tables): a summary per
run, the runs' Pareto fronts overlaid (against the chosen cost, and against latency when every run
measured one backend), the best value so far against trials and training time (the search's learning
curve), and the per-epoch curve of each run's best trial. The figures are embedded in the page, so the
one file can be mailed or archived. ``ecgsearch compare`` calls ``compare_runs``.
"""

from __future__ import annotations

import datetime
import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from ecgsearch.analysis.compare import (
    COMMAND,
    RUN,
    Runs,
    best_trial,
    load_runs,
    p50_latencies,
    pooled_trials,
    shared_latencies,
    summary,
)
from ecgsearch.analysis.history import epoch_history
from ecgsearch.analysis.progress import search_curve
from ecgsearch.errors import UserError
from ecgsearch.report import plots
from ecgsearch.report.html import Image, Section, Table, embed_images, fmt, render
from ecgsearch.report.sections import cost_label, hypervolume_table

log = logging.getLogger(__name__)

Style = dict[str, tuple[str, str]]


@dataclass(frozen=True)
class Comparison:
    """The page written (``os.fspath`` of a ``Comparison`` is its path), the runs' labels, and the notes of
    what could not be shown."""

    path: Path
    labels: list[str]
    notes: list[str]
    sections: list[Section]

    def __fspath__(self) -> str:
        return str(self.path)


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.3g} h" if seconds >= 3 * 3600 else \
        f"{seconds / 60:.3g} min" if seconds >= 180 else f"{seconds:.3g} s"


def runs_section(runs: Runs) -> Section:
    rows = []
    for run, label in zip(runs.runs, runs.labels):
        facts = summary(run)
        statuses = ", ".join(f"{n} {s}" for s, n in facts["statuses"].items())
        rows.append([label, str(run.run_dir), f"{facts['trials']} ({statuses})", fmt(facts["best"]),
                     facts["trial_id"], facts["architecture"], _duration(facts["train_seconds"])])
    return Section("Runs", "runs", f"Each run's trials, its best {runs.column} ({runs.mode}) and the training "
                   "time its trials spent (all of them, failed ones too).", notes=list(runs.notes),
                   tables=[Table("the runs compared", ["run", "folder", "trials", f"best {runs.column}",
                                                       "best trial", "architecture", "train time"], rows)])


def _latency_note(runs: Runs) -> str | None:
    measured = [label for run, label in zip(runs.runs, runs.labels) if p50_latencies(run)]
    if not measured or shared_latencies(runs):
        return None
    return (f"Latency was measured in {', '.join(measured)}, but on no backend in every run, so there is no "
            "front against latency; measure one backend in each run (ecgsearch bench RUN_DIR --backend NAME).")


def fronts_section(runs: Runs, out: Path, style: Style) -> Section:
    section = Section("Pareto fronts", "pareto",
                      f"Each run's Pareto front of {runs.column}: a trial is on it when no trial of the same run "
                      "reaches a better value at the same or a lower cost. Faint marks are all trials, lines join "
                      "a run's front; a front above another over a cost range is the better run there. The "
                      "hypervolume table gives one number per front (one shared reference, larger is better).")
    trials = pooled_trials(runs)
    for cost in dict.fromkeys([runs.cost, *shared_latencies(runs)]):
        name = f"pareto_{cost.removeprefix('cost.').removeprefix('latency.').replace('.', '_')}.png"
        path = plots.pareto_plot(trials, runs.column, runs.mode, cost, RUN, out / name, cost_label(cost), style)
        section.images.append(Image(path.name, f"{runs.column} vs {cost_label(cost)}, front per run"))
    section.tables.append(hypervolume_table(trials, runs.metric, runs.mode, runs.cost, RUN))
    note = _latency_note(runs)
    if note:
        section.notes.append(note)
    return section


def _best_within(curve: pd.DataFrame, seconds: float) -> float:
    """The best so far once ``seconds`` of training were spent (NaN: the first trial took longer)."""
    within = curve.loc[curve["seconds"] <= seconds, "best"]
    return float(within.iloc[-1]) if len(within) else math.nan


def search_section(runs: Runs, out: Path, style: Style) -> Section:
    curves = dict(zip(runs.labels, (search_curve(run) for run in runs.runs)))
    path = plots.search_curves_plot(curves, runs.column, runs.mode, out / "search_curves.png", style)
    n = min(len(curve) for curve in curves.values())
    seconds = min(float(curve["seconds"].iloc[-1]) for curve in curves.values())
    rows = [[label, str(len(curve)), fmt(curve["best"].iloc[n - 1]), fmt(_best_within(curve, seconds))]
            for label, curve in curves.items()]
    return Section("Search progress", "progress",
                   "The best value found so far, after each finished trial (left) and against the training time "
                   "spent (right): the learning curve of a search. A run whose curve lies above (below for a "
                   "minimised metric) found better models with the same budget.",
                   images=[Image(path.name, f"best {runs.column} so far, per run")],
                   tables=[Table("the best at an equal budget (the smallest run's)",
                                 ["run", "trials", f"best after {n} trials", f"best within {_duration(seconds)}"],
                                 rows)])


def epochs_section(runs: Runs, out: Path, style: Style) -> Section:
    section = Section("Learning curves of the best trials", "epochs",
                      f"{runs.column} after each epoch of each run's best trial (Ray Tune's per-epoch reports in "
                      "RUN_DIR/tune/<trial>/). A curve still rising at its last epoch says longer training would "
                      "help that run.")
    curves = {}
    for run, label in zip(runs.runs, runs.labels):
        trial_id = run.seed_trial(str(best_trial(run)["trial_id"]))  # with repeats: a seed of the best configuration
        history = epoch_history(run.run_dir, trial_id, runs.column)
        if history.frame is None:
            section.notes.append(f"{label}: no per-epoch history of its best trial {trial_id}: {history.reason}.")
        else:
            curves[label] = (trial_id, history.frame)
    if curves:
        path = plots.epoch_curves_plot(curves, runs.column, out / "epoch_curves.png", style)
        section.images.append(Image(path.name, f"{runs.column} per epoch of the best trial, per run"))
    return section


def comparison_sections(runs: Runs, out: Path) -> list[Section]:
    style = plots.styles(runs.labels)
    return [runs_section(runs), fronts_section(runs, out, style), search_section(runs, out, style),
            epochs_section(runs, out, style)]


def _check_out(out: Path) -> None:
    if out.is_dir():
        raise UserError(f"{COMMAND}: --out {out} is a folder; pass the HTML file to write, e.g. "
                        f"--out {out / 'compare.html'}.")


def compare_runs(paths: Sequence[str | Path], out: str | Path, labels: Sequence[str] | None = None,
                 metric: str | None = None, cost: str = "cost.flops") -> Comparison:
    """Write one HTML page comparing the runs in ``paths`` to ``out``; ``UserError`` for unusable input.

    labels: one per run (default: the space file's name, or the folder's); metric: ``val.<metric>`` of
    every run (default: the first run's); cost: the cost column of the fronts.
    """
    import matplotlib  # deferred: only a comparison draws

    matplotlib.use("Agg")  # never a window, whatever the user's default backend
    out = Path(out)
    _check_out(out)
    runs = load_runs(paths, labels, metric, cost)
    with tempfile.TemporaryDirectory(prefix="ecgsearch-compare-") as folder:
        sections = comparison_sections(runs, Path(folder))
        embed_images(sections, Path(folder))
    summary_rows = [("runs", ", ".join(f"{label} ({run.run_dir})" for label, run in zip(runs.labels, runs.runs))),
                    ("metric", f"{runs.column} ({runs.mode})"), ("cost", f"{runs.cost} ({cost_label(runs.cost)})")]
    generated = datetime.datetime.now().isoformat(timespec="seconds")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(f"ecgsearch compare: {' vs '.join(runs.labels)}", summary_rows, sections, generated,
                          by="ecgsearch compare"), encoding="utf-8")
    notes = [note for section in sections for note in section.notes]
    log.info("comparison written to %s (%d runs, %d notes)", out, len(runs.runs), len(notes))
    return Comparison(path=out, labels=runs.labels, notes=notes, sections=sections)

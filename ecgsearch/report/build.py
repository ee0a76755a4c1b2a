"""``build_report(run_dir)``: read a run, write ``report/report.html`` and its PNG figures."""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from pathlib import Path

from ecgsearch.analysis.run import load_run, train_records
from ecgsearch.report.html import Section, render
from ecgsearch.report.sections import all_sections, summary_rows

log = logging.getLogger(__name__)

REPORT_DIR = "report"
REPORT_FILE = "report.html"


@dataclass(frozen=True)
class Report:
    """Where the report went, the figures it references and the notes of what could not be made."""

    path: Path
    images: list[Path]
    notes: list[str]
    sections: list[Section]


def build_report(run_dir: str | Path, out_dir: str | Path | None = None, metric: str | None = None,
                 surrogate: str = "random_forest", folds: int = 3, bootstrap: int = 500, seed: int = 0) -> Report:
    """Write the report of ``run_dir`` to ``out_dir`` (default ``RUN_DIR/report``) and describe it.

    metric: analyse this ``val.<metric>`` instead of the run's own; surrogate/folds: the cross-validated
    model of the explanation sections; bootstrap: resamples for the scaling-law intervals.
    """
    import matplotlib

    matplotlib.use("Agg")  # never a window, whatever the user's default backend
    run = load_run(run_dir, metric, command="report")
    out = Path(out_dir) if out_dir is not None else run.run_dir / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    varies = "hp.data_fraction" in run.trials and run.trials["hp.data_fraction"].nunique() > 1
    records = train_records(run.spec) if varies else None  # the data axis in records, not fractions
    sections = all_sections(run, out, surrogate, folds, bootstrap, seed, records)
    generated = datetime.datetime.now().isoformat(timespec="seconds")
    path = out / REPORT_FILE
    path.write_text(render(f"ecgsearch report: {run.spec.name}", summary_rows(run), sections, generated),
                    encoding="utf-8")
    images = [out / image.file for section in sections for image in section.images]
    notes = [note for section in sections for note in section.notes]
    log.info("report written to %s (%d figures, %d notes)", path, len(images), len(notes))
    return Report(path=path, images=images, notes=notes, sections=sections)

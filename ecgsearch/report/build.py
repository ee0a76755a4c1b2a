"""``build_report(run_dir)``: read a run, write ``report/report.html``: the interactive page, or (``static``)
the page of PNG figures.

The interactive page is one self-contained file: plotly.js inlined once in its head, each figure's data
in the page, nothing fetched from the network. The static page references its PNGs beside it.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field
from pathlib import Path

from ecgsearch.analysis.run import load_run, train_records
from ecgsearch.report.figures import Figures, PngFigures
from ecgsearch.report.html import Section, render, write_page
from ecgsearch.report.interactive import PlotlyFigures, plotly_js
from ecgsearch.report.sections import all_sections, data_varies, summary_rows

log = logging.getLogger(__name__)

REPORT_DIR = "report"
REPORT_FILE = "report.html"


@dataclass(frozen=True)
class Report:
    """Where the report went, the PNGs it references (static) or the ids of its interactive plots, the notes
    of what could not be made, and how many trials it analysed."""

    path: Path
    images: list[Path]
    notes: list[str]
    sections: list[Section]
    plots: list[str] = field(default_factory=list)
    trials: int = 0

    @property
    def figures(self) -> int:
        return len(self.images) + len(self.plots)


def build_report(run_dir: str | Path, out_dir: str | Path | None = None, metric: str | None = None,
                 surrogate: str = "random_forest", folds: int = 3, bootstrap: int = 500, seed: int = 0,
                 static: bool = False, refresh: int | None = None) -> Report:
    """Write the report of ``run_dir`` to ``out_dir`` (default ``RUN_DIR/report``) and describe it.

    metric: analyse this ``val.<metric>`` instead of the run's own; surrogate/folds: the cross-validated
    model of the explanation sections; bootstrap: resamples for the scaling-law intervals (unused);
    static: PNG figures (for papers) instead of the interactive page; refresh: the page reloads itself
    every that many seconds (``ecgsearch report --watch``). The page is replaced atomically.
    """
    run = load_run(run_dir, metric, command="report")
    out = Path(out_dir) if out_dir is not None else run.run_dir / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    records = train_records(run.spec) if data_varies(run.trials) else None  # the data axis in records, not fractions
    if static:
        import matplotlib  # deferred: only the static report draws with matplotlib

        matplotlib.use("Agg")  # never a window, whatever the user's default backend
    figures: Figures = PngFigures(out) if static else PlotlyFigures(run)
    sections = all_sections(run, figures, surrogate, folds, bootstrap, seed, records)
    generated = datetime.datetime.now().isoformat(timespec="seconds")
    by = "ecgsearch report --watch" if refresh else "ecgsearch report"
    page = render(f"ecgsearch report: {run.spec.name}", summary_rows(run), sections, generated, by=by,
                  script="" if static else plotly_js(), refresh=refresh)
    path = write_page(out / REPORT_FILE, page)
    images = [out / image.file for section in sections for image in section.images]
    plots = [plot.name for section in sections for plot in section.plots]
    notes = [note for section in sections for note in section.notes]
    log.info("report written to %s (%d figures, %d notes)", path, len(images) + len(plots), len(notes))
    return Report(path=path, images=images, notes=notes, sections=sections, plots=plots, trials=len(run.trials))

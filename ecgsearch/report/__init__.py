"""The run report: ``build_report(run_dir)`` writes ``RUN_DIR/report/report.html``, an interactive page
(``static=True``: a page of PNG figures, for papers); ``watch_report`` rebuilds it while a search runs.

Pareto fronts per optimizer and architecture, the best trials in parallel coordinates, cross-validated
surrogate predictions, feature importance, scaling-law fits with their interval bands and extrapolation
error, search progress and latency (when measured). The guide is docs/analysis.md. ``build`` writes the
page from ``sections`` (one function per section, each reading ``ecgsearch.analysis``); a section's
figures are drawn by a renderer (``figures``): ``PngFigures`` with ``plots`` (matplotlib), or
``interactive.PlotlyFigures`` (plotly); ``html`` renders the page. With the same pieces,
``compare_runs(paths, out)`` (``compare``) writes one self-contained page of several runs. May import
analysis, the run folder and the contracts, never the engine. Read ``build.py`` first.
"""

from ecgsearch.analysis.run import RunData, load_run
from ecgsearch.report.build import REPORT_DIR, REPORT_FILE, Report, build_report
from ecgsearch.report.compare import Comparison, compare_runs
from ecgsearch.report.watch import watch_report

__all__ = ["Comparison", "REPORT_DIR", "REPORT_FILE", "Report", "RunData", "build_report", "compare_runs",
           "load_run", "watch_report"]

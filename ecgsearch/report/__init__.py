"""The run report: ``build_report(run_dir)`` writes ``RUN_DIR/report/report.html`` with PNG figures.

Pareto fronts per optimizer, cross-validated surrogate predictions, feature importance, scaling-law
fits with bootstrap bands and their extrapolation error, search progress and latency (when measured).
The guide is docs/analysis.md. ``build`` writes the page from ``sections`` (one function per section,
each reading ``ecgsearch.analysis``), ``plots`` draws the figures and ``html`` renders them; with the
same pieces, ``compare_runs(paths, out)`` (``compare``) writes one self-contained page of several runs.
May import analysis, the run folder and the contracts, never the engine. Read ``build.py`` first.
"""

from ecgsearch.analysis.run import RunData, load_run
from ecgsearch.report.build import REPORT_DIR, REPORT_FILE, Report, build_report
from ecgsearch.report.compare import Comparison, compare_runs

__all__ = ["Comparison", "REPORT_DIR", "REPORT_FILE", "Report", "RunData", "build_report", "compare_runs",
           "load_run"]

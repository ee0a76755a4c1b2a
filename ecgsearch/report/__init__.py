"""The run report: ``build_report(run_dir)`` writes ``RUN_DIR/report/report.html`` with PNG figures.

Pareto fronts per optimizer, cross-validated surrogate predictions, feature importance, scaling-law
fits with bootstrap bands and their extrapolation error, search progress and latency (when measured).
The guide is docs/analysis.md.
"""

from ecgsearch.report.build import REPORT_DIR, REPORT_FILE, Report, build_report
from ecgsearch.report.rundir import RunData, load_run

__all__ = ["REPORT_DIR", "REPORT_FILE", "Report", "RunData", "build_report", "load_run"]

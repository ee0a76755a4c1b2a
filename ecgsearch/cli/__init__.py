"""The command line: argument wiring and printing only, one module per verb family.

``app.main`` (the ``ecgsearch`` script) builds the parser from the families: ``search`` (run,
validate, plugins), ``data`` (data inspect, evaluate, predict), ``analysis`` (report, scale, prune),
``latency`` (bench, export) and ``jobs`` (submit, status, stop, logs); ``job_entry`` is what a submitted
job runs on the cluster. The CLI may import every stage; no stage imports it. Read ``app.py`` first.
"""

from ecgsearch.cli.app import build_parser, main

__all__ = ["build_parser", "main"]

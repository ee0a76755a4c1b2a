"""``ecgsearch report RUN_DIR --watch [SECONDS]``: rebuild the report while a search runs.

Every ``SECONDS`` the watch looks at the run's results (``results.parquet`` and the row log beside it,
``results.appended.jsonl``: their modification times and sizes) and rebuilds the interactive page when
they changed. The page carries a ``<meta http-equiv="refresh">`` of the same period, so a browser tab
left open on it reloads by itself; each page is written atomically, so a reload never reads half of
one. A run that has no trial with a value yet is waited for, with a line saying so. The watch runs until
it is interrupted (Ctrl-C): a search's end cannot be told from its folder (a time budget, the latency
measured after the last trial, a resume), so it is the user who says when it is over. On Ctrl-C the page
is written once more without its refresh line, so an open tab stops reloading.
"""

from __future__ import annotations

import datetime
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from ecgsearch.analysis.run import ANALYSED
from ecgsearch.errors import UserError
from ecgsearch.report.build import REPORT_DIR, REPORT_FILE, Report, build_report
from ecgsearch.report.html import refresh_tag, write_page
from ecgsearch.results import RESULTS_FILE, RESULTS_LOG, SPACE_COPY, open_run, read_results

DEFAULT_SECONDS = 10
WATCHED = (RESULTS_FILE, RESULTS_LOG)


def watch_seconds(value: Any) -> int:
    """``--watch``'s period: a whole number of seconds, at least 1 (one ``UserError`` sentence otherwise)."""
    try:
        seconds = int(str(value).strip())
    except ValueError:
        seconds = 0
    if seconds < 1:
        raise UserError(f"report: --watch {value} is not a whole number of seconds of at least 1; pass e.g. "
                        f"--watch {DEFAULT_SECONDS}, or --watch alone for every {DEFAULT_SECONDS} s.")
    return seconds


def results_stamp(run_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when a trial's row is written: (file, mtime in ns, size) of each results file present."""
    stamp = []
    for name in WATCHED:
        try:
            info = (run_dir / name).stat()
        except FileNotFoundError:
            continue
        stamp.append((name, info.st_mtime_ns, info.st_size))
    return tuple(stamp)


def finished_statuses(run_dir: Path, stamp: tuple[tuple[str, int, int], ...]) -> Counter[str]:
    """How many trials ended with each status (none before the first row)."""
    if not stamp:
        return Counter()
    return Counter(read_results(run_dir, "report")["status"].astype(str))


def _page(report: Report | None, out_dir: str | Path | None, run_dir: Path) -> Path:
    if report is not None:
        return report.path
    return (Path(out_dir) if out_dir is not None else run_dir / REPORT_DIR) / REPORT_FILE


def stop_refreshing(path: Path, seconds: int) -> None:
    """Rewrite the page without its refresh line (an open tab stops reloading)."""
    if path.is_file():
        write_page(path, path.read_text(encoding="utf-8").replace(refresh_tag(seconds) + "\n", "", 1))


def watch_report(run_dir: str | Path, seconds: int = DEFAULT_SECONDS, rounds: int | None = None,
                 sleep: Callable[[float], Any] = time.sleep, say: Callable[[str], Any] = print,
                 **options: Any) -> Report | None:
    """Rebuild the interactive report of ``run_dir`` whenever its results change, looking every ``seconds``,
    until interrupted (or after ``rounds`` looks, for tests); returns the last report (None if no trial had
    a value). ``options`` are ``build_report``'s (``out_dir``, ``metric``, ...). A first build that fails
    for another reason than the lack of a trial with a value is the ``UserError`` it raises; a later one is
    said and the page keeps the last report."""
    seconds = watch_seconds(seconds)
    folder = Path(run_dir)
    if not (folder / SPACE_COPY).is_file():
        open_run(folder, "report")  # not a run folder, not even a starting one: its one sentence
    say(f"watch: rebuilding {_page(None, options.get('out_dir'), folder)} when {folder}'s results change, "
        f"looking every {seconds} s (Ctrl-C stops)")
    report: Report | None = None
    last: tuple[tuple[str, int, int], ...] | None = None
    looked = 0
    try:
        while True:
            stamp = results_stamp(folder)
            if stamp != last:
                last = stamp
                report = _rebuild(folder, stamp, seconds, report, say, options)
            looked += 1
            if rounds is not None and looked >= rounds:
                return report
            sleep(seconds)
    except KeyboardInterrupt:
        path = _page(report, options.get("out_dir"), folder)
        stop_refreshing(path, seconds)
        say(f"watch: stopped; {path} no longer reloads" if report is not None else "watch: stopped")
        return report


def _rebuild(folder: Path, stamp: tuple[tuple[str, int, int], ...], seconds: int, report: Report | None,
             say: Callable[[str], Any], options: dict[str, Any]) -> Report | None:
    """One look that found the results changed: the new report, or the last one and a line saying why not."""
    statuses = finished_statuses(folder, stamp)
    if not any(statuses[status] for status in ANALYSED):
        ended = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())) or "none yet"
        say(f"watch: waiting for the first trial of {folder} with a value (trials ended: {ended})")
        return report
    try:
        new = build_report(folder, refresh=seconds, **options)
    except UserError as error:
        if report is None:
            raise
        say(f"watch: not rebuilt ({error}); the page keeps the last report")
        return report
    known = set(report.notes) if report is not None else set()
    for note in new.notes:
        if note not in known:
            say(f"note: {note}")
    clock = datetime.datetime.now().strftime("%H:%M:%S")
    trials = f"{new.trials} trial{'s' * (new.trials != 1)}"
    say(f"watch: {clock} report: {new.path} ({trials} analysed, {new.figures} figures)")
    return new

"""``ecgsearch report``'s interactive page: one self-contained file (plotly.js inlined once), every trial's
configuration on hover, Pareto fronts filtered by architecture and optimizer, the best trials in parallel
coordinates, interactive scaling laws; ``--watch`` rebuilding it while results arrive; and, where a
browser is installed, the page as Chromium draws it (no console error, marks in every plot, a hover that
names its trial). The run is the synthetic results table of tests/test_report.py (40 trials, two failed,
latency, a data axis): no search needed."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from test_report import rendered, synthetic_run

from ecgsearch.analysis.pareto import pareto_front
from ecgsearch.analysis.run import load_run
from ecgsearch.cli import main
from ecgsearch.cli.analysis import WATCH_SECONDS
from ecgsearch.report import build_report, watch_report
from ecgsearch.report.html import fmt, refresh_tag
from ecgsearch.report.interactive import HOVER, hover_texts, parcoords_dimension, plotly_js
from ecgsearch.report.sections import TOP_TRIALS
from ecgsearch.report.watch import DEFAULT_SECONDS
from ecgsearch.results import RESULTS_FILE, SPACE_COPY, ResultsTable

METRIC = "val.macro_auroc"
SCATTER_PLOTS = ("progress", "pareto-flops", "pareto-params", "pareto-torch-cpu_p50_ms", "cv", "scaling-compute",
                 "scaling-parameters", "scaling-data")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The synthetic run, its interactive report and the report's plots by name."""
    run = synthetic_run(tmp_path_factory.mktemp("interactive"))
    report = build_report(run, bootstrap=50)
    plots = {plot.name.removeprefix("plot-"): plot for section in report.sections for plot in section.plots}
    return run, report, plots


def _traces(plot, kind: str = "scatter") -> list:
    return [trace for trace in plot.figure.data if trace.type == kind]


def test_the_page_is_one_self_contained_file(page):
    run, report, plots = page
    html = report.path.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\bsrc=", html) and not re.search(r"<link[^>]*\bhref=", html)  # nothing fetched
    assert html.count(plotly_js()[:5000]) == 1  # the library, once, not per figure
    assert html.count("Plotly.newPlot(") == len(plots) == len(report.plots) == 14
    assert report.images == [] and sorted(p.name for p in report.path.parent.iterdir()) == ["report.html"]
    assert "http-equiv" not in html  # no reload outside --watch
    parsed = rendered(report.path)
    assert parsed.sections == ["best", "progress", "pareto", "cv", "importance", "scaling", "scaling-groups", "latency", "next"]
    # every text and table of the static report is there too
    static = build_report(run, bootstrap=50, static=True, out_dir=run / "static")
    static_text = " ".join(rendered(static.path).text)
    for section in static.sections:
        for table in section.tables:
            assert table.caption in html
        for note in section.notes:
            assert note in static_text and note in " ".join(parsed.text)
    assert 4_000_000 < report.path.stat().st_size < 8_000_000


def test_every_trial_marker_hovers_its_trial_and_configuration(page):
    run, report, plots = page
    results = pd.read_parquet(run / RESULTS_FILE)
    analysed = set(results.loc[results["status"] == "ok", "trial_id"])
    for name in SCATTER_PLOTS:
        markers = [t for t in _traces(plots[name]) if "markers" in t.mode and t.text is not None]
        assert markers, name
        for trace in markers:
            assert trace.hovertemplate == HOVER, (name, trace.name)
            assert all(re.match(r"<b>trial t\d{4}</b>", text) for text in trace.text), (name, trace.name)
        hovered = {re.match(r"<b>trial (t\d{4})", text).group(1) for t in markers for text in t.text}
        assert hovered >= (analysed if name != "progress" else set(results["trial_id"])), name
    html = report.path.read_text(encoding="utf-8")
    assert all(f"trial {trial_id}" in html for trial_id in results["trial_id"])
    texts = hover_texts(results, METRIC)
    row = results.iloc[7]
    text = texts[row["trial_id"]]
    assert f"architecture: {row['architecture']}" in text and f"optimizer: {row['optimizer']}" in text
    hps = [c for c in results.columns if c.startswith("hp.") and pd.notna(row[c])]
    assert hps and all(f"{c}: {fmt(row[c])}" in text for c in hps)
    assert all(f"{c}:" not in text for c in results.columns if c.startswith("hp.") and pd.isna(row[c]))
    for column in (METRIC, "cost.flops", "cost.params", "latency.torch-cpu.p50_ms"):
        assert f"{column}: {fmt(row[column])}" in text
    failed = texts[results.loc[results["status"] == "failed", "trial_id"].iloc[0]]
    assert "status: failed" in failed


def test_hover_texts_and_menus_escape_what_comes_from_a_run():
    frame = pd.DataFrame({"trial_id": ["t<1>"], "status": ["ok"], "architecture": ["<img src=x onerror=alert(1)>"],
                          METRIC: [0.5]})
    text = hover_texts(frame, METRIC)["t<1>"]
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text and "trial t&lt;1&gt;" in text


def test_the_pareto_menus_filter_by_architecture_and_by_optimizer(page):
    run, _, plots = page
    trials = load_run(run).trials
    for cost in ("flops", "params", "torch-cpu_p50_ms"):
        figure = plots[f"pareto-{cost}"].figure
        buttons = {b.label: b.args[0]["visible"] for b in figure.layout.updatemenus[0].buttons}
        expected = ["fronts per optimizer", "fronts per architecture"]
        expected += [f"{g}: {v}" for g in ("optimizer", "architecture") for v in sorted(trials[g].unique())]
        assert list(buttons) == expected and len(expected) == 6
        assert [t.visible for t in figure.data] == buttons["fronts per optimizer"]  # what the page opens with
        column = {"flops": "cost.flops", "params": "cost.params"}.get(cost, "latency.torch-cpu.p50_ms")
        for group in ("optimizer", "architecture"):
            for value in sorted(trials[group].unique()):
                shown = [t for t, on in zip(figure.data, buttons[f"{group}: {value}"]) if on]
                rows = trials[trials[group] == value]
                points, front = shown  # that group's trials and its own front, nothing else
                assert sorted(re.findall(r"trial (t\d{4})", "".join(points.text))) == sorted(rows["trial_id"])
                expected_front = pareto_front(rows, METRIC, "max", cost=column)["trial_id"].tolist()
                assert re.findall(r"trial (t\d{4})", "".join(front.text)) == expected_front
                assert front.line.shape == "hv" and front.legendgroup == points.legendgroup == f"{group}={value}"
            per_group = [t for t, on in zip(figure.data, buttons[f"fronts per {group}"]) if on]
            assert {t.legendgroup.split("=")[0] for t in per_group} == {group}
        assert figure.layout.xaxis.type == "log"


def test_the_parallel_coordinates_show_the_top_trials(page):
    run, _, plots = page
    trials = load_run(run).trials
    top = trials.sort_values(METRIC, ascending=False).head(TOP_TRIALS)
    (parcoords,) = _traces(plots["top-trials"], "parcoords")
    dimensions = {d.label: d for d in parcoords.dimensions}
    trial = parcoords.dimensions[0]
    assert trial.label == "trial (best on top)"
    assert [trial.ticktext[v] for v in trial.values] == top["trial_id"].tolist()  # the best has the top value
    assert parcoords.dimensions[-1].label == METRIC and list(parcoords.dimensions[-1].values) == top[METRIC].tolist()
    assert list(parcoords.line.color) == top[METRIC].tolist()
    assert set(dimensions["architecture"].ticktext) == set(top["architecture"]) == {"convnext", "resnet"}
    assert set(dimensions["optimizer"].ticktext) == set(top["optimizer"])
    hps = {label for label in dimensions if label not in ("architecture", "optimizer", METRIC, trial.label)}
    assert len(hps) >= 8 and all(label.removeprefix("log10 ") in {c.removeprefix("hp.") for c in top.columns}
                                 for label in hps)


def test_a_parallel_coordinates_axis_codes_categories_logs_and_missing_values():
    assert parcoords_dimension(pd.Series([3, 3, 3]), "x") is None  # the same in every trial: not an axis
    assert parcoords_dimension(pd.Series([np.nan, np.nan]), "x") is None
    choice = parcoords_dimension(pd.Series(["sgd", None, "adamw"]), "optimizer")
    assert choice["ticktext"] == ["adamw", "sgd", "n/a"] and choice["values"] == [1, 2, 0]
    lr = parcoords_dimension(pd.Series([1e-4, 1e-3, 1e-1]), "lr")
    assert lr["label"] == "log10 lr" and np.allclose(lr["values"], [-4, -3, -1])
    depth = parcoords_dimension(pd.Series([2.0, np.nan, 4.0]), "depth")
    assert depth["ticktext"][0] == "n/a" and depth["values"][1] == depth["tickvals"][0] < 2.0


def test_the_scaling_figures_show_the_law_its_band_and_the_trials_it_uses(page):
    _, report, plots = page
    section = next(s for s in report.sections if s.anchor == "scaling")
    for row in section.tables[0].rows:
        figure = plots[f"scaling-{row[0]}"].figure
        traces = {t.name: t for t in figure.data if t.name}
        used = traces["used by the fit (lowest per cost bin)"]
        n_used, n_front = map(int, row[1].split(" of "))
        assert len(used.x) == n_used and len(used.x) + len(traces["Pareto-optimal, not used"].x) == n_front
        law = next(t for name, t in traces.items() if name.startswith("fit: "))
        band = next(t for name, t in traces.items() if name.startswith("95% interval"))
        assert band.fill == "tonexty" and np.all(np.asarray(band.y) <= np.asarray(law.y) + 1e-12)
        assert figure.layout.xaxis.type == figure.layout.yaxis.type == "log"
        if row[8].endswith("points)"):  # an extrapolation check: its crosses name the held-out trials
            check = next(t for name, t in traces.items() if name.startswith("predicted from x <="))
            assert all(re.match(r"<b>trial t\d{4}", text) for text in check.text)


def _new_row(run: Path, trial_id: str) -> dict:
    row = pd.read_parquet(run / RESULTS_FILE).iloc[0].to_dict()
    return {**row, "trial_id": trial_id, "val.macro_auroc": 0.99}


def test_watch_rebuilds_when_a_row_is_appended_and_only_then(tmp_path):
    run = synthetic_run(tmp_path, n=12)
    lines: list[str] = []
    appended = iter([lambda: ResultsTable(run).append(_new_row(run, "t0100")), lambda: None])
    report = watch_report(run, 2, rounds=3, sleep=lambda seconds: next(appended)(), say=lines.append, folds=2)
    rebuilt = [line for line in lines if " report: " in line]
    assert len(rebuilt) == 2, lines  # the first look, then the appended row; the third look saw no change
    assert (run / "results.appended.jsonl").is_file()  # the new row came through the row log
    assert re.fullmatch(rf"watch: \d\d:\d\d:\d\d report: {re.escape(str(report.path))} \(11 trials analysed, "
                        r"\d+ figures\)", rebuilt[1])
    html = report.path.read_text(encoding="utf-8")
    assert f"{refresh_tag(2)}\n" in html and "trial t0100" in html and "Written by ecgsearch report --watch" in html
    assert not list(report.path.parent.glob(".*.tmp"))  # written through a temporary file, renamed


def test_watch_waits_for_the_first_trial_with_a_value(tmp_path):
    (tmp_path / "source").mkdir()
    source = synthetic_run(tmp_path / "source", n=12)
    run = tmp_path / "run"
    run.mkdir()
    shutil.copyfile(source / SPACE_COPY, run / SPACE_COPY)  # a search that has just started
    frame = pd.read_parquet(source / RESULTS_FILE)
    steps = iter([lambda: frame[frame["status"] == "failed"].to_parquet(run / RESULTS_FILE, index=False),
                  lambda: frame.to_parquet(run / RESULTS_FILE, index=False)])
    lines: list[str] = []
    report = watch_report(run, 1, rounds=3, sleep=lambda seconds: next(steps)(), say=lines.append, folds=2)
    assert lines[1:3] == [f"watch: waiting for the first trial of {run} with a value (trials ended: none yet)",
                          f"watch: waiting for the first trial of {run} with a value (trials ended: 2 failed)"]
    assert report is not None and report.trials == 10 and " report: " in lines[-1]


def test_watch_stops_reloading_the_page_on_ctrl_c(tmp_path):
    run = synthetic_run(tmp_path, n=12)
    lines: list[str] = []

    def interrupt(seconds):
        raise KeyboardInterrupt

    report = watch_report(run, 3, sleep=interrupt, say=lines.append, folds=2)
    html = report.path.read_text(encoding="utf-8")
    assert "http-equiv" not in html and "Plotly.newPlot(" in html
    assert lines[-1] == f"watch: stopped; {report.path} no longer reloads"


def test_the_watch_command_rebuilds_on_a_new_row_and_stops_on_ctrl_c(tmp_path):
    run = synthetic_run(tmp_path, n=12)
    process = subprocess.Popen([sys.executable, "-m", "ecgsearch", "report", str(run), "--watch", "1", "--folds", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seen: list[str] = []

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 180
        while sum(" report: " in line for line in seen) < count:
            line = process.stdout.readline()
            assert line and time.monotonic() < deadline, "".join(seen)
            seen.append(line)

    try:
        wait_for(1)
        ResultsTable(run).append(_new_row(run, "t0200"))
        wait_for(2)
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, "".join(seen) + out
    page = run / "report" / "report.html"
    assert out.strip().endswith(f"watch: stopped; {page} no longer reloads"), out
    html = page.read_text(encoding="utf-8")
    assert "trial t0200" in html and "http-equiv" not in html


@pytest.mark.parametrize("argv, message", [
    (["--watch", "0"], "error: report: --watch 0 is not a whole number of seconds of at least 1; pass e.g. --watch 10, "
                       "or --watch alone for every 10 s."),
    (["--watch", "soon"], "error: report: --watch soon is not a whole number of seconds of at least 1; pass e.g. "
                          "--watch 10, or --watch alone for every 10 s."),
    (["--watch", "--static"], "error: report: --watch rebuilds the interactive page and --static writes PNGs for "
                              "papers; drop --static to watch a running search, and write the static report once "
                              "it has finished."),
    (["--watch", "5"], "error: report: {run} has no results.parquet, so it is not a run folder; pass the --out folder "
                       "of an `ecgsearch run`."),
])
def test_bad_watch_requests_are_one_sentence_and_exit_2(tmp_path, capsys, argv, message):
    assert main(["report", str(tmp_path), *argv]) == 2
    assert capsys.readouterr().err.strip() == message.format(run=tmp_path)


def test_the_cli_and_the_watch_share_the_default_period():
    assert WATCH_SECONDS == DEFAULT_SECONDS


def _browser():
    """A headless Chromium through Selenium, or a skip that says what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e .[test])")
    from selenium.webdriver.chrome.service import Service  # deferred: selenium is only there for this test

    browser = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip(f"no headless browser to open the page in (chromium: {browser}, chromedriver: {driver}); "
                    "install Chromium and its driver (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--enable-unsafe-swiftshader",
                     "--window-size=1200,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


MARKS = """
const gd = document.getElementById(arguments[0]);
const svg = gd.querySelectorAll('.scatterlayer .point, .barlayer .point, .boxlayer .point, .boxlayer path').length;
let lit = 0;
for (const canvas of gd.querySelectorAll('canvas.gl-canvas-context')) {  // parcoords draws its lines in WebGL
  const gl = canvas.getContext('webgl') || canvas.getContext('webgl2');
  const pixels = new Uint8Array(canvas.width * canvas.height * 4);
  gl.readPixels(0, 0, canvas.width, canvas.height, gl.RGBA, gl.UNSIGNED_BYTE, pixels);
  for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) { lit++; } }
}
return [svg, lit, gd.querySelectorAll('.parcoords .y-axis').length];
"""
LEGEND = "return Array.from(document.querySelectorAll('#plot-pareto-flops .legendtext')).map(e => e.textContent)"
HOVER_FIRST = """
const gd = document.getElementById(arguments[0]);
Plotly.Fx.hover(gd, [{curveNumber: 0, pointNumber: 0}]);
return Array.from(gd.querySelectorAll('.hovertext')).map(e => e.textContent).join(' | ');
"""


def test_the_page_in_a_headless_browser(page):
    run, report, plots = page
    driver = _browser()
    from selenium.webdriver.support.ui import WebDriverWait  # deferred: selenium is there, _browser() did not skip

    try:
        driver.get(report.path.as_uri())
        ids = driver.execute_script("return Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => d.id)")
        assert ids == report.plots
        for plot in ids:
            driver.execute_script("document.getElementById(arguments[0]).scrollIntoView()", plot)
            marks, lit, axes = driver.execute_script(MARKS, plot)
            if plot == "plot-top-trials":
                assert lit > 0 and axes == len(plots["top-trials"].figure.data[0].dimensions), (lit, axes)
            else:
                assert marks > 0, plot
        trial_ids = set(pd.read_parquet(run / RESULTS_FILE)["trial_id"])
        for name in SCATTER_PLOTS:
            hovered = driver.execute_script(HOVER_FIRST, f"plot-{name}")
            expected = re.match(r"<b>trial (t\d{4})", plots[name].figure.data[0].text[0]).group(1)
            assert f"trial {expected}" in hovered and expected in trial_ids, (name, hovered)
        # the menu, clicked: one optimizer's trials and front, nothing else
        driver.execute_script("document.getElementById('plot-pareto-flops').scrollIntoView()")
        driver.find_element("css selector", "#plot-pareto-flops .updatemenu-header-group").click()
        buttons = WebDriverWait(driver, 10).until(
            lambda d: d.find_elements("css selector", "#plot-pareto-flops .updatemenu-dropdown-button"))
        next(b for b in buttons if b.get_attribute("textContent") == "optimizer: adamw").click()
        WebDriverWait(driver, 10).until(lambda d: len(d.execute_script(LEGEND)) == 1)
        assert driver.execute_script(LEGEND)[0].startswith("adamw (")
        assert driver.execute_script("return document.querySelectorAll('#plot-pareto-flops .scatterlayer .trace')"
                                     ".length") == 2
        severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert not severe, severe
    finally:
        driver.quit()


def _with_columns(run: Path, columns: dict[str, str]) -> pd.DataFrame:
    """The run's results with a random value per finished trial in each of ``columns`` ({label: column})."""
    frame = pd.read_parquet(run / RESULTS_FILE)
    rng = np.random.default_rng(1)
    for column in columns.values():
        frame[column] = np.where(frame["status"] == "ok", rng.uniform(0.5, 1.0, len(frame)), np.nan)
    frame.to_parquet(run / RESULTS_FILE, index=False)
    return frame.dropna(subset=[METRIC]).sort_values(METRIC, ascending=False).head(5)


def test_the_per_source_section_draws_each_best_trial_across_the_sources(tmp_path):
    """A dataset that names each record's source (PhysioNet 2021) gives ``test.source.<source>.<metric>``
    columns; the report draws the best trials across them, interactive and static, with their values."""
    run = synthetic_run(tmp_path)
    sources = {s: f"test.source.{s}.macro_auroc" for s in ("Chapman-Shaoxing/Ningbo", "Georgia", "PTB-XL")}
    best = _with_columns(run, sources)
    report = build_report(run, bootstrap=50)
    section = next(s for s in report.sections if s.anchor == "sources")
    assert [s.anchor for s in report.sections][-3:] == ["sources", "latency", "next"]  # no label groups here
    assert section.tables[0].header == ["trial_id", *sources]
    assert [row[0] for row in section.tables[0].rows] == list(best["trial_id"])
    traces = _traces(section.plots[0])
    assert [t.name for t in traces] == list(best["trial_id"])
    for trace, (_, row) in zip(traces, best.iterrows()):
        assert list(trace.x) == list(sources)
        np.testing.assert_allclose(trace.y, [row[c] for c in sources.values()])
        assert all(f"trial {row['trial_id']}" in text for text in trace.text)  # hover names the trial
    static = build_report(run, bootstrap=50, static=True, out_dir=tmp_path / "static")
    assert "sources.png" in rendered(static.path).images and (tmp_path / "static" / "sources.png").is_file()


def test_the_per_label_group_section_reads_the_group_columns_only(tmp_path):
    """``test.<group>.<metric>`` columns (label groups) get their own section; per-class columns
    (``test.auroc.<class>``) and per-source ones are not taken for groups."""
    run = synthetic_run(tmp_path)
    groups = {g: f"test.{g}.macro_auroc" for g in ("arrhythmia", "axis_deviation", "conduction_disorder")}
    best = _with_columns(run, {**groups, "class": "test.auroc.164889003", "source": "test.source.CPSC.macro_auroc"})
    report = build_report(run, bootstrap=50)
    assert [s.anchor for s in report.sections][-4:] == ["sources", "label-groups", "latency", "next"]
    section = next(s for s in report.sections if s.anchor == "label-groups")
    assert section.tables[0].header == ["trial_id", *groups]
    assert section.tables[0].rows[0] == [best["trial_id"].iloc[0], *(fmt(best[c].iloc[0]) for c in groups.values())]
    static = build_report(run, bootstrap=50, static=True, out_dir=tmp_path / "static")
    assert "label-groups.png" in rendered(static.path).images

"""``ecgsearch report`` and ``ecgsearch scale``: on a real (reduced) quickstart run, on a larger results
table with latency and a data axis, and on bad inputs (one sentence, exit 2). The static report (PNGs)
is tested here; the interactive page in detail in tests/test_report_interactive.py."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from ecgsearch.analysis.run import load_run
from ecgsearch.cli import main
from ecgsearch.engine import run_search, with_trials
from ecgsearch.report import build_report, plots
from ecgsearch.report.figures import PngFigures
from ecgsearch.report.html import Section, Table, render
from ecgsearch.report.sections import scaling_section
from ecgsearch.results import RESULTS_FILE
from ecgsearch.results.folder import SPACE_COPY
from ecgsearch.search.features import config_frame
from ecgsearch.space import load_space

PNG = b"\x89PNG\r\n\x1a\n"
# the quickstart with a small, short dataset and one epoch: the same search, in seconds
REDUCTIONS = {"records: 1200": "records: 120", "sampling_rate: 100": "sampling_rate: 50", "seconds: 10": "seconds: 4",
              "trials: 12, epochs: 4": "trials: 4, epochs: 1"}


def reduced_quickstart(extra: dict[str, str] | None = None) -> str:
    text = (ROOT / "spaces" / "quickstart.yaml").read_text()
    for old, new in {**REDUCTIONS, **(extra or {})}.items():
        assert old in text, f"the quickstart no longer says {old!r}; update this test's reductions"
        text = text.replace(old, new)
    return text


class Page(HTMLParser):
    """What a browser would load and show: image sources, section ids, text."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.sections: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "section":
            self.sections.append(attrs["id"])

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def rendered(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def assert_images_exist(report_dir: Path, page: Page) -> None:
    assert page.images and len(set(page.images)) == len(page.images)
    for name in page.images:
        data = (report_dir / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000, name


@pytest.fixture(scope="module")
def quickstart_run(ray_session, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("quickstart")
    space = folder / "quickstart.yaml"
    space.write_text(reduced_quickstart())
    run_search(with_trials(load_space(space), None), folder / "run")
    return folder / "run"


@pytest.mark.ray
def test_report_on_the_quickstart_run_writes_the_html_and_every_plot(quickstart_run, tmp_path, capsys):
    report_dir = tmp_path / "static"
    # 2 folds: 4 trials are enough
    assert main(["report", str(quickstart_run), "--folds", "2", "--static", "--out", str(report_dir)]) == 0
    out = capsys.readouterr().out
    assert f"report: {report_dir / 'report.html'} (8 figures)" in out
    page = rendered(report_dir / "report.html")
    assert set(page.images) >= {"progress.png", "pareto_flops_by_optimizer.png", "pareto_flops_by_architecture.png",
                                "pareto_params_by_optimizer.png", "cv.png", "importance.png",
                                "scaling_compute.png", "scaling_parameters.png"}
    assert_images_exist(report_dir, page)
    assert page.sections == ["best", "progress", "pareto", "cv", "importance", "scaling", "next"]  # no latency
    text = " ".join(page.text)
    assert "2-fold cross-validation of the random_forest surrogate" in text
    # the quickstart fixes data_fraction: the data axis says so instead of plotting
    assert "data: every trial used the same fraction of the training split (1)" in text


@pytest.mark.ray
def test_the_default_report_of_the_quickstart_run_is_the_interactive_page(quickstart_run, capsys):
    assert main(["report", str(quickstart_run), "--folds", "2"]) == 0
    out = capsys.readouterr().out
    report_dir = quickstart_run / "report"
    assert f"report: {report_dir / 'report.html'} (8 interactive figures)" in out
    page = rendered(report_dir / "report.html")
    assert page.images == [] and not list(report_dir.glob("*.png"))  # one file, nothing beside it
    assert page.sections == ["best", "progress", "pareto", "cv", "importance", "scaling", "next"]
    html = (report_dir / "report.html").read_text(encoding="utf-8")
    for plot in ("top-trials", "progress", "pareto-flops", "pareto-params", "cv", "importance", "scaling-compute",
                 "scaling-parameters"):
        assert f'<div id="plot-{plot}"' in html, plot
    for trial_id in pd.read_parquet(quickstart_run / RESULTS_FILE)["trial_id"]:
        assert f"trial {trial_id}" in html  # in the hover texts
    text = " ".join(page.text)
    assert "2-fold cross-validation of the random_forest surrogate" in text
    assert "data: every trial used the same fraction of the training split (1)" in text


@pytest.mark.ray
def test_scale_proposes_candidates_near_the_target(quickstart_run, capsys):
    flops = pd.read_parquet(quickstart_run / RESULTS_FILE)["cost.flops"]
    target = float(flops.max())
    assert main(["scale", str(quickstart_run), "--target-flops", str(target), "--candidates", "30",
                 "--top", "3", "--bootstrap", "20", "--json"]) == 0
    proposal = json.loads(capsys.readouterr().out)
    ranked = proposal["candidates"]
    assert 1 <= len(ranked) <= 3 and [c["rank"] for c in ranked] == list(range(1, len(ranked) + 1))
    assert all(1 / 1.5 <= c["cost.flops"] / target <= 1.5 for c in ranked)
    predicted = [c["predicted"] for c in ranked]
    assert predicted == sorted(predicted, reverse=True)  # macro_auroc: larger first
    assert proposal["law"] is not None or proposal["law_note"].startswith("scaling law on the compute axis")


def synthetic_run(folder: Path, n: int = 40, seed: int = 0) -> Path:
    """A run folder whose table has a law in FLOPs and data, latency columns and two failed trials."""
    text = reduced_quickstart({"data_fraction: 1.0": "data_fraction: {choice: [0.0625, 0.125, 0.25, 0.5, 1.0]}"})
    (folder / SPACE_COPY).write_text(text)
    spec = load_space(folder / SPACE_COPY)
    rng = np.random.default_rng(seed)
    frame = config_frame([spec.space.sample(seed, i) for i in range(n)], spec.space)
    flops = 10 ** rng.uniform(5, 8, n)
    error = 0.1 + 12.6 * flops ** -0.3 * frame["hp.data_fraction"] ** -0.5 + rng.exponential(0.02, n)
    frame.insert(0, "trial_id", [f"t{i:04d}" for i in range(n)])
    frame.insert(1, "status", ["failed" if i in (4, 9) else "ok" for i in range(n)])
    frame["val.macro_auroc"] = np.where(frame["status"] == "ok", np.clip(1 - error, 0, 1), np.nan)
    frame["cost.flops"] = flops
    frame["cost.params"] = flops / 60 * rng.uniform(0.8, 1.2, n)
    frame["latency.torch-cpu.p50_ms"] = flops / 2e7 * rng.uniform(0.9, 1.1, n)
    frame["latency.torch-cpu.p90_ms"] = frame["latency.torch-cpu.p50_ms"] * 1.3
    frame["latency.torch-cpu.std_ms"] = frame["latency.torch-cpu.p50_ms"] * 0.1  # not a latency to plot
    frame.to_parquet(folder / RESULTS_FILE, index=False)
    return folder


def test_report_shows_latency_the_data_axis_and_the_extrapolation_error(tmp_path):
    run = synthetic_run(tmp_path)
    report = build_report(run, bootstrap=50, static=True)
    page = rendered(report.path)
    assert_images_exist(report.path.parent, page)
    assert {"latency.png", "scaling_data.png", "pareto_torch-cpu_p50_ms_by_optimizer.png"} <= set(page.images)
    assert page.sections[-2:] == ["latency", "next"]  # "next" always comes last
    text = " ".join(page.text)
    for axis in ("compute", "parameters", "data"):
        fit = [s for s in report.sections if s.anchor == "scaling"][0].tables[0]
        assert axis in [row[0] for row in fit.rows]
    # the extrapolation error is in the captions and the table, as computed
    assert text.count("the law predicts the") >= 3 and "mean relative error of" in text
    assert "extrapolation error (fit on lower 2/3, predict the rest)" in text
    assert "training records" in text  # the data axis is in records of the training split
    latency = [s for s in report.sections if s.anchor == "latency"][0].tables[0]
    assert [row[0] for row in latency.rows] == ["torch-cpu.p50_ms", "torch-cpu.p90_ms"]


def recorded_figures(monkeypatch) -> list:
    """Every matplotlib figure the report's plots create from now on, in order (their artists can be read)."""
    figures: list = []

    class Recorded(plots.Figure):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            figures.append(self)

    monkeypatch.setattr(plots, "Figure", Recorded)
    return figures


def test_the_scaling_section_marks_the_trials_the_law_uses_and_warns_when_it_cannot_be_trusted(tmp_path,
                                                                                                monkeypatch):
    figures = recorded_figures(monkeypatch)
    run = load_run(synthetic_run(tmp_path))
    section = scaling_section(run, PngFigures(tmp_path), bootstrap=0, seed=0, train_records=None)
    compute = next(row for row in section.tables[0].rows if row[0] == "compute")
    collections = {c.get_label(): c for c in figures[0].axes[0].collections}  # compute is plotted first
    used, left_out = collections["used by the fit (lowest per cost bin)"], collections["Pareto-optimal, not used"]
    assert len(left_out.get_offsets()) > 0 and len(left_out.get_facecolors()) == 0  # hollow
    assert len(used.get_offsets()) > 0 and len(used.get_facecolors()) > 0  # filled
    n_used, n_front = map(int, compute[1].split(" of "))
    assert (len(used.get_offsets()), len(used.get_offsets()) + len(left_out.get_offsets())) == (n_used, n_front)
    # the same trials over one decade of FLOPs: the law cannot be told from its floor, and the report says so
    rng = np.random.default_rng(1)
    flops = 10 ** rng.uniform(6, 7, len(run.trials))
    narrow = run.trials.assign(**{"cost.flops": flops,
                                  "val.macro_auroc": 1 - 0.1 - 12.6 * flops ** -0.3 * rng.uniform(1, 1.1, len(flops))})
    figures.clear()
    section = scaling_section(replace(run, trials=narrow), PngFigures(tmp_path), bootstrap=0, seed=0,
                              train_records=None)
    compute = next(row for row in section.tables[0].rows if row[0] == "compute")
    assert compute[-1].startswith("no (")
    assert any(re.match(r"warning, compute law not to be trusted: .*x \(FLOPs per sample\) spans only \d\.\d decades",
                        note) for note in section.notes), section.notes
    texts = [t.get_text() for t in figures[0].axes[0].texts]
    assert any(t.startswith("not to be trusted:") for t in texts), texts


def test_render_escapes_what_comes_from_a_run():
    section = Section("Best <trials>", "best", "intro & <b>bold</b>",
                      tables=[Table("t", ["<th>"], [["<script>alert(1)</script>"]])], notes=["a < b"])
    page = render("title <x>", [("k", "<v>")], [section])
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "intro &amp; &lt;b&gt;bold&lt;/b&gt;" in page and "a &lt; b" in page


@pytest.mark.parametrize("case, message", [
    ("missing", "error: report: {run} is not a folder; pass the --out folder of an `ecgsearch run`."),
    ("empty", "error: report: {run} has no results.parquet, so it is not a run folder; pass the --out folder "
              "of an `ecgsearch run`."),
    ("all failed", "error: report: no trial in {run} finished with a value of val.macro_auroc (40 failed); there "
                   "is nothing to analyse until at least one trial trains (see the error column)."),
    ("metric", "error: report: {run}/results.parquet has no column val.auprc (metrics recorded: macro_auroc); "
               "pass --metric with one of those."),
])
def test_bad_inputs_are_one_sentence_and_exit_2(tmp_path, capsys, case, message):
    run = tmp_path / "run"
    argv = ["report", str(run)]
    if case == "empty":
        run.mkdir()
    elif case == "all failed":
        synthetic_run(run.parent)
        run = run.parent
        frame = pd.read_parquet(run / RESULTS_FILE).assign(status="failed")
        frame.to_parquet(run / RESULTS_FILE, index=False)
        argv = ["report", str(run)]
    elif case == "metric":
        run = synthetic_run(tmp_path)
        argv = ["report", str(run), "--metric", "auprc"]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == message.format(run=run)


def test_scale_rejects_a_bad_target_before_any_work(tmp_path, capsys):
    assert main(["scale", str(tmp_path / "nowhere"), "--target-flops", "-5"]) == 2
    assert capsys.readouterr().err.strip() == ("error: scale: --target-flops -5.0 is not a positive number of FLOPs "
                                               "per sample; pass e.g. --target-flops 2e8.")


def test_the_analysis_guide_documents_every_option():
    import argparse

    from ecgsearch.cli import build_parser

    guide = (ROOT / "docs" / "analysis.md").read_text()
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command in ("report", "scale"):
        options = [o for action in sub.choices[command]._actions for o in action.option_strings
                   if o.startswith("--") and o != "--help"]
        missing = [o for o in options if f"`{o}" not in guide]
        assert not missing, f"docs/analysis.md does not document {command} {missing}"


def test_scale_says_when_the_space_cannot_reach_the_target(tmp_path, capsys):
    run = synthetic_run(tmp_path)
    assert main(["scale", str(run), "--target-flops", "1e12", "--candidates", "10", "--bootstrap", "10"]) == 2
    assert re.fullmatch(r"error: scale: none of the 10 candidates lies within x1.5 of 1e\+12 FLOPs \(they span "
                        r"\S+ to \S+\); widen the size ranges \(width, depth, stages, channels\) in a copy of the "
                        r"space file and pass it with --space, raise --tolerance, or choose a --target-flops in "
                        r"that span.", capsys.readouterr().err.strip())

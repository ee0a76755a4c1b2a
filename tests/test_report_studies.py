"""The report's scaling-study sections (``ecgsearch.report.sections``): a law per paradigm with the efficiency
ratios, the loss-to-loss laws of the OOD losses, and the per-label-group metric against depth, channels and
kernel, on a results table with planted laws, in the static report (PNGs) and the interactive page; and no
such section for a plain run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_report import assert_images_exist, recorded_figures, rendered

from ecgsearch.analysis.loss_to_loss import fit_loss_to_loss, loss_pairs
from ecgsearch.analysis.studies import efficiency_ratio, fit_scaling_by
from ecgsearch.report import build_report
from ecgsearch.report.html import fmt
from ecgsearch.report.sections import RATIO_BOOTSTRAP, study_grouping
from ecgsearch.results import RESULTS_FILE, SPACE_COPY
from ecgsearch.search.features import config_frame
from ecgsearch.space import load_space

SPACE = """
name: studies
seed: 0
data: {dataset: synthetic, records: 120, sampling_rate: 50, seconds: 4, leads: [I, II]}
task: multilabel
metric: macro_auroc
budget: {trials: 60, epochs: 1}
space:
  architecture:
    resnet: {depth: {choice: [8, 10, 18]}, channels: {choice: [16, 24, 32]}, kernel: {choice: [7, 9, 15]}}
  optimizer:
    adamw: {lr: {loguniform: [1.0e-3, 1.0e-2]}}
  batch_size: 32
"""
LAWS = {"sl": (0.08, 6.0, 0.3), "ssl": (0.06, 8.0, 0.45)}  # E_inf, A, alpha of error against parameters
GROUPS = ("arrhythmia", "conduction_disorder")
SOURCES = ("Georgia", "PTB-XL")
DEPTH, CHANNELS, KERNEL = (f"hp.architecture.resnet.{name}" for name in ("depth", "channels", "kernel"))
STUDY_ANCHORS = ("scaling-groups", "loss-to-loss", "label-groups-by-size")


def plain_frame(folder: Path, n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` finished ResNet trials of ``SPACE`` (written to ``folder``) with a law in parameters."""
    (folder / SPACE_COPY).write_text(SPACE)
    spec = load_space(folder / SPACE_COPY)
    rng = np.random.default_rng(seed)
    frame = config_frame([spec.space.sample(seed, i) for i in range(n)], spec.space)
    frame.insert(0, "trial_id", [f"t{i:04d}" for i in range(n)])
    frame.insert(1, "status", "ok")
    params = 10 ** rng.uniform(4, 7, n)
    frame["cost.params"] = params
    frame["cost.flops"] = params * 60 * rng.uniform(0.9, 1.1, n)
    error = 0.08 + 6.0 * params ** -0.3 * (1 + rng.exponential(0.05, n))
    frame["val.macro_auroc"] = 1 - error
    return frame


def study_run(folder: Path, n: int = 60, seed: int = 0) -> Path:
    """A run folder of a paradigm study: SL and SSL trials with their own law in parameters, test and OOD
    losses on a planted loss-to-loss law, and label-group and source columns that depend on D, C and K."""
    frame = plain_frame(folder, n, seed)
    rng = np.random.default_rng(seed + 1)
    frame["paradigm"] = np.where(np.arange(n) % 2, "ssl", "sl")
    e_inf, a, alpha = (frame["paradigm"].map({p: law[k] for p, law in LAWS.items()}) for k in range(3))
    error = e_inf + a * frame["cost.params"] ** -alpha * (1 + rng.exponential(0.05, n))
    frame["val.macro_auroc"] = 1 - error
    frame["val.loss"] = 0.15 + 2 * error + rng.normal(0, 0.002, n)
    frame["test.loss"] = 0.2 + 2 * error + rng.normal(0, 0.002, n)
    frame["ood.noise.loss"] = 1.5 * (frame["test.loss"] - 0.1) ** 0.7 + 0.3 + rng.normal(0, 0.003, n)
    depth, channels, kernel = (frame[c].astype(float) for c in (DEPTH, CHANNELS, KERNEL))
    for k, name in enumerate(GROUPS):
        frame[f"val.{name}.macro_auroc"] = (0.6 + 0.01 * (k + 1) * depth + 0.002 * channels - 0.003 * kernel
                                            + rng.normal(0, 0.01, n))
    for k, name in enumerate(SOURCES):
        frame[f"val.source.{name}.macro_auroc"] = 0.7 + 0.005 * (k + 1) * depth + rng.normal(0, 0.01, n)
    frame.to_parquet(folder / RESULTS_FILE, index=False)
    return folder


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The study run, its interactive report and its static one (with the static figures by file name)."""
    run = study_run(tmp_path_factory.mktemp("study"))
    interactive = build_report(run)
    with pytest.MonkeyPatch.context() as patch:
        drawn = recorded_figures(patch)
        static = build_report(run, static=True, out_dir=run / "static")
    trials = pd.read_parquet(run / RESULTS_FILE)
    return run, trials, interactive, static, drawn


def _section(report, anchor: str):
    return next(s for s in report.sections if s.anchor == anchor)


def _plots(report) -> dict:
    return {plot.name.removeprefix("plot-"): plot.figure for section in report.sections for plot in section.plots}


def test_each_study_section_is_in_both_reports_with_its_figures(study):
    run, _, interactive, static, _ = study
    anchors = [s.anchor for s in interactive.sections]
    assert anchors == [s.anchor for s in static.sections]
    assert anchors[anchors.index("scaling"):] == ["scaling", "scaling-groups", "loss-to-loss", "label-groups-by-size",
                                                  "next"]
    page = rendered(static.path)
    assert set(STUDY_ANCHORS) <= set(page.sections)
    assert {"scaling_groups_parameters.png", "scaling_groups_compute.png", "loss-to-loss-ood_noise_loss.png",
            "by-size-architecture_resnet_depth-groups.png", "by-size-architecture_resnet_kernel-sources.png"} \
        <= set(page.images)
    assert_images_exist(static.path.parent, page)
    plots = _plots(interactive)
    assert {"scaling-groups-parameters", "scaling-groups-compute", "loss-to-loss-ood_noise_loss"} <= set(plots)
    for name in ("depth", "channels", "kernel"):
        assert {f"by-size-architecture_resnet_{name}-groups", f"by-size-architecture_resnet_{name}-sources"} <= \
            set(plots)
    html = interactive.path.read_text(encoding="utf-8")
    for anchor in STUDY_ANCHORS:
        assert f'<section id="{anchor}">' in html


def test_the_laws_per_paradigm_are_those_of_fit_scaling_by(study):
    _, trials, interactive, static, _ = study
    for report in (interactive, static):
        table = _section(report, "scaling-groups").tables[0]
        assert table.header == ["axis", "paradigm", "points used", "alpha", "E_inf", "warnings"]
        for axis in ("parameters", "compute"):
            fits = fit_scaling_by(trials, "macro_auroc", "max", axis, by="paradigm")
            rows = {row[1]: row for row in table.rows if row[0] == axis}
            assert set(rows) == set(fits) == {"sl", "ssl"}
            for group, fit in fits.items():
                low, high = fit.ci["alpha"]
                assert rows[group][2:4] == [str(fit.n), f"{fmt(fit.law.alpha, 3)} [{fmt(low, 3)}, {fmt(high, 3)}]"]
                assert rows[group][5] == str(len(fit.warnings))
    # the planted exponents: SSL's law falls faster
    fits = fit_scaling_by(trials, "macro_auroc", "max", "parameters", by="paradigm")
    assert fits["ssl"].law.alpha > fits["sl"].law.alpha
    figure = _plots(interactive)["scaling-groups-parameters"]
    laws = [t for t in figure.data if t.mode == "lines" and t.name and t.name.startswith(("sl: ", "ssl: "))]
    assert len(laws) == 2 and figure.layout.xaxis.type == "log"
    for trace in laws:
        np.testing.assert_allclose(trace.y, fits[trace.name.split(":")[0]].predict(trace.x))


def test_the_efficiency_ratio_of_the_two_paradigms_is_in_the_table(study):
    _, trials, interactive, _, _ = study
    table = _section(interactive, "scaling-groups").tables[1]
    assert [row[0] for row in table.rows] == ["parameters", "compute"]  # one pair, on each axis
    ratio = efficiency_ratio(trials, "macro_auroc", "max", "parameters", "ssl", "sl", bootstrap=RATIO_BOOTSTRAP)
    assert table.rows[0][1] == ratio.sentence("parameters")
    assert table.rows[0][2] == f"[{ratio.ci[0]:.3g}, {ratio.ci[1]:.3g}]"
    assert ratio.ratio < 1  # SSL needs fewer parameters for the same error


def test_the_loss_to_loss_laws_are_those_of_fit_loss_to_loss(study):
    _, trials, interactive, static, _ = study
    for report in (interactive, static):
        section = _section(report, "loss-to-loss")
        rows = {row[1]: row for row in section.tables[0].rows}
        assert set(rows) == {"sl", "ssl"}
        for paradigm, row in rows.items():
            pairs = loss_pairs(trials[trials["paradigm"] == paradigm], "test.loss", "ood.noise.loss")
            fit = fit_loss_to_loss(pairs["x"], pairs["y"])
            assert row[0] == "ood.noise.loss" and row[2] == str(fit.n)
            assert row[3] == f"{fmt(fit.kappa, 3)} [{fmt(fit.kappa_ci[0], 3)}, {fmt(fit.kappa_ci[1], 3)}]"
            assert row[4:7] == [fmt(fit.e_x, 3), fmt(fit.e_y, 3), fmt(fit.k, 3)]
            assert row[7] == str(len(fit.warnings))
            if fit.warnings:
                assert any(note.startswith(f"warning, ood.noise.loss of {paradigm} not to be trusted")
                           for note in section.notes)


def _expected_means(trials: pd.DataFrame, hp: str, columns: list[str]) -> pd.DataFrame:
    """The group means, computed here without the report's helper."""
    return pd.DataFrame({c: {value: trials.loc[trials[hp] == value, c].mean() for value in sorted(trials[hp].unique())}
                         for c in columns})


def test_the_label_group_figures_show_the_group_means_against_d_c_and_k(study):
    _, trials, interactive, static, drawn = study
    plots = _plots(interactive)
    group_columns = [f"val.{g}.macro_auroc" for g in GROUPS]
    source_columns = [f"val.source.{s}.macro_auroc" for s in SOURCES]
    for hp in (DEPTH, CHANNELS, KERNEL):
        name = hp.removeprefix("hp.").replace(".", "_")
        for kind, columns, labels in (("groups", group_columns, GROUPS), ("sources", source_columns, SOURCES)):
            expected = _expected_means(trials, hp, columns)
            traces = {t.name: t for t in plots[f"by-size-{name}-{kind}"].data}
            assert list(traces) == list(labels)
            for label, column in zip(labels, columns):
                np.testing.assert_allclose(traces[label].x, expected.index.astype(float))
                np.testing.assert_allclose(traces[label].y, expected[column])
                errors = [trials.loc[trials[hp] == v, column].std() / math.sqrt((trials[hp] == v).sum())
                          for v in expected.index]
                np.testing.assert_allclose(traces[label].error_y.array, errors)
    # the static figure of depth per label group draws the same means
    depth = next(f for f in drawn if f.axes and f.axes[0].get_xlabel() == "architecture.resnet.depth"
                 and {t.get_text() for t in f.axes[0].get_legend().get_texts()} == set(GROUPS))
    lines = {bars.get_label(): bars.lines[0] for bars in depth.axes[0].containers}  # errorbar: (line, caps, bars)
    expected = _expected_means(trials, DEPTH, group_columns)
    for label, column in zip(GROUPS, group_columns):
        np.testing.assert_allclose(lines[label].get_ydata(), expected[column])
    table = _section(static, "label-groups-by-size").tables[0]
    assert table.header == ["architecture.resnet.depth", "trials", *GROUPS]
    assert [row[1] for row in table.rows] == [str(int((trials[DEPTH] == v).sum())) for v in expected.index]


def test_a_plain_run_has_none_of_the_study_sections(tmp_path):
    """One architecture, no paradigm, no OOD loss, label groups on the test split only: nothing to study."""
    frame = plain_frame(tmp_path, 30)
    frame["test.arrhythmia.macro_auroc"] = 0.8
    frame.to_parquet(tmp_path / RESULTS_FILE, index=False)
    for static in (False, True):
        report = build_report(tmp_path, static=static, out_dir=tmp_path / f"report-{static}")
        anchors = [s.anchor for s in report.sections]
        assert not set(STUDY_ANCHORS) & set(anchors), anchors
        assert not set(STUDY_ANCHORS) & set(rendered(report.path).sections)


def test_one_paradigm_everywhere_is_no_study_and_both_varying_group_by_both():
    frame = pd.DataFrame({"architecture": ["resnet"] * 4, "paradigm": ["sl", None, "sl", "sl"]})
    assert study_grouping(frame) is None  # a missing paradigm is sl
    assert study_grouping(frame.drop(columns="paradigm")) is None
    assert study_grouping(frame.assign(paradigm=["sl", "ssl", "sl", "ssl"])) == "paradigm"
    assert study_grouping(frame.assign(architecture=["resnet", "convnext"] * 2)) == "architecture"
    assert study_grouping(frame.assign(architecture=["resnet", "convnext"] * 2, paradigm=["sl", "ssl"] * 2)) == \
        ["architecture", "paradigm"]


def test_a_study_whose_groups_have_no_law_yet_is_told_why_in_the_section(tmp_path):
    """Six trials, three per paradigm: too few for any law; the section stays with each axis's figure of the
    groups' points and names each group's reason."""
    report = build_report(study_run(tmp_path, n=6))
    section = _section(report, "scaling-groups")
    assert {plot.name.removeprefix("plot-") for plot in section.plots} == \
        {"scaling-groups-parameters", "scaling-groups-compute"} and not section.tables
    assert section.notes[0] == "No paradigm has a law on any axis yet; why, per paradigm and axis:"
    for axis in ("parameters", "compute"):
        for group in ("sl", "ssl"):
            assert any(note.startswith(f"{axis}, {group}: no law: ") for note in section.notes), (axis, group)

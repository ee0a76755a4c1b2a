"""``ecgsearch compare``: several runs in one self-contained page, on run folders written directly (a
results table and a space file, with Tune-like per-epoch reports where a test needs them), on one real
(reduced) run, and on bad inputs (one sentence, exit 2)."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_report import PNG, recorded_figures, reduced_quickstart, rendered, synthetic_run

from ecgsearch.analysis.compare import default_label, fronts, load_runs, shared_latencies, unique_labels
from ecgsearch.analysis.history import TUNE_DIR, epoch_history
from ecgsearch.analysis.progress import search_curve
from ecgsearch.cli import main
from ecgsearch.report import compare_runs
from ecgsearch.results import RESULTS_FILE, SPACE_COPY

SECTIONS = ["runs", "pareto", "progress", "epochs"]


def tune_reports(run: Path, trial_id: str, values: list[float], torn: bool = False) -> Path:
    """``RUN/tune/<trial_id>/result.json`` as a trial writes it: one report per epoch, its value in
    ``current.val.<metric>``, the best epoch's in ``val.<metric>`` (a real run's layout; see
    test_a_real_run_has_per_epoch_history)."""
    folder = run / TUNE_DIR / trial_id
    folder.mkdir(parents=True)
    lines = []
    for epoch, value in enumerate(values, 1):
        lines.append(json.dumps({"status": "running" if epoch < len(values) else "ok", "epoch": epoch,
                                 "epochs": epoch, "loss": 1.0 / epoch, "val.macro_auroc": max(values[:epoch]),
                                 "current.val.macro_auroc": value, "trial_id": "62e41de8",
                                 "training_iteration": epoch, "config": {"_trial_id": trial_id}}))
    text = "\n".join(lines) + "\n" + ('{"epoch": 9, "current.val.mac' if torn else "")
    (folder / "result.json").write_text(text)
    return folder


def best_id(run: Path) -> str:
    frame = pd.read_parquet(run / RESULTS_FILE)
    return str(frame.loc[frame["val.macro_auroc"].idxmax(), "trial_id"])


@pytest.fixture
def two_runs(tmp_path) -> tuple[Path, Path]:
    """Two runs of 40 and 30 trials with latency; the first keeps its best trial's per-epoch reports."""
    first, second = tmp_path / "sl", tmp_path / "ssl"
    first.mkdir()
    second.mkdir()
    for run, n, seed in ((first, 40, 0), (second, 30, 1)):
        synthetic_run(run, n=n, seed=seed)
        frame = pd.read_parquet(run / RESULTS_FILE)
        frame.assign(train_seconds=np.linspace(10, 60, n)).to_parquet(run / RESULTS_FILE, index=False)
    tune_reports(first, best_id(first), [0.5, 0.7, 0.75, 0.74])
    return first, second


def test_compare_writes_one_page_with_every_section_and_each_run_labelled(two_runs, tmp_path, capsys):
    out = tmp_path / "pages" / "compare.html"
    argv = ["compare", *map(str, two_runs), "--out", str(out), "--label", "SL", "--label", "SSL"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.endswith(f"compare: {out} (SL, SSL)\n")
    assert f"note: SSL: no per-epoch history of its best trial {best_id(two_runs[1])}" in printed
    page = rendered(out)
    assert page.sections == SECTIONS
    text = " ".join(page.text)
    assert "ecgsearch compare: SL vs SSL" in text and "Written by ecgsearch compare" in text
    for label, run in zip(("SL", "SSL"), two_runs):
        assert label in text and str(run) in text
    # every figure is inside the page: the flops front, the shared latency's, search curves, epoch curves
    assert len(page.images) == 4 and all(src.startswith("data:image/png;base64,") for src in page.images)
    for src in page.images:
        data = base64.b64decode(src.split(",", 1)[1])
        assert data.startswith(PNG) and len(data) > 5000
    assert list(out.parent.iterdir()) == [out]  # nothing beside it


def test_the_summary_gives_counts_best_trial_and_train_time(two_runs, tmp_path):
    comparison = compare_runs(two_runs, tmp_path / "c.html", labels=["SL", "SSL"])
    table = comparison.sections[0].tables[0]
    assert table.header == ["run", "folder", "trials", "best val.macro_auroc", "best trial", "architecture",
                            "train time"]
    sl = table.rows[0]
    frame = pd.read_parquet(two_runs[0] / RESULTS_FILE)
    best = frame.loc[frame["val.macro_auroc"].idxmax()]
    assert sl[:3] == ["SL", str(two_runs[0]), "40 (38 ok, 2 failed)"]
    assert sl[4:6] == [best["trial_id"], best["architecture"]]
    assert comparison.path == tmp_path / "c.html" and Path(comparison) == comparison.path  # a path, for notebooks


def test_the_overlaid_fronts_hold_both_runs_and_are_what_is_plotted(two_runs, tmp_path, monkeypatch):
    runs = load_runs(two_runs, labels=["SL", "SSL"])
    front = fronts(runs)
    assert set(front["group"]) == {"SL", "SSL"}
    for label, run in zip(runs.labels, runs.runs):  # each run's front is its own trials' front
        own = front[front["group"] == label]
        assert set(own["trial_id"]) <= set(run.trials["trial_id"]) and len(own) >= 2
    assert shared_latencies(runs) == ["latency.torch-cpu.p50_ms"]
    figures = recorded_figures(monkeypatch)
    compare_runs(two_runs, tmp_path / "c.html", labels=["SL", "SSL"])
    lines = {line.get_label(): line for line in figures[0].axes[0].get_lines()}  # the FLOPs front comes first
    for label, run in zip(runs.labels, runs.runs):
        own = front[front["group"] == label]
        line = lines[f"{label} ({len(own)} on front / {len(run.trials)})"]
        assert np.allclose(line.get_xdata(), own["cost.flops"])
        assert np.allclose(line.get_ydata(), own["val.macro_auroc"])
    markers = {line.get_marker() for line in lines.values()}
    assert len(markers) == 2  # one marker (and colour) per run


def test_the_search_curve_is_the_best_so_far_against_trials_and_training_time(two_runs):
    runs = load_runs(two_runs)
    curve = search_curve(runs.runs[0])
    frame = pd.read_parquet(two_runs[0] / RESULTS_FILE)
    assert list(curve["trial"]) == list(range(1, 41))
    assert np.isnan(curve["value"][4]) and curve["best"][4] == curve["best"][3]  # a failed trial keeps the best
    assert (np.diff(curve["best"]) >= 0).all() and curve["best"].iloc[-1] == frame["val.macro_auroc"].max()
    assert np.allclose(curve["seconds"], frame["train_seconds"].cumsum())  # failed trials' time counts too


def test_epoch_history_reads_tunes_reports_and_says_why_when_it_cannot(tmp_path):
    folder = tune_reports(tmp_path, "t0001", [0.5, 0.7, 0.65], torn=True)  # a kill tore the last line
    history = epoch_history(tmp_path, "t0001", "val.macro_auroc")
    assert history.frame["epoch"].tolist() == [1, 2, 3] and history.frame["value"].tolist() == [0.5, 0.7, 0.65]
    # a retried trial reports an epoch twice: the last report wins; progress.csv when result.json is gone
    frame = pd.DataFrame({"epoch": [1, 2, 2], "current.val.macro_auroc": [0.5, 0.6, 0.62], "loss": [1, 0.9, 0.8]})
    frame.to_csv(folder / "progress.csv", index=False)
    (folder / "result.json").unlink()
    assert epoch_history(tmp_path, "t0001", "val.macro_auroc").frame["value"].tolist() == [0.5, 0.62]
    missing = epoch_history(tmp_path, "t0002", "val.macro_auroc")
    assert missing.frame is None and missing.reason == (f"{tmp_path / TUNE_DIR / 't0002'} holds no result.json or "
                                                        "progress.csv (the run is kept elsewhere, or its tune/ "
                                                        "folder was removed)")
    assert epoch_history(tmp_path, "t0001", "val.auprc").reason == \
        f"the reports in {folder} have no epoch and val.auprc columns"


def test_labels_default_to_the_space_name_or_the_folder_and_are_made_unique(two_runs, tmp_path, capsys):
    runs = load_runs(two_runs)
    assert runs.labels == ["quickstart (sl)", "quickstart (ssl)"]
    assert runs.notes == ["2 runs are labelled quickstart; they are shown as quickstart (sl), quickstart (ssl) "
                          "(pass --label to name the runs)."]
    space = two_runs[1] / SPACE_COPY
    space.write_text(space.read_text().replace("name: quickstart\n", ""))
    runs = load_runs(two_runs)
    assert [default_label(run) for run in runs.runs] == ["quickstart", "ssl"] and runs.notes == []
    assert unique_labels(["a", "a", "a"], [Path("x/r"), Path("y/r"), Path("z/q")])[0] == \
        ["a (r)", "a (r 2)", "a (q)"]
    assert main(["compare", *map(str, two_runs), "--out", str(tmp_path / "c.html")]) == 0
    assert "compare: " in capsys.readouterr().out


def test_the_latency_front_is_left_out_with_a_note_when_no_backend_is_shared(two_runs, tmp_path):
    frame = pd.read_parquet(two_runs[1] / RESULTS_FILE)
    frame = frame.rename(columns=lambda c: c.replace("torch-cpu", "openvino-cpu"))
    frame.to_parquet(two_runs[1] / RESULTS_FILE, index=False)
    comparison = compare_runs(two_runs, tmp_path / "c.html", labels=["SL", "SSL"])
    pareto = comparison.sections[1]
    assert len(pareto.images) == 1 and pareto.notes == [
        "Latency was measured in SL, SSL, but on no backend in every run, so there is no front against latency; "
        "measure one backend in each run (ecgsearch bench RUN_DIR --backend NAME)."]


def _case(case: str, runs: tuple[Path, Path], tmp_path: Path) -> tuple[list[str], str]:
    """The arguments of a bad comparison and the sentence it must end with."""
    first, second = map(str, runs)
    out = ["--out", str(tmp_path / "c.html")]
    if case == "one run":
        return ["compare", first, *out], f"compare: 1 run ({first}) given; pass at least two run folders to compare."
    if case == "same run":
        return (["compare", first, f"{first}/", *out],
                f"compare: {first} and {first}/ are the same run; pass each run folder once.")
    if case == "not a run":
        return (["compare", first, str(tmp_path), *out],
                f"compare: {tmp_path} has no results.parquet, so it is not a run folder; pass the --out folder of "
                "an `ecgsearch run`.")
    if case == "no metric":
        frame = pd.read_parquet(runs[1] / RESULTS_FILE).drop(columns=["val.macro_auroc"])
        frame.assign(**{"val.auprc": 0.5}).to_parquet(runs[1] / RESULTS_FILE, index=False)
        return (["compare", first, second, *out],
                f"compare: {second}/results.parquet has no column val.macro_auroc (metrics recorded: auprc); pass "
                "--metric with one of those.")
    if case == "metric":
        return (["compare", first, second, "--metric", "auprc", *out],
                f"compare: {first}/results.parquet has no column val.auprc (metrics recorded: macro_auroc); pass "
                "--metric with one of those.")
    if case == "labels":
        return (["compare", first, second, "--label", "SL", *out],
                "compare: 1 --label for 2 runs; pass one --label per run folder, in the same order, or none.")
    if case == "cost":
        return (["compare", first, second, "--cost", "cost.macs", *out],
                f"compare: {first}/results.parquet has no column cost.macs (measured costs: cost.flops, cost.params, "
                "latency.torch-cpu.p50_ms, latency.torch-cpu.p90_ms, latency.torch-cpu.std_ms); pass --cost with "
                "one of those.")
    if case == "cost not measured":
        frame = pd.read_parquet(runs[1] / RESULTS_FILE)
        frame.assign(**{"latency.torch-cpu.p50_ms": np.nan}).to_parquet(runs[1] / RESULTS_FILE, index=False)
        return (["compare", first, second, "--cost", "latency.torch-cpu.p50_ms", *out],
                f"compare: {second}/results.parquet has no positive value of latency.torch-cpu.p50_ms (measured "
                "costs: cost.flops, cost.params, latency.torch-cpu.p90_ms, latency.torch-cpu.std_ms); pass --cost "
                "with one of those.")
    assert case == "out is a folder"
    return (["compare", first, second, "--out", str(tmp_path)],
            f"compare: --out {tmp_path} is a folder; pass the HTML file to write, e.g. --out {tmp_path}/compare.html.")


@pytest.mark.parametrize("case", ["one run", "same run", "not a run", "no metric", "metric", "labels", "cost",
                                  "cost not measured", "out is a folder"])
def test_bad_inputs_are_one_sentence_and_exit_2(two_runs, tmp_path, capsys, case):
    argv, message = _case(case, two_runs, tmp_path)
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"
    assert not (tmp_path / "c.html").exists()


def test_the_python_function_refuses_fewer_than_two_runs_and_one_run_twice(two_runs, tmp_path):
    from ecgsearch.errors import UserError

    with pytest.raises(UserError, match=r"^compare: no run given; pass at least two run folders to compare\.$"):
        compare_runs([], tmp_path / "c.html")
    same = str(two_runs[0])
    with pytest.raises(UserError, match=r"are the same run; pass each run folder once\.$"):
        compare_runs(iter([same, same]), tmp_path / "c.html")


def test_the_tune_folder_is_where_the_engine_keeps_it():
    from ecgsearch.engine.storage import EXPERIMENT  # the engine, read by the test only

    assert TUNE_DIR == EXPERIMENT


@pytest.mark.ray
def test_a_real_run_has_per_epoch_history(ray_session, tmp_path, capsys):
    from ecgsearch.engine import run_search, with_trials
    from ecgsearch.space import load_space

    space = tmp_path / "quickstart.yaml"
    space.write_text(reduced_quickstart({"trials: 4, epochs: 1": "trials: 2, epochs: 2"}))
    run_search(with_trials(load_space(space), None), tmp_path / "run")
    history = epoch_history(tmp_path / "run", best_id(tmp_path / "run"), "val.macro_auroc")
    assert history.frame is not None and history.frame["epoch"].tolist() == [1, 2]
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "run", copy)
    assert main(["compare", str(tmp_path / "run"), str(copy), "--out", str(tmp_path / "c.html")]) == 0
    page = rendered(tmp_path / "c.html")
    assert page.sections == SECTIONS and len(page.images) == 3  # FLOPs front, search curves, epoch curves
    assert "no per-epoch history" not in capsys.readouterr().out


def test_the_analysis_guide_documents_every_option_of_compare():
    import argparse

    from conftest import ROOT

    from ecgsearch.cli import build_parser

    guide = (ROOT / "docs" / "analysis.md").read_text()
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    options = [o for action in sub.choices["compare"]._actions for o in action.option_strings
               if o.startswith("--") and o != "--help"]
    assert options and not [o for o in options if f"`{o}" not in guide]

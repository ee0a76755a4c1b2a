"""The model card ``ecgsearch export`` writes beside the model, its bootstrap intervals, and ``predict``'s
sentences for export folders it cannot serve."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
from test_latency_search import latency_run  # noqa: F401  (the session's measured run)

from ecgsearch.analysis.intervals import bootstrap_interval
from ecgsearch.cli import main
from ecgsearch.deploy.card import render_markdown, target_unit
from ecgsearch.results import read_results


def test_the_percentile_bootstrap_covers_a_known_accuracy_about_as_often_as_it_says():
    """Accuracy of a Bernoulli(0.8) classifier on 200 records: the 90% interval holds 0.8 in about 90% of
    150 simulated test sets (binomial spread of that rate: +-2.5 points)."""
    rng = np.random.default_rng(1)
    accuracy = lambda t, s: float(np.mean(t == s))  # noqa: E731
    covered = []
    for _ in range(150):
        correct = rng.random(200) < 0.8
        low, high = bootstrap_interval(accuracy, correct, np.ones(200, bool), resamples=300, level=0.9,
                                       seed=int(rng.integers(1 << 30)))
        covered.append(low <= 0.8 <= high)
    assert 0.82 <= np.mean(covered) <= 0.97


def test_a_metric_undefined_on_every_resample_has_no_interval():
    assert bootstrap_interval(lambda t, s: float("nan"), np.zeros(5), np.zeros(5), resamples=10) is None
    assert bootstrap_interval(lambda t, s: 1.0, np.zeros(0), np.zeros(0), resamples=10) is None


@pytest.mark.parametrize("name, unit", [("hr_bpm", "bpm"), ("qrs_ms", "ms"), ("qtc_ms", "ms"), ("426783006", None),
                                        ("ms", None), ("st_level", None)])
def test_a_targets_unit_is_read_from_its_name(name, unit):
    assert target_unit(name) == unit


@pytest.fixture(scope="module")
def exported(latency_run, tmp_path_factory):  # noqa: F811
    spec, run = latency_run
    out = tmp_path_factory.mktemp("card") / "export"
    trial = read_results(run)["trial_id"].iloc[0]
    assert main(["export", str(run), "--trial", trial, "--format", "onnx", "--out", str(out),
                 "--bootstrap", "200"]) == 0
    return spec, run, trial, out


@pytest.mark.ray
def test_export_writes_a_model_card_that_says_where_the_model_came_from_and_how_good_it_is(exported, capsys):
    spec, run, trial, out = exported
    capsys.readouterr()
    card = json.loads((out / "model_card.json").read_text())
    row = read_results(run).set_index("trial_id").loc[trial]
    assert (out / "space.yaml").read_text() == (run / "space.yaml").read_text()  # the folder is self-contained
    assert card["model"]["trial_id"] == trial and card["model"]["run"] == spec.name
    assert card["model"]["architecture"] == "resnet_tiny" and card["model"]["params"]["kernel"] == 3
    assert card["model"]["hyperparameters"]["architecture.resnet_tiny.kernel"] == 3
    inputs = card["inputs"]
    assert inputs["leads"] == ["I", "II", "V1", "V5"] and inputs["sampling_rate"] == 50.0
    assert inputs["shape"] == ["batch", 4, inputs["samples"]] and inputs["dataset"] == "synthetic"
    outputs = card["outputs"]
    assert outputs["task"] == "multilabel" and len(outputs["thresholds"]) == outputs["count"] == len(outputs["targets"])
    # every val.* and test.* column, the registered test metrics with an interval around their value
    values = card["metrics"]["values"]
    assert {k for k in row.index if k.startswith(("val.", "test.")) and row[k] == row[k]} <= set(values)
    auroc = values[f"test.{spec.metric}"]
    assert auroc["value"] == pytest.approx(row[f"test.{spec.metric}"])
    low, high = auroc["interval"]
    assert low <= high and low - 0.05 <= auroc["value"] <= high + 0.05
    assert card["metrics"]["interval"]["resamples"] == 200
    assert card["costs"]["cost.flops"] == row["cost.flops"] and card["costs"]["cost.params"] == row["cost.params"]
    assert card["latency"]["torch-cpu"]["p50_ms"] == pytest.approx(row["latency.torch-cpu.p50_ms"])
    assert card["export"]["max_abs_diff_vs_pytorch"] <= 1e-3 and card["export"]["files"] == ["model.onnx"]
    # export.json keeps its keys, now read from the card
    meta = json.loads((out / "export.json").read_text())
    assert meta["trial_id"] == trial and meta["outputs"]["targets"] == [t["name"] for t in outputs["targets"]]
    # the Markdown is the same JSON, rendered
    markdown = (out / "model_card.md").read_text()
    assert markdown == render_markdown(card)
    assert f"trial {trial} of run {spec.name}" in markdown and f"{low:.4g} to {high:.4g}" in markdown
    assert f"p50_ms {card['latency']['torch-cpu']['p50_ms']:.4g}" in markdown.split("`torch-cpu`: ")[1]
    assert "`(batch, 4, 200)`: leads I, II, V1, V5 at 50 Hz" in markdown


@pytest.mark.ray
def test_predict_refuses_what_an_export_folder_cannot_serve(exported, tmp_path, capsys):
    _, _, trial, out = exported
    capsys.readouterr()
    records = tmp_path / "records"
    args = ["predict", str(out), "--data", str(records), "--out", str(tmp_path / "o")]
    assert main([*args, "--trial", "t0999"]) == 2
    assert capsys.readouterr().err == (f"error: --trial t0999: {out} is an export of trial {trial} only; leave out "
                                       "--trial, or export that trial with `ecgsearch export`.\n")
    assert main(args) == 2  # the synthetic dataset generates its records: there is no folder to point at
    assert capsys.readouterr().err == ("error: predict: dataset 'synthetic' does not read a folder of records, so "
                                       "--data cannot point it at new ones; use a run on physionet2021 (or another "
                                       "folder dataset).\n")
    damaged = tmp_path / "damaged"
    shutil.copytree(out, damaged)
    (damaged / "model_card.json").write_text("{\"model\": {}}")
    assert main(["predict", str(damaged), "--data", str(records), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == (f"error: {damaged / 'model_card.json'}: not a readable model card (KeyError: "
                                       "'trial_id'); export the trial again with `ecgsearch export`.\n")


@pytest.mark.ray
def test_an_export_without_its_runtime_is_one_sentence(exported, monkeypatch):
    from ecgsearch.deploy.runtime import exported_forward
    from ecgsearch.errors import UserError

    *_, out = exported
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    with pytest.raises(UserError) as info:
        exported_forward(out / "model.onnx", "onnx")
    assert str(info.value) == (f"{out / 'model.onnx'}: this onnx model needs onnxruntime to run, and it is "
                               "not installed; pip install onnxruntime (a dependency of ecgsearch: reinstall it).")


@pytest.mark.ray
def test_a_negative_bootstrap_is_one_sentence(latency_run, tmp_path, capsys):  # noqa: F811
    _, run = latency_run
    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path), "--bootstrap", "-1"]) == 2
    assert capsys.readouterr().err == ("error: --bootstrap: -1 is not a number of resamples >= 0; pass e.g. "
                                       "--bootstrap 1000 (0 writes the card without intervals).\n")


def test_an_openvino_export_runs_in_full_precision_on_any_cpu(tmp_path):
    """OpenVINO's CPU plugin runs in bf16 by default on CPUs with bf16 units (AMX, AVX512-BF16); the scores of
    an exported model must be the trained model's, so the runtime asks for f32 (4e-4 here before, on AMX)."""
    openvino = pytest.importorskip("openvino", reason="openvino is not installed")
    import numpy as np
    import torch

    from ecgsearch.deploy.runtime import exported_forward

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv1d(4, 32, 7, padding=3), torch.nn.ReLU(), torch.nn.Conv1d(32, 32, 7),
                                torch.nn.ReLU(), torch.nn.AdaptiveAvgPool1d(1), torch.nn.Flatten(),
                                torch.nn.Linear(32, 5)).eval()
    x = torch.randn(8, 4, 500)
    openvino.save_model(openvino.convert_model(model, example_input=x), str(tmp_path / "model.xml"),
                        compress_to_fp16=False)  # as the openvino backend exports
    with torch.no_grad():
        expected = model(x).numpy()
    got = exported_forward(tmp_path / "model.xml", "openvino")(x.numpy())
    assert np.abs(got - expected).max() <= 1e-5 * max(1.0, float(np.abs(expected).max()))

"""``ecgsearch predict``: a run's best trial scores a folder of Challenge records; ``evaluate`` reads them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ecgsearch.cli import main
from ecgsearch.engine import run_search
from ecgsearch.results import read_results
from ecgsearch.results.folder import checkpoint_path
from ecgsearch.space import load_space

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def challenge_run(tmp_path_factory, shared_data):
    """A real two-trial search on the 10 real Challenge records (Georgia, 500 Hz, 10 s)."""
    from conftest import challenge_space

    records = shared_data / "physionet2021" / "sample_records"
    tmp = tmp_path_factory.mktemp("challenge")
    space = challenge_space(tmp)
    run_search(load_space(space), tmp / "run")
    return records, tmp / "run"


@pytest.fixture(scope="module")
def shared_data():
    from conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA} (a clone without ../shared); CI has it")
    return SHARED_DATA


def test_best_weights_are_saved_as_plain_data(ray_session, challenge_run):
    _, run = challenge_run
    frame = read_results(run)
    for trial_id in frame["trial_id"]:
        checkpoint = torch.load(checkpoint_path(run, trial_id), weights_only=True)
        assert set(checkpoint) == {"state_dict", "epoch", "config", "thresholds", "targets"}
        assert checkpoint["config"]["architecture"] == "resnet_tiny" and len(checkpoint["thresholds"]) == 26
        assert len(checkpoint["targets"]) == 26 and "426783006" in checkpoint["targets"]  # the model's classes


def test_predict_then_evaluate(ray_session, challenge_run, tmp_path, capsys):
    records, run = challenge_run
    assert main(["predict", str(run), "--data", str(records), "--out", str(tmp_path / "outputs")]) == 0
    assert "10 records scored by trial t000" in capsys.readouterr().out
    outputs = sorted(p.name for p in (tmp_path / "outputs").glob("*.csv"))
    assert outputs == sorted(p.stem + ".csv" for p in records.glob("*.hea"))
    lines = (tmp_path / "outputs" / outputs[0]).read_text().splitlines()
    assert lines[0] == f"#{outputs[0][:-4]}" and len(lines[1].split(",")) == 26 and "|" not in lines[1]
    assert main(["evaluate", "--labels", str(records), "--outputs", str(tmp_path / "outputs"), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    for key in ("auroc", "auprc", "accuracy", "f_measure", "challenge_metric"):
        assert key in scores and -1 <= scores[key] <= 1, (key, scores)


def test_predict_bad_inputs(ray_session, challenge_run, tmp_path, capsys):
    records, run = challenge_run
    assert main(["predict", str(tmp_path), "--data", str(records), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == (f"error: predict: {tmp_path} is neither a run folder (no results.parquet) nor "
                                       "an exported model (no model_card.json); pass the --out folder of an "
                                       "`ecgsearch run` or of an `ecgsearch export`.\n")
    assert main(["predict", str(run), "--data", str(records), "--out", str(tmp_path / "o"), "--trial", "t9"]) == 2
    assert capsys.readouterr().err == (f"error: {run}: there is no trial 't9' in results.parquet; "
                                       "choose one of t0000, t0001.\n")
    assert main(["predict", str(run), "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == (
        f"error: {run / 'space.yaml'}: data: dataset 'physionet2021': the data folder "
        f"{tmp_path / 'none'} does not exist; set root to the unpacked Challenge 2021 training folder.\n")


def _outputs(folder):
    """``{record: (classes, binary, probabilities)}`` of a folder of Challenge output files."""
    read = {}
    for path in sorted(folder.glob("*.csv")):
        _, classes, binary, probabilities = path.read_text().splitlines()
        read[path.stem] = (classes.split(","), [int(b) for b in binary.split(",")],
                           np.array([float(p) for p in probabilities.split(",")]))
    return read


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_predict_from_an_export_folder_writes_what_the_run_does(ray_session, challenge_run, tmp_path, capsys, fmt):
    records, run = challenge_run
    trial = read_results(run)["trial_id"].iloc[-1]
    assert main(["export", str(run), "--trial", trial, "--format", fmt, "--out", str(tmp_path / "model"),
                 "--bootstrap", "50"]) == 0
    card = json.loads((tmp_path / "model" / "model_card.json").read_text())
    assert card["inputs"]["preprocessing"]["sampling_rate"] == 50.0  # the data section's own Preprocessing
    assert card["inputs"]["preprocessing"]["leads"] == ["I", "II", "III", "V2"]
    for source, out in ((run, "from_run"), (tmp_path / "model", "from_export")):
        assert main(["predict", str(source), "--data", str(records), "--out", str(tmp_path / out),
                     "--trial", trial]) == 0
        assert f"10 records scored by trial {trial}" in capsys.readouterr().out
    from_run, from_export = _outputs(tmp_path / "from_run"), _outputs(tmp_path / "from_export")
    assert set(from_run) == set(from_export) and len(from_run) == 10
    for record, (classes, binary, probabilities) in from_run.items():
        assert from_export[record][0] == classes and from_export[record][1] == binary
        assert np.abs(from_export[record][2] - probabilities).max() <= 1e-4
    # an export folder missing a part is one sentence
    model = tmp_path / "model"
    (model / card["export"]["files"][-1]).unlink()
    assert main(["predict", str(model), "--data", str(records), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == (
        f"error: {model}: the {fmt} model files its card names ({', '.join(card['export']['files'])}) are not all "
        "in the folder; copy the whole export folder, or export the trial again with `ecgsearch export`.\n")
    (model / "space.yaml").unlink()
    assert main(["predict", str(model), "--data", str(records), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == (
        f"error: {model}: the export has no space.yaml (the run's space file, which says how to read records); "
        "copy the whole export folder, or export the trial again with `ecgsearch export`.\n")


def test_a_model_writes_its_own_classes_whatever_the_new_records_label(ray_session, shared_data, tmp_path, capsys):
    """Trained on ``classes: all`` (the codes its records carry), the model meets a folder with another code
    set: before, a different count ended in 'size mismatch for head.fc.weight', and the same count wrote
    one code's score under another code it never learned."""
    import shutil

    records = shared_data / "physionet2021" / "sample_records"
    space = tmp_path / "all.yaml"
    space.write_text(f"""
name: allcodes
data: {{dataset: physionet2021, root: {records}, sampling_rate: 50, seconds: 8, leads: 4, classes: all, workers: 1}}
task: multilabel
metric: macro_auroc
budget: {{trials: 1, epochs: 1}}
space: {{architecture: {{resnet_tiny: {{channels: 8}}}}, optimizer: {{adamw: {{lr: 1.0e-3}}}}, batch_size: 4}}
""")
    run_search(load_space(space), tmp_path / "run")
    trial = read_results(tmp_path / "run")["trial_id"].iloc[0]
    trained = torch.load(checkpoint_path(tmp_path / "run", trial), weights_only=True)["targets"]
    subset = tmp_path / "subset"
    subset.mkdir()
    for header in sorted(records.glob("*.hea"))[:3]:  # three records: fewer codes than the ten
        for part in records.glob(header.stem + ".*"):
            shutil.copy(part, subset / part.name)
    assert main(["predict", str(tmp_path / "run"), "--data", str(subset), "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    for output in (tmp_path / "out").glob("*.csv"):
        assert output.read_text().splitlines()[1].split(",") == [t.split("|")[0] for t in trained]

"""The Python API (docs/python-api.md): the guide's notebook runs as written, a ``Run`` answers what the
CLI verbs print (predict's CSVs, the results table), Ray Tune users drive their own ``Tuner``, and every
refusal is one ``UserError`` whose message is the CLI's sentence."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import ecgsearch
from ecgsearch.cli import main
from ecgsearch.data.cache import open_dataset
from ecgsearch.data.prepare import prepare_data
from ecgsearch.errors import UserError, shown
from ecgsearch.results import read_results

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "python-api.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_guide_runs_as_written(ray_session, single_thread, tmp_path, monkeypatch, capsys):
    """Every Python block of docs/python-api.md, in order, in one namespace (a notebook's cells)."""
    blocks = python_blocks(GUIDE.read_text(encoding="utf-8"))
    assert len(blocks) >= 4 and any("tune.Tuner" in block for block in blocks)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "notebook"}
    for block in blocks:
        exec(compile(block, str(GUIDE), "exec"), namespace)
    out = capsys.readouterr().out
    assert "notebook: 2 trials of 2 epochs, metric macro_auroc (max)" in out
    assert re.search(r"trial t0000 ok \(\d/2\): resnet_tiny, val.macro_auroc 0\.\d{4}", out)
    assert "data.dataset: 'synthetc' is not a registered dataset" in out  # the guide's refusal, printed
    frame = read_results(tmp_path / "runs" / "notebook")
    assert len(frame) == 2 and set(frame["status"]) == {"ok"}
    # the run folder is a CLI run folder: the space it kept is the dict's, and the report verb reads it
    kept = ecgsearch.Space.from_yaml(tmp_path / "runs" / "notebook" / "space.yaml")
    assert kept.validate().summary() == namespace["space"].summary()
    # the Tune block: two configurations trained as trials, reported to Tune, weights kept
    grid = namespace["grid"]
    assert len(grid) == 2 and not grid.errors
    for result in grid:
        assert 0 <= result.metrics["val.macro_auroc"] <= 1 and result.metrics["cost.flops"] > 0
        assert (tmp_path / "runs" / "my-tuner" / "trials" / result.metrics["trial_id"] / "best.pt").is_file()


@pytest.fixture(scope="module")
def challenge(tmp_path_factory, ray_session):
    """Two trials through ``ecgsearch.run`` on the 10 real Challenge records (Georgia, resampled to 50 Hz)."""
    from conftest import SHARED_DATA, challenge_space

    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA} (a clone without ../shared); CI has it")
    records = SHARED_DATA / "physionet2021" / "sample_records"
    tmp = tmp_path_factory.mktemp("api")
    challenge_space(tmp)
    torch.set_num_threads(1)
    run = ecgsearch.run(tmp / "challenge.yaml", out=tmp / "run", trials=2)
    return records, run, tmp


def test_a_run_answers_what_the_results_table_holds(challenge):
    _, run, tmp = challenge
    table = read_results(tmp / "run")
    pd.testing.assert_frame_equal(run.results, table)
    pd.testing.assert_frame_equal(ecgsearch.load_run(tmp / "run").results, table)
    best = run.best(5)
    assert list(best["val.macro_auroc"]) == sorted(table["val.macro_auroc"], reverse=True)
    assert run.best(1)["trial_id"].item() == table.loc[table["val.macro_auroc"].idxmax(), "trial_id"]
    assert list(run.best(2, metric="val.macro_auprc")["val.macro_auprc"]) == sorted(table["val.macro_auprc"],
                                                                                     reverse=True)
    front = run.pareto(x="cost.params")
    for _, row in table.iterrows():  # a trial is on the front unless another is at least as good on both
        dominated = ((table["cost.params"] <= row["cost.params"]) & (table["val.macro_auroc"] >= row["val.macro_auroc"])
                     & ((table["cost.params"] < row["cost.params"]) | (table["val.macro_auroc"] > row["val.macro_auroc"])))
        assert (row["trial_id"] in set(front["trial_id"])) == (not dominated.any())


def test_model_and_predict_equal_the_cli_predict(challenge, tmp_path, capsys):
    records, run, _ = challenge
    model = run.model()
    assert isinstance(model, torch.nn.Module) and not model.training
    assert model.trial_id == run.best(1)["trial_id"].item()
    assert model.preprocessing["leads"] == ["I", "II", "III", "V2"] and model.preprocessing["sampling_rate"] == 50.0
    assert model.preprocessing["samples"] == 400 and len(model.targets) == 26 and len(model.thresholds) == 26
    scores = run.predict(records)
    assert scores.shape == (10, 26) and list(scores.columns) == model.targets
    assert main(["predict", str(run.out_dir), "--data", str(records), "--out", str(tmp_path / "csv")]) == 0
    capsys.readouterr()
    for path in sorted((tmp_path / "csv").glob("*.csv")):
        _, classes, binary, probabilities = path.read_text().splitlines()
        assert classes.split(",") == [name.split("|")[0] for name in model.targets]
        np.testing.assert_allclose(scores.loc[path.stem].to_numpy(), [float(p) for p in probabilities.split(",")],
                                   atol=1e-6)
        assert run.predict(records, labels=True).loc[path.stem].astype(int).tolist() == \
            [int(b) for b in binary.split(",")]
    # an array read the run's way gives the same scores; the module's forward is the network's logits
    spec = run.spec
    data = open_dataset(prepare_data(spec.data, "test", root=str(records)))
    from_array = run.predict(data.signals)
    np.testing.assert_allclose(from_array.to_numpy(), scores.loc[[str(r) for r in data.record_ids]].to_numpy(),
                               atol=1e-6)
    with torch.inference_mode():
        logits = model(torch.from_numpy(np.array(data.signals[:2, :, :400], dtype=np.float32)))
    np.testing.assert_allclose(torch.sigmoid(logits).numpy(), model.scores(data.signals[:2, :, :400]), atol=1e-6)


def test_report_and_scaling_from_a_run(challenge):
    _, run, tmp = challenge
    report = run.report(tmp / "report", bootstrap=50)
    assert Path(report.path).is_file()
    with pytest.raises(UserError, match=r"scaling law on the compute axis \(\d trials on the lower envelope\): "
                                        r"fitting .* needs at least 4 points"):
        run.scaling()


def test_the_api_refuses_in_the_cli_sentences(challenge, tmp_path, capsys):
    records, run, tmp = challenge
    missing = tmp_path / "nope.yaml"
    with pytest.raises(UserError) as refused:
        ecgsearch.Space.from_yaml(missing).validate()
    assert main(["validate", str(missing)]) == 2
    assert capsys.readouterr().err == shown(refused.value) + "\n"
    with pytest.raises(UserError) as refused:  # the run folder of another run, as `ecgsearch run` refuses it
        ecgsearch.run(tmp / "challenge.yaml", out=run.out_dir)
    assert main(["run", str(tmp / "challenge.yaml"), "--out", str(run.out_dir)]) == 2
    assert capsys.readouterr().err == shown(refused.value) + "\n"
    with pytest.raises(UserError, match=r"^--trials cannot change the budget of a resumed run"):
        ecgsearch.run(tmp / "challenge.yaml", out=run.out_dir, trials=3, resume=True)
    with pytest.raises(UserError, match=r"^Space.from_dict: expected a mapping of the space file's sections, got "
                                        r"list; pass a dict such as yaml.safe_load\(open\(path\)\).$"):
        ecgsearch.Space.from_dict([1, 2])
    with pytest.raises(UserError, match=rf"^load_run: {re.escape(str(tmp_path))} has no results.parquet, so it is "
                                        r"not a run folder; pass the --out folder of an `ecgsearch run`.$"):
        ecgsearch.load_run(tmp_path)
    with pytest.raises(UserError, match=r"^predict: records of shape \(2, 3, 400\) do not fit trial t000\d, which "
                                        r"takes \(records, 4 leads, at least 400 samples at 50 Hz\); pass leads I, "
                                        r"II, III, V2 in that order, resampled to 50 Hz"):
        run.predict(np.zeros((2, 3, 400), dtype=np.float32))
    with pytest.raises(UserError, match=r"^best: .*has no column val.nonsense \(metrics recorded: .*macro_auroc"):
        run.best(metric="nonsense")


def test_labels_need_a_classification_task():
    """A regression model's scores are values: ``labels=True`` is refused (the model is a stand-in: only the
    decision step is under test)."""
    from ecgsearch.api.model import EcgModel
    from ecgsearch.deploy.model import TrainedModel

    class Values:
        kind = "regression"

        def scores(self, outputs):
            return outputs.numpy()

    trained = TrainedModel(trial_id="t0003", model=torch.nn.Flatten(), task=Values(), ref=None, thresholds=None,
                           targets=["qrs_ms"])
    model = EcgModel(trained, {"leads": ["II"], "sampling_rate": 100.0, "samples": 1}, folder=None)
    assert model.predict(np.ones((2, 1, 1), dtype=np.float32))["qrs_ms"].tolist() == [1.0, 1.0]
    with pytest.raises(UserError, match=r"^predict: labels=True needs a classification task, but trial t0003's task "
                                        r"is 'regression' \(its scores are values in the targets' units\); leave "
                                        r"labels out.$"):
        model.predict(np.ones((2, 1, 1), dtype=np.float32), labels=True)

"""DeepFake -> PTB-XL end to end: spaces/inception_transfer.yaml at a reduced size, through ``ecgsearch run``,
pretrains InceptionTime on DeepFake ECG interval regression and fine-tunes it on a PTB-XL-layout folder (real
metadata rows and statements from ../shared/data, synthetic WFDB records)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from conftest import ROOT
from ptbxl_fixture import search_root

from ecgsearch.cli import main
from ecgsearch.results import read_results
from ecgsearch.space.yamlio import load_yaml

pytest.importorskip("deepfakeecg", reason="the deepfake dataset needs deepfake-ecg (pip install deepfake-ecg)")
pytest.importorskip("neurokit2", reason="the deepfake dataset needs neurokit2 (pip install neurokit2)")

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def reduced_transfer_file(root: Path, folder: Path) -> Path:
    """spaces/inception_transfer.yaml pointed at ``root``, tiny: 2 trials of one epoch each for pretraining,
    fine-tuning and the from-scratch run (so no warmup epoch), 10 DeepFake records, a 4-filter InceptionTime
    (6 modules: 2 stages to freeze) on one CPU; everything else (data, task, metric, transfer, the searched
    freeze_stages and data_fraction) as the file has it."""
    path = ROOT / "spaces" / "inception_transfer.yaml"
    document, _ = load_yaml(path.read_text(), str(path))
    document["data"]["root"] = str(root)
    document.update(budget={"trials": 2, "epochs": 1, "scheduler": "fifo"}, resources={"cpu": 1, "gpu": 0})
    document["transfer"]["pretrain"]["data"]["records"] = 10
    document["transfer"]["pretrain"]["epochs"] = 1
    document["space"]["architecture"] = {"inception": {"filters": 4, "depth": 6, "kernel": 9, "bottleneck": 4}}
    document["space"]["schedule"] = {"cosine": {"warmup_epochs": 0}}  # a warmup epoch needs 2 epochs or more
    out = folder / "inception_transfer.yaml"
    out.write_text(yaml.safe_dump(document, sort_keys=False))
    return out


def test_deepfake_pretraining_then_ptbxl_fine_tuning_through_the_cli(ray_session, shared_data, tmp_path) -> None:
    search_root(shared_data, tmp_path / "ptb-xl")
    space = reduced_transfer_file(tmp_path / "ptb-xl", tmp_path)
    assert main(["run", str(space), "--out", str(tmp_path / "out")]) == 0
    frame = read_results(tmp_path / "out")
    assert len(frame) == 2 and set(frame["status"]) == {"ok"}, frame.get("error")
    pretrain = [column for column in frame.columns if column.startswith("pretrain.val.")]
    assert "pretrain.val.mae" in pretrain and "pretrain.val.mae.hr_bpm" in pretrain, pretrain
    for column in ["val.macro_auroc", "scratch.val.macro_auroc", *pretrain]:
        assert all(math.isfinite(value) for value in frame[column]), (column, list(frame[column]))
    assert set(frame["hp.freeze_stages"]) <= {0, 1, 2} and set(frame["hp.data_fraction"]) <= {0.1, 0.25, 1.0}

"""The README's main job: the quickstart search, run through the CLI as a user would."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT

from ecgsearch.results import read_results

pytestmark = pytest.mark.slow


def test_quickstart_learns_something_real(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("ECGSEARCH_PLUGINS", "RAY_ADDRESS")}
    run = subprocess.run([sys.executable, "-m", "ecgsearch", "run", str(ROOT / "spaces" / "quickstart.yaml"),
                          "--out", str(tmp_path / "q")], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "best trials by val.macro_auroc" in run.stdout and "results.parquet" in run.stdout
    frame = read_results(tmp_path / "q")
    assert len(frame) >= 12 and set(frame["status"]) == {"ok"}
    assert set(frame["architecture"]) == {"resnet", "convnext"}
    assert set(frame["optimizer"]) == {"adamw", "sgd"}
    assert (frame["cost.flops"] > 0).all() and (frame["cost.flops"] <= 5.0e7).all()
    assert frame["val.macro_auroc"].max() >= 0.7

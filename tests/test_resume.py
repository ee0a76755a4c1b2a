"""A run killed with SIGKILL mid-search and restarted with --resume loses and retrains no finished trial."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import FIXTURES

from ecgsearch.results import read_results

pytestmark = pytest.mark.slow

TRIALS = 8
SPACE = f"""
name: killed
seed: 5
data: {{dataset: synthetic, records: 160, sampling_rate: 50, seconds: 4, leads: [I, II, V2]}}
task: multilabel
budget: {{trials: {TRIALS}, epochs: 3, max_concurrent: 2}}
resources: {{cpu: 1}}
space:
  architecture: {{logged_tiny: {{width: {{choice: [4, 8]}}}}}}
  optimizer: {{adamw: {{lr: {{loguniform: [1.0e-3, 1.0e-2]}}}}}}
"""


def _ecgsearch(*args: str) -> list[str]:
    return [sys.executable, "-m", "ecgsearch.cli", "-p", "ecg_test_plugins", *args]


def _env(tmp_path) -> dict:
    env = dict(os.environ)
    env["ECGSEARCH_TEST_BUILD_LOG"] = str(tmp_path / "builds.log")
    env["PYTHONPATH"] = os.pathsep.join([str(FIXTURES), env.get("PYTHONPATH", "")])
    env.pop("RAY_ADDRESS", None)
    return env


def test_sigkill_then_resume_completes_without_losing_or_retraining(tmp_path):
    space = tmp_path / "killed.yaml"
    space.write_text(SPACE)
    out = tmp_path / "out"
    env = _env(tmp_path)
    driver = subprocess.Popen(_ecgsearch("run", str(space), "--out", str(out)), env=env,
                              start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    finished_before = None
    while time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.5)
        if (out / "results.parquet").exists():
            frame = read_results(out)
            if len(frame) >= 2:
                finished_before = frame
                break
    assert finished_before is not None, driver.stderr.read().decode()[-3000:] if driver.poll() is not None else "timeout"
    assert len(finished_before) < TRIALS, "the run ended before it could be killed mid-search"
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and its whole local Ray cluster, mid-epoch
    driver.wait()

    resumed = subprocess.run(_ecgsearch("run", str(space), "--out", str(out), "--resume"), env=env,
                             capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    final = read_results(out)
    assert len(final) == TRIALS and final["trial_id"].is_unique
    assert set(final["status"]) == {"ok"}
    kept = final.set_index("trial_id").loc[list(finished_before["trial_id"])]
    assert (kept["val.macro_auroc"].values == finished_before["val.macro_auroc"].values).all()
    builds = collections.Counter((tmp_path / "builds.log").read_text().split())
    for trial_id in finished_before["trial_id"]:
        assert builds[trial_id] == 1, f"{trial_id} was trained {builds[trial_id]} times"
    assert set(builds) == set(final["trial_id"])
    # every trial has ended: its checkpoints (kept while it ran, for a resume) are gone, its best weights stay
    assert not list((out / "tune").glob("*/checkpoint_*"))
    assert all((out / "trials" / trial_id / "best.pt").is_file() for trial_id in final["trial_id"])

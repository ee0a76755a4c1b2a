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

TRIALS = 6  # run with --trials 6: the space file says 8, and a resume keeps the 6 the run started with
SPACE = f"""
name: killed
seed: 5
data: {{dataset: synthetic, records: 160, sampling_rate: 50, seconds: 4, leads: [I, II, V2]}}
task: multilabel
budget: {{trials: 8, epochs: 3, max_concurrent: 2}}
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
    driver = subprocess.Popen(_ecgsearch("run", str(space), "--out", str(out), "--trials", str(TRIALS)), env=env,
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
    # silent about the trials already in the table: no traceback, no restore error, no "did not complete"
    for noise in ("Traceback", "Could not recover from checkpoint", "Trials did not complete", "ERROR"):
        assert noise not in resumed.stderr, resumed.stderr[-3000:]

    final = read_results(out)
    assert len(final) == TRIALS and final["trial_id"].is_unique
    assert set(final["status"]) == {"ok"}
    kept = final.set_index("trial_id").loc[list(finished_before["trial_id"])]
    assert (kept["val.macro_auroc"].values == finished_before["val.macro_auroc"].values).all()
    builds = collections.Counter((tmp_path / "builds.log").read_text().split())
    for trial_id in finished_before["trial_id"]:
        assert builds[trial_id] == 1, f"{trial_id} was trained {builds[trial_id]} times"
    assert set(builds) == set(final["trial_id"])
    # the fault log agrees with the table: no trial recorded as failed whose row says ok
    from ecgsearch.engine.faults import read_faults

    assert not [e for e in read_faults(out) if e["kind"] == "failed"], read_faults(out)
    # every trial has ended: its checkpoints (kept while it ran, for a resume) are gone, its best weights stay
    assert not list((out / "tune").glob("*/checkpoint_*"))
    assert all((out / "trials" / trial_id / "best.pt").is_file() for trial_id in final["trial_id"])


class _Storage:
    """What CheckpointCleanup reads of a Tune trial's storage: a filesystem and the trial's folder."""

    def __init__(self, folder) -> None:
        import pyarrow.fs

        self.storage_filesystem = pyarrow.fs.LocalFileSystem()
        self.trial_fs_path = str(folder)
        self.trial_dir_name = folder.name  # None for a trial that never started


class _Trial:
    def __init__(self, folder, trial_id="t0000") -> None:
        self.storage, self.trial_id, self.num_failures = _Storage(folder), trial_id, 1
        self.config = {"_trial_id": trial_id}


def test_checkpoints_stay_until_the_experiment_ends(tmp_path):
    """A finished trial that a restored experiment state still calls running must find its checkpoint:
    deleting it when the trial ended gave 'Could not recover from checkpoint' on resume."""
    from ecgsearch.engine.callbacks import CheckpointCleanup

    (tmp_path / "t0000" / "checkpoint_000001").mkdir(parents=True)
    trial, cleanup = _Trial(tmp_path / "t0000"), CheckpointCleanup()
    assert "on_trial_complete" not in vars(CheckpointCleanup) and "on_trial_error" not in vars(CheckpointCleanup)
    cleanup.on_experiment_end([trial, _Trial(tmp_path / "never_checkpointed", "t0001")])  # a missing folder: quiet
    assert not (tmp_path / "t0000" / "checkpoint_000001").exists() and (tmp_path / "t0000").is_dir()


def test_the_fault_log_agrees_with_the_table(tmp_path, monkeypatch):
    from ecgsearch.engine import callbacks
    from ecgsearch.engine.faults import read_faults
    from ecgsearch.results import ResultsTable

    ResultsTable(tmp_path).append({"trial_id": "t0000", "status": "ok"})
    ResultsTable(tmp_path).append({"trial_id": "t0001", "status": "failed", "error": "RuntimeError: x"})
    monkeypatch.setattr(callbacks, "trial_error", lambda trial: "RuntimeError: restore failed")
    log = callbacks.FaultLogCallback(str(tmp_path))
    for trial_id in ("t0000", "t0001", "t0002"):
        log.on_trial_error(0, [], _Trial(tmp_path, trial_id))
    assert sorted(e["trial_id"] for e in read_faults(tmp_path)) == ["t0001", "t0002"]  # t0000's row says ok


def test_a_resume_over_a_damaged_table_is_refused_before_any_work(tmp_path, capsys):
    from ecgsearch.cli import main

    out = tmp_path / "out"
    (out / "tune").mkdir(parents=True)
    (out / "results.parquet").write_bytes(b"PAR1 truncated")
    space = tmp_path / "killed.yaml"
    space.write_text(SPACE)
    assert main(["-p", "ecg_test_plugins", "run", str(space), "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: run --resume: {out / 'results.parquet'} cannot be read (")
    assert err.endswith("it is not a results table written by `ecgsearch run`; the finished trials it held would "
                        "be lost, so nothing was resumed: restore that file from a copy, or start a new run in "
                        "another --out.\n")
    assert (out / "results.parquet").read_bytes() == b"PAR1 truncated"  # nothing was touched


def test_a_resume_keeps_the_budget_the_run_started_with(tmp_path):
    from ecgsearch.engine import resumed_spec
    from ecgsearch.results.folder import write_run_record
    from ecgsearch.space import parse_space

    spec = parse_space(SPACE)
    assert resumed_spec(spec, tmp_path).budget.trials == 8  # a run from before run.json: the file's budget
    write_run_record(tmp_path, 4)
    assert resumed_spec(spec, tmp_path).budget.trials == 4

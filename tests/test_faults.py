"""The fault-injection suite: one search that suffers every fault a cluster run meets, and survives.

Trials raise, diverge, hang, run out of memory, are SIGKILLed mid-epoch and fail at random (10% of
them, once), and the driver itself is SIGKILLed at about half the budget and resumed with --resume.
The search must complete with every trial recorded once, no finished trial lost or retrained, every
fault in OUT/faults/ with its reason, and retried trials continuing from their checkpoint.
"""

from __future__ import annotations

import collections
import json
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FIXTURES

from ecgsearch.engine.faults import (
    Watchdog,
    fault_reason,
    hang_reason,
    is_out_of_memory,
    read_faults,
    record_fault,
)
from ecgsearch.results import read_results

pytestmark = pytest.mark.slow

TRIALS = 12
HANG_S = 8
SPACE = f"""
name: faults
seed: 7
data: {{dataset: synthetic, records: 120, sampling_rate: 50, seconds: 4, leads: [I, II, V2]}}
task: multilabel
budget: {{trials: {TRIALS}, epochs: 3, max_concurrent: 2, max_failures: 1, checkpoint_every: 1,
          hang_timeout_s: {HANG_S}}}
resources: {{cpu: 1}}
search: {{algorithm: surrogate, initial_trials: 4}}
space:
  architecture: {{planned: {{}}}}
  optimizer: {{adamw: {{lr: {{loguniform: [1.0e-3, 1.0e-2]}}}}}}
  batch_size: 16
"""
PLANNED = {"t0000": "raise", "t0001": "diverge", "t0002": "hang", "t0003": "sigkill", "t0004": "oom"}


def fault_plan(trials: int, seed: int = 0) -> dict[str, str]:
    """The planned faults, plus a transient failure for a random 10% of all trials (at least one)."""
    rest = [f"t{i:04d}" for i in range(trials) if f"t{i:04d}" not in PLANNED]
    flaky = random.Random(seed).sample(rest, max(1, round(0.1 * trials)))
    return {**PLANNED, **{trial: "flaky" for trial in flaky}}


def _ecgsearch(*args: str) -> list[str]:
    return [sys.executable, "-m", "ecgsearch.cli", "-p", "ecg_test_plugins", *args]


def run_fault_scenario(tmp_path: Path, trials: int = TRIALS) -> dict:
    """Run the search with the plan, SIGKILL the driver at half the budget, resume; return the facts."""
    plan = fault_plan(trials)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    space = tmp_path / "faults.yaml"
    space.write_text(SPACE.replace(f"trials: {TRIALS},", f"trials: {trials},"))
    out = tmp_path / "out"
    env = {**os.environ, "ECGSEARCH_TEST_FAULT_PLAN": str(tmp_path / "plan.json"),
           "ECGSEARCH_TEST_BUILD_LOG": str(tmp_path / "builds.log"),
           "PYTHONPATH": os.pathsep.join([str(FIXTURES), os.environ.get("PYTHONPATH", "")])}
    env.pop("RAY_ADDRESS", None)
    started = time.monotonic()
    driver = subprocess.Popen(_ecgsearch("run", str(space), "--out", str(out)), env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    before = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.3)
        if (out / "results.parquet").exists() and len(frame := read_results(out)) >= trials // 2:
            before = frame
            break
    if before is None:
        driver.kill()
        raise AssertionError(driver.stderr.read().decode()[-3000:] if driver.poll() is not None else "timeout")
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and its local Ray cluster, trials mid-epoch
    driver.wait()
    builds_at_kill = (tmp_path / "builds.log").read_text().split()
    resumed = subprocess.run(_ecgsearch("run", str(space), "--out", str(out), "--resume"), env=env,
                             capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    builds_after = (tmp_path / "builds.log").read_text().split()[len(builds_at_kill):]
    return {"plan": plan, "before": before, "final": read_results(out), "faults": read_faults(out),
            "builds_after": builds_after, "seconds": time.monotonic() - started, "out": out, "trials": trials}


EXPECTED = {"raise": "failed", "diverge": "diverged", "hang": "failed", "oom": "failed", "sigkill": "ok",
            "flaky": "ok"}


def fault_figures(facts: dict) -> dict[str, int]:
    """Faults injected and survived, and trials lost, as docs/benchmarks.md reports them.

    A trial fault is survived when its trial ends with the expected status (transient faults: ``ok``
    after a retry from the checkpoint; permanent ones: recorded with their reason); the driver's death
    is survived when the resumed run recorded every trial, kept the earlier rows and retrained none.
    """
    plan, before, final = facts["plan"], facts["before"], facts["final"]
    rows = final.drop_duplicates("trial_id").set_index("trial_id")
    trial_faults = sum(1 for trial, kind in plan.items()
                       if trial in rows.index and rows.loc[trial, "status"] == EXPECTED[kind])
    kept = before.set_index("trial_id")["status"].to_dict() == {t: rows.loc[t, "status"] for t in before["trial_id"]}
    driver = int(len(rows) == facts["trials"] and kept and not set(facts["builds_after"]) & set(before["trial_id"]))
    return {"faults injected": len(plan) + 1, "faults survived": trial_faults + driver,
            "trials lost": facts["trials"] - len(rows), "trials": len(rows),
            "trials recorded before the driver was killed": len(before), "fault events recorded": len(facts["faults"])}


def test_the_search_survives_every_injected_fault(tmp_path):
    facts = run_fault_scenario(tmp_path)
    plan, before, final, faults = facts["plan"], facts["before"], facts["final"], facts["faults"]
    print(f"\nfault scenario: {len(final)} trials in {facts['seconds']:.0f} s; plan {plan}")

    # every trial recorded exactly once; none lost to the driver's death
    assert sorted(final["trial_id"]) == [f"t{i:04d}" for i in range(TRIALS)]
    rows = final.set_index("trial_id")
    kept = rows.loc[list(before["trial_id"])]
    assert (kept["status"].values == before["status"].values).all()
    assert kept["val.macro_auroc"].fillna(-1).tolist() == before["val.macro_auroc"].fillna(-1).tolist()
    # no trial recorded before the kill was trained again after it
    retrained = set(facts["builds_after"]) & set(before["trial_id"])
    assert not retrained, f"trained again after the resume: {retrained}"

    # each fault ends as it should, with its reason
    def row(kind: str):
        return rows.loc[next(t for t, k in plan.items() if k == kind)]

    assert row("raise")["status"] == "failed"
    assert row("raise")["error"] == "RuntimeError: injected fault: this trial always raises"
    assert row("diverge")["status"] == "diverged" and row("diverge")["error"].startswith("training loss became")
    assert row("hang")["status"] == "failed"
    assert row("hang")["error"].startswith(f"hung: no epoch finished within {HANG_S} s (budget.hang_timeout_s)")
    assert row("oom")["status"] == "failed"
    assert row("oom")["error"].startswith("out of memory: OutOfMemoryError: CUDA out of memory")
    for kind in ("sigkill", "flaky"):
        for trial in [t for t, k in plan.items() if k == kind]:
            assert rows.loc[trial, "status"] == "ok" and rows.loc[trial, "epochs"] == 3, (trial, kind)
    others = [t for t in rows.index if t not in plan]
    assert set(rows.loc[others, "status"]) == {"ok"}

    # the fault log: each fault with its reason; retried trials continued from their checkpoint
    events = collections.defaultdict(list)
    for event in faults:
        events[event["trial_id"]].append(event)
    kinds = {trial: [e["kind"] for e in events[trial]] for trial in plan}
    raise_id, hang_id, oom_id = (next(t for t, k in plan.items() if k == kind) for kind in ("raise", "hang", "oom"))
    assert kinds[raise_id].count("retry") >= 1 and kinds[raise_id][-1] == "failed"
    assert "hang" in kinds[hang_id] and kinds[hang_id][-1] == "failed"
    assert all(e["reason"].startswith("hung: ") for e in events[hang_id] if e["kind"] in ("hang", "retry", "failed"))
    assert kinds[oom_id] == ["oom"]  # recorded, never retried
    for trial in [t for t, k in plan.items() if k in ("sigkill", "flaky")]:
        retry = next(e for e in events[trial] if e["kind"] == "retry")
        assert ("worker process died" in retry["reason"]) if plan[trial] == "sigkill" else \
            retry["reason"] == "RuntimeError: injected transient fault"
        resumed = next(e for e in events[trial] if e["kind"] == "resumed")
        assert resumed["epoch"] >= 1, "the retried trial started again from epoch 1"
    assert all(e["reason"] for e in faults)

    # the surrogate searcher's state survived the driver's death: it knows every trial, old and new
    states = sorted((facts["out"] / "tune").glob("searcher-state-*.pkl"))  # named by session start time
    state = pickle.loads(states[-1].read_bytes())  # the resumed session's; written by this test's own run
    state = state.get("searcher_state", state) if isinstance(state, dict) else state
    observed = {o["config"]["optimizer.adamw.lr"] for o in state["observations"]}
    assert len(observed) == TRIALS and state["next"] == TRIALS, (len(observed), state["next"])

    figures = fault_figures(facts)
    print("fault figures:", figures)
    assert figures["trials lost"] == 0 and figures["faults survived"] == figures["faults injected"]


def test_fault_reason_names_the_cause(tmp_path):
    assert fault_reason(tmp_path, "t1", "ValueError: bad") == "ValueError: bad"
    assert fault_reason(tmp_path, "t1", "RuntimeError: CUDA out of memory. Tried") == \
        "out of memory: RuntimeError: CUDA out of memory. Tried"
    died = "ray.exceptions.ActorDiedError: The actor died unexpectedly before finishing this task."
    assert fault_reason(tmp_path, "t1", died).startswith("the trial's worker process died (killed by a signal")
    record_fault(tmp_path, "t1", "hang", hang_reason(5, "budget.hang_timeout_s", 2))
    assert fault_reason(tmp_path, "t1", died) == ("hung: no epoch finished within 5 s (budget.hang_timeout_s) "
                                                  "after epoch 2; the trial's worker was stopped")
    record_fault(tmp_path, "t1", "retry", "hung")  # the hang note belongs to the attempt before this one
    assert fault_reason(tmp_path, "t1", died).startswith("the trial's worker process died")
    assert fault_reason(tmp_path, "t2", died).startswith("the trial's worker process died")


def test_out_of_memory_is_recognised():
    assert is_out_of_memory(MemoryError())
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 8 GB"))
    assert is_out_of_memory("ray.exceptions.OutOfMemoryError: Task was killed due to the node running low on memory.")
    assert not is_out_of_memory(ValueError("shapes do not match"))


def test_the_watchdog_fires_only_when_silent():
    fired: list[float] = []
    killed: list[bool] = []
    quiet = Watchdog(0.4, fired.append, kill=lambda: killed.append(True))
    for _ in range(6):  # petted every 0.1 s: never fires
        time.sleep(0.1)
        quiet.pet()
    quiet.stop()
    assert not fired and not killed
    silent = Watchdog(0.3, fired.append, kill=lambda: killed.append(True))
    time.sleep(1.5)
    silent.stop()
    assert len(fired) == 1 and fired[0] >= 0.3 and killed == [True]

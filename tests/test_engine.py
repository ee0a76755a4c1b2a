"""The engine end to end on the session's local Ray: real trials, real results table, faults recorded."""

from __future__ import annotations

import math

import pytest

from ecgsearch.engine import run_search, with_trials
from ecgsearch.errors import UserError
from ecgsearch.results import read_results
from ecgsearch.space import load_space

pytestmark = pytest.mark.ray

DATA = "data: {dataset: synthetic, records: 120, sampling_rate: 50, seconds: 4, leads: [I, II, V1, V5]}"


def write_space(tmp_path, body: str, name: str = "small", seed: int = 3):
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nseed: {seed}\n{DATA}\ntask: multilabel\nresources: {{cpu: 1, gpu: 0}}\n{body}")
    return load_space(path)


def test_a_small_search_writes_the_contract_table(ray_session, tmp_path):
    spec = write_space(tmp_path, """
budget: {trials: 4, epochs: 2, max_concurrent: 2}
space:
  architecture:
    resnet: {depth: 8, channels: {choice: [8, 16]}, kernel: {choice: [5, 7]}}
    convnext: {stages: 2, width: 16, depth: 1, kernel: 7}
  optimizer:
    adamw: {lr: {loguniform: [1.0e-3, 1.0e-2]}}
    sgd: {lr: 0.05, momentum: 0.9}
  batch_size: {choice: [16, 32]}
  data_fraction: {choice: [0.5, 1.0]}
  augment_noise: {uniform: [0.0, 0.05]}
  augment_time_mask: 0.1
  crop_fraction: 0.8
""")
    outcome = run_search(spec, tmp_path / "out")
    frame = read_results(tmp_path / "out")
    assert len(frame) == 4 and sorted(frame["trial_id"]) == ["t0000", "t0001", "t0002", "t0003"]
    assert set(frame["status"]) == {"ok"} and (frame["epochs"] == 2).all()
    for column in ["trial_id", "status", "error", "architecture", "optimizer", "hp.batch_size", "hp.data_fraction",
                   "val.macro_auroc", "test.macro_auroc", "epochs", "train_seconds", "cost.params",
                   "cost.macs", "cost.flops"]:
        assert column in frame.columns, column
    assert (frame["cost.flops"] == 2 * frame["cost.macs"]).all() and (frame["cost.flops"] > 0).all()
    assert frame["val.macro_auroc"].between(0, 1).all() and frame["test.macro_auroc"].between(0, 1).all()
    # only the chosen option's hyperparameters are filled in
    resnet_rows = frame[frame["architecture"] == "resnet"]
    if "hp.architecture.convnext.width" in frame and len(resnet_rows):
        assert resnet_rows["hp.architecture.convnext.width"].isna().all()
    assert outcome.best(2)["val.macro_auroc"].is_monotonic_decreasing
    assert frame["hp.augment_noise"].between(0, 0.05).all() and (frame["hp.augment_time_mask"] == 0.1).all()
    assert (frame["hp.augment_p"] == 0.5).all() and (frame["hp.augment_lead_mask"] == 0).all()  # defaults
    assert (tmp_path / "out" / "space.yaml").read_text() == (tmp_path / "small.yaml").read_text()


def test_failed_and_diverged_trials_are_recorded_and_the_search_goes_on(ray_session, tmp_path):
    spec = write_space(tmp_path, """
budget: {trials: 6, epochs: 2}
space:
  architecture: {fault_raise: {}, fault_diverge: {}, logged_tiny: {}}
  optimizer: {adamw: {lr: 1.0e-3}}
""", name="faults", seed=4)  # seed 4 draws each of the three architectures
    frame = read_results(run_search(spec, tmp_path / "out").out_dir)
    assert len(frame) == 6
    by_arch = {arch: set(group["status"]) for arch, group in frame.groupby("architecture")}
    assert by_arch == {"fault_raise": {"failed"}, "fault_diverge": {"diverged"}, "logged_tiny": {"ok"}}
    failed = frame[frame["status"] == "failed"]
    assert (failed["error"] == "RuntimeError: injected fault: this architecture always raises").all()
    diverged = frame[frame["status"] == "diverged"]
    assert diverged["error"].str.startswith("training loss became").all()
    assert diverged["val.macro_auroc"].map(math.isnan).all()  # no epoch finished
    assert frame[frame["status"] == "ok"]["error"].isna().all()


def test_asha_stops_poor_trials_early(ray_session, tmp_path):
    spec = write_space(tmp_path, """
budget: {trials: 6, epochs: 4, scheduler: asha, grace_period: 1, reduction_factor: 3, max_concurrent: 2}
space:
  architecture: {logged_tiny: {}}
  optimizer: {sgd: {lr: {loguniform: [1.0e-5, 1.0e-1]}}}
""", name="asha")
    frame = read_results(run_search(spec, tmp_path / "out").out_dir)
    assert len(frame) == 6 and set(frame["status"]) <= {"ok", "stopped"}
    assert "stopped" in set(frame["status"])
    assert (frame.loc[frame["status"] == "stopped", "epochs"] < 4).all()
    assert (frame.loc[frame["status"] == "ok", "epochs"] == 4).all()


def test_an_output_folder_is_never_mixed_or_resumed_from_nothing(ray_session, tmp_path):
    spec = write_space(tmp_path, """
budget: {trials: 1, epochs: 1}
space: {architecture: logged_tiny, optimizer: adamw}
""", name="once")
    with pytest.raises(UserError, match=r"there is no run to resume here .*drop --resume to start a new run\.$"):
        run_search(spec, tmp_path / "out", resume=True)
    run_search(spec, tmp_path / "out")
    with pytest.raises(UserError, match=r"out: this folder already holds a run; pass --resume to continue it "
                                         r"or choose another --out\.$"):
        run_search(spec, tmp_path / "out")
    # resuming a finished run trains nothing and keeps the table as it was
    before = read_results(tmp_path / "out")
    run_search(spec, tmp_path / "out", resume=True)
    assert read_results(tmp_path / "out").equals(before)


def test_trials_override_is_checked():
    class Spec:
        pass

    with pytest.raises(UserError, match=r"^--trials: 0 is not an integer >= 1; pass a positive number of trials\.$"):
        with_trials(Spec(), 0)


def test_a_latency_limit_without_a_backend_is_refused_before_any_work(tmp_path):
    spec = write_space(tmp_path, """
budget: {trials: 1, epochs: 1}
constraints: {max_latency_ms: 5}
space: {architecture: logged_tiny, optimizer: adamw}
""", name="latency")
    with pytest.raises(UserError) as info:
        run_search(spec, tmp_path / "out")
    assert str(info.value) == (
        f"{tmp_path / 'latency.yaml'}: constraints.max_latency_ms: a latency limit needs a latency section naming "
        "the backend to measure (e.g. latency: {backends: [onnxruntime-cpu]}); add one or remove max_latency_ms.")
    assert not (tmp_path / "out").exists()


def test_trial_time_limit_stops_long_trials(ray_session, tmp_path):
    spec = write_space(tmp_path, """
budget: {trials: 1, epochs: 50, trial_time_limit_s: 0.5}
space: {architecture: logged_tiny, optimizer: adamw}
""", name="limited")
    frame = read_results(run_search(spec, tmp_path / "out").out_dir)
    assert list(frame["status"]) == ["stopped"] and frame["epochs"][0] < 50


def test_costs_are_counted_at_the_cropped_length(tmp_path):
    from ecgsearch.search.candidates import InputShape, candidate_costs

    spec = write_space(tmp_path, """
budget: {trials: 1, epochs: 1}
space: {architecture: {resnet: {depth: 8, channels: 16, kernel: 7}}, optimizer: adamw, crop_fraction: 0.5}
""", name="crop")
    config = spec.space.sample(spec.seed, 0)
    shape = InputShape(leads=4, samples=800, outputs=9)
    half = candidate_costs(config, spec.space, shape)
    full = candidate_costs({**config, "crop_fraction": 1.0}, spec.space, shape)
    assert half.params == full.params and 0.45 < half.macs / full.macs < 0.55

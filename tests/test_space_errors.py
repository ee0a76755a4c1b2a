"""Bad space files: each gives one exact, one-line SpaceError (file, line, dotted key, problem, hints)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from ecgsearch.errors import SpaceError
from ecgsearch.space import load_space, parse_space

FAKES = runpy.run_path(str(Path(__file__).parent / "space_files" / "fakes.py"))

# A valid file; each case replaces one piece of it. Line numbers for the expected messages:
BASE = """\
name: demo
data: {dataset: synthetic, records: 100}
task: multilabel
metric: macro_auroc
budget: {trials: 4, epochs: 2}
resources: {cpu: 1, gpu: 0}
space:
  architecture:
    resnet: {depth: {choice: [8, 10]}, kernel: 7}
    convnext: {width: {choice: [16, 32]}}
  optimizer:
    adamw: {lr: {loguniform: [1.0e-4, 1.0e-2]}}
  batch_size: {choice: [32, 64]}
"""
#  1 name / 2 data / 3 task / 4 metric / 5 budget / 6 resources / 7 space / 8 architecture /
#  9 resnet / 10 convnext / 11 optimizer / 12 adamw / 13 batch_size

DISTS = "choice, uniform, loguniform, randint, lograndint, quniform, qloguniform, qrandint, grid"
TOP = "name, seed, data, task, metric, budget, resources, search, constraints, latency, space, transfer, tracking, evaluate"
RESNET = "    resnet: {depth: {choice: [8, 10]}, kernel: 7}"
ADAMW = "    adamw: {lr: {loguniform: [1.0e-4, 1.0e-2]}}"
BUDGET = "budget: {trials: 4, epochs: 2}"
RESOURCES = "resources: {cpu: 1, gpu: 0}"

CASES = {
    "misspelled distribution": (
        "{loguniform: [1.0e-4", "{logunifrom: [1.0e-4",
        f"x.yaml:12: space.optimizer.adamw.lr: 'logunifrom' is not a distribution (allowed: {DISTS}); "
        "did you mean 'loguniform'?"),
    "unknown top-level key": (
        "resources:", "resorces:",
        f"x.yaml:6: resorces: 'resorces' is not a top-level section (allowed: {TOP}); did you mean 'resources'?"),
    "unknown architecture": (
        "    resnet:", "    resnte:",
        "x.yaml:9: space.architecture.resnte: 'resnte' is not a registered architecture "
        "(allowed: convnext, kwargsnet, resnet); did you mean 'resnet'?"),
    "unknown optimizer": (
        "    adamw:", "    adamx:",
        "x.yaml:12: space.optimizer.adamx: 'adamx' is not a registered optimizer (allowed: adamw, sgd); "
        "did you mean 'adamw'?"),
    "unknown architecture parameter": (
        "{depth:", "{dpeth:",
        "x.yaml:9: space.architecture.resnet.dpeth: 'dpeth' is not a parameter of architecture 'resnet' "
        "(allowed: depth, channels, kernel, stem); did you mean 'depth'?"),
    "unknown optimizer parameter (default space merged)": (
        ADAMW, "    adamw: {default: true, weight_decy: 0.1}",
        "x.yaml:12: space.optimizer.adamw.weight_decy: 'weight_decy' is not a parameter of optimizer 'adamw' "
        "(allowed: lr, weight_decay, betas); did you mean 'weight_decay'?"),
    "unknown dataset parameter": (
        "records: 100", "recrods: 100",
        "x.yaml:2: data.recrods: 'recrods' is not a parameter of dataset 'synthetic' "
        "(allowed: records, sampling_rate, seconds, leads, seed); did you mean 'records'?"),
    "unknown dataset": (
        "dataset: synthetic", "dataset: synthtic",
        "x.yaml:2: data.dataset: 'synthtic' is not a registered dataset (allowed: synthetic); "
        "did you mean 'synthetic'?"),
    "unknown trial parameter": (
        "  batch_size:", "  batchsize:",
        "x.yaml:13: space.batchsize: 'batchsize' is not a conditional choice or a trial parameter "
        "(allowed: architecture, optimizer, schedule, batch_size, data_fraction, crop_fraction, grad_clip, precision, augment_amplitude_scale, augment_noise, augment_baseline_wander, augment_time_mask, augment_lead_mask, augment_time_warp, augment_p); did you mean 'batch_size'?"),
    "loguniform with lo <= 0": (
        "[1.0e-4, 1.0e-2]", "[0, 1.0e-2]",
        "x.yaml:12: space.optimizer.adamw.lr: loguniform needs 0 < lo, got [0, 0.01]"),
    "uniform with lo >= hi": (
        "{loguniform: [1.0e-4, 1.0e-2]}", "{uniform: [0.1, 0.1]}",
        "x.yaml:12: space.optimizer.adamw.lr: uniform needs lo < hi, got [0.1, 0.1]"),
    "empty choice": (
        "{choice: [8, 10]}", "{choice: []}",
        "x.yaml:9: space.architecture.resnet.depth: choice needs a non-empty list of values, got []"),
    "randint with floats": (
        "{choice: [8, 10]}", "{randint: [8.5, 10]}",
        "x.yaml:9: space.architecture.resnet.depth: randint needs integers [lo, hi], got [8.5, 10]"),
    "quantized without a multiple of q": (
        "{choice: [8, 10]}", "{qrandint: [1, 4, 5]}",
        "x.yaml:9: space.architecture.resnet.depth: qrandint has no multiple of q=5 between 1 and 4"),
    "non-integer trials": (
        "trials: 4", "trials: ten",
        "x.yaml:5: budget.trials: 'ten' is not an integer >= 1"),
    "zero epochs": (
        "epochs: 2", "epochs: 0",
        "x.yaml:5: budget.epochs: 0 is not an integer >= 1"),
    "unknown scheduler": (
        BUDGET, "budget: {trials: 4, epochs: 2, scheduler: asah}",
        "x.yaml:5: budget.scheduler: 'asah' is not a registered scheduler (allowed: asha, fifo); did you mean "
        "'asha'?"),
    "grace_period above epochs": (
        BUDGET, "budget: {trials: 4, epochs: 2, scheduler: asha, grace_period: 3}",
        "x.yaml:5: budget.grace_period: 3 is not an integer between 1 and budget.epochs = 2"),
    "unknown budget key": (
        BUDGET, "budget: {trials: 4, epochs: 2, epoch: 3}",
        "x.yaml:5: budget.epoch: 'epoch' is not a budget setting (allowed: trials, epochs, scheduler, "
        "grace_period, reduction_factor, max_concurrent, trial_time_limit_s, max_failures, checkpoint_every, "
        "hang_timeout_s, time, gpu_hours, on_budget, repeats); did you mean 'epochs'?"),
    "negative gpu": (
        "gpu: 0", "gpu: -1",
        "x.yaml:6: resources.gpu: -1 is not a number in [0, 1024]"),
    "metric not for this task": (
        "metric: macro_auroc", "metric: mae",
        "x.yaml:4: metric: 'mae' does not apply to task 'multilabel' (allowed: challenge_score, macro_auroc)"),
    "unknown metric": (
        "metric: macro_auroc", "metric: macro_aurco",
        "x.yaml:4: metric: 'macro_aurco' is not a registered metric (allowed: challenge_score, macro_auroc, mae); "
        "did you mean 'macro_auroc'?"),
    "unknown task": (
        "task: multilabel", "task: multilabe",
        "x.yaml:3: task: 'multilabe' is not a registered task (allowed: multilabel, regression); "
        "did you mean 'multilabel'?"),
    "YAML syntax error": (
        "task: multilabel", "task: [multilabel",
        "x.yaml:4: invalid YAML: expected ',' or ']', but got ':'; while parsing a flow sequence that starts "
        "on line 3"),
    "duplicate key": (
        "metric: macro_auroc", "metric: macro_auroc\nmetric: challenge_score",
        "x.yaml:5: metric: duplicate key; it is already set on line 4"),
    "code-executing YAML tag": (
        "name: demo", "name: !!python/object/apply:os.system ['echo hi']",
        "x.yaml:1: name: the YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not supported here"),
    "missing required section": (
        BUDGET + "\n", "",
        "x.yaml:1: budget: the required section is missing"),
    "missing required key": (
        BUDGET, "budget: {trials: 4}",
        "x.yaml:5: budget.epochs: the required key is missing"),
    "missing conditional choice": (
        "  optimizer:\n" + ADAMW + "\n", "",
        "x.yaml:7: space.optimizer: the required key is missing"),
    "mixed distribution mapping": (
        "{choice: [8, 10]}", "{choice: [8, 10], step: 2}",
        "x.yaml:9: space.architecture.resnet.depth: 'choice' is mixed with 'step'; a distribution is a mapping "
        "with exactly one key"),
    "grid inside a multi-option conditional": (
        "{choice: [8, 10]}", "{grid: [8, 10]}",
        "x.yaml:9: space.architecture.resnet.depth: grid is only allowed outside conditional options or when "
        "the choice has a single option, and architecture has 2 options; use choice here"),
    "wrong type for a section": (
        BUDGET, "budget: [4, 2]",
        "x.yaml:5: budget: [4, 2] is not a mapping"),
    "wrong type for an option sub-space": (
        ADAMW, "    adamw: 3",
        "x.yaml:12: space.optimizer.adamw: 3 is not a mapping of parameters; use null for the factory defaults"),
    "unknown latency backend": (
        RESOURCES, "latency: {backends: [torch-cpu, torch-gpu]}",
        "x.yaml:6: latency.backends: 'torch-gpu' is not a registered backend (allowed: onnxruntime-cpu, "
        "torch-cpu); did you mean 'torch-cpu'?"),
    "empty latency backends": (
        RESOURCES, "latency: {backends: []}",
        "x.yaml:6: latency.backends: [] is not a non-empty list of backend names"),
    "unknown search algorithm": (
        RESOURCES, "search: {algorithm: randon}",
        "x.yaml:6: search.algorithm: 'randon' is not a registered searcher (allowed: random, surrogate); "
        "did you mean 'random'?"),
    "an option of the random search": (
        RESOURCES, "search: {algorithm: random, initial_trials: 8}",
        "x.yaml:6: search.initial_trials: the random search takes no options; set search.algorithm: "
        "surrogate to use this one, or remove it"),
    "surrogate options with the algorithm line forgotten": (
        RESOURCES, "search: {surrogate: xgboost, acquisition: ucb}",
        "x.yaml:6: search.surrogate: the random search takes no options; set search.algorithm: surrogate "
        "to use this one, or remove it"),
    "constraint that is not a number": (
        RESOURCES, "constraints: {max_flops: 5e7, max_latency_ms: lots}",
        "x.yaml:6: constraints.max_latency_ms: 'lots' is not a number > 0"),
    "non-integer range for an integer trial parameter": (
        "{choice: [32, 64]}", "{uniform: [16, 64]}",
        "x.yaml:13: space.batch_size: uniform [16, 64] can give 16.0, which is not an integer >= 1"),
    "trial parameter out of range": (
        "  batch_size: {choice: [32, 64]}", "  data_fraction: 1.5",
        "x.yaml:13: space.data_fraction: 1.5 is not a number in (0, 1]"),
    "not a distribution for a trial parameter": (
        "{choice: [32, 64]}", "{values: [32, 64]}",
        f"x.yaml:13: space.batch_size: 'values' is not a distribution (allowed: {DISTS})"),
    "dataset value that is a mapping": (
        "records: 100", "records: {a: 1}",
        "x.yaml:2: data.records: {'a': 1} is not a scalar or a list of scalars"),
    "default that is not a boolean": (
        RESNET, "    resnet: {default: yes please}",
        "x.yaml:9: space.architecture.resnet.default: 'yes please' is not true or false"),
    "negative seed": (
        "name: demo", "name: demo\nseed: -1",
        "x.yaml:2: seed: -1 is not an integer >= 0"),
}


@pytest.fixture(scope="module")
def registries():
    return FAKES["fake_registries"]()


def test_base_file_is_valid(registries):
    spec = parse_space(BASE, source="x.yaml", registries=registries)
    assert spec.name == "demo"


@pytest.mark.parametrize("old, new, message", CASES.values(), ids=list(CASES))
def test_bad_space_file_message(registries, old, new, message):
    assert old in BASE, "the case no longer matches the base file"
    with pytest.raises(SpaceError) as caught:
        parse_space(BASE.replace(old, new, 1), source="x.yaml", registries=registries)
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)


def test_top_level_list(registries):
    with pytest.raises(SpaceError) as caught:
        parse_space("- a\n- b\n", source="x.yaml", registries=registries)
    assert str(caught.value) == (
        f"x.yaml:1: the top level must be a mapping of sections, not ['a', 'b'] (allowed: {TOP})"
    )


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_empty_file(registries, text):
    with pytest.raises(SpaceError) as caught:
        parse_space(text, source="x.yaml", registries=registries)
    assert str(caught.value) == (
        "x.yaml: the file is empty; a space file is a mapping with the sections data, task, budget and space"
    )


def test_unreadable_file(registries, tmp_path):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(SpaceError) as caught:
        load_space(missing, registries)
    assert str(caught.value) == f"{missing}: cannot read the file (No such file or directory)"


def test_file_errors_name_the_path_and_line(registries, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(BASE.replace("trials: 4", "trials: 2.5"))
    with pytest.raises(SpaceError) as caught:
        load_space(path, registries)
    assert str(caught.value) == f"{path}:5: budget.trials: 2.5 is not an integer >= 1"


def test_error_in_block_style_points_at_the_inner_line(registries):
    text = BASE.replace(ADAMW, "    adamw:\n      lr:\n        logunifrom: [1.0e-4, 1.0e-2]")
    with pytest.raises(SpaceError) as caught:
        parse_space(text, source="x.yaml", registries=registries)
    assert str(caught.value).startswith("x.yaml:14: space.optimizer.adamw.lr: 'logunifrom' is not a distribution")


def test_mapping_input_has_no_line(registries):
    with pytest.raises(SpaceError) as caught:
        parse_space({"budget": {"trials": 1, "epochs": 1}}, registries=registries)
    assert str(caught.value) == "<string>: data: the required section is missing"


def test_every_error_is_a_space_error_not_a_traceback(registries):
    """Fuzz-ish: every way of breaking each line of the base file yields a SpaceError or parses."""
    junk = ["", "[", "{a: 1}", "[1, 2]", "-3", "null", "'x'", "0.5", "{choice: []}", "{grid: [1]}"]
    lines = BASE.splitlines()
    for number, line in enumerate(lines):
        key, sep, _ = line.partition(":")
        for value in junk:
            text = "\n".join([*lines[:number], f"{key}{sep} {value}", *lines[number + 1:]])
            try:
                parse_space(text, source="x.yaml", registries=registries)
            except SpaceError as error:
                assert str(error).startswith("x.yaml")

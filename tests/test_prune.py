"""Pruning: the narrower space validates, loads, drops what is dominated and keeps the best trial."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ecgsearch.analysis import config_frame
from ecgsearch.analysis.prune import contains, prune_run, prune_space
from ecgsearch.cli import main
from ecgsearch.errors import UserError
from ecgsearch.space import load_space, parse_space
from ecgsearch.space.yamlio import load_yaml

TEXT = """name: prunable
data: {dataset: synthetic, records: 60, sampling_rate: 50, seconds: 4, leads: [I, II]}
task: multilabel
metric: macro_auroc
budget: {trials: 80, epochs: 1}
space:
  architecture:
    resnet: {depth: {choice: [8, 10]}, channels: {choice: [8, 16, 32]}, kernel: 7}
    convnext: {stages: {randint: [2, 3]}, width: {choice: [8, 16]}, depth: 1}
  optimizer:
    adamw: {lr: {loguniform: [1.0e-5, 1.0]}}
    sgd: {lr: 0.1, momentum: {choice: [0.0, 0.9]}}
  batch_size: {choice: [16, 32]}
"""


def truth(config: dict) -> float:
    """convnext and sgd are clearly worse; adamw wants lr near 3e-3; depth and batch size do not matter."""
    value = 0.8 - 0.15 * (config["architecture"] == "convnext") - 0.15 * (config["optimizer"] == "sgd")
    value += 0.01 * math.log2(config.get("architecture.resnet.channels", 8) / 8)
    if config["optimizer"] == "adamw":
        value -= 0.03 * (math.log10(config["optimizer.adamw.lr"]) + 2.5) ** 2
    return value


def run_results(spec, n: int, seed: int, value=truth, noise: float = 0.003):
    configs = [spec.space.sample(seed, i) for i in range(n)]
    frame = config_frame(configs, spec.space)
    rng = np.random.default_rng(seed)
    frame["val.macro_auroc"] = [value(c) + noise * rng.standard_normal() for c in configs]
    frame["trial_id"] = [f"t{i:04d}" for i in range(n)]
    frame["status"] = "ok"
    frame.loc[3, ["val.macro_auroc", "status"]] = [np.nan, "failed"]
    return frame


def prune(text: str, frame, **kwargs):
    spec = parse_space(text, source="s.yaml")
    return spec, prune_space(spec, load_yaml(text, "s.yaml")[0], frame, candidates=4000, **kwargs)


def test_dominated_options_go_ranges_shrink_and_the_best_trial_stays(tmp_path) -> None:
    spec = parse_space(TEXT, source="s.yaml")
    frame = run_results(spec, 80, seed=0)
    _, pruned = prune(TEXT, frame)
    keys = {c.key for c in pruned.changes}
    assert {"space.architecture", "space.optimizer"} <= keys
    assert "space.batch_size" not in keys and "space.architecture.resnet.depth" not in keys  # no effect
    new = parse_space(pruned.text("pruned"), source="p.yaml")
    assert new.space.choices == {"architecture": ("resnet",), "optimizer": ("adamw",)}
    lr = next(p.dist for p in new.space.parameters if p.name == "optimizer.adamw.lr")
    assert 1e-5 < lr.lo < 3e-3 < lr.hi < 1.0  # cut around the optimum, still containing it
    best = frame.loc[frame["val.macro_auroc"].idxmax()]
    assert pruned.best["optimizer.adamw.lr"] == pytest.approx(best["hp.optimizer.adamw.lr"])
    assert contains(new.space, pruned.best) == []
    path = tmp_path / "pruned.yaml"
    path.write_text(pruned.text("header line"))
    assert load_space(path).space.choices["architecture"] == ("resnet",)  # loads from a file
    diff = pruned.diff()
    assert "space.architecture: options ['resnet', 'convnext'] -> ['resnet'] (convnext: at best" in diff
    assert "-    convnext:" in diff


@pytest.mark.parametrize("seed", range(4))
def test_the_best_configuration_so_far_is_never_excluded(seed: int) -> None:
    """On noisy results of random structure the pruned space still contains the best trial."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 0.05, 6)

    def random_truth(c: dict) -> float:
        features = [c["architecture"] == "resnet", c["optimizer"] == "sgd", c["batch_size"] == 32,
                    math.log10(c.get("optimizer.adamw.lr", 0.1)), c.get("architecture.resnet.channels", 0) / 32,
                    c.get("architecture.convnext.stages", 0)]
        return 0.7 + float(np.dot(weights, features))

    spec = parse_space(TEXT, source="s.yaml")
    frame = run_results(spec, 40, seed=seed + 10, value=random_truth, noise=0.02)
    _, pruned = prune(TEXT, frame, kappa=0.0, tolerance=0.0, min_trials=1)  # as aggressive as it gets
    new = parse_space(pruned.text(), source="p.yaml")
    assert contains(new.space, pruned.best) == []
    assert pruned.best == spec.space.active(pruned.best)


def test_a_minimised_metric_keeps_its_lowest_trial() -> None:
    text = TEXT.replace("metric: macro_auroc", "metric: ece")
    spec = parse_space(text, source="s.yaml")
    frame = run_results(spec, 60, seed=3).rename(columns={"val.macro_auroc": "val.ece"})
    frame["val.ece"] = 1 - frame["val.ece"]
    _, pruned = prune(text, frame)
    best = frame.loc[frame["val.ece"].idxmin()]
    assert pruned.best["architecture"] == best["architecture"] == "resnet"
    assert parse_space(pruned.text()).space.choices["architecture"] == ("resnet",)


def test_options_named_without_parameters_and_default_spaces_are_rewritten() -> None:
    text = TEXT.replace("    sgd: {lr: 0.1, momentum: {choice: [0.0, 0.9]}}\n", "    sgd: {default: true}\n")
    spec = parse_space(text, source="s.yaml")
    _, pruned = prune(text, run_results(spec, 60, seed=4))
    assert "sgd" not in parse_space(pruned.text()).space.choices["optimizer"]


def write_run(tmp_path, n: int):
    run = tmp_path / "run"
    run.mkdir()
    (run / "space.yaml").write_text(TEXT)
    run_results(parse_space(TEXT), n, seed=5).to_parquet(run / "results.parquet")
    return run


def test_the_prune_command_writes_the_file_and_prints_the_diff(tmp_path, capsys) -> None:
    run = write_run(tmp_path, 60)
    assert main(["prune", str(run), "--candidates", "2000"]) == 0
    out = capsys.readouterr().out
    assert "space.architecture: options ['resnet', 'convnext'] -> ['resnet']" in out
    assert f"pruned space: {run / 'space.pruned.yaml'}" in out
    text = (run / "space.pruned.yaml").read_text()
    assert text.startswith("# prunable, pruned by `ecgsearch prune`")
    assert load_space(run / "space.pruned.yaml").name == "prunable"


def test_bad_prune_requests_are_one_clear_sentence(tmp_path, capsys) -> None:
    with pytest.raises(UserError, match=r"prune: .* has no results.parquet, so it is not a run folder; pass the --out "
                                        r"folder of an `ecgsearch run`\."):
        prune_run(tmp_path)
    run = write_run(tmp_path, 6)
    with pytest.raises(UserError, match=r"pruning needs at least 8 trials with a finite val.macro_auroc, and the "
                                        r"results have 5; run more trials first\."):
        prune_run(run)
    assert main(["prune", str(run), "--candidates", "10"]) == 2
    assert "--candidates 10 is too few to judge the space; pass at least 100." in capsys.readouterr().err

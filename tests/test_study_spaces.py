"""The ready space files: every one is valid, and each study space of the architecture/cost work runs end
to end at a reduced size (tiny synthetic data, one epoch, small models) on the session's local Ray."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

from ecgsearch.engine import run_search
from ecgsearch.results import read_results
from ecgsearch.space import load_space, parse_space
from ecgsearch.space.yamlio import load_yaml

SPACES = sorted((ROOT / "spaces").glob("*.yaml"))
SMALL_DATA = {"dataset": "synthetic", "records": 120, "sampling_rate": 50, "seconds": 4,
              "leads": ["I", "II", "V1", "V5"]}  # the engine tests' data: one cache entry for both

# study space -> (trials, constraints that keep the reduced run's models small)
REDUCED: dict[str, tuple[int, dict[str, Any]]] = {
    "regnet_space_a": (1, {"max_flops": 2.0e7}),
    "resnet_dck": (1, {}),  # grid point 0: depth 8, 16 channels, kernel 3
    "resnet_vs_transformer": (2, {"max_params": 1.0e5}),
}


@pytest.mark.parametrize("path", SPACES, ids=[p.stem for p in SPACES])
def test_every_space_file_is_valid(path: Path) -> None:
    spec = load_space(path)
    assert spec.name == path.stem and spec.budget.trials >= 1
    assert spec.space.choices["architecture"] and spec.space.choices["optimizer"]


def test_the_study_spaces_exist_and_are_documented() -> None:
    studies = (ROOT / "docs" / "studies.md").read_text()
    for name in REDUCED:
        assert (ROOT / "spaces" / f"{name}.yaml").is_file(), name
        assert f"spaces/{name}.yaml" in studies, name
    assert set(load_space(ROOT / "spaces" / "regnet_space_a.yaml").space.choices["optimizer"]) == {
        "adamw", "sgd", "sgd_momentum"}


def reduced(name: str, tmp_path: Path) -> Any:
    """The study's space, with tiny synthetic data, one epoch and limits that keep its models small."""
    path = ROOT / "spaces" / f"{name}.yaml"
    document, _ = load_yaml(path.read_text(), str(path))
    trials, constraints = REDUCED[name]
    document.update(data=SMALL_DATA, budget={"trials": trials, "epochs": 1}, resources={"cpu": 1, "gpu": 0},
                    constraints=constraints)
    return parse_space(document, source=str(tmp_path / f"{name}.yaml"))


@pytest.mark.ray
@pytest.mark.parametrize("name", sorted(REDUCED))
def test_study_space_runs_at_a_reduced_size(ray_session: Any, tmp_path: Path, name: str) -> None:
    spec = reduced(name, tmp_path)
    frame = read_results(run_search(spec, tmp_path / "out").out_dir)
    assert len(frame) == REDUCED[name][0] and set(frame["status"]) == {"ok"}, frame.get("error")
    assert set(frame["architecture"]) <= set(spec.space.choices["architecture"])
    for column in ("cost.params", "cost.flops", "cost.receptive_field", "cost.receptive_field_s", "cost.stages",
                   "cost.feature_width"):
        assert frame[column].notna().all(), column
    assert (frame["cost.receptive_field_s"] == frame["cost.receptive_field"] / 50.0).all()
    for limit, column in (("max_flops", "cost.flops"), ("max_params", "cost.params")):
        if limit in REDUCED[name][1]:
            assert (frame[column] <= REDUCED[name][1][limit]).all()

"""The ready space files: every one is valid, and each study space of the architecture/cost work runs end
to end at a reduced size (tiny synthetic data, one epoch, small models) on the session's local Ray; a space
that needs PTB-XL's single-label superclasses runs on a PTB-XL-layout folder of the same size instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from challenge_fixture import search_tree
from conftest import ROOT
from ptbxl_fixture import search_root

from ecgsearch.engine import run_search
from ecgsearch.plugins import get_registries
from ecgsearch.results import read_results
from ecgsearch.space import load_space
from ecgsearch.space.yamlio import load_yaml

SPACES = sorted((ROOT / "spaces").glob("*.yaml"))
SMALL_DATA = {"dataset": "synthetic", "records": 120, "sampling_rate": 50, "seconds": 4,
              "leads": ["I", "II", "V1", "V5"]}  # the engine tests' data: one cache entry for both

# study space -> (trials, constraints that keep the reduced run's models small)
REDUCED: dict[str, tuple[int, dict[str, Any]]] = {
    "regnet_space_a": (1, {"max_flops": 2.0e7}),
    "resnet_dck": (4, {}),  # grid points 0-3 of NARROWED: depth 8; channels 16, 32; kernels 3, 7
    "resnet_vs_transformer": (2, {"max_params": 1.0e5}),
    "ptbxl_architectures": (2, {"max_flops": 3.0e7}),  # admits the smaller draws of every family
}
# Study spaces whose labels the synthetic data cannot give (single-label superclasses, task multiclass): they
# run on a PTB-XL-layout folder (real metadata rows, synthetic records: tests/ptbxl_fixture.py) at
# SMALL_DATA's rate, length and leads. Those read per label group and per source of PhysioNet 2021 run on
# a Challenge training tree of the same size (three sources, classes of the four groups:
# tests/challenge_fixture.py).
ON_PTBXL = {"ptbxl_architectures"}
ON_CHALLENGE = {"resnet_dck"}
# ResNet hyperparameters narrowed for the reduced size (kernels of 15 and 31 do not fit 4 s at 50 Hz)
NARROWED = {"resnet_dck": {"channels": {"grid": [16, 32]}, "kernel": {"grid": [3, 7]}}}


@pytest.mark.parametrize("path", SPACES, ids=[p.stem for p in SPACES])
def test_every_space_file_is_valid(path: Path) -> None:
    spec = load_space(path)
    assert spec.name == path.stem and spec.budget.trials >= 1
    assert spec.space.choices["architecture"] and spec.space.choices["optimizer"]


def test_the_study_spaces_exist_and_are_documented() -> None:
    studies = (ROOT / "docs" / "studies.md").read_text()
    for name in (*REDUCED, "scaling_sl_vs_ssl"):
        assert (ROOT / "spaces" / f"{name}.yaml").is_file(), name
        assert f"spaces/{name}.yaml" in studies, name
    assert set(load_space(ROOT / "spaces" / "regnet_space_a.yaml").space.choices["optimizer"]) == {
        "adamw", "sgd", "sgd_momentum"}


def reduced(name: str, tmp_path: Path, root: Path | None = None) -> Any:
    """The study's space, with tiny synthetic data (or the dataset of the file at ``root``, at the same size),
    one epoch and limits that keep its models small."""
    path = ROOT / "spaces" / f"{name}.yaml"
    document, _ = load_yaml(path.read_text(), str(path))
    trials, constraints = REDUCED[name]
    data = SMALL_DATA
    if root is not None:
        size = {key: SMALL_DATA[key] for key in ("sampling_rate", "seconds", "leads")}
        data = {**document["data"], "root": str(root), **size}
    document.update(data=data, budget={"trials": trials, "epochs": 1}, resources={"cpu": 1, "gpu": 0},
                    constraints=constraints)
    document["space"]["architecture"].get("resnet", {}).update(NARROWED.get(name, {}))
    schedule = document["space"].get("schedule")
    if isinstance(schedule, dict) and "cosine" in schedule:  # one epoch leaves none after a warmup epoch
        document["space"]["schedule"] = {"cosine": {**(schedule["cosine"] or {}), "warmup_epochs": 0}}
    path = tmp_path / f"{name}.yaml"  # a file: the run folder keeps it (space.yaml), which the report reads
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return load_space(path)


@pytest.mark.ray
@pytest.mark.parametrize("name", sorted(REDUCED))
def test_study_space_runs_at_a_reduced_size(ray_session: Any, request: Any, tmp_path: Path, name: str) -> None:
    root = None
    if name in ON_PTBXL:  # skips without ../shared/data
        root = tmp_path / "ptb-xl"
        search_root(request.getfixturevalue("shared_data"), root)
    if name in ON_CHALLENGE:
        root = search_tree(tmp_path / "challenge")
    spec = reduced(name, tmp_path, root)
    out = run_search(spec, tmp_path / "out").out_dir
    frame = read_results(out)
    assert len(frame) == REDUCED[name][0] and set(frame["status"]) == {"ok"}, frame.get("error")
    assert set(frame["architecture"]) <= set(spec.space.choices["architecture"])
    for column in ("cost.params", "cost.flops", "cost.receptive_field", "cost.receptive_field_s",
                   "cost.receptive_field_frac", "cost.stages", "cost.feature_width"):
        assert frame[column].notna().all(), column
    assert (frame["cost.receptive_field_s"] == frame["cost.receptive_field"] / 50.0).all()
    assert (frame["cost.receptive_field_frac"] == frame["cost.receptive_field"] / 200).all()  # 4 s at 50 Hz
    for limit, column in (("max_flops", "cost.flops"), ("max_params", "cost.params")):
        if limit in REDUCED[name][1]:
            assert (frame[column] <= REDUCED[name][1][limit]).all()
    if name in ON_CHALLENGE:  # the D/C/K study reads its results per label group and per source
        assert_group_report(frame, out, tmp_path)


def assert_group_report(frame: Any, out: Path, tmp_path: Path) -> None:
    """Every label group and source has its column, and the report's per-group section plots them."""
    from ecgsearch.report import build_report

    for group in ("arrhythmia", "conduction_disorder", "axis_deviation", "prolonged_intervals"):
        assert frame[f"val.{group}.macro_auroc"].notna().all(), group
    for source in ("CPSC", "Georgia", "PTB-XL"):
        assert frame[f"val.source.{source}.macro_auroc"].notna().all(), source
    report = build_report(out, tmp_path / "report")
    section = next(s for s in report.sections if s.anchor == "label-groups-by-size")
    assert section.plots and len(section.tables) == 4  # channels and kernel, per label group and per source
    assert all(len(table.rows) == 2 for table in section.tables)


@pytest.mark.usefixtures("single_thread")  # see conftest.py: an LSTM on 2 threads of a busy 2-core runner takes seconds
def test_every_family_of_the_ptbxl_comparison_builds_for_ptbxl_input() -> None:
    """RNN, LSTM, plain CNN (ResNet-1D), Transformer, InceptionTime: the first draw of each, built for the file's
    input (12 leads, 10 s at 100 Hz), gives one score per superclass."""
    spec = load_space(ROOT / "spaces" / "ptbxl_architectures.yaml")
    assert spec.task.name == "multiclass" and spec.data.dataset == "ptbxl"
    assert spec.data.params["labels"] == "superdiagnostic" and spec.data.params["single_label"] is True
    first: dict[str, dict[str, Any]] = {}
    for index in range(100):
        name, params = spec.space.resolve(spec.space.active(spec.space.sample(spec.seed, index))).choices[
            "architecture"]
        first.setdefault(name, params)
    assert set(first) == {"rnn", "lstm", "resnet", "transformer", "inception"}
    for name, params in first.items():
        model = get_registries().architectures.get(name).load()(12, 1000, 5, **params).eval()
        with torch.no_grad():
            assert model(torch.zeros(2, 12, 1000)).shape == (2, 5), name


def reduced_sl_vs_ssl(tmp_path: Path) -> Any:
    """The SL-vs-SSL study at a tiny size: 240 synthetic records for training, pretraining and (with another
    seed) as the out-of-distribution dataset; a grid of five ResNet widths (4-64 channels: 4e3-1e6
    parameters, so each paradigm's ResNets have a parameter law) and a Transformer, trained from scratch,
    fine-tuned or linearly probed, 2 seeds each; 3 epochs everywhere, batch 16."""
    path = ROOT / "spaces" / "scaling_sl_vs_ssl.yaml"
    document, _ = load_yaml(path.read_text(), str(path))
    data = {**SMALL_DATA, "records": 240}
    document.update(data=data, budget={"trials": 18, "epochs": 3, "repeats": 2}, resources={"cpu": 1, "gpu": 0},
                    search={"algorithm": "grid"}, constraints={})
    document["transfer"]["pretrain"].update(epochs=3, data_fraction=1.0)
    document["evaluate"]["datasets"][0]["data"] = {**data, "seed": 1}
    document["space"]["architecture"] = {
        "resnet": {"depth": 8, "channels": {"choice": [4, 8, 16, 32, 64]}, "kernel": 7},
        "transformer": {"width": 16, "depth": 1, "heads": 2, "patch": 20}}
    document["space"].update(data_fraction=1.0, batch_size=16)
    reduced_path = tmp_path / "scaling_sl_vs_ssl.yaml"  # a file: the run folder keeps it (space.yaml)
    reduced_path.write_text(yaml.safe_dump(document, sort_keys=False))
    return load_space(reduced_path)


@pytest.mark.ray
def test_the_sl_vs_ssl_study_runs_end_to_end(ray_session: Any, tmp_path: Path) -> None:
    """Supervised and self-supervised trials in one search, sharing one pretrained encoder per model, with
    out-of-distribution losses, into a report with the study's sections."""
    from ecgsearch.report import build_report

    spec = reduced_sl_vs_ssl(tmp_path)
    out = run_search(spec, tmp_path / "out").out_dir
    frame = read_results(out)
    assert len(frame) == 36 and set(frame["status"]) == {"ok"}, frame.get("error")  # 18 configurations x 2 seeds
    assert frame.groupby("config_id")["seed"].nunique().eq(2).all()
    assert set(frame["paradigm"]) == {"sl", "ssl"} and set(frame["architecture"]) == {"resnet", "transformer"}
    ssl = frame[frame["paradigm"] == "ssl"]
    assert ssl["pretrain.val.loss"].notna().all() and frame.loc[frame["paradigm"] == "sl", "pretrain.key"].isna().all()
    # one pretraining per model and repeat (the repeat's seed pretrains too), shared by fine-tuning and probing
    assert ssl["pretrain.key"].nunique() == 12 and (~ssl["pretrain.cached"].astype(bool)).sum() == 12
    sl_samples = frame[frame["paradigm"] == "sl"].groupby("hp.data_fraction")["cost.train_samples"].first()
    assert (ssl["cost.train_samples"] > ssl["hp.data_fraction"].map(sl_samples)).all()  # the pretraining counts
    for name in ("noise_10db", "wander_0p5", "dropout_3leads", "ptbxl"):
        assert frame[f"ood.{name}.loss"].notna().all(), name
    report = build_report(out, tmp_path / "report")
    assert report.path.is_file() and report.trials == 18  # configurations: each the mean of its 2 seeds
    # The study's sections: a law per family and paradigm, and each OOD loss against the ID loss per paradigm.
    # Whether a 3-epoch group has a law depends on its few points (a group's lower envelope may keep 3 of its 5
    # widths), so each group must have its law or the reason it has none; the laws themselves are checked on
    # planted tables in tests/test_report_studies.py.
    sections = {section.anchor: section for section in report.sections}
    groups = {f"{architecture}/{paradigm}" for architecture in ("resnet", "transformer") for paradigm in ("sl", "ssl")}
    assert len(sections["scaling-groups"].plots) == 2  # parameters and compute: every group's points, its law
    assert accounted(sections["scaling-groups"], "parameters, {}: no law: ", "parameters") == groups
    losses = sections["loss-to-loss"]
    assert len(losses.plots) == 4  # one figure per OOD loss, every trial's point in it
    for name in ("noise_10db", "wander_0p5", "dropout_3leads", "ptbxl"):
        assert accounted(losses, f"ood.{name}.loss of {{}}: ", f"ood.{name}.loss") == {"sl", "ssl"}, name


def accounted(section: Any, reason: str, first_cell: str) -> set[str]:
    """The groups with a law (a table row whose first cell is ``first_cell``) or a note saying why not (a note
    starting with ``reason`` filled with the group)."""
    with_law = {row[1] for row in (section.tables[0].rows if section.tables else []) if row[0] == first_cell}
    prefix, suffix = reason.split("{}")
    without = {note[len(prefix):note.index(suffix, len(prefix))] for note in section.notes
               if note.startswith(prefix) and suffix in note[len(prefix):]}
    assert not with_law & without, (with_law, without)
    return with_law | without

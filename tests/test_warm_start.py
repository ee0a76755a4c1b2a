"""search.warm_start: earlier runs' trials inside the current space seed a model-based search; the others
are counted; a warm start a search cannot use is refused before any trial."""

from __future__ import annotations

import importlib.util
import logging
import math

import pandas as pd
import pytest

from ecgsearch.errors import SpaceError, UserError
from ecgsearch.results import ResultsTable
from ecgsearch.search.warm_start import as_config, load_warm_start, warm_points
from ecgsearch.space import load_space

DATA = "data: {dataset: synthetic, records: 120, sampling_rate: 50, seconds: 4, leads: [I, II, V1, V5]}"
NARROW = """
space:
  architecture:
    resnet: {depth: {choice: [8, 10]}, channels: {randint: [8, 32]}, kernel: 5}
  optimizer: {adamw: {lr: {loguniform: [1.0e-4, 1.0e-2]}}}
  batch_size: 32
"""


def row(**values):
    base = {"trial_id": "t", "status": "ok", "architecture": "resnet", "optimizer": "adamw",
            "hp.architecture.resnet.depth": 8, "hp.architecture.resnet.channels": 16.0,
            "hp.architecture.resnet.kernel": 5, "hp.optimizer.adamw.lr": 1e-3, "hp.batch_size": 32,
            "val.macro_auroc": 0.7, "epochs": 2, "cost.flops": 1e6}
    return {**base, **values}


def space_file(tmp_path, search: str = "search: {algorithm: surrogate}", space: str = NARROW, name: str = "s"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nseed: 1\n{DATA}\ntask: multilabel\nbudget: {{trials: 4, epochs: 1}}\n"
                    f"{search}\n{space}")
    return path


def test_rows_inside_the_space_become_its_configurations_and_the_rest_are_counted(tmp_path):
    space = load_space(space_file(tmp_path)).space
    frame = pd.DataFrame([
        row(),                                                  # inside (channels stored as a float: 16)
        row(**{"hp.optimizer.adamw.lr": 0.05}),                 # lr outside [1e-4, 1e-2]
        row(**{"hp.architecture.resnet.depth": 18}),            # depth not a choice of this space
        row(architecture="convnext"),                           # an option this space does not have
        row(**{"hp.batch_size": 64}),                           # this space fixes batch_size at 32
        row(**{"val.macro_auroc": math.nan}, status="failed"),  # no value
        row(**{"hp.architecture.resnet.kernel": None}),         # fixed here, not recorded there: fine
    ])
    points, ignored = warm_points(space, frame, "val.macro_auroc")
    assert dict(ignored) == {"outside the space": 4, "without a value": 1}
    assert len(points) == 2
    config = points[0].config
    expected = {"architecture": "resnet", "optimizer": "adamw", "architecture.resnet.depth": 8,
                "architecture.resnet.channels": 16, "architecture.resnet.kernel": 5, "optimizer.adamw.lr": 1e-3,
                "batch_size": 32}
    assert {k: config[k] for k in expected} == expected
    assert set(config) == {p.name for p in space.parameters} | set(space.choices)  # the space's own defaults too
    assert isinstance(config["architecture.resnet.channels"], int)
    assert points[0].value == 0.7 and points[0].epochs == 2 and points[0].costs == {"cost.flops": 1e6}
    assert points[0].metrics == {"val.macro_auroc": 0.7}


def test_a_parameter_the_earlier_run_did_not_record_puts_the_row_outside(tmp_path):
    space = load_space(space_file(tmp_path)).space
    assert as_config(space, {k: v for k, v in row().items() if k != "hp.optimizer.adamw.lr"}) is None


def test_load_reads_every_run_folder_and_summarises(tmp_path):
    space = load_space(space_file(tmp_path)).space
    for name, rows in {"a": [row(), row(trial_id="t2", **{"hp.batch_size": 64})], "b": [row(trial_id="u")]}.items():
        table = ResultsTable(tmp_path / name)
        for r in rows:
            table.append(r)
    warm = load_warm_start(space, [tmp_path / "a", tmp_path / "b"], "val.macro_auroc")
    assert len(warm.points) == 2
    assert warm.summary() == (f"{tmp_path / 'a'}: 1 rows used, 1 outside the space ignored; "
                              f"{tmp_path / 'b'}: 1 rows used")


def test_a_warm_start_for_a_search_that_does_not_learn_is_refused(tmp_path):
    with pytest.raises(SpaceError) as info:
        load_space(space_file(tmp_path, "search: {algorithm: random, warm_start: [runs/a]}"))
    assert str(info.value).endswith("search.warm_start: the random search does not learn from earlier trials; "
                                    "use a model-based search (search.algorithm: surrogate or optuna) or remove "
                                    "warm_start")


def test_a_warm_start_folder_without_a_results_table_is_refused_before_any_trial(tmp_path):
    from ecgsearch.engine.run import warm_start

    spec = load_space(space_file(tmp_path, f"search: {{algorithm: surrogate, warm_start: [{tmp_path / 'nothing'}]}}"))
    with pytest.raises(UserError) as info:  # a parsed file names folders; the search reads them when it starts
        warm_start(spec)
    assert str(info.value) == (f"{tmp_path / 's.yaml'}: search.warm_start: '{tmp_path / 'nothing'}' holds no results "
                               "table (results.parquet); give the output folder of an earlier `ecgsearch run` "
                               "(relative to the current directory)")


def test_a_warm_start_that_is_not_a_list_of_folders_is_refused(tmp_path):
    with pytest.raises(SpaceError) as info:
        load_space(space_file(tmp_path, "search: {algorithm: surrogate, warm_start: {a: 1}}"))
    assert "search.warm_start: {'a': 1} is not a run folder or a list of run folders (warm_start: [runs/a])" \
        in str(info.value)


@pytest.mark.ray
@pytest.mark.parametrize("search", ["{algorithm: surrogate, initial_trials: 2, candidates: 64}",
                                    "{algorithm: optuna, n_startup_trials: 2}"])
def test_a_narrower_search_starts_from_the_wide_runs_trials(ray_session, tmp_path, monkeypatch, caplog, search):
    """The continue-after-prune workflow: a wide run, then a narrower space warm-started from it."""
    if "optuna" in search and importlib.util.find_spec("optuna") is None:
        pytest.skip("optuna is not installed (pip install 'ecgsearch[optuna]'); the README's test install has it")
    from ecgsearch.engine import run_search
    from ecgsearch.engine.run import warm_start
    from ecgsearch.results import read_results
    from ecgsearch.search.candidates import InputShape
    from ecgsearch.search.factory import make_searcher

    monkeypatch.chdir(tmp_path)
    wide = load_space(space_file(tmp_path, "", """
space:
  architecture: {logged_tiny: {}}
  optimizer: {sgd: {lr: {loguniform: [1.0e-4, 3.0e-1]}, momentum: 0.9}}
""", name="wide"))
    run_search(wide, tmp_path / "runs" / "wide")
    recorded = read_results(tmp_path / "runs" / "wide")
    inside = int(recorded["hp.optimizer.sgd.lr"].between(1.0e-3, 3.0e-1).sum())
    assert 0 < inside < 4, "the seed should put some of the wide run's trials outside the narrow space"
    narrow = load_space(space_file(tmp_path, f"search: {search[:-1]}, warm_start: [runs/wide]}}", """
space:
  architecture: {logged_tiny: {}}
  optimizer: {sgd: {lr: {loguniform: [1.0e-3, 3.0e-1]}, momentum: 0.9}}
""", name="narrow"))
    with caplog.at_level(logging.INFO, logger="ecgsearch.engine.run"):
        points = warm_start(narrow)
    assert len(points) == inside
    assert f"warm start: runs/wide: {inside} rows used, {4 - inside} outside the space ignored" in caplog.text
    searcher = make_searcher(narrow, InputShape(leads=4, samples=200, outputs=5), "objective", warm_start=points)
    told = searcher.observations if hasattr(searcher, "observations") else searcher.inner._ot_study.trials
    assert len(told) == inside
    frame = read_results(run_search(narrow, tmp_path / "runs" / "narrow").out_dir)
    assert len(frame) == 4 and frame["hp.optimizer.sgd.lr"].between(1.0e-3, 3.0e-1).all()


def test_the_seeds_of_one_configuration_are_one_point_with_their_mean(tmp_path):
    space = load_space(space_file(tmp_path)).space
    frame = pd.DataFrame([
        row(trial_id="t0000r0", config_id="t0000", **{"val.macro_auroc": 0.6}),
        row(trial_id="t0000r1", config_id="t0000", **{"val.macro_auroc": 0.8}),
        row(trial_id="t0000r2", config_id="t0000", **{"val.macro_auroc": math.nan}, status="failed"),
        row(trial_id="t0001r0", config_id="t0001", **{"val.macro_auroc": 0.9, "hp.batch_size": 64}),  # outside
    ])
    points, ignored = warm_points(space, frame, "val.macro_auroc")
    assert dict(ignored) == {"outside the space": 1, "without a value": 1}
    assert len(points) == 1 and points[0].value == pytest.approx(0.7)
    assert points[0].metrics == {"val.macro_auroc": pytest.approx(0.7)}

"""Out-of-distribution evaluation: the corruptions, the ``evaluate:`` section, OOD columns of a real search, and
``ecgsearch evaluate-run`` on the finished run (docs/evaluation.md)."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pandas as pd
import pytest

from ecgsearch.data.corrupt import KINDS, Corruption, corrupt, default_name
from ecgsearch.data.harmonise import shared_classes
from ecgsearch.errors import UserError
from ecgsearch.space import parse_space

SEED = 3


def record(seed: int = 0, records: int = 5, leads: int = 4, samples: int = 500) -> np.ndarray:
    """A fixed float64 batch of records with leads of different power (one lead all zeros in record 0)."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 100.0
    x = np.sin(2 * np.pi * 1.3 * t)[None, None, :] * rng.uniform(0.2, 3.0, (records, leads, 1))
    x = x + 0.1 * rng.standard_normal((records, leads, samples))
    x[0, 1] = 0.0
    return x


def draws(name: str) -> np.random.Generator:
    """The generator the corruption is documented to draw from."""
    return np.random.default_rng([SEED, zlib.crc32(name.encode())])


# --- the corruptions, against independent numpy computations ------------------------------------------------

@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 30.0])
def test_gaussian_noise_has_exactly_the_requested_snr_on_every_lead(snr_db) -> None:
    x = record()
    y = corrupt(x, Corruption("n", "gaussian_noise", {"snr_db": snr_db}), 100.0, SEED)
    noise = y - x
    power, noise_power = (x ** 2).mean(axis=-1), (noise ** 2).mean(axis=-1)
    silent = power == 0
    achieved = 10 * np.log10(power[~silent] / noise_power[~silent])
    assert np.allclose(achieved, snr_db, atol=1e-6, rtol=0)
    assert np.all(y[silent] == 0)  # a silent lead gets no noise
    expected = x + draws("n").standard_normal(x.shape) * np.sqrt(
        np.divide(power / 10 ** (snr_db / 10), np.mean(draws("n").standard_normal(x.shape) ** 2, axis=-1)))[..., None]
    assert np.allclose(y, expected, atol=1e-12)


def test_clipping_bounds_each_lead_at_its_share_of_its_peak() -> None:
    x = record()
    y = corrupt(x, Corruption("c", "clipping", {"level": 0.4}), 100.0, SEED)
    peak = np.abs(x).max(axis=-1, keepdims=True)
    assert np.all(np.abs(y) <= 0.4 * peak + 1e-15)
    inside = np.abs(x) <= 0.4 * peak
    assert np.array_equal(y[inside], x[inside])
    assert np.allclose(y[~inside], np.sign(x[~inside]) * np.broadcast_to(0.4 * peak, x.shape)[~inside])


@pytest.mark.parametrize("k", [1, 2, 3])
def test_lead_dropout_zeroes_exactly_k_leads_of_every_record(k) -> None:
    x = record()
    x[0, 1] = 1.0  # no lead is silent before the corruption
    y = corrupt(x, Corruption("d", "lead_dropout", {"leads": k}), 100.0, SEED)
    flat = np.all(y == 0, axis=-1)
    assert np.all(flat.sum(axis=1) == k)
    assert np.array_equal(y[~flat], x[~flat])
    assert len({tuple(np.flatnonzero(row)) for row in flat}) > 1  # chosen per record


def test_baseline_wander_and_amplitude_scale() -> None:
    x = record()
    wander = corrupt(x, Corruption("w", "baseline_wander", {"amplitude": 0.5, "frequency_hz": 0.3}), 100.0, SEED)
    phase = draws("w").uniform(0, 2 * np.pi, x.shape[:2] + (1,))
    t = np.arange(x.shape[-1]) / 100.0
    expected = x + 0.5 * np.abs(x).max(axis=-1, keepdims=True) * np.sin(2 * np.pi * 0.3 * t + phase)
    assert np.allclose(wander, expected, atol=1e-12)
    scaled = corrupt(x, Corruption("s", "amplitude_scale", {"factor": 0.5}), 100.0, SEED)
    assert np.array_equal(scaled, x * 0.5)


def test_corruptions_are_deterministic_and_keep_the_dtype() -> None:
    x = record().astype(np.float32)
    for kind, info in KINDS.items():
        params = {s.name: s.default if s.default is not None else (1 if s.integer else 0.5) for s in info.settings}
        corruption = Corruption(default_name(kind, params), kind, params)
        first, second = corrupt(x, corruption, 100.0, SEED), corrupt(x, corruption, 100.0, SEED)
        assert first.dtype == np.float32 and np.array_equal(first, second), kind
    assert default_name("gaussian_noise", {"snr_db": -5}) == "noise_m5db"
    assert default_name("clipping", {"level": 0.5}) == "clip_0p5"


# --- the evaluate section ----------------------------------------------------------------------------------

BASE = """\
data: {dataset: synthetic, records: 40, targets: labels}
task: multilabel
budget: {trials: 1, epochs: 1}
space:
  architecture: {resnet: {depth: 8, channels: 8, kernel: 7}}
  optimizer: {adamw: {lr: 0.01}}
"""


def test_the_evaluate_section_parses_with_default_names() -> None:
    spec = parse_space(BASE + """\
evaluate:
  corruptions:
    - {name: noise_10db, kind: gaussian_noise, snr_db: 10}
    - {kind: baseline_wander, amplitude: 0.5}
    - {kind: lead_dropout, leads: 2}
    - {kind: amplitude_scale, factor: 0.5}
    - {kind: clipping, level: 0.5}
  datasets:
    - {name: other_seed, data: {seed: 7}}
""")
    assert spec.evaluate.names == ("noise_10db", "wander_0p5", "dropout_2leads", "scale_0p5", "clip_0p5", "other_seed")
    assert spec.evaluate.corruptions[1].params == {"amplitude": 0.5, "frequency_hz": 0.3}
    other = spec.evaluate.datasets[0].data
    assert other.dataset == "synthetic" and other.params["seed"] == 7 and other.params["records"] == 40


@pytest.mark.parametrize("section, message", [
    ("evaluate: {corruption: []}", "x.yaml:7: evaluate.corruption: 'corruption' is not an evaluate setting "
                                   "(allowed: corruptions, datasets); did you mean 'corruptions'?"),
    ("evaluate: {corruptions: [{kind: noise, snr_db: 3}]}",
     "x.yaml:7: evaluate.corruptions[0].kind: 'noise' is not a corruption kind (allowed: gaussian_noise, "
     "baseline_wander, lead_dropout, amplitude_scale, clipping)"),
    ("evaluate: {corruptions: [{kind: gaussian_noise}]}",
     "x.yaml:7: evaluate.corruptions[0].snr_db: the required key is missing (signal-to-noise ratio in dB, per "
     "record and lead)"),
    ("evaluate: {corruptions: [{kind: clipping, level: 1.5}]}",
     "x.yaml:7: evaluate.corruptions[0].level: 1.5 is not a number in (0, 1]"),
    ("evaluate: {corruptions: [{kind: lead_dropout, leads: 1.5}]}",
     "x.yaml:7: evaluate.corruptions[0].leads: 1.5 is not an integer >= 1"),
    ("evaluate: {corruptions: [{kind: clipping, level: 0.5, snr_db: 3}]}",
     "x.yaml:7: evaluate.corruptions[0].snr_db: 'snr_db' is not a setting of clipping (allowed: kind, name, level)"),
    ("evaluate: {corruptions: [{kind: clipping, level: 0.5, name: a.b}]}",
     "x.yaml:7: evaluate.corruptions[0].name: 'a.b' is not a name of at most 40 letters, digits and underscores "
     "starting with a letter (it names the columns ood.<name>.*)"),
    ("evaluate:\n  corruptions: [{kind: clipping, level: 0.5}]\n  datasets: [{name: clip_0p5, data: {seed: 2}}]",
     "x.yaml:9: evaluate.datasets[0].name: 'clip_0p5' is already the name of evaluate.corruptions[0]; give each "
     "evaluation its own name (it names the columns ood.<name>.*)"),
    ("evaluate: {datasets: [{name: other}]}", "x.yaml:7: evaluate.datasets[0].data: the required key is missing"),
    ("evaluate: {datasets: [{name: other, data: {sed: 2}}]}",
     "x.yaml:7: evaluate.datasets[0].data.sed: 'sed' is not a parameter of dataset 'synthetic'"),
    ("evaluate: {}", "x.yaml:7: evaluate: the section names no corruption and no dataset; list some under "
                     "corruptions or datasets, or remove the section"),
])
def test_evaluate_section_errors(section, message) -> None:
    with pytest.raises(UserError) as error:
        parse_space(BASE + section + "\n", source="x.yaml")
    assert str(error.value).startswith(message), str(error.value)


def test_classes_are_matched_by_clinical_meaning() -> None:
    """PhysioNet 2021 SNOMED codes, PTB-XL statements and the CODE-15% abnormalities."""
    code15 = ["1dAVb", "RBBB", "LBBB", "SB", "ST", "AF"]
    matched = shared_classes(["164889003", "59118001", "713427006", "426783006", "270492004"], code15)
    assert matched.pairs == [("164889003", ("AF",)), ("59118001", ("RBBB",)), ("713427006", ("RBBB",)),
                             ("270492004", ("1dAVb",))]
    assert matched.missing == ["426783006"]  # sinus rhythm: CODE-15% has no such class
    assert shared_classes(code15, ["AFIB", "STACH", "SBRAD", "1AVB", "CRBBB", "CLBBB", "NORM"]).missing == []
    assert shared_classes(["RBBB"], ["59118001", "713427006"]).pairs == [("RBBB", ("59118001", "713427006"))]


# --- a real search, then evaluate-run ----------------------------------------------------------------------

SEARCH = """\
name: ood
seed: 5
data: {dataset: synthetic, records: 400, sampling_rate: 50, seconds: 10, leads: [I, II, V1, V5], targets: labels}
task: multilabel
metric: macro_auroc
budget: {trials: 2, epochs: 3}
resources: {cpu: 1, gpu: 0}
space:
  architecture: {resnet: {depth: 8, channels: 8, kernel: 7}}
  optimizer: {adamw: {lr: {choice: [0.005, 0.01]}}}
  batch_size: 16
evaluate:
  corruptions:
    - {name: noise_m6db, kind: gaussian_noise, snr_db: -6}
    - {kind: lead_dropout, leads: 2}
  datasets:
    - {name: other_seed, data: {seed: 11}}
"""
NAMES = ("noise_m6db", "dropout_2leads", "other_seed")


@pytest.fixture(scope="module")
def ood_run(ray_session, tmp_path_factory):
    from ecgsearch.engine import run_search

    folder = tmp_path_factory.mktemp("ood")
    path = folder / "ood.yaml"
    path.write_text(SEARCH)
    from ecgsearch.space import load_space

    outcome = run_search(load_space(path), folder / "out")
    return folder / "out", outcome.results


@pytest.mark.ray
@pytest.mark.slow
def test_every_trial_reports_ood_columns_and_noise_costs_accuracy(ood_run) -> None:
    _, frame = ood_run
    assert list(frame["status"]) == ["ok", "ok"], frame.get("error")
    for name in NAMES:
        for column in (f"ood.{name}.loss", f"ood.{name}.macro_auroc", f"ood.{name}.challenge_score"):
            assert column in frame and frame[column].map(math.isfinite).all(), column
    assert frame["ood.noise_m6db.loss"].mean() >= frame["test.loss"].mean()


@pytest.mark.ray
@pytest.mark.slow
def test_evaluate_run_reproduces_the_trials_ood_columns_and_adds_new_ones(ood_run, tmp_path) -> None:
    from ecgsearch.cli import main
    from ecgsearch.results import read_results

    out, frame = ood_run
    columns = [c for c in frame.columns if c.startswith("ood.")]
    stored = frame.set_index("trial_id")[columns]
    assert main(["evaluate-run", str(out)]) == 0  # the run's own section: the same numbers again
    again = read_results(out).set_index("trial_id")
    assert len(again) == len(frame)
    pd.testing.assert_frame_equal(again.loc[stored.index, columns], stored, atol=1e-6, check_dtype=False)
    extra = tmp_path / "more.yaml"
    extra.write_text("evaluate:\n  corruptions:\n    - {kind: clipping, level: 0.3}\n")
    assert main(["evaluate-run", str(out), "--evaluate", str(extra)]) == 0
    final = read_results(out).set_index("trial_id")
    assert final["ood.clip_0p3.loss"].map(math.isfinite).all() and len(final) == len(frame)
    pd.testing.assert_frame_equal(final.loc[stored.index, columns], stored, atol=1e-6, check_dtype=False)


def said(capsys) -> str:
    """The one sentence the CLI printed (without its ``error:`` lead)."""
    return capsys.readouterr().err.strip().removeprefix("error: ")


@pytest.mark.ray
@pytest.mark.slow
def test_evaluate_run_refusals(ood_run, tmp_path, capsys) -> None:
    from ecgsearch.cli import main

    out, _ = ood_run
    assert main(["evaluate-run", str(tmp_path)]) == 2
    assert said(capsys) == (f"evaluate-run: {tmp_path} has no results.parquet, so it is not a run "
                                               "folder; pass the --out folder of an `ecgsearch run`.")
    bad = tmp_path / "bad.yaml"
    bad.write_text("evaluate:\n  corruptions: [{kind: clipping, level: 0.5}]\nbudget: {trials: 1}\n")
    assert main(["evaluate-run", str(out), "--evaluate", str(bad)]) == 2
    assert said(capsys) == (
        f"{bad}:3: budget: 'budget' is not the evaluate section (this file holds only that) (allowed: evaluate)")
    empty = tmp_path / "empty"
    empty.mkdir()
    for name in ("results.parquet", "space.yaml"):
        (empty / name).write_bytes((out / name).read_bytes())
    assert main(["evaluate-run", str(empty)]) == 2
    assert said(capsys) == (
        f"evaluate-run: {empty} has no trial with saved weights (trials/<id>/best.pt), so there is no model to "
        "score; evaluate a run whose trials finished an epoch.")
    (empty / "space.yaml").write_text((out / "space.yaml").read_text().split("evaluate:")[0])
    assert main(["evaluate-run", str(empty)]) == 2
    assert said(capsys) == (f"evaluate-run: {empty}'s space file has no evaluate section; pass --evaluate FILE.yaml, "
                            "a file holding one (evaluate: {corruptions: [...], datasets: [...]}).")
    nothing = tmp_path / "nothing.yaml"
    nothing.write_text("evaluate:\n  datasets: [{name: ptb, data: {dataset: synthetic, records: 40, leads: [I], "
                       "sampling_rate: 50, seconds: 10}}]\n")
    assert main(["evaluate-run", str(out), "--evaluate", str(nothing)]) == 2
    assert said(capsys).startswith(
        f"{nothing}:2: evaluate.datasets[0].data does not match data (leads ['I'] vs ['I', 'II', 'V1', 'V5'])")
    unrelated = tmp_path / "unrelated.yaml"
    unrelated.write_text("evaluate:\n  datasets: [{name: ivl, data: {targets: intervals}}]\n")
    assert main(["evaluate-run", str(out), "--evaluate", str(unrelated)]) == 2
    assert said(capsys).startswith(
        f"{unrelated}:2: evaluate.datasets[0].data: dataset 'synthetic' shares no class with the trained task (")

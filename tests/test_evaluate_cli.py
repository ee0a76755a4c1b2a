"""``ecgsearch evaluate`` and the physionet2021 evaluator: official-format files, scores by hand, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ecgsearch.cli import main
from ecgsearch.deploy.predict import write_outputs
from ecgsearch_plugins import _challenge2021 as challenge
from ecgsearch_plugins.datasets import _challenge_eval as challenge_io

FORMAT = ("write '#RECORD_ID' on line 1, then three comma-separated lines of equal length "
          "(class codes, 0/1 outputs, probabilities)")

# The three header layouts of the Challenge data: original, rewritten by wfdb, '.mat' on line 1.
HEADERS = {
    "E1": "E1 12 500 5000 05-May-2020 14:50:55\n#Age: 50\n#Dx: 164889003,59118001\n",  # AF, CRBBB|RBBB
    "E2": "E2 12 500 5000\n# Age: 61\n# Dx: 426783006\n",                                # NSR
    "E3": "E3.mat 12 500 5000\n#Dx: 251180001,,\n",                                      # unscored only
    "E4": "E4 12 500 5000\n#Dx: 426177001, 426177001\n",                                 # SB, twice
}
# Classes in any order, an unscored class, an equivalent code (59118001 for CRBBB|RBBB), True for 1;
# E3 has no output file at all and counts as all-negative.
OUTPUTS = {
    "E1": "#E1\n59118001,164889003,426783006,10000000\n1,0,0,1\n0.8,0.4,0.2,0.9\n",
    "E2": "#E2\n426783006,164889003\n1,0\n0.7,0.3\n",
    "E4": "#E4\n426177001,426783006,713427006\nTrue,1,0\n0.6,0.9,0.1\n",
}
# Accuracy: E2 and E3 exactly right, E1 misses AF, E4 adds NSR -> 2/4.
# F-measure: AF 0 (FN), CRBBB 1, NSR 2/3 (TP E2, FP E4), SB 1 -> (0 + 1 + 2/3 + 1) / 4.
# AUROC: AF (0.4 vs 0.3, 0, 0), CRBBB, SB rank their positive first (1); NSR's positive 0.7 beats
#   0.2 and 0 but not 0.9 (2/3) -> (3 + 2/3) / 4. AUPRC: NSR's positive comes second (AP 1/2) -> 3.5 / 4.
# Challenge metric (W[AF,CRBBB]=0.4, W[AF,NSR]=0.25, W[CRBBB,NSR]=0.35, W[SB,NSR]=0.45):
#   E1 observed: n=2, A[AF,CRBBB]=A[CRBBB,CRBBB]=1/2 -> 0.7; correct: n=2, 0.5*(1+0.4+0.4+1) = 1.4;
#      all-NSR: n=3, (0.25+0.35)/3 = 0.2.   E2: 1, 1, 1.   E3: 0, 0, 0.
#   E4 observed: n=2, 0.5*1 + 0.5*0.45 = 0.725; correct 1; all-NSR 0.225.
#   (2.425 - 1.425) / (3.4 - 1.425) = 1 / 1.975
EXPECTED = {"auroc": (3 + 2 / 3) / 4, "auprc": 3.5 / 4, "accuracy": 0.5, "f_measure": (2 + 2 / 3) / 4,
            "challenge_metric": 1 / 1.975, "records": 4, "missing_outputs": 1}


def write_fixture(root: Path, outputs: dict[str, str] = OUTPUTS) -> tuple[Path, Path]:
    labels, outs = root / "labels", root / "outputs"
    labels.mkdir()
    outs.mkdir()
    for name, text in HEADERS.items():
        (labels / f"{name}.hea").write_text(text)
    (labels / "E1.mat").write_bytes(b"")  # signals next to headers are ignored
    for name, text in outputs.items():
        (outs / f"{name}.csv").write_text(text)
    return labels, outs


def test_read_header_in_the_three_layouts(tmp_path: Path) -> None:
    labels, _ = write_fixture(tmp_path)
    assert challenge_io.read_header(labels / "E1.hea") == ("E1", ["164889003", "59118001"])
    assert challenge_io.read_header(labels / "E2.hea") == ("E2", ["426783006"])
    assert challenge_io.read_header(labels / "E3.hea") == ("E3", ["251180001"])
    assert challenge_io.read_header(labels / "E4.hea") == ("E4", ["426177001"])


def test_outputs_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "A1.csv"
    write_outputs(path, "A1", ["164889003", "426783006"], [True, False], [0.7, 1 / 3])
    assert path.read_text() == "#A1\n164889003,426783006\n1,0\n0.7,0.3333333333333333\n"
    classes, binary, scalar = challenge_io.read_outputs(path)
    assert classes == ["164889003", "426783006"] and binary.tolist() == [True, False]
    assert scalar.tolist() == [0.7, 1 / 3]


def test_evaluate_by_hand(tmp_path: Path) -> None:
    result = challenge_io.evaluate(*write_fixture(tmp_path))
    assert result == pytest.approx(EXPECTED)


def test_evaluate_cli_table_and_json(tmp_path: Path, capsys) -> None:
    labels, outs = write_fixture(tmp_path)
    assert main(["evaluate", "--labels", str(labels), "--outputs", str(outs)]) == 0
    assert capsys.readouterr().out == ("AUROC            0.917\nAUPRC            0.875\n"
                                       "Accuracy         0.500\nF-measure        0.667\n"
                                       "Challenge metric 0.506\n"
                                       "records          4 (1 without outputs, scored all-negative)\n")
    assert main(["evaluate", "--labels", str(labels), "--outputs", str(outs), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == pytest.approx(EXPECTED)


def test_evaluate_uses_the_named_datasets_scorer(tmp_path: Path, capsys) -> None:
    labels, outs = write_fixture(tmp_path)
    assert main(["evaluate", "--labels", str(labels), "--outputs", str(outs), "--dataset", "physionet2021",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == pytest.approx(EXPECTED)
    assert main(["evaluate", "--labels", str(labels), "--outputs", str(outs), "--dataset", "synthetic"]) == 2
    assert capsys.readouterr().err == ("error: evaluate --dataset synthetic: this dataset has no official scoring "
                                       "of output files (datasets that have one: physionet2021); choose one of "
                                       "those.\n")
    assert main(["evaluate", "--labels", str(labels), "--outputs", str(outs), "--dataset", "physionet"]) == 2
    assert "'physionet' is not a registered dataset" in capsys.readouterr().err


def test_real_records_perfect_and_all_normal(shared_data: Path, tmp_path: Path) -> None:
    labels = shared_data / "physionet2021" / "sample_records"
    names = challenge.class_names()
    for kind in ("perfect", "normal"):
        outs = tmp_path / kind
        outs.mkdir()
        for header in sorted(labels.glob("*.hea")):
            record, codes = challenge_io.read_header(header)
            truth = challenge.to_scored(np.ones((1, len(codes)), dtype=bool), codes)[0]
            if kind == "normal":
                truth = np.arange(len(names)) == challenge.NORMAL_INDEX
            write_outputs(outs / f"{header.stem}.csv", record, names, truth, truth.astype(float))
    assert challenge_io.evaluate(labels, tmp_path / "perfect")["challenge_metric"] == pytest.approx(1.0)
    assert challenge_io.evaluate(labels, tmp_path / "normal")["challenge_metric"] == pytest.approx(0.0)


def duplicate_record(tmp_path: Path) -> tuple[Path, Path]:
    labels, outs = write_fixture(tmp_path)
    (labels / "g2").mkdir()
    (labels / "g2" / "E2.hea").write_text(HEADERS["E2"])
    return labels, outs


def test_a_published_folder_nests_records_one_or_two_levels_down(tmp_path: Path, capsys) -> None:
    """``training/georgia/g1/E00001.hea``: the layout of the published Challenge data, for labels and outputs."""
    labels, outs = tmp_path / "training", tmp_path / "nested_outputs"
    for k, name in enumerate(HEADERS):
        folder = labels / ("georgia" if k % 2 else "cpsc_2018") / f"g{k}"
        folder.mkdir(parents=True)
        (folder / f"{name}.hea").write_text(HEADERS[name])
    for name, text in OUTPUTS.items():
        (outs / name[-1]).mkdir(parents=True)
        (outs / name[-1] / f"{name}.csv").write_text(text)
    assert main(["evaluate", "--labels", str(labels), "--outputs", str(outs), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == pytest.approx(EXPECTED)


def bad_output(tmp_path: Path, text: str) -> tuple[Path, Path]:
    return write_fixture(tmp_path, {**OUTPUTS, "E2": text})


@pytest.mark.parametrize("setup, message", [
    (lambda tmp: (tmp / "nope", tmp),
     "--labels folder {tmp}/nope does not exist; pass the folder of the records' .hea files."),
    (lambda tmp: (write_fixture(tmp)[0], tmp / "nope"),
     "--outputs folder {tmp}/nope does not exist; pass the folder of your model's .csv outputs."),
    (lambda tmp: (tmp, tmp),
     "--labels folder {tmp} has no .hea header files; pass the folder that holds the records' .hea files."),
    (lambda tmp: (write_fixture(tmp, {})),
     "--outputs folder {tmp}/outputs has none of the 4 records' output files (e.g. E1.csv); pass the "
     "folder your model wrote its .csv files to."),
    (lambda tmp: bad_output(tmp, "#E2\n426783006,164889003\n1,0\n"),
     "output file {tmp}/outputs/E2.csv has 2 lines of values instead of 3; " + FORMAT + "."),
    (lambda tmp: bad_output(tmp, "#E2\n426783006,164889003\n1,0\n0.7\n"),
     "output file {tmp}/outputs/E2.csv: line 4 has 1 values but the class line names 2 classes; "
     + FORMAT + "."),
    (lambda tmp: bad_output(tmp, "#E2\n426783006|164889003\n1\n0.7\n"),
     "output file {tmp}/outputs/E2.csv: label '426783006|164889003' joins codes of different Challenge "
     "classes (AF, NSR); name one class per column."),
    (lambda tmp: bad_output(tmp, "#E2\n426783006,164889003\n1,0\nnan,0.3\n"),
     "output file {tmp}/outputs/E2.csv: the probability of class 426783006 is nan; write a finite number (the "
     "scores are ranked to compute AUROC and AUPRC)."),
    (lambda tmp: bad_output(tmp, "#E2\n426783006,164889003\n1,0\n0.7,inf\n"),
     "output file {tmp}/outputs/E2.csv: the probability of class 164889003 is inf; write a finite number (the "
     "scores are ranked to compute AUROC and AUPRC)."),
    (lambda tmp: duplicate_record(tmp),
     "--labels folder {tmp}/labels: record E2 is there twice ({tmp}/labels/E2.hea and {tmp}/labels/g2/E2.hea); "
     "keep one copy of each record."),
])
def test_bad_input_is_one_sentence_and_exit_2(tmp_path: Path, capsys, setup, message: str) -> None:
    labels, outs = setup(tmp_path)
    assert main(["evaluate", "--labels", str(labels), "--outputs", str(outs)]) == 2
    assert capsys.readouterr().err == f"error: {message.format(tmp=tmp_path)}\n"


def test_header_without_dx(tmp_path: Path, capsys) -> None:
    labels, outs = write_fixture(tmp_path)
    (labels / "E2.hea").write_text("E2 12 500 5000\n# Age: 61\n")
    assert main(["evaluate", "--labels", str(labels), "--outputs", str(outs)]) == 2
    assert capsys.readouterr().err == (f"error: header {labels}/E2.hea has no '#Dx:' line; add the record's "
                                       "SNOMED-CT codes as '#Dx: CODE,CODE'.\n")


def test_a_missing_output_is_a_warning(tmp_path: Path, caplog) -> None:
    labels, outs = write_fixture(tmp_path)
    shutil.copy(outs / "E2.csv", outs / "unrelated.csv")  # outputs without a header are ignored
    challenge_io.evaluate(labels, outs)
    assert "1 of 4 records have no output file (e.g. E3.csv); they count as all-negative." in caplog.text

"""The command line: exit codes and one-sentence messages, never a traceback for bad input."""

from __future__ import annotations

import pytest
from conftest import ROOT

from ecgsearch.cli import main

GOOD = """name: tiny
data: {dataset: synthetic, records: 40}
task: multilabel
budget: {trials: 2, epochs: 1}
space:
  architecture: {resnet_tiny: {}}
  optimizer: {adamw: {lr: {loguniform: [1.0e-4, 1.0e-2]}}}
"""


def _write(tmp_path, text: str):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


def test_validate_accepts_the_shipped_spaces(capsys):
    assert main(["validate", str(ROOT / "spaces" / "quickstart.yaml")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{ROOT / 'spaces' / 'quickstart.yaml'}: ok (quickstart: 12 trials of 4 epochs, "
                          "metric macro_auroc (max), architectures convnext, resnet, optimizers adamw, sgd)")


@pytest.mark.parametrize("old, new, message", [
    ("loguniform", "logunifrom", ":7: space.optimizer.adamw.lr: 'logunifrom' is not a distribution (allowed: "
     "choice, uniform, loguniform, randint, lograndint, quniform, qloguniform, qrandint, grid); did you mean 'loguniform'?"),
    ("resnet_tiny", "resnet_tinny", ":6: space.architecture.resnet_tinny: 'resnet_tinny' is not a registered "
     "architecture"),
    ("trials: 2", "trials: two", ":4: budget.trials: 'two' is not an integer >= 1"),
    ("trials: 2", "trials: 2, repeats: 0", ":4: budget.repeats: 0 is not an integer >= 1"),
    ("task: multilabel", "tsk: multilabel", ":3: tsk: 'tsk' is not a top-level section (allowed: name, seed, data, "
     "task, metric, budget, resources, search, constraints, latency, space, transfer, tracking, evaluate); did you mean 'task'?"),
])
def test_validate_rejects_with_file_line_key_and_exit_2(tmp_path, capsys, old, new, message):
    path = _write(tmp_path, GOOD.replace(old, new))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}{message}"), err
    assert "Traceback" not in err and err.count("\n") == 1


def test_a_missing_file_is_one_sentence(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{tmp_path / 'nope.yaml'}: cannot read the file") and err.count("\n") == 1


def test_run_refuses_a_folder_that_holds_a_run_before_doing_any_work(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.parquet").write_bytes(b"")
    assert main(["run", str(_write(tmp_path, GOOD)), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"error: {out}: this folder already holds a run; pass --resume to continue "
                                       "it or choose another --out.\n")


def test_run_rejects_a_bad_trials_override(tmp_path, capsys):
    assert main(["run", str(_write(tmp_path, GOOD)), "--trials", "0"]) == 2
    assert capsys.readouterr().err == "error: --trials: 0 is not an integer >= 1; pass a positive number of trials.\n"


def test_debug_shows_the_traceback(tmp_path):
    from ecgsearch.errors import SpaceError

    with pytest.raises(SpaceError):
        main(["--debug", "validate", str(tmp_path / "nope.yaml")])


def test_trials_cannot_change_a_resumed_run(tmp_path, capsys):
    assert main(["run", str(_write(tmp_path, GOOD)), "--resume", "--trials", "5"]) == 2
    assert capsys.readouterr().err == ("error: --trials cannot change the budget of a resumed run (it continues "
                                       "with the trials it started with); drop --trials, or start a new run in "
                                       "another --out.\n")


def test_run_with_a_missing_data_folder_is_one_sentence(tmp_path, capsys):
    path = _write(tmp_path, GOOD.replace("data: {dataset: synthetic, records: 40}",
                                         f"data: {{dataset: physionet2021, root: {tmp_path / 'missing'}}}"))
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"error: {path}: data: dataset 'physionet2021': the data folder {tmp_path / 'missing'} "
                           "does not exist; set root to the unpacked Challenge 2021 training folder.")


def test_validate_checks_every_file_it_is_given(tmp_path, capsys):
    good, bad = ROOT / "spaces" / "quickstart.yaml", _write(tmp_path, GOOD.replace("trials: 2", "trials: two"))
    assert main(["validate", str(good), str(bad), str(good)]) == 2
    captured = capsys.readouterr()
    assert captured.out.count(f"{good}: ok (quickstart:") == 2
    assert captured.err == f"{bad}:4: budget.trials: 'two' is not an integer >= 1\n"


def test_the_pre_commit_hook_validates_the_shipped_spaces(capsys):
    import re
    import shlex

    import yaml

    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    spaces = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "spaces").glob("*.yaml"))
    assert hook["id"] == "ecgsearch-validate" and all(re.search(hook["files"], path) for path in spaces)
    command = shlex.split(hook["entry"])
    assert command[0] == "ecgsearch"
    assert main([*command[1:], *(str(ROOT / path) for path in spaces)]) == 0
    assert capsys.readouterr().out.count(": ok (") == len(spaces)


def test_a_reader_that_stops_early_ends_the_command_quietly():
    """`ecgsearch plugins --params | head -0`: the reader is gone before the command writes (it closes its end
    at once, while the command is still importing); the command stops without a BrokenPipeError traceback and
    exits as a shell reports SIGPIPE (141)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "ecgsearch", "plugins", "--params"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr

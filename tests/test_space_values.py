"""Every value of a space file is checked before any trial, not only its structure: each plugin declares
its parameters (type, bounds, allowed values) in its info record, and the parser checks fixed values and
every value a distribution can give against the declaration. Non-finite numbers are refused anywhere."""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from pathlib import Path

import pytest

from ecgsearch.cli import main
from ecgsearch.errors import SpaceError
from ecgsearch.infos import ParamSpec, bool_param, float_param, int_param, list_param, str_param
from ecgsearch.space import parse_space
from ecgsearch.space.yamlio import MAX_CHARACTERS, load_yaml

QUICKSTART = (Path(__file__).resolve().parent.parent / "spaces" / "quickstart.yaml").read_text()
NOT_FINITE = "is not a finite number; space files take finite numbers only (write a bound such as 1.0e9 instead of .inf)"

# The issue's variants of the quickstart (the base file validates), and the sentence each one gets.
VARIANTS = {
    "lr: fast": ("lr: {loguniform: [1.0e-3, 1.0e-2]}", "lr: fast",
                 "x.yaml:23: space.optimizer.adamw.lr: 'fast' is not a number in (0, 10]"),
    "lr: inf": ("lr: {loguniform: [1.0e-3, 1.0e-2]}", "lr: .inf", f"x.yaml:23: space.optimizer.adamw.lr: '.inf' {NOT_FINITE}"),
    "lr: -0.01": ("lr: {loguniform: [1.0e-3, 1.0e-2]}", "lr: -0.01",
                  "x.yaml:23: space.optimizer.adamw.lr: -0.01 is not a number in (0, 10]"),
    "weight_decay: .nan": ("weight_decay: {loguniform: [1.0e-5, 1.0e-2]}", "weight_decay: .nan",
                           f"x.yaml:23: space.optimizer.adamw.weight_decay: '.nan' {NOT_FINITE}"),
    "momentum: nan choice": ("momentum: {choice: [0.0, 0.9]}", "momentum: {choice: [.nan, 0.9]}",
                             f"x.yaml:24: space.optimizer.sgd.momentum.choice[0]: '.nan' {NOT_FINITE}"),
    "width: wide": ("width: {choice: [16, 24]}", "width: wide",
                    "x.yaml:20: space.architecture.convnext.width: 'wide' is not an integer in [1, 8192]"),
    "kernel: 1e308": ("kernel: {choice: [7, 9, 15]}", "kernel: 1e308",
                      "x.yaml:21: space.architecture.resnet.kernel: 1e+308 is not an odd integer in [1, 1023]"),
    "kernel: choice with a word": ("kernel: {choice: [7, 9, 15]}", "kernel: {choice: [7, big]}",
                                   "x.yaml:21: space.architecture.resnet.kernel: choice [7, 'big'] can give 'big', "
                                   "which is not an odd integer in [1, 1023]"),
    "data.seconds: 0": ("seconds: 10", "seconds: 0", "x.yaml:10: data.seconds: 0 is not a number in [2, 300]"),
    "data.records: -5": ("records: 1200", "records: -5", "x.yaml:8: data.records: -5 is not an integer in [20, 10000000]"),
    "data.leads with nan": ("leads: [I, II, V1, V2, V3, V4, V5, V6]", "leads: [I, .nan, V1]",
                            f"x.yaml:11: data.leads[1]: '.nan' {NOT_FINITE}"),
    "resources.gpu: 1e308": ("gpu: 0}", "gpu: 1e308}", "x.yaml:15: resources.gpu: 1e+308 is not a number in [0, 1024]"),
    "a range beyond the bounds": ("lr: {loguniform: [1.0e-3, 1.0e-2]}", "lr: {loguniform: [1.0e-3, 1.0e3]}",
                                  "x.yaml:23: space.optimizer.adamw.lr: loguniform [0.001, 1000.0] can give 1000.0, "
                                  "which is not a number in (0, 10]"),
    "a float range for an integer": ("channels: {choice: [16, 24]}", "channels: {uniform: [16, 24]}",
                                     "x.yaml:21: space.architecture.resnet.channels: uniform [16, 24] gives values "
                                     "that are not an integer in [1, 8192]; use randint, qrandint or choice"),
    "an integer range for an odd kernel": ("kernel: {choice: [7, 9, 15]}", "kernel: {randint: [3, 9]}",
                                           "x.yaml:21: space.architecture.resnet.kernel: randint [3, 9] gives values "
                                           "that are not an odd integer in [1, 1023]; use choice"),
    "a value not among the allowed": ("depth: {choice: [8, 10]}", "depth: 12",
                                      "x.yaml:21: space.architecture.resnet.depth: 12 is not one of 8, 10, 18, 34"),
    "a task option": ("task: multilabel", "task: {name: multilabel, loss: focal}",
                      "x.yaml:12: task.loss: 'focal' is not one of 'bce', 'asymmetric'"),
}


def test_the_base_file_validates():
    assert parse_space(QUICKSTART, source="x.yaml").name == "quickstart"


@pytest.mark.parametrize("name", VARIANTS)
def test_a_wrong_value_is_refused_with_file_line_and_key(name):
    old, new, message = VARIANTS[name]
    assert old in QUICKSTART
    with pytest.raises(SpaceError) as caught:
        parse_space(QUICKSTART.replace(old, new, 1), source="x.yaml")
    assert str(caught.value) == message


def test_validate_exits_2_with_the_sentence(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(QUICKSTART.replace("lr: {loguniform: [1.0e-3, 1.0e-2]}", "lr: fast", 1))
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err == f"{path}:23: space.optimizer.adamw.lr: 'fast' is not a number in (0, 10]\n"


@pytest.mark.parametrize("text, message", [
    ("a: .nan\n", f"f.yaml:1: a: '.nan' {NOT_FINITE}"),
    ("a: {b: [1, -.Inf]}\n", f"f.yaml:1: a.b[1]: '-.Inf' {NOT_FINITE}"),
    ("a: 1e400\n", f"f.yaml:1: a: '1e400' {NOT_FINITE}"),
    ("? !!int twelve\n: 1\n", "f.yaml:1: twelve: 'twelve' is not a valid value for the YAML tag 'tag:yaml.org,2002:int'"),
    ("? !!float abc\n: 1\n", "f.yaml:1: abc: 'abc' is not a valid value for the YAML tag 'tag:yaml.org,2002:float'"),
    ("a: !!timestamp nope\n", "f.yaml:1: a: 'nope' is not a valid value for the YAML tag 'tag:yaml.org,2002:timestamp'"),
])
def test_hostile_yaml_values_are_one_sentence(text, message):
    with pytest.raises(SpaceError) as caught:
        load_yaml(text, "f.yaml")
    assert str(caught.value) == message


def test_size_limits_are_checked_before_parsing():
    text = "x: [" + ",".join(["1"] * 2_000_000) + "]"
    started = time.perf_counter()
    with pytest.raises(SpaceError) as caught:
        load_yaml(text, "f.yaml")
    assert time.perf_counter() - started < 1.0  # refused before the parser sees it (it took over 60 s)
    assert str(caught.value) == (f"f.yaml: the file has {len(text):,} characters, more than the {MAX_CHARACTERS:,} "
                                 "a space file may have; a space file is a short description of a search, not data")


@pytest.mark.parametrize("spec, good, bad, text", [
    (int_param(1, 1023, odd=True), [1, 7, 7.0, 1023], [8, 0, 1025, 7.5, True, "7", None, float("nan")],
     "an odd integer in [1, 1023]"),
    (float_param(0, 1, low_open=True, high_open=True), [0.5, 1e-9], [0, 1, -0.1, float("inf"), "0.5", False],
     "a number in (0, 1)"),
    (float_param(0, None, nullable=True), [0.0, 3, None], [-1, "x"], "a number >= 0 or null"),
    (bool_param(), [True, False], [0, 1, "true", None], "true or false"),
    (str_param("cls", "mean"), ["cls", "mean"], ["max", 1, None], "one of 'cls', 'mean'"),
    (list_param("int", 1, 64, max_len=2), [[1], [2, 64]], [[], [1, 2, 3], [0], [1.5], "1", 3],
     "a non-empty list of at most 2 integers in [1, 64]"),
    (ParamSpec("any"), [None, 3, "x", [1, "I"]], [float("nan"), [1, float("inf")], {"a": 1}], "a value"),
    (ParamSpec("mapping"), [{}, {"a": 1, "b": [1, "x"]}], [{"a": {"b": 1}}, {"a": float("nan")}, {1: 2}, [1], None],
     "a mapping of plain values"),
    (ParamSpec("mapping", nullable=True, options_of="surrogate"), [None, {"a": 1, "gp": {"nu": 1.5}}],
     [{"gp": {"nu": {"deep": 1}}}, {"gp": {"nu": float("inf")}}], "a mapping of options of the surrogate or null"),
    (ParamSpec("mapping", options_of="surrogates:random_forest"), [{"n_estimators": 5}], [{"a": {"b": {"c": 1}}}],
     "a mapping of options of surrogate 'random_forest'"),
])
def test_a_declaration_accepts_exactly_its_values(spec, good, bad, text):
    assert spec.describe() == text
    assert all(spec.accepts(v) for v in good), [v for v in good if not spec.accepts(v)]
    assert not any(spec.accepts(v) for v in bad), [v for v in bad if spec.accepts(v)]


def test_an_undeclared_parameter_is_checked_by_its_default_type():
    """A third-party plugin that declares nothing still gets its defaults' types checked."""
    from ecgsearch.infos import OptimizerInfo
    from ecgsearch.space.fields import declared_params

    def build(parameters, *, lr=1e-3, steps=3, flag=False, name="x"):
        return None

    declared = declared_params(OptimizerInfo(name="plain", description="", factory=build), skip=1)
    assert {k: v.type for k, v in declared.items()} == {"lr": "float", "steps": "int", "flag": "bool", "name": "str"}


@pytest.mark.parametrize("name", ["../../x", "a/b", "x" * 300, ".hidden", "", "runs\\\\x"])
def test_a_run_name_must_be_a_safe_folder_name(name):
    """``name:`` becomes runs/<name> without --out: ``../../x`` wrote outside ./runs, 300 characters crashed."""
    text = QUICKSTART.replace("name: quickstart", f"name: '{name}'", 1)
    with pytest.raises(SpaceError) as caught:
        parse_space(text, source="x.yaml")
    assert str(caught.value).startswith("x.yaml:4: name: ") and str(caught.value).endswith(
        "is not a safe run name; use 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit "
        "(it names the folder runs/<name>)")


def test_a_safe_run_name_passes():
    assert parse_space(QUICKSTART.replace("name: quickstart", "name: loso-Georgia_v2.1"), source="x.yaml").name == \
        "loso-Georgia_v2.1"


def test_a_wrong_value_anywhere_in_a_study_file_is_refused():
    """One leaf of a study space file replaced by a wrong value (a word, a huge or negative number, NaN, a
    mixed list): before the declarations 260 of 400 such files validated; now only the mutations that
    happen to be valid settings do (gpu 0, a bottleneck of 0 = none, a huge max_params...)."""
    import random

    import yaml

    from ecgsearch.cli import main as cli

    bad_values = ["fast", -1e9, 1e308, float("nan"), float("inf"), "wide", -5, [1, "x"]]
    sections = ("data", "space", "task", "budget", "resources", "transfer", "latency")
    files = sorted((Path(__file__).resolve().parent.parent / "spaces").glob("*.yaml"))
    rng = random.Random(20261204)
    valid = []
    for case in range(150):
        path = rng.choice(files)
        doc = yaml.safe_load(path.read_text())
        leaves = list(_leaves(doc))
        where = rng.choice([p for p in leaves if p[0] in sections and p[-1] not in ("root", "dataset", "name")])
        node = doc
        for key in where[:-1]:
            node = node[key]
        node[where[-1]] = rng.choice(bad_values)
        target = Path(tempfile.mkdtemp()) / path.name
        target.write_text(yaml.safe_dump(doc))
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            if cli(["validate", str(target)]) == 0:
                valid.append((path.name, ".".join(map(str, where)), node[where[-1]]))
    assert valid == [], valid


def _leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaves(value, (*path, index))
    else:
        yield path


ONE_BAD_ARCHITECTURE = "    transformer: {width: 30, heads: {choice: [4, 8]}, patch: 10}\n"


@pytest.mark.parametrize("command", ["validate", "run"])
def test_an_architecture_no_draw_can_build_is_refused_before_any_data(tmp_path, capsys, command):
    """Fixed values that clash (no ``heads`` divides ``width: 30``; each value alone is valid) are refused
    by ``validate``, and by ``run`` before it prepares any data, naming the line and the factory's reason;
    an architecture with some buildable combinations passes (its other draws are redrawn per trial)."""
    good = QUICKSTART.replace("  architecture:\n", "  architecture:\n" + ONE_BAD_ARCHITECTURE.replace("30", "32"), 1)
    path = tmp_path / "x.yaml"
    path.write_text(good.replace("{choice: [4, 8]}", "{choice: [4, 7]}"))  # heads 7 never divides 32
    assert main(["validate", str(path)]) == 0
    path.write_text(QUICKSTART.replace("  architecture:\n", "  architecture:\n" + ONE_BAD_ARCHITECTURE, 1))
    assert main([command, str(path), *(["--out", str(tmp_path / "out")] if command == "run" else [])]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"{path}:20: space.architecture.transformer: none of its drawn combinations can be built; the last was "
        "rejected with: transformer: heads=8 does not divide width=30; choose heads among 1, 2, 3, 5, 6, 10, 15, "
        "30 or change the width. Narrow the space to valid combinations.")
    assert not (tmp_path / "out").exists()  # nothing prepared, nothing written

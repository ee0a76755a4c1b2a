"""Property-based tests (Hypothesis) of the space language (docs/space-file.md).

Random *valid* space files are generated from a small catalogue of built-in options and trial parameters
(finite, well-typed values inside each parameter's declared range, every distribution form, every form
of a conditional choice, grids where they are allowed). Each must pass ``ecgsearch validate``, parse to a
space that says what the file says, and sample configurations that stay inside the distributions
written in the file and follow the conditional structure. The samples are checked against the file's
own numbers, not against the distributions' ``contains``.
"""

from __future__ import annotations

import io
import itertools
import math
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("hypothesis", reason="the property-based tests need Hypothesis (pip install hypothesis)")

import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from ecgsearch.cli import main
from ecgsearch.errors import SpaceError
from ecgsearch.space import parse_space

PROPERTY = settings(derandomize=True, deadline=None, max_examples=40, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
SAMPLES = 6  # candidates sampled per generated file
HEADER = {"data": {"dataset": "synthetic"}, "task": "multilabel", "budget": {"trials": 2, "epochs": 1}}


# ---------------------------------------------------------------- what each catalogued parameter takes


@dataclass(frozen=True)
class Takes:
    """A parameter's declared values (docs: `ecgsearch plugins --params`, docs/space-file.md trial parameters)."""

    type: str  # int, odd, float, bool, word
    low: float = 0.0
    high: float = 0.0
    low_open: bool = False
    high_open: bool = False
    words: tuple[Any, ...] = ()  # bool/word: the allowed values (also ints for `depth: one of 8, 10, 18, 34`)


def Int(low, high):
    return Takes("int", low, high)


def Odd(low, high):
    return Takes("odd", low, high)


def Float(low, high, low_open=False, high_open=False):
    return Takes("float", low, high, low_open, high_open)


def Words(*words):
    return Takes("word", words=words)


BOOL = Takes("bool", words=(True, False))

# kind -> option -> parameter -> what it takes (a subset of each declaration, ranges kept small)
CATALOGUE: dict[str, dict[str, dict[str, Takes]]] = {
    "architecture": {
        "resnet": {"depth": Words(8, 10, 18, 34), "channels": Int(1, 256), "kernel": Odd(1, 31)},
        "convnext": {"stages": Int(1, 4), "width": Int(1, 256), "kernel": Odd(1, 31),
                     "drop_path": Float(0, 1, high_open=True), "layer_scale": Float(0, 10)},
        "transformer": {"depth": Int(1, 8), "heads": Int(1, 8), "pool": Words("cls", "mean"),
                        "dropout": Float(0, 1, high_open=True), "mlp_ratio": Float(0.1, 64)},
        "inception": {"residual": BOOL, "depth": Int(1, 12), "kernel": Odd(1, 63), "bottleneck": Int(0, 64)},
    },
    "optimizer": {
        "adamw": {"lr": Float(0, 10, low_open=True), "weight_decay": Float(0, 10),
                  "beta1": Float(0, 1, high_open=True)},
        "sgd": {"lr": Float(0, 10, low_open=True), "momentum": Float(0, 1, high_open=True), "nesterov": BOOL},
    },
    "schedule": {
        "cosine": {"warmup_epochs": Float(0, 10000), "min_lr_ratio": Float(0, 1)},
        "onecycle": {"pct_start": Float(0, 1, low_open=True), "anneal": Words("cos", "linear"), "cycle_momentum": BOOL},
        "exponential": {"gamma": Float(0, 1, low_open=True)},
    },
}
TRIAL: dict[str, Takes] = {
    "batch_size": Int(1, 4096), "data_fraction": Float(0, 1, low_open=True), "grad_clip": Float(0, 100),
    "precision": Words("fp32", "bf16"), "augment_noise": Float(0, 1), "augment_p": Float(0, 1),
}
# docs/space-file.md, "Trial parameters": the default of each one left out of the file
TRIAL_DEFAULTS = {"batch_size": 64, "data_fraction": 1.0, "crop_fraction": 1.0, "grad_clip": 0.0, "precision": "fp32",
                  "augment_amplitude_scale": 0.0, "augment_noise": 0.0, "augment_baseline_wander": 0.0,
                  "augment_time_mask": 0.0, "augment_lead_mask": 0.0, "augment_time_warp": 0.0, "augment_p": 0.5}
QUANTA = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


# ---------------------------------------------------------------- one parameter's value in the file


@dataclass(frozen=True)
class Value:
    """A value as written in the file: ``dist`` is ``fixed`` or a distribution keyword."""

    dist: str
    args: Any

    def to_yaml(self) -> Any:
        return self.args if self.dist == "fixed" else {self.dist: self.args}


def inside(takes: Takes, **exclude) -> st.SearchStrategy[float]:
    return st.floats(takes.low, takes.high, exclude_min=takes.low_open or exclude.get("low", False),
                     exclude_max=takes.high_open, allow_nan=False, allow_infinity=False)


def singles(takes: Takes) -> st.SearchStrategy[Any]:
    """One value the parameter takes."""
    if takes.type == "int":
        return st.integers(int(takes.low), int(takes.high))
    if takes.type == "odd":
        return st.integers(int(takes.low) // 2, (int(takes.high) - 1) // 2).map(lambda k: 2 * k + 1)
    if takes.type == "float":
        return inside(takes)
    return st.sampled_from(takes.words)


@st.composite
def quantized_bounds(draw, takes: Takes, log: bool) -> list[float]:
    """``[lo, hi, q]`` with a multiple of q inside. A bound is an exact multiple ``k * q`` (with its float
    noise, ``3 * 0.1``) or at least a millionth of q away from every multiple: bounds within float noise
    of a multiple snap onto it, and tiny positive bounds are the finding tested at the end of the file."""
    q = draw(st.sampled_from([q for q in QUANTA if q <= takes.high - takes.low]))
    bounds = []
    for _ in range(2):
        if draw(st.booleans()):
            k = draw(st.integers(math.ceil(takes.low / q), math.floor(takes.high / q)))
            value = k * q
        else:
            value = draw(inside(takes))
            assume(abs(value / q - round(value / q)) > 1e-6)
        assume(takes.low <= value <= takes.high and not (takes.low_open and value <= takes.low)
               and not (takes.high_open and value >= takes.high))
        bounds.append(value)
    lo, hi = sorted(bounds)
    assume(lo < hi and (not log or lo > 0))
    first, last = expected_multiples(lo, hi, q)
    assume(first <= last)
    return [lo, hi, q]


def expected_multiples(lo: float, hi: float, q: float) -> tuple[int, int]:
    """The first and last k with k * q in [lo, hi], float noise of a bound that is a multiple forgiven."""
    first, last = math.ceil(lo / q - 1e-9), math.floor(hi / q + 1e-9)
    return first, last


@st.composite
def values(draw, takes: Takes, grid_ok: bool) -> Value:
    """A fixed value or a distribution the parameter accepts (every value it can give is declared)."""
    forms = ["fixed", "choice"] + (["grid"] if grid_ok else [])
    if takes.type == "int":
        forms += ["randint", "qrandint"]
    if takes.type == "float":
        forms += ["uniform", "loguniform", "quniform", "qloguniform"]
    form = draw(st.sampled_from(forms))
    if form == "fixed":
        return Value("fixed", draw(singles(takes)))
    if form in ("choice", "grid"):  # a grid lists distinct values (a choice may repeat one, to weigh it)
        return Value(form, draw(st.lists(singles(takes), min_size=1, max_size=4, unique=form == "grid")))
    if form == "randint":
        lo, hi = sorted(draw(st.lists(singles(takes), min_size=2, max_size=2, unique=True)))
        return Value(form, [lo, hi])
    if form == "qrandint":
        q = draw(st.integers(1, 8))
        lo, hi = sorted(draw(st.lists(singles(takes), min_size=2, max_size=2, unique=True)))
        assume(-(-lo // q) * q <= hi)
        return Value(form, [lo, hi, q])
    if form in ("uniform", "loguniform"):
        lo, hi = sorted(draw(st.lists(inside(takes, low=form == "loguniform"), min_size=2, max_size=2, unique=True)))
        assume(lo < hi)
        return Value(form, [lo, hi])
    return Value(form, draw(quantized_bounds(takes, log=form == "qloguniform")))


# ---------------------------------------------------------------- a whole file


@dataclass
class Generated:
    doc: dict[str, Any]  # the file as YAML data
    options: dict[str, list[str]]  # choice -> options in file order
    params: dict[str, tuple[str | None, Value]]  # flat name -> (the option it belongs to, value)
    seed: int

    @property
    def text(self) -> str:
        return yaml.safe_dump(self.doc, sort_keys=False)


@st.composite
def space_files(draw) -> Generated:
    space: dict[str, Any] = {}
    options: dict[str, list[str]] = {}
    params: dict[str, tuple[str | None, Value]] = {}
    for kind, catalogue in CATALOGUE.items():
        if kind == "schedule" and draw(st.booleans()):
            continue  # an optional choice left out
        chosen = draw(st.lists(st.sampled_from(sorted(catalogue)), min_size=1, max_size=len(catalogue), unique=True))
        subs: dict[str, Any] = {}
        for option in chosen:
            names = draw(st.lists(st.sampled_from(sorted(catalogue[option])), max_size=3, unique=True))
            sub = {}
            for name in names:
                value = draw(values(catalogue[option][name], grid_ok=len(chosen) == 1))
                sub[name] = value.to_yaml()
                params[f"{kind}.{option}.{name}"] = (option, value)
            subs[option] = sub or draw(st.sampled_from([None, {}]))
        if all(sub is None or sub == {} for sub in subs.values()) and draw(st.booleans()):
            space[kind] = chosen[0] if len(chosen) == 1 and draw(st.booleans()) else list(chosen)  # names only
        else:
            space[kind] = subs
        options[kind] = chosen
    for name in draw(st.lists(st.sampled_from(sorted(TRIAL)), max_size=3, unique=True)):
        value = draw(values(TRIAL[name], grid_ok=True))
        space[name] = value.to_yaml()
        params[name] = (None, value)
    seed = draw(st.integers(0, 2**31 - 1))
    doc = {
        "name": "generated", "seed": seed,
        "data": {"dataset": "synthetic", "records": draw(st.integers(20, 5000))},
        "task": "multilabel",
        "metric": draw(st.sampled_from(["macro_auroc", "macro_auprc", "challenge_score", "macro_f1", "ece"])),
        "budget": {"trials": draw(st.integers(1, 100)), "epochs": draw(st.integers(1, 20))},
        "resources": {"cpu": 1, "gpu": 0},
        "space": space,
    }
    return Generated(doc, options, params, seed)


def validate(text: str) -> tuple[int, str]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "generated.yaml"
        path.write_text(text)
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["validate", str(path)])
    return code, out.getvalue() + err.getvalue()


# ---------------------------------------------------------------- what a sample may be


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def assert_sample_of(value: Any, spec: Value, name: str) -> None:
    """``value`` is one the file's ``spec`` can give, with the Python type docs/space-file.md promises."""
    args = spec.args
    if spec.dist == "fixed":
        assert value == args and type(value) is type(args), name
    elif spec.dist in ("choice", "grid"):
        assert any(value == v and type(value) is type(v) for v in args), f"{name}: {value!r} not in {args!r}"
    elif spec.dist in ("randint", "qrandint"):
        assert type(value) is int, f"{name}: {value!r} is not an int"
        assert args[0] <= value <= args[1], f"{name}: {value} outside {args}"
        if spec.dist == "qrandint":
            assert value % args[2] == 0, f"{name}: {value} is not a multiple of {args[2]}"
    else:
        assert type(value) is float, f"{name}: {value!r} is not a float"
        lo, hi = args[0], args[1]
        tolerance = 1e-9 * max(1.0, abs(lo), abs(hi))
        assert lo - tolerance <= value <= hi + tolerance, f"{name}: {value} outside [{lo}, {hi}]"
        if spec.dist.startswith("q"):
            q = args[2]
            assert close(value / q, round(value / q)), f"{name}: {value} is not a multiple of {q}"
            assert float(f"{value:.12g}") == value, f"{name}: float noise in {value!r}"  # 0.3, not 0.30000000000000004


def expected_keys(gen: Generated, config: dict[str, Any]) -> set[str]:
    """The choices, the parameters of the chosen options, and every trial parameter."""
    active = {name for name, (option, _) in gen.params.items()
              if option is None or config.get(name.split(".")[0]) == option}
    return set(gen.options) | active | set(TRIAL_DEFAULTS)


# ---------------------------------------------------------------- properties


@PROPERTY
@given(space_files())
def test_every_generated_valid_file_passes_validate(gen):
    code, output = validate(gen.text)
    # each value is valid alone, but the values of one architecture may clash in every draw (heads that
    # divide no width): validate refuses that by design, in one line (tests/test_space_values.py)
    unbuildable = code == 2 and "none of its drawn combinations can be built" in output and output.count("\n") == 1
    assume(not unbuildable)
    assert code == 0, f"{output}\n{gen.text}"
    assert "ok" in output and f"{gen.doc['budget']['trials']} trials" in output


@PROPERTY
@given(space_files())
def test_the_parsed_space_says_what_the_file_says(gen):
    spec = parse_space(gen.text)
    assert spec.seed == gen.seed and spec.name == "generated"
    assert spec.budget.trials == gen.doc["budget"]["trials"] and spec.budget.epochs == gen.doc["budget"]["epochs"]
    space = spec.space
    assert {kind: tuple(opts) for kind, opts in gen.options.items()} == dict(space.choices)
    by_name = {p.name: p for p in space.parameters}
    for name, (option, value) in gen.params.items():
        param = by_name[name]
        assert param.condition == (None if option is None else (name.split(".")[0], option)), name
        dist = param.dist
        assert dist.name == value.dist, name
        if value.dist == "fixed":
            assert dist.value == value.args
        elif value.dist in ("choice", "grid"):
            assert list(dist.values) == value.args
        else:
            assert [dist.lo, dist.hi] + ([dist.q] if value.dist.startswith("q") else []) == value.args
    for name, default in TRIAL_DEFAULTS.items():  # a trial parameter left out is fixed at its default
        if name not in gen.params:
            assert by_name[name].dist.name == "fixed" and by_name[name].dist.value == default, name
            assert by_name[name].condition is None
    # the same file as YAML data, and re-dumped, is the same space
    assert parse_space(yaml.safe_load(gen.text)).space == space
    assert parse_space(yaml.safe_dump(yaml.safe_load(gen.text), sort_keys=False)).space == space


@PROPERTY
@given(space_files())
def test_samples_stay_inside_the_file_and_follow_the_conditional_structure(gen):
    space = parse_space(gen.text).space
    seen = {kind: set() for kind in gen.options}
    for index in range(SAMPLES):
        config = space.sample(gen.seed, index)
        assert config == space.sample(gen.seed, index)  # deterministic
        for kind, opts in gen.options.items():
            assert config[kind] in opts
            seen[kind].add(config[kind])
        assert "schedule" in config or "schedule" not in gen.options
        assert set(config) == expected_keys(gen, config)
        for name, (option, value) in gen.params.items():
            if name in config:
                assert_sample_of(config[name], value, name)
        for name, default in TRIAL_DEFAULTS.items():
            if name not in gen.params:
                assert config[name] == default, name
        # resolve: each choice's option with its own parameters as keyword arguments, the rest trial params
        resolved = space.resolve(config)
        for kind in gen.options:
            option, kwargs = resolved.choices[kind]
            prefix = f"{kind}.{option}."
            assert option == config[kind]
            assert kwargs == {k[len(prefix):]: v for k, v in config.items() if k.startswith(prefix)}
        assert dict(resolved.params) == {name: config[name] for name in TRIAL_DEFAULTS}


@PROPERTY
@given(space_files(), st.integers(0, 50))
def test_grids_walk_their_cross_product_with_the_last_grid_fastest(gen, start):
    grids = [(name, value.args) for name, (_, value) in gen.params.items() if value.dist == "grid"]
    assume(grids)
    space = parse_space(gen.text).space
    order = [param.name for param in space.parameters]  # the space's order of its parameters, not the file's
    grids.sort(key=lambda grid: order.index(grid[0]))
    points = list(itertools.product(*(args for _, args in grids)))  # the last one varies fastest
    assert space.grid_size() == len(points)
    for index in range(start, start + min(len(points) + 1, 8)):
        config = space.sample(gen.seed, index)
        for (name, _), expected in zip(grids, points[index % len(points)]):
            assert config[name] == expected and type(config[name]) is type(expected), (name, index)


@PROPERTY
@given(space_files(), st.data())
def test_active_keeps_exactly_the_parameters_of_the_chosen_options(gen, data):
    """Tune samples every parameter of every option; ``active`` drops those of the options not chosen."""
    space = parse_space(gen.text).space
    config = {kind: data.draw(st.sampled_from(opts)) for kind, opts in gen.options.items()}
    full = {**config, **{p.name: f"value of {p.name}" for p in space.parameters}}
    active = space.active(full)
    assert set(active) == expected_keys(gen, config)
    assert all(active[k] == full[k] for k in active)


@PROPERTY
@given(st.sampled_from(["randint", "qrandint", "choice"]), st.integers(1, 200), st.integers(1, 3), st.integers(1, 4),
       st.integers(0, 1000))
def test_integer_ranges_include_both_ends_and_every_choice_comes_up(dist, lo, width, q, seed):
    """docs/space-file.md: randint gives integers in [lo, hi] "both ends included", qrandint every multiple of
    q in [lo, hi]; 200 candidates of a range of at most 4 values see each of them."""
    if dist == "randint":
        args, expected = [lo, lo + width], set(range(lo, lo + width + 1))
    elif dist == "qrandint":
        args = [lo, lo + width * q, q]
        expected = {v for v in range(lo, lo + width * q + 1) if v % q == 0}
    else:
        args = list(range(lo, lo + width + 1))
        expected = set(args)
    space = {"architecture": "resnet", "optimizer": "sgd", "batch_size": {dist: args}}
    parsed = parse_space(yaml.safe_dump({**HEADER, "space": space}, sort_keys=False)).space
    assert {parsed.sample(seed, index)["batch_size"] for index in range(200)} == expected


# ---------------------------------------------------------------- findings: quantized ranges near zero

def tiny_quantized(dist: str, lo: float, hi: float, q: float) -> str:
    # augment_noise accepts [0, 1]: the declaration refuses nothing here, so the range itself is on trial
    space = {"architecture": "resnet", "optimizer": "sgd", "augment_noise": {dist: [lo, hi, q]}}
    return yaml.safe_dump({**HEADER, "space": space}, sort_keys=False)


@PROPERTY
@given(st.floats(1e-300, 1e-13), st.sampled_from([0.5, 0.75, 1.0]), st.sampled_from([0.05, 0.1, 0.25]))
@example(lo=1e-13, hi=1.0, q=0.1)
def test_a_valid_qloguniform_samples_positive_values_inside_its_range(lo, hi, q):
    space = parse_space(tiny_quantized("qloguniform", lo, hi, q)).space  # valid: 0 < lo < hi, multiples of q inside
    for index in range(SAMPLES):
        value = space.sample(0, index)["augment_noise"]
        assert lo <= value <= hi and value > 0


@PROPERTY
@given(st.floats(1e-300, 1e-15), st.sampled_from([0.05, 0.1, 0.25]))
@example(lo=1e-15, q=0.1)
def test_a_quniform_range_without_a_multiple_of_q_is_refused(lo, q):
    hi = 10 * lo  # far below q: no multiple of q (0 excluded, lo > 0) lies in [lo, hi]
    with pytest.raises(SpaceError, match="no multiple of q"):
        space = parse_space(tiny_quantized("quniform", lo, hi, q)).space
        pytest.fail(f"accepted; it samples {space.sample(0, 0)['augment_noise']!r}, outside [{lo}, {hi}]")

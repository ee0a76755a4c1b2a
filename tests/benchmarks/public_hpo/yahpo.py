"""YAHPO Gym's surrogate benchmarks, read straight from their published data with onnxruntime.

YAHPO Gym (Pfisterer et al., AutoML 2022) replaces each tabular HPO benchmark by a neural network
fitted to it, published as ``<scenario>/model.onnx`` with ``config_space.json`` (the search space,
conditions included) and ``encoding.json`` (the integer codes of the categorical inputs) in its data
repository. The ``yahpo-gym`` package on PyPI evaluates them, but it pins ``numpy<2`` and
``ConfigSpace<=0.6.1`` (SMAC3 needs ``ConfigSpace>=1``), so this module evaluates the same files itself:
the network's inputs are the continuous hyperparameters in the scenario's order (an inactive one is 0)
and the categorical ones as their codes (an inactive one is ``#na#``), exactly as yahpo-gym feeds them;
``check_yahpo_loader.py`` compares the two on random configurations.

Nothing here is vendored: the data directory is given with ``--data`` or ``$YAHPO_DATA`` (default
``~/.cache/ecgsearch/yahpo_data``), a checkout of https://github.com/slds-lmu/yahpo_data (v1.0).
This module imports ecgsearch only in ``search_space`` (so the check runs in a yahpo-gym environment).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

DEFAULT_DATA = Path.home() / ".cache" / "ecgsearch" / "yahpo_data"
DATA_URL = "https://github.com/slds-lmu/yahpo_data"


@dataclass(frozen=True)
class Scenario:
    """A YAHPO scenario: the network's input columns (in its order), the instance column, the fidelity
    parameters held at their maximum, the outputs, and which output is optimised in which direction."""

    name: str
    cont: tuple[str, ...]
    cat: tuple[str, ...]
    instance: str
    fidelity: Mapping[str, float]
    outputs: tuple[str, ...]
    target: str
    mode: str
    instances: tuple[str, ...]  # the instances benchmarked (YAHPO's v1.0 single-objective suite where it has 3)
    notes: str = ""


RBV2_OUT = ("acc", "bac", "auc", "brier", "f1", "logloss", "timetrain", "timepredict", "memory")
IAML_OUT = ("mmce", "f1", "auc", "logloss", "ramtrain", "rammodel", "rampredict", "timetrain", "timepredict",
            "mec", "ias", "nf")

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("lcbench", cont=("epoch", "batch_size", "learning_rate", "momentum", "weight_decay", "num_layers",
                              "max_units", "max_dropout"),
             cat=("OpenML_task_id",), instance="OpenML_task_id", fidelity={"epoch": 52},
             outputs=("time", "val_accuracy", "val_cross_entropy", "val_balanced_accuracy", "test_cross_entropy",
                      "test_balanced_accuracy"),
             target="val_accuracy", mode="max", instances=("167168", "189873", "189906"),
             notes="funnel MLPs (Auto-PyTorch) on OpenML tasks; 7 numeric hyperparameters, 2 of them log-integers"),
    Scenario("rbv2_xgboost", cont=("nrounds", "eta", "gamma", "lambda", "alpha", "subsample", "max_depth",
                                   "min_child_weight", "colsample_bytree", "colsample_bylevel", "rate_drop",
                                   "skip_drop", "trainsize", "repl"),
             cat=("task_id", "booster", "num.impute.selected.cpo"), instance="task_id",
             fidelity={"trainsize": 1.0, "repl": 10}, outputs=RBV2_OUT, target="acc", mode="max",
             instances=("12", "1501", "16"),
             notes="XGBoost on OpenML tasks; 3 boosters, 6 hyperparameters shared by gbtree and dart"),
    Scenario("rbv2_rpart", cont=("cp", "maxdepth", "minbucket", "minsplit", "trainsize", "repl"),
             cat=("task_id", "num.impute.selected.cpo"), instance="task_id", fidelity={"trainsize": 1.0, "repl": 10},
             outputs=RBV2_OUT, target="acc", mode="max", instances=("14", "40499", "3"),
             notes="decision trees (rpart) on OpenML tasks; integers and a log-scaled float"),
    Scenario("iaml_glmnet", cont=("alpha", "s", "trainsize"), cat=("task_id",), instance="task_id",
             fidelity={"trainsize": 1.0}, outputs=IAML_OUT, target="mmce", mode="min",
             instances=("40981", "41146", "1489", "1067"),
             notes="elastic net on OpenML tasks; 2 continuous hyperparameters, one log-scaled; error minimised"),
)}


def data_dir(given: str | Path | None = None) -> Path:
    return Path(given or os.environ.get("YAHPO_DATA") or DEFAULT_DATA).expanduser()


def missing(root: Path, scenarios: Sequence[str]) -> list[str]:
    """The files of ``scenarios`` that ``root`` lacks."""
    return [str(root / s / f) for s in scenarios for f in ("config_space.json", "encoding.json", "model.onnx")
            if not (root / s / f).is_file()]


def all_instances(root: Path, scenario: str) -> list[str]:
    """Every instance (OpenML task) of the scenario's published search space, in its order."""
    space = json.loads((root / scenario / "config_space.json").read_text())
    name = SCENARIOS[scenario].instance
    return [str(c) for h in space["hyperparameters"] if h["name"] == name for c in h["choices"]]


@dataclass
class Hyperparameter:
    name: str
    kind: str  # uniform_float | uniform_int | categorical | constant
    lower: float = 0.0
    upper: float = 1.0
    log: bool = False
    choices: tuple[str, ...] = ()
    parent: str | None = None  # active only when ``parent`` takes one of ``when``
    when: tuple[str, ...] = ()


@dataclass
class YahpoProblem:
    """One instance of a scenario: a batch objective over plain configurations (hyperparameter -> value)."""

    scenario: Scenario
    instance: str
    hyperparameters: list[Hyperparameter]
    encoding: dict[str, dict[str, int]]
    model_path: Path
    _session: Any = field(default=None, repr=False)

    @classmethod
    def load(cls, root: Path, scenario: str, instance: str) -> YahpoProblem:
        spec = SCENARIOS[scenario]
        folder = root / scenario
        space = json.loads((folder / "config_space.json").read_text())
        encoding = json.loads((folder / "encoding.json").read_text())
        if instance not in encoding[spec.instance]:
            raise ValueError(f"{scenario} has no instance {instance!r}")
        conditions = {c["child"]: (c["parent"], tuple(c["values"]) if c["type"] == "IN" else (c["value"],))
                      for c in space.get("conditions", [])}
        params = []
        for h in space["hyperparameters"]:
            if h["name"] == spec.instance or h["name"] in spec.fidelity:
                continue
            parent, when = conditions.get(h["name"], (None, ()))
            params.append(Hyperparameter(h["name"], h["type"], h.get("lower", 0.0), h.get("upper", 1.0),
                                         bool(h.get("log", False)), tuple(h.get("choices", ())), parent, when))
        return cls(spec, instance, params, encoding, folder / "model.onnx")

    @property
    def session(self) -> Any:
        if self._session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            self._session = ort.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"])
        return self._session

    def inputs(self, configs: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """The network's categorical codes and continuous inputs for ``configs`` (plain names)."""
        spec = self.scenario
        fixed = {spec.instance: self.instance, **spec.fidelity}
        cont = np.zeros((len(configs), len(spec.cont)), dtype=np.float32)
        cat = np.zeros((len(configs), len(spec.cat)), dtype=np.int32)
        for i, config in enumerate(configs):
            full = {**config, **fixed}
            for j, name in enumerate(spec.cont):
                value = full.get(name)
                cont[i, j] = 0.0 if value is None else float(value)
            for j, name in enumerate(spec.cat):
                value = full.get(name)
                cat[i, j] = self.encoding[name]["#na#" if value is None else str(value)]
        return cat, cont

    def evaluate(self, configs: Sequence[Mapping[str, Any]], chunk: int = 4096) -> np.ndarray:
        """The target output of each configuration (in its own units: larger better when mode is max)."""
        if not configs:
            return np.zeros(0)
        column = self.scenario.outputs.index(self.scenario.target)
        names = [i.name for i in self.session.get_inputs()]
        output = self.session.get_outputs()[0].name
        out = []
        for start in range(0, len(configs), chunk):
            cat, cont = self.inputs(configs[start:start + chunk])
            out.append(self.session.run([output], {names[0]: cat, names[1]: cont})[0][:, column])
        return np.concatenate(out).astype(float)

    def active(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """``config`` without the hyperparameters whose condition does not hold."""
        return {h.name: config[h.name] for h in self.hyperparameters
                if h.name in config and (h.parent is None or str(config.get(h.parent)) in h.when)}

    def random_configs(self, n: int, seed: int) -> list[dict[str, Any]]:
        """``n`` configurations drawn uniformly (log-uniformly for log-scaled ones), inactive ones left out."""
        rng = np.random.default_rng(seed)
        columns: dict[str, np.ndarray] = {}
        for h in self.hyperparameters:
            if h.kind == "categorical":
                columns[h.name] = np.asarray(h.choices, dtype=object)[rng.integers(0, len(h.choices), n)]
            elif h.kind == "uniform_int":
                lo, hi = h.lower - 0.5, h.upper + 0.5
                u = rng.random(n)
                x = np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo))) if h.log and h.lower > 0 else lo + u * (hi - lo)
                columns[h.name] = np.clip(np.round(x), h.lower, h.upper).astype(int)
            else:
                u = rng.random(n)
                columns[h.name] = (np.exp(np.log(h.lower) + u * (np.log(h.upper) - np.log(h.lower))) if h.log
                                   else h.lower + u * (h.upper - h.lower))
        rows = [{k: (v[i].item() if isinstance(v[i], np.generic) else v[i]) for k, v in columns.items()}
                for i in range(n)]
        return [self.active(r) for r in rows]

    # --- the same problem as an ecgsearch space ---------------------------------------------------

    def search_space(self) -> Any:
        """The problem as a plain ecgsearch space definition (what ``SurrogateSearcher`` accepts).

        A categorical parent of conditional hyperparameters becomes a conditional choice whose options
        hold their children (a child of several options appears under each, and the searcher shares it).
        """
        parents = {h.parent for h in self.hyperparameters if h.parent}
        definition: dict[str, Any] = {}
        for h in self.hyperparameters:
            if h.parent is not None:
                continue
            if h.name in parents:
                definition[h.name] = {option: {c.name: _distribution(c) for c in self.hyperparameters
                                               if c.parent == h.name and option in c.when}
                                      for option in h.choices}
            else:
                definition[h.name] = _distribution(h)
        return definition

    def plain(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """A configuration of ``search_space`` (``booster.gbtree.eta``) back in YAHPO's names (``eta``)."""
        parents = {h.parent for h in self.hyperparameters if h.parent}
        out = {}
        for key, value in config.items():
            if key.startswith("_"):
                continue
            head, _, rest = key.partition(".")
            if head in parents and rest:
                key = rest.split(".", 1)[1]
            out[key] = value.item() if isinstance(value, np.generic) else value
        return self.active(out)


def _distribution(h: Hyperparameter) -> dict[str, Any]:
    if h.kind == "categorical":
        return {"choice": list(h.choices)}
    if h.kind == "uniform_int":
        return {"lograndint" if h.log else "randint": [int(h.lower), int(h.upper)]}
    return {"loguniform" if h.log else "uniform": [float(h.lower), float(h.upper)]}

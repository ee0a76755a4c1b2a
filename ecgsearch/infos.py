"""The frozen info dataclasses that plugins return from the collection hooks.

Every kind of plugin (architecture, optimizer, dataset, task, metric, latency backend, surrogate)
describes itself with one of these records. The record carries a *factory* that may be a callable or a
``"module:attr"`` string: the string form lets a plugin with heavy or optional dependencies be listed
(and explained when unusable) without importing them.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

PARAM_TYPES = ("int", "float", "bool", "str", "int_list", "float_list", "str_list", "mapping", "objectives", "any")


@dataclass(frozen=True)
class ParamSpec:
    """A keyword parameter of a plugin's factory, as a space file may set it: type, bounds, allowed values.

    A plugin declares its parameters once, in its info record (``params={"kernel": int_param(1, 1025,
    odd=True)}``); the space parser checks every fixed value and every value a distribution can give
    against the declaration before any trial, and ``ecgsearch plugins --params`` lists them.

    type: one of ``PARAM_TYPES``; ``int`` also takes integral floats (``32.0`` from a sampler), lists
        take their element type; ``any`` is checked only for being a plain (finite) value.
    low, high: inclusive bounds of numbers (and list elements); ``low_open``/``high_open`` exclude them.
    choices: the only allowed values (numbers or strings; for a list, of its elements); ``ignore_case``
    compares strings without case (lead names). odd: integers must be odd (kernels). max_len: the longest
    list. nullable: ``None`` (YAML ``null``) is allowed too. forms: alternatives, any of which may match
    (a lead count or a list of lead names). registry: for a ``str``, the registry its value must be a
    name of (``"surrogates"``, ``"metrics"``: the space parser checks it). ``mapping`` is a plain mapping
    (options passed on as they are; with ``options_of``, a value may itself be such a mapping);
    ``objectives`` maps result columns (``macro_auroc``, ``cost.flops``) to ``max``/``min``. options_of: for
    a ``mapping``, the plugin whose keyword parameters its keys are, checked against that plugin's
    declarations: the name of a sibling option naming it (``surrogate_params`` of ``surrogate``) or
    ``registry:item`` (``surrogates:random_forest``). doc: one line for users.
    """

    type: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] = ()
    odd: bool = False
    max_len: int | None = None
    nullable: bool = False
    doc: str = ""
    ignore_case: bool = False
    forms: tuple[ParamSpec, ...] = ()
    registry: str = ""
    options_of: str = ""

    def __post_init__(self) -> None:
        if self.type not in PARAM_TYPES:
            raise ValueError(f"ParamSpec type {self.type!r} is not one of {', '.join(PARAM_TYPES)}")

    def describe(self) -> str:
        """What the parameter takes, as the end of a sentence: ``an odd integer in [1, 1025]``."""
        if self.forms:
            what = " or ".join(form.describe() for form in self.forms)
        elif self.choices and not self.type.endswith("_list"):
            what = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.type.endswith("_list") and self.choices:
            most = f"at most {self.max_len} " if self.max_len else ""
            what = (f"a non-empty list of {most}values from " + ", ".join(repr(c) for c in self.choices)
                    + (" (any case)" if self.ignore_case else ""))
        elif self.type.endswith("_list"):
            element = self._element().describe().removeprefix("an ").removeprefix("a ")
            most = f"at most {self.max_len} " if self.max_len else ""
            for one, many in (("integer", "integers"), ("number", "numbers"), ("string", "strings")):
                element = element.replace(one, many, 1)
            what = f"a non-empty list of {most}{element}"
        else:
            what = {"int": "an odd integer" if self.odd else "an integer", "float": "a number",
                    "bool": "true or false", "str": f"a registered {self.registry.rstrip('s')}" if self.registry
                    else "a string", "any": "a value", "mapping": self._mapping(),
                    "objectives": "a mapping of at least two objectives (a metric or a cost column) to max or "
                                  "min"}[self.type]
            what += self._range()
        return what + (" or null" if self.nullable else "")

    @property
    def options_item(self) -> tuple[str, str] | None:
        """``(registry, item)`` of an ``options_of`` written ``registry:item``; None when it names a sibling
        option (or is empty)."""
        if ":" not in self.options_of:
            return None
        registry, item = self.options_of.split(":", 1)
        return registry, item

    def _mapping(self) -> str:
        if not self.options_of:
            return "a mapping of plain values"
        if self.options_item is not None:
            registry, item = self.options_item
            return f"a mapping of options of {registry.removesuffix('s')} '{item}'"
        return f"a mapping of options of the {self.options_of}"

    def _range(self) -> str:
        low, high = _show_number(self.low), _show_number(self.high)
        if self.low is not None and self.high is not None:
            return f" in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f" {'>' if self.low_open else '>='} {low}"
        if self.high is not None:
            return f" {'<' if self.high_open else '<='} {high}"
        return ""

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is a valid setting of this parameter."""
        if value is None:
            return self.nullable or (self.type == "any" and not self.forms)
        if self.forms:
            return any(form.accepts(value) for form in self.forms)
        if self.type.endswith("_list"):
            element = self._element()
            return (isinstance(value, (list, tuple)) and len(value) > 0
                    and (self.max_len is None or len(value) <= self.max_len)
                    and all(element.accepts(v) for v in value))
        if self.choices:
            return any(self._same(value, c) for c in self.choices)
        if self.type == "bool":
            return isinstance(value, bool)
        if self.type == "str":
            return isinstance(value, str)
        if self.type == "any":
            return _plain_value(value)
        if self.type == "mapping":
            return _plain_mapping(value, nested=bool(self.options_of))
        if self.type == "objectives":
            return (isinstance(value, Mapping) and len(value) >= 2
                    and all(isinstance(k, str) and v in ("max", "min") for k, v in value.items()))
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            return False
        if self.type == "int" and not float(value).is_integer():
            return False
        if self.odd and int(value) % 2 == 0:
            return False
        return self._within(float(value))

    def _element(self) -> ParamSpec:
        return ParamSpec(self.type.removesuffix("_list"), self.low, self.high, self.low_open, self.high_open,
                         self.choices, self.odd, ignore_case=self.ignore_case)

    def _same(self, value: Any, choice: Any) -> bool:
        if self.ignore_case and isinstance(value, str) and isinstance(choice, str):
            return value.lower() == choice.lower()
        return value == choice and isinstance(value, bool) == isinstance(choice, bool)

    def _within(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)


def _show_number(value: float | None) -> str:
    """``4096``, ``10000000``, ``0.001``, ``1e+18``: bounds as a person writes them (no commas: they
    would read as list separators inside an interval)."""
    if value is None:
        return ""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}"


def _plain_value(value: Any) -> bool:
    """A finite scalar or a list of them (what YAML can give a factory)."""
    if isinstance(value, (list, tuple)):
        return all(_plain_value(v) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, (str, int, bool))


def _plain_mapping(value: Any, nested: bool) -> bool:
    """A mapping of names to plain values (and, when ``nested``, to such mappings: a plugin's options)."""
    return isinstance(value, Mapping) and all(
        isinstance(k, str) and (_plain_value(v) or (nested and _plain_mapping(v, nested=False)))
        for k, v in value.items())


def int_param(low: float | None = None, high: float | None = None, *, choices: tuple[int, ...] = (),
              odd: bool = False, nullable: bool = False, doc: str = "") -> ParamSpec:
    """An integer parameter (``kernel: int_param(1, 1025, odd=True)``)."""
    return ParamSpec("int", low, high, choices=tuple(choices), odd=odd, nullable=nullable, doc=doc)


def float_param(low: float | None = None, high: float | None = None, *, low_open: bool = False,
                high_open: bool = False, nullable: bool = False, doc: str = "") -> ParamSpec:
    """A real-number parameter (``lr: float_param(0, 10, low_open=True)``)."""
    return ParamSpec("float", low, high, low_open, high_open, nullable=nullable, doc=doc)


def bool_param(doc: str = "") -> ParamSpec:
    """A true/false parameter."""
    return ParamSpec("bool", doc=doc)


def str_param(*choices: str, nullable: bool = False, registry: str = "", doc: str = "") -> ParamSpec:
    """A string parameter, one of ``choices`` when given (``pool: str_param("cls", "mean")``), or the name of
    an item of a registry (``surrogate: str_param(registry="surrogates")``)."""
    return ParamSpec("str", choices=tuple(choices), nullable=nullable, doc=doc, registry=registry)


def list_param(element: str, low: float | None = None, high: float | None = None, *, max_len: int | None = None,
               odd: bool = False, choices: tuple[Any, ...] = (), ignore_case: bool = False, nullable: bool = False,
               doc: str = "") -> ParamSpec:
    """A non-empty list of ``int``, ``float`` or ``str`` elements (per-stage widths, lead names), each one of
    ``choices`` when given (compared without case with ``ignore_case``)."""
    return ParamSpec(f"{element}_list", low, high, choices=tuple(choices), odd=odd, max_len=max_len,
                     nullable=nullable, doc=doc, ignore_case=ignore_case)


def either(*forms: ParamSpec, nullable: bool = False, doc: str = "") -> ParamSpec:
    """A parameter that takes any of several forms (a lead count, or a list of lead names)."""
    return ParamSpec("any", forms=tuple(forms), nullable=nullable, doc=doc)


def any_param(doc: str = "") -> ParamSpec:
    """A parameter the factory checks itself (a mix of types); only plain, finite values pass."""
    return ParamSpec("any", doc=doc)


@dataclass(frozen=True)
class PluginInfo:
    """What every registered item has in common.

    name: unique within its kind; the name used in space files.
    description: one line for ``ecgsearch plugins``.
    factory: a callable, or ``"module:attr"`` imported on first use.
    default_space: the item's default sub-space, in space-file form (``{"width": {"choice": [16, 32]}}``);
        ``{default: true}`` in a space file starts from it.
    requires: import names needed to use the item (checked without importing them).
    install_hint: what fixes a missing requirement, e.g. ``"pip install onnxruntime"``.
    params: the factory's keyword parameters a space file may set, each a ``ParamSpec`` (type, bounds,
        allowed values): declared once here, checked by the space parser before any trial and listed by
        ``ecgsearch plugins --params``. An item that declares none is checked by its factory's defaults'
        types only.
    plugin: the registering plugin's name, filled in by the registry.
    """

    kind: ClassVar[str] = "item"

    name: str
    description: str
    factory: Callable[..., Any] | str
    default_space: Mapping[str, Any] = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    install_hint: str = ""
    params: Mapping[str, ParamSpec] = field(default_factory=dict)
    plugin: str = ""

    def available(self) -> tuple[bool, str]:
        """Return ``(usable, reason)``; the reason says what is missing and how to install it."""
        for module in self.requires:
            if importlib.util.find_spec(module.split(".")[0]) is None:
                hint = self.install_hint or f"pip install {module.split('.')[0]}"
                return False, f"needs the Python package '{module}' ({hint})"
        return True, ""

    def load(self) -> Callable[..., Any]:
        """Resolve the factory, importing a ``"module:attr"`` string on first use."""
        return resolve(self.factory)

    def create(self, *args: Any, **kwargs: Any) -> Any:
        """Call the factory."""
        return self.load()(*args, **kwargs)


@dataclass(frozen=True)
class ArchitectureInfo(PluginInfo):
    """A model family: ``factory(in_leads, num_samples, num_outputs, **hparams) -> torch.nn.Module``.

    The module takes ``(batch, leads, samples)`` float tensors and returns ``(batch, num_outputs)``.
    family: the family a named variant belongs to (``resnet1d`` for ``resnet1d_tiny``).
    model_kind: ``"torch"`` (the factory returns an ``nn.Module`` trained by gradient steps) or
        ``"estimator"`` (it returns an ``ecgsearch.Estimator``: per-lead features extracted from the signals,
        then a model fitted on them in one go, such as gradient-boosted trees; see
        ``ecgsearch.train.estimators``).
    tasks: the task kinds the model can learn; empty: every kind (``ecgsearch validate`` checks the pairing).
    """

    kind: ClassVar[str] = "architecture"
    family: str = ""
    model_kind: str = "torch"
    tasks: tuple[str, ...] = ()


@dataclass(frozen=True)
class OptimizerInfo(PluginInfo):
    """A training optimizer: ``factory(parameters, **hparams) -> torch.optim.Optimizer``.

    Capability flags say which hyperparameters make sense for it.
    """

    kind: ClassVar[str] = "optimizer"
    has_momentum: bool = False
    decoupled_weight_decay: bool = False


@dataclass(frozen=True)
class LabelSet:
    """One set of targets a dataset can give, and the task kinds it fits (``DatasetInfo.label_sets``).

    tasks: the task kinds the targets fit as they are: ``multilabel`` for 0/1 labels, ``regression`` and
        ``probabilistic`` for continuous targets, ``multiclass`` for exactly one class per record.
    single_label: for a multi-label set, the dataset's boolean parameter that keeps only the records with
        exactly one label of the set (``single_label``); set to true, the set also fits ``multiclass``.
    requires: dataset parameters that must be set (not null) for this set, e.g. ``features_root``.
    doc: one line for users.
    deprecated: for an old name kept for a while, what replaces it (the set is then never suggested).
    members: the set's target names, when a list of some of them may stand for the set (``targets:
        [qrs_ms]`` keeps one of the ``intervals``): such a list chooses this set.
    """

    tasks: tuple[str, ...]
    single_label: str = ""
    requires: tuple[str, ...] = ()
    doc: str = ""
    deprecated: str = ""
    members: tuple[str, ...] = ()

    def fits(self, single_label: bool = False) -> tuple[str, ...]:
        """The task kinds these targets fit, with the single-label switch on or off."""
        extra = ("multiclass",) if self.single_label and single_label and "multiclass" not in self.tasks else ()
        return (*self.tasks, *extra)


RECORD_FIELDS = {"patients": "a patient id for each record"}  # what ``provides`` / ``needs`` may name


def _check_fields(kind: str, name: str, declared: Any) -> None:
    """A static ``provides``/``needs`` tuple names only ``RECORD_FIELDS`` (a callable's answer is checked
    when it is called)."""
    if isinstance(declared, tuple):
        unknown = [one for one in declared if one not in RECORD_FIELDS]
        if unknown:
            raise ValueError(f"{kind} {name}: {', '.join(map(repr, unknown))} is not a record field; "
                             f"name one of {', '.join(RECORD_FIELDS)}")


def declared_fields(declared: Any, params: Mapping[str, Any]) -> frozenset[str] | None:
    """The record fields a ``provides``/``needs`` declaration names for these parameters (None: unknown)."""
    if declared is None:
        return None
    answer = resolve(declared)(params) if callable(declared) or isinstance(declared, str) else declared
    return None if answer is None else frozenset(answer)


@dataclass(frozen=True)
class DatasetInfo(PluginInfo):
    """A data source: ``factory(**data_params) -> ecgsearch.EcgSource``.

    label_sets: the sets of targets it can give, by name, each a ``LabelSet`` (the task kinds it fits);
        the first is the factory's default. ``ecgsearch validate`` checks the space file's task against
        the chosen set before any data is read.
    label_param: the factory parameter whose value names the set (``labels``, ``targets``); empty when the
        dataset has one set.
    tasks: the task kinds its targets support (``multilabel``, ``regression``, ...): with ``label_sets``,
        leave it out (it is their union); a dataset that declares neither is not checked.
    evaluator: optional, a callable or ``"module:attr"``: ``evaluator(labels_dir, outputs_dir)`` scores a
        folder of model outputs against this dataset's labels the dataset's official way (``ecgsearch
        evaluate --dataset NAME``); it returns a mapping of numbers (printed as JSON with ``--json``)
        whose ``str()`` is the text report. A bad folder or file is a ``UserError``.
    target_names: optional, a callable or ``"module:attr"``: ``target_names(data_params)`` gives the target
        names (``EcgArrays.target_names``, in order) the data parameters choose, as ``build`` will give them,
        or None when they are known only once the data is read (every code seen). The parameters are the
        space file's data section as written (the factory's defaults not filled in). ``ecgsearch validate``
        checks the classes an ``evaluate.datasets`` entry shares with the trained task with it, before any
        data is read; a dataset that declares none is checked when the run prepares it.
    provides: optional, what the records carry beside signals and targets (``RECORD_FIELDS``: ``patients``,
        each record's patient id), as a tuple or a callable ``provides(data_params)`` (the data section as
        written) returning them, or None when only the data can tell. ``ecgsearch validate`` refuses a task
        whose ``needs`` the chosen data does not provide, before any data is read; a dataset that declares
        nothing (None) is checked when the trial starts.
    """

    kind: ClassVar[str] = "dataset"
    tasks: tuple[str, ...] = ()
    label_sets: Mapping[str, LabelSet] = field(default_factory=dict)
    label_param: str = ""
    evaluator: Callable[..., Any] | str | None = None
    target_names: Callable[[Mapping[str, Any]], Any] | str | None = None
    provides: tuple[str, ...] | Callable[[Mapping[str, Any]], Any] | None = None

    def __post_init__(self) -> None:
        _check_fields(self.kind, self.name, self.provides)
        if not self.label_sets:
            if self.label_param:
                raise ValueError(f"dataset {self.name}: label_param {self.label_param!r} names no label_sets; "
                                 "declare the sets it chooses from")
            return
        union = tuple(dict.fromkeys(kind for one in self.label_sets.values() for kind in one.fits(True)))
        if self.tasks and set(self.tasks) != set(union):
            raise ValueError(f"dataset {self.name}: tasks {self.tasks} differ from those of its label_sets "
                             f"{union}; leave tasks out, the label sets declare them")
        object.__setattr__(self, "tasks", union)

    def label_set(self, params: Mapping[str, Any]) -> tuple[str, LabelSet] | None:
        """The set the data parameters choose (the first, the default, when ``label_param`` is not set; a list
        of targets chooses the set they are ``members`` of), or None when the dataset declares no sets or the
        value names none of them."""
        if not self.label_sets:
            return None
        value = params.get(self.label_param) if self.label_param else None
        if isinstance(value, (list, tuple)):  # some targets of one set
            return next(((name, chosen) for name, chosen in self.label_sets.items()
                         if chosen.members and set(value) <= set(chosen.members)), None)
        name = next(iter(self.label_sets)) if value is None else value
        return (name, self.label_sets[name]) if isinstance(name, str) and name in self.label_sets else None

    def known_targets(self, params: Mapping[str, Any]) -> tuple[str, ...] | None:
        """The target names the data parameters give, from the ``target_names`` declaration (no data is read),
        or None when the dataset declares none or its targets are known only from the data."""
        if self.target_names is None:
            return None
        names = resolve(self.target_names)(params)
        return None if names is None else tuple(str(name) for name in names)


@dataclass(frozen=True)
class TaskInfo(PluginInfo):
    """A learning task: ``factory(num_outputs, **params) -> ecgsearch.Task`` (head, loss, scores).

    default_metric: the metric a space file gets when it names none (``loss``: the task's own loss,
        minimised, which every task reports as ``val.loss``).
    self_supervised: the task never reads the targets (masked reconstruction, contrastive): it pretrains
        on any dataset, labelled or not, and only under ``transfer.pretrain`` (a downstream task must learn
        the labels).
    needs: what the task needs of each record beside its signal and targets (``RECORD_FIELDS``), as a tuple
        or a callable ``needs(task_params)`` (the task's parameters as written) returning them: the
        contrastive task with ``positives: patient`` needs ``patients``. Checked against the dataset's
        ``provides`` by ``ecgsearch validate``.
    """

    kind: ClassVar[str] = "task"
    default_metric: str = ""
    self_supervised: bool = False
    needs: tuple[str, ...] | Callable[[Mapping[str, Any]], Any] = ()

    def __post_init__(self) -> None:
        _check_fields(self.kind, self.name, self.needs)


LOSS_METRIC = "loss"  # every task's own loss (``val.loss``), a metric of every task, minimised


@dataclass(frozen=True)
class MetricInfo(PluginInfo):
    """A metric: ``factory() -> callable(y_true, y_score, label_names) -> float``.

    mode: ``"max"`` when larger is better, ``"min"`` otherwise; the search direction comes from here.
    tasks: the task kinds it applies to.
    thresholded: the metric reads binary outputs: its factory takes ``thresholds`` (one per class),
        which the trial fits on the validation split only (``ecgsearch.train.thresholds``) and reuses on test.
    per_target: the trial also scores each target column alone, as ``val.<name>.<target>`` (e.g.
        ``val.mae.hr_bpm``), so a regression's error is visible per quantity in its own units.
    per_class: for a macro average over classes, the name of its value on one class (``auroc`` for
        ``macro_auroc``): the trial also scores each class alone, as ``val.<per_class>.<class>``
        (``val.auroc.164889003``), so a rare class the average hides is visible.
    macro: the metric is a mean of per-class values, so it means the same on any subset of the classes: the
        trial also computes it on each label group the dataset declares (``EcgArrays.label_groups``), as
        ``val.<group>.<name>``. Metrics of the whole label set (the Challenge score and its weights over
        every class pair, exact-match accuracy, pooled calibration) leave it False.
    """

    kind: ClassVar[str] = "metric"
    mode: str = "max"
    tasks: tuple[str, ...] = ("multilabel",)
    thresholded: bool = False
    per_target: bool = False
    per_class: str = ""
    macro: bool = False


@dataclass(frozen=True)
class ScheduleInfo(PluginInfo):
    """A learning-rate schedule: ``factory(optimizer, run, **hparams) -> ecgsearch.Schedule``.

    ``run`` is an ``ecgsearch.ScheduleRun`` (epochs, steps per epoch, the metric's mode) that
    the trial supplies; the space file only gives ``hparams``.
    """

    kind: ClassVar[str] = "schedule"


@dataclass(frozen=True)
class BackendInfo(PluginInfo):
    """A latency backend: ``factory(**options) -> backend`` with ``available()``, ``prepare``, ``measure``.

    device: the hardware it measures (``cpu``, ``cuda``, ``mps``, ``npu``, ...).

    ``available()`` checks the packages of ``requires`` only; whether the device and runtime are there
    too is ``ecgsearch.latency.backend.backend_status(info)`` (it creates the backend).
    """

    kind: ClassVar[str] = "backend"
    device: str = "cpu"


@dataclass(frozen=True)
class SurrogateInfo(PluginInfo):
    """A performance model: ``factory(seed, **params) -> regressor`` with ``fit``/``predict``.

    has_uncertainty: whether it can also return a predictive standard deviation.
    """

    kind: ClassVar[str] = "surrogate"
    has_uncertainty: bool = False


@dataclass(frozen=True)
class SchedulerInfo(PluginInfo):
    """A trial scheduler: ``factory(run, **options) -> ray.tune.schedulers.TrialScheduler``.

    ``run`` (``ecgsearch.SchedulerRun``) says what the scheduler schedules on: the reported metric and
    its mode, the epochs a trial may run (``max_t``), the iteration attribute, the trials' space (for a
    scheduler that mutates hyperparameters, as PBT does) and the seed; ``options`` are the space file's
    ``budget.scheduler`` options, declared in ``params``.
    mutates_config: whether it changes a trial's hyperparameters while the trial runs (PBT); a model-based
    searcher cannot learn from such trials, and the space parser refuses the pair.
    paused_together: for a scheduler that pauses trials until a group of them has reported (synchronous
    HyperBand), ``paused_together(epochs, **options) -> int``: the most trials it waits on together. A
    ``budget.max_concurrent`` below it is refused: Ray Tune's concurrency limit counts paused trials, so
    such a group would be judged among the trials let in at once.
    """

    kind: ClassVar[str] = "scheduler"
    mutates_config: bool = False
    paused_together: Callable[..., int] | None = None


@dataclass(frozen=True)
class SearcherInfo(PluginInfo):
    """A searcher: ``factory(problem, **options) -> ray.tune.search.Searcher`` proposing configurations.

    ``problem`` (``ecgsearch.SearchProblem``) is the space, the metric and mode, the seed, the number of
    trials, and the engine's candidate machinery (a feasible random candidate by index; the cost of a
    configuration or None when it breaks a constraint; the private keys every suggestion must carry).
    ``options`` are the space file's ``search`` options, declared in ``params``.
    model_based: whether it learns from results (it then needs ``warm_start`` rows to continue a search).
    """

    kind: ClassVar[str] = "searcher"
    model_based: bool = False


@dataclass(frozen=True)
class TrackerInfo(PluginInfo):
    """An experiment tracker: ``factory(spec, out_dir, **settings) -> tracker``, created in the driver when a
    search starts, for a space file whose ``tracking`` section names it (``tracking: {NAME: {setting: value}}``,
    settings declared in ``params``).

    The tracker is told what happens through methods, each optional: ``trial_started(trial_id, config)``,
    ``trial_result(trial_id, epoch, metrics)``, ``trial_finished(trial_id, row)``, ``search_finished(results)``
    (docs/tracking.md). A method that raises is logged once as a warning and the search goes on without the
    tracker: a tracker never loses the search's results. ``requires`` are checked when the space file is
    read, so a missing package is refused by ``ecgsearch validate`` with ``install_hint``.
    """

    kind: ClassVar[str] = "tracker"


def resolve(ref: Callable[..., Any] | str) -> Callable[..., Any]:
    """A callable as given, or the object a ``"module:attr"`` string names (imported now)."""
    if callable(ref):
        return ref
    module_name, _, attr = str(ref).partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


INFO_TYPES: tuple[type[PluginInfo], ...] = (
    ArchitectureInfo,
    OptimizerInfo,
    DatasetInfo,
    TaskInfo,
    MetricInfo,
    BackendInfo,
    SurrogateInfo,
    ScheduleInfo,
    SchedulerInfo,
    SearcherInfo,
    TrackerInfo,
)

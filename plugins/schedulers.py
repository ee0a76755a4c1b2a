"""The built-in trial schedulers, registered like any third-party scheduler plugin.

Each factory takes the ``ecgsearch.SchedulerRun`` (metric, mode, the epochs a trial may run, the space)
and the options of ``budget: {scheduler: {name: NAME, ...}}``, and returns a Ray Tune ``TrialScheduler``:

- ``fifo``: every trial runs all its epochs;
- ``asha``: asynchronous successive halving (stops the weaker trials at rungs grace_period x eta^k);
- ``hyperband``: synchronous HyperBand brackets (pauses trials at each rung until the bracket decides), the
  bracket with the most trials first (``order``);
- ``median_stopping``: stops a trial whose running mean falls below the median of the others;
- ``learning_curve``: extrapolates each trial's partial curve to the last epoch (``ecgsearch.LearningCurveRule``)
  and stops it when even the optimistic prediction cannot reach the current top k (of every trial's best
  report so far, or with ``compare: completed`` of the trials that ran all their epochs);
- ``pbt``: population-based training: at every ``perturbation_interval`` epochs the worse trials copy the
  weights of better ones (from the checkpoints the engine writes) and continue with perturbed learning
  rates, weight decays and augmentation strengths (the searched ones).
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Any

from ecgsearch import SchedulerInfo, bool_param, float_param, hookimpl, int_param, str_param

if TYPE_CHECKING:
    from ecgsearch import SchedulerRun

# the hyperparameters population-based training mutates: the optimizer's learning rate and weight decay,
# the augmentation strengths
PBT_SUFFIXES = (".lr", ".weight_decay")
PBT_PREFIX = "augment_"
OWN_KEYS = ("_trial_id", "_seed")  # what an exploiting trial keeps of its own configuration


def build_fifo(run: SchedulerRun) -> Any:
    from ray.tune.schedulers import FIFOScheduler  # deferred: Ray

    return FIFOScheduler()


def build_asha(run: SchedulerRun, *, grace_period: int = 1, reduction_factor: int = 2, brackets: int = 1) -> Any:
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(time_attr=run.time_attr, max_t=run.max_t, grace_period=grace_period,
                         reduction_factor=reduction_factor, brackets=brackets)


def build_hyperband(run: SchedulerRun, *, reduction_factor: int = 3, stop_last_trials: bool = True,
                    order: str = "most_trials_first") -> Any:
    from ray.tune.experiment import Trial  # deferred: Ray
    from ray.tune.schedulers import HyperBandScheduler
    from ray.tune.schedulers.hyperband import _Bracket

    class EndingHyperBand(HyperBandScheduler):
        """Ray's HyperBand, with the ways a bracket waited forever closed (the resume test hung in CI):

        - a trial that had already ended when the search was resumed joins no bracket (Tune hands a resumed
          scheduler every restored trial, finished ones included; such a trial never reports again, so its
          rung never completed);
        - when a bracket ends because its last running trial completed (its final epoch's result arrives
          with the trial's end, so Ray calls ``on_trial_complete`` and skips the bracket's processing as it
          is already finished), the trials paused at the bracket's last rung are stopped, as Ray does when
          the same bracket ends through a result; before, they stayed paused and the search never ended;
        - and whatever the cause, when nothing runs or waits to start, ``choose_trial_to_run`` settles the
          brackets whose trials all reached their rung.

        ``order`` is the order of the brackets within an iteration. Ray creates them as s = 0, 1, ...,
        where s is the number of halvings, so its first bracket runs a few trials for all ``max_t`` epochs;
        with ``most_trials_first`` (HyperBand's and BOHB's order) the k-th bracket Ray creates is given
        s_max - k halvings instead, so the first runs the most trials from the fewest epochs."""

        def __init__(self, order: str, **options: Any) -> None:
            super().__init__(**options)
            last = self._s_max_1 - 1
            self._halvings = (lambda k: last - k) if order == "most_trials_first" else (lambda k: k)
            n0, r0 = self._get_n0, self._get_r0  # Ray's, by halvings; it calls them with its bracket index
            self._get_n0, self._get_r0 = (lambda k: n0(self._halvings(k))), (lambda k: r0(self._halvings(k)))

        def _create_bracket(self, k: int) -> Any:
            return _Bracket(time_attr=self._time_attr, max_trials=self._get_n0(k), init_t_attr=self._get_r0(k),
                            max_t_attr=self._max_t_attr, eta=self._eta, s=self._halvings(k),
                            stop_last_trials=self._stop_last_trials)

        def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
            if trial.status in (Trial.TERMINATED, Trial.ERROR):
                return
            super().on_trial_add(tune_controller, trial)

        def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
            bracket, _ = self._trial_info[trial]
            super().on_trial_remove(tune_controller, trial)
            if bracket.finished():
                bracket.cleanup_full(tune_controller)

        def choose_trial_to_run(self, tune_controller: Any) -> Any:
            """Ray's choice; when it has none and no trial runs or waits to start, the brackets are settled
            as Ray would have settled them: members that ended are dropped, and a bracket whose remaining
            (paused) trials all reached its rung is processed (halved, or ended: its paused trials stopped).
            Without this, a bracket whose last report was lost to a trial's early end waited forever."""
            chosen = super().choose_trial_to_run(tune_controller)
            if chosen is not None or any(t.status in (Trial.RUNNING, Trial.PENDING)
                                         for t in tune_controller.get_trials()):
                return chosen
            for band in self._hyperbands:
                for bracket in (b for b in band if b is not None):
                    for ended in [t for t in bracket.current_trials() if t.status in (Trial.TERMINATED, Trial.ERROR)]:
                        bracket.cleanup_trial(ended)
                    if not any(t.status == Trial.PAUSED for t in bracket.current_trials()) or \
                            not bracket.cur_iter_done():
                        continue
                    if bracket.finished():
                        bracket.cleanup_full(tune_controller)
                    else:
                        self._process_bracket(tune_controller, bracket)
            return super().choose_trial_to_run(tune_controller)

    return EndingHyperBand(order, time_attr=run.time_attr, max_t=run.max_t, reduction_factor=reduction_factor,
                           stop_last_trials=stop_last_trials)


def hyperband_paused_together(epochs: int, *, reduction_factor: int = 3, **_: Any) -> int:
    """The most trials one HyperBand bracket pauses at a rung (Ray's bracket sizes: the bracket with s halvings
    holds ceil(S / (s + 1) * eta^s) trials from max_t / eta^s epochs, S = round(log_eta max_t) + 1)."""
    brackets = round(math.log(epochs) / math.log(reduction_factor)) + 1
    return max((math.ceil(brackets / (s + 1) * reduction_factor ** s) for s in range(1, brackets)
                if int(epochs * reduction_factor ** -s) >= 1), default=1)  # Ray's arithmetic, floats included


def build_median_stopping(run: SchedulerRun, *, grace_period: int = 1, min_samples_required: int = 3) -> Any:
    from ray.tune.schedulers import MedianStoppingRule

    return MedianStoppingRule(time_attr=run.time_attr, grace_period=grace_period,
                              min_samples_required=min_samples_required)


def build_learning_curve(run: SchedulerRun, *, grace_period: int = 3, top_k: int = 3, confidence: float = 0.7,
                         min_curves: int = 3, compare: str = "all") -> Any:
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler  # deferred: Ray

    from ecgsearch import LearningCurveRule

    rule = LearningCurveRule(horizon=run.max_t, mode=run.mode, grace_period=grace_period, top_k=top_k,
                             confidence=confidence, min_curves=min_curves, compare=compare)

    class LearningCurveStopping(FIFOScheduler):
        """FIFO order; each epoch's report goes through the learning-curve rule, which may stop the trial."""

        def __init__(self) -> None:
            super().__init__()
            self.rule = rule

        def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
            if run.time_attr not in result or run.metric not in result:
                return TrialScheduler.CONTINUE
            stop = self.rule.report(trial.trial_id, int(result[run.time_attr]), float(result[run.metric]))
            return TrialScheduler.STOP if stop else TrialScheduler.CONTINUE

        def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
            self.rule.complete(trial.trial_id)

        def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
            self.rule.remove(trial.trial_id)

        def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
            self.rule.complete(trial.trial_id)

        def debug_string(self) -> str:
            return (f"Using learning-curve stopping: {len(self.rule.completed)} completed curves, "
                    f"{len(self.rule.stopped)} trials stopped")

    return LearningCurveStopping()


class Perturb:
    """PBT's explore step over the space's own distributions: a searched value is resampled (with
    ``resample_probability``) or scaled by 0.8 or 1.2 and kept inside its distribution's bounds; a value
    of a choice moves to a neighbouring option. Only parameters of the trial's chosen options exist in
    its configuration, and only those are touched."""

    def __init__(self, run: SchedulerRun, resample_probability: float) -> None:
        self.params = [p for p in run.space.parameters if _mutable(p.name) and _searched(p)]
        if not self.params:
            raise ValueError("pbt mutates searched learning rates, weight decays or augmentation strengths, and "
                             "the space searches none; give one of them a distribution (e.g. lr: {loguniform: "
                             "[1.0e-4, 1.0e-2]})")
        self.rng = random.Random(run.seed)
        self.resample_probability = resample_probability

    def __call__(self, config: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        config = dict(config)
        for param in self.params:
            if param.name not in config:
                continue
            if self.rng.random() < self.resample_probability:
                config[param.name] = _plain(param.dist.sample(np.random.default_rng(self.rng.getrandbits(32))))
                continue
            values = getattr(param.dist, "values", None)
            if values is not None:
                position = values.index(config[param.name]) if config[param.name] in values else 0
                step = self.rng.choice((-1, 1))
                config[param.name] = values[min(max(position + step, 0), len(values) - 1)]
            else:
                low, high = param.dist.bounds()
                value = float(config[param.name]) * self.rng.choice((0.8, 1.2))
                config[param.name] = min(max(value, low), high)
        return config


def _searched(param: Any) -> bool:
    """A parameter the space searches: its distribution can give more than one value."""
    return len({repr(edge) for edge in param.dist.edges()}) > 1


def _mutable(name: str) -> bool:
    return name.endswith(PBT_SUFFIXES) or name.startswith(PBT_PREFIX)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


class WithoutSearcher:
    """A view of Tune's controller that shows no search algorithm (see ``on_trial_add`` in ``build_pbt``)."""

    search_alg = None

    def __init__(self, controller: Any) -> None:
        self._controller = controller

    def __getattr__(self, name: str) -> Any:
        return getattr(self._controller, name)


def build_pbt(run: SchedulerRun, *, perturbation_interval: int = 2, quantile_fraction: float = 0.25,
              resample_probability: float = 0.25) -> Any:
    from ray.tune.schedulers import PopulationBasedTraining

    if perturbation_interval >= run.max_t:
        raise ValueError(f"pbt: perturbation_interval={perturbation_interval} is not below the {run.max_t} epochs "
                         "of a trial, so no trial would ever be perturbed; lower it or raise budget.epochs")

    class OwnIdentity(PopulationBasedTraining):
        """PBT whose exploiting trial keeps its own id and training seed (the engine's private keys
        ``_trial_id``/``_seed``): it takes the better trial's weights and hyperparameters, not its row."""

        def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
            # Tune refuses PBT next to any searcher, for fear it learns from trials whose hyperparameters
            # changed; the engine's searcher only proposes the first population (model-based ones are
            # refused with PBT when the space file is read: SchedulerInfo.mutates_config)
            super().on_trial_add(WithoutSearcher(tune_controller), trial)

        def _get_new_config(self, trial: Any, trial_to_clone: Any) -> tuple[dict, dict]:
            config, operations = super()._get_new_config(trial, trial_to_clone)
            return {**config, **{k: trial.config[k] for k in OWN_KEYS if k in trial.config}}, operations

    return OwnIdentity(time_attr=run.time_attr, perturbation_interval=perturbation_interval,
                       quantile_fraction=quantile_fraction, resample_probability=0.0,
                       custom_explore_fn=Perturb(run, resample_probability), hyperparam_mutations=None, synch=False)


@hookimpl
def ecgsearch_register_schedulers() -> list[SchedulerInfo]:
    return [
        SchedulerInfo(name="fifo", description="every trial runs all its epochs", factory=build_fifo),
        SchedulerInfo(name="asha", description="asynchronous successive halving: weak trials stop at early rungs",
                      factory=build_asha,
                      params={"grace_period": int_param(1, 10_000, doc="epochs before the first rung"),
                              "reduction_factor": int_param(2, 100, doc="eta: 1/eta of the trials go on at a rung"),
                              "brackets": int_param(1, 10, doc="brackets of different grace periods")}),
        SchedulerInfo(name="hyperband", description="synchronous HyperBand brackets (pauses trials at rungs)",
                      factory=build_hyperband, paused_together=hyperband_paused_together,
                      params={"reduction_factor": int_param(2, 100, doc="eta of the brackets"),
                              "stop_last_trials": bool_param("stop the trials that reach max_t"),
                              "order": str_param("most_trials_first", "full_length_first",
                                                 doc="which bracket of an iteration runs first: the one with "
                                                     "the most trials and fewest epochs (HyperBand's and BOHB's "
                                                     "order), or Ray Tune's, a few trials of all epochs")}),
        SchedulerInfo(name="median_stopping", description="stops a trial below the median of the others' "
                                                          "running means", factory=build_median_stopping,
                      params={"grace_period": int_param(1, 10_000, doc="epochs before a trial may be stopped"),
                              "min_samples_required": int_param(1, 10_000, doc="trials needed for a median")}),
        SchedulerInfo(name="learning_curve", description="stops a trial whose extrapolated learning curve "
                                                         "cannot reach the top k", factory=build_learning_curve,
                      params={"grace_period": int_param(1, 10_000, doc="epochs before a trial may be stopped (and "
                                                                       "at least 3)"),
                              "top_k": int_param(1, 1_000, doc="a trial stops when it cannot reach the k-th best "
                                                               "value (see compare)"),
                              "confidence": float_param(0, 1, low_open=True, high_open=True,
                                                        doc="level of the prediction's upper bound"),
                              "min_curves": int_param(1, 10_000, doc="completed trials that calibrate the bound "
                                                                     "(with compare: completed, needed before "
                                                                     "any stop)"),
                              "compare": str_param("all", "completed",
                                                   doc="the top k of every trial's best report so far, or of "
                                                       "the trials that ran all epochs")}),
        SchedulerInfo(name="pbt", description="population-based training over learning rates, weight decays "
                                              "and augmentation strengths", factory=build_pbt,
                      mutates_config=True,
                      params={"perturbation_interval": int_param(1, 10_000, doc="epochs between perturbations"),
                              "quantile_fraction": float_param(0, 0.5, low_open=True,
                                                               doc="bottom share that copies the top share"),
                              "resample_probability": float_param(0, 1, doc="chance of a fresh draw instead of "
                                                                             "x0.8 or x1.2")}),
    ]

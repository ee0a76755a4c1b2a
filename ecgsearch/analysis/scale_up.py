"""Configurations for a larger compute budget: the fitted law says what error to expect there, the
surrogate ranks concrete candidates of that size.

Candidates are drawn from the run's space (or a wider copy of it), built once to count their FLOPs,
and kept when they lie within a factor ``1 + tolerance`` of the target. The run's own ``max_flops``/
``max_params`` constraints are not applied: a new budget is the point. Tree surrogates do not
extrapolate beyond the costs they were fitted on, so at a budget far above the run's largest trial
their predictions rank candidates by their hyperparameters while the law gives the expected level.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd

from ecgsearch.analysis.scaling import ScalingError, ScalingFit, fit_scaling
from ecgsearch.errors import UserError
from ecgsearch.search.features import config_frame, feature_frame, target
from ecgsearch.search.surrogate_model import SurrogateModel
from ecgsearch.space.distributions import Fixed

if TYPE_CHECKING:
    from ecgsearch.space import SearchSpec, Space

log = logging.getLogger(__name__)

SAMPLE_SEED_OFFSET = 7_000_003  # candidates are not the run's own draws


@dataclass(frozen=True)
class Proposal:
    """What ``propose`` found: the law's expectation at the target and the ranked candidates."""

    target_flops: float
    metric: str
    mode: str
    law: ScalingFit | None
    law_note: str  # why there is no law, when there is none
    expected_error: tuple[float, float, float] | None  # (value, low, high) at the target
    candidates: pd.DataFrame  # rank, configuration, cost.*, predicted, predicted_std, plus hp.* columns
    sampled: int
    flops_span: tuple[float, float]  # of every candidate costed


def describe(config: dict[str, Any], space: Space) -> str:
    """``resnet(depth=10, kernel=15) adamw(lr=0.0032) batch_size=32``: a configuration on one line, with
    the searched parameters only (fixed ones and defaults are the same for every candidate)."""
    def value(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    choices = space.choices
    searched = {p.name for p in space.parameters if not isinstance(p.dist, Fixed)}
    parts = []
    for key in choices:
        option = config.get(key)
        inner = ", ".join(f"{k.split('.')[-1]}={value(v)}" for k, v in config.items()
                          if k.startswith(f"{key}.{option}.") and k in searched)
        parts.append(f"{option}({inner})")
    rest = [f"{k}={value(v)}" for k, v in config.items()
            if k in searched and not any(k.startswith(f"{c}.") for c in choices)]
    return " ".join(parts + rest)


def check_request(target_flops: float, tolerance: float) -> None:
    """One sentence for a target or tolerance that cannot select candidates."""
    if not (isinstance(target_flops, (int, float)) and math.isfinite(target_flops) and target_flops > 0):
        raise UserError(f"scale: --target-flops {target_flops!r} is not a positive number of FLOPs per sample; "
                        "pass e.g. --target-flops 2e8.")
    if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and tolerance > 0):
        raise UserError(f"scale: --tolerance {tolerance!r} is not a positive number; 0.5 keeps candidates within "
                        "x1.5 of the target.")


def _law(trials: pd.DataFrame, metric: str, mode: str, target_flops: float, bootstrap: int,
         seed: int) -> tuple[ScalingFit | None, str, tuple[float, float, float] | None]:
    try:
        fit = fit_scaling(trials, metric, mode, "compute", bootstrap=bootstrap, seed=seed)
    except ScalingError as error:
        return None, str(error), None
    low, high = fit.band([target_flops])
    return fit, "", (float(fit.predict([target_flops])[0]), float(low[0]), float(high[0]))


@dataclass(frozen=True)
class ScaleSettings:
    """How ``propose`` searches (the options of ``ecgsearch scale``).

    candidates: configurations sampled and costed; top: how many to propose; tolerance: keep candidates
    within a factor ``1 + tolerance`` of the target FLOPs; surrogate: the plugin that ranks them;
    bootstrap: resamples for the law's interval; seed: surrogate and bootstrap.
    """

    candidates: int = 200
    top: int = 5
    tolerance: float = 0.5
    surrogate: str = "random_forest"
    bootstrap: int = 500
    seed: int = 0


def propose(trials: pd.DataFrame, spec: SearchSpec, target_flops: float, cost: Callable[[dict[str, Any]], Any],
            candidate_space: Space | None = None, settings: ScaleSettings | None = None,
            **options: Any) -> Proposal:
    """Rank candidates near ``target_flops`` by the surrogate fitted on ``trials``.

    spec: the run's ``SearchSpec`` (metric, mode, its space fixes the feature columns); cost: a
    configuration -> ``Costs`` (``candidate_costs`` with the run's input shape); candidate_space: the
    ``Space`` to draw from (default: the run's); settings: a ``ScaleSettings`` (or its fields as keyword
    ``options``).
    """
    settings = settings if settings is not None else ScaleSettings(**options)
    check_request(target_flops, settings.tolerance)
    space = candidate_space if candidate_space is not None else spec.space
    fit, note, expected = _law(trials, spec.metric, spec.mode, target_flops, settings.bootstrap, settings.seed)
    y = target(trials, spec.metric, spec.mode)
    if len(y) < 2:
        raise UserError(f"scale: the surrogate needs at least 2 trials with a value of val.{spec.metric}, and the "
                        f"run has {len(y)}; run more trials first.")
    # an ASHA run mixes epochs: the fidelity is a feature, and candidates are scored at the full budget
    fidelity = "epochs" in trials.columns
    model = SurrogateModel(settings.surrogate, settings.seed).fit(
        feature_frame(trials.loc[y.index], spec.space, fidelity), y)
    kept, span = _candidates_near(space, spec.seed, cost, target_flops, settings)
    frame = config_frame(kept, spec.space)
    if fidelity:
        frame["epochs"] = spec.budget.epochs
    mean, std = model.predict(feature_frame(frame, spec.space, fidelity))
    sign = 1.0 if spec.mode == "max" else -1.0
    frame["configuration"] = [describe(config, space) for config in kept]
    frame["predicted"] = sign * mean
    frame["predicted_std"] = std
    ranked = frame.sort_values("predicted", ascending=spec.mode == "min", kind="stable").head(settings.top)
    ranked.insert(0, "rank", np.arange(1, len(ranked) + 1))
    return Proposal(target_flops=float(target_flops), metric=spec.metric, mode=spec.mode, law=fit, law_note=note,
                    expected_error=expected, candidates=ranked.reset_index(drop=True), sampled=settings.candidates,
                    flops_span=span)


def _candidates_near(space: Space, seed: int, cost: Callable[[dict[str, Any]], Any], target_flops: float,
                     settings: ScaleSettings) -> tuple[list[dict[str, Any]], tuple[float, float]]:
    """Sampled configurations within ``1 + tolerance`` of ``target_flops`` (with their costs), and the
    FLOP span of every buildable one."""
    kept, flops = [], []
    for index in range(settings.candidates):
        config = space.sample(seed + SAMPLE_SEED_OFFSET, index)
        try:
            costs = cost(config)
        except Exception as error:  # a candidate that cannot be built is not proposed
            log.info("candidate %d cannot be built (%s); skipped", index, error)
            continue
        flops.append(costs.flops)
        if max(costs.flops / target_flops, target_flops / costs.flops) <= 1 + settings.tolerance:
            kept.append({**config, "_costs": costs.columns()})
    if not flops:
        raise UserError(f"scale: none of the {settings.candidates} candidates sampled from the space could be "
                        "built; check the space with `ecgsearch validate`.")
    span = (float(min(flops)), float(max(flops)))
    if not kept:
        raise UserError(f"scale: none of the {settings.candidates} candidates lies within "
                        f"x{1 + settings.tolerance:g} of {target_flops:.3g} FLOPs (they span {span[0]:.3g} to "
                        f"{span[1]:.3g}); widen the size ranges (width, depth, stages, channels) in a copy of the "
                        "space file and pass it with --space, raise --tolerance, or choose a --target-flops in "
                        "that span.")
    return kept, span

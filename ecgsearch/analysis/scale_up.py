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
from typing import Any, Callable

import numpy as np
import pandas as pd

from ecgsearch.analysis.features import config_frame, feature_frame, target
from ecgsearch.analysis.model import SurrogateModel
from ecgsearch.analysis.scaling import ScalingError, ScalingFit, fit_scaling
from ecgsearch.errors import UserError

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


def describe(config: dict[str, Any], space: Any) -> str:
    """``resnet(depth=10, kernel=15) adamw(lr=0.0032) batch_size=32``: a configuration on one line, with
    the searched parameters only (fixed ones and defaults are the same for every candidate)."""
    from ecgsearch.space.distributions import Fixed

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


def propose(trials: pd.DataFrame, spec: Any, target_flops: float, cost: Callable[[dict[str, Any]], Any],
            candidate_space: Any = None, candidates: int = 200, top: int = 5, tolerance: float = 0.5,
            surrogate: str = "random_forest", bootstrap: int = 500, seed: int = 0) -> Proposal:
    """Rank candidates near ``target_flops`` by the surrogate fitted on ``trials``.

    spec: the run's ``SearchSpec`` (metric, mode, its space fixes the feature columns); cost: a
    configuration -> ``Costs`` (``candidate_costs`` with the run's input shape); candidate_space: the
    ``Space`` to draw from (default: the run's).
    """
    check_request(target_flops, tolerance)
    space = candidate_space if candidate_space is not None else spec.space
    fit, note, expected = _law(trials, spec.metric, spec.mode, target_flops, bootstrap, seed)
    y = target(trials, spec.metric, spec.mode)
    if len(y) < 2:
        raise UserError(f"scale: the surrogate needs at least 2 trials with a value of val.{spec.metric}, and the "
                        f"run has {len(y)}; run more trials first.")
    # an ASHA run mixes epochs: the fidelity is a feature, and candidates are scored at the full budget
    fidelity = "epochs" in trials.columns
    model = SurrogateModel(surrogate, seed).fit(feature_frame(trials.loc[y.index], spec.space, fidelity), y)
    kept, flops = [], []
    for index in range(candidates):
        config = space.sample(spec.seed + SAMPLE_SEED_OFFSET, index)
        try:
            costs = cost(config)
        except Exception as error:  # a candidate that cannot be built is not proposed
            log.info("candidate %d cannot be built (%s); skipped", index, error)
            continue
        flops.append(costs.flops)
        if max(costs.flops / target_flops, target_flops / costs.flops) <= 1 + tolerance:
            kept.append({**config, "_costs": costs.columns()})
    if not flops:
        raise UserError(f"scale: none of the {candidates} candidates sampled from the space could be built; "
                        "check the space with `ecgsearch validate`.")
    span = (float(min(flops)), float(max(flops)))
    if not kept:
        raise UserError(f"scale: none of the {candidates} candidates lies within x{1 + tolerance:g} of "
                        f"{target_flops:.3g} FLOPs (they span {span[0]:.3g} to {span[1]:.3g}); widen the size "
                        "ranges (width, depth, stages, channels) in a copy of the space file and pass it with "
                        "--space, raise --tolerance, or choose a --target-flops in that span.")
    frame = config_frame(kept, spec.space)
    if fidelity:
        frame["epochs"] = spec.budget.epochs
    mean, std = model.predict(feature_frame(frame, spec.space, fidelity))
    sign = 1.0 if spec.mode == "max" else -1.0
    frame["configuration"] = [describe(config, space) for config in kept]
    frame["predicted"] = sign * mean
    frame["predicted_std"] = std
    ranked = frame.sort_values("predicted", ascending=spec.mode == "min", kind="stable").head(top)
    ranked.insert(0, "rank", np.arange(1, len(ranked) + 1))
    return Proposal(target_flops=float(target_flops), metric=spec.metric, mode=spec.mode, law=fit, law_note=note,
                    expected_error=expected, candidates=ranked.reset_index(drop=True), sampled=candidates,
                    flops_span=span)

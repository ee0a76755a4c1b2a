"""Sampled configurations that can be built and satisfy the space file's cost constraints.

Every candidate is costed before any training (``ecgsearch.train.costs.estimate_costs``: analytically for the
built-in families, otherwise built on the meta device; milliseconds, no weights). A candidate whose
factory rejects the combination (a ``ValueError`` such as a kernel longer than the downsampled signal)
or that is over ``max_flops`` or ``max_params`` is replaced by another draw for the same trial index.
The result is a pure function of (space, seed, index), so a resumed run sees the same candidates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from ecgsearch.data.source import EcgArrays
from ecgsearch.errors import UserError
from ecgsearch.infos import ArchitectureInfo
from ecgsearch.plugins import get_registries
from ecgsearch.space.parse import file_error
from ecgsearch.train.analytic import ESTIMATOR, Costs, argument_check
from ecgsearch.train.context import input_samples

if TYPE_CHECKING:
    from ecgsearch.space import SearchSpec, Space

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 50
ATTEMPT_STRIDE = 1_000_003  # seed offset between redraws of one index


@dataclass(frozen=True)
class InputShape:
    leads: int
    samples: int
    outputs: int
    sampling_rate: float | None = None  # Hz of the cached dataset (for the receptive field in seconds)
    encoders: int = 1  # more than 1: a transfer fusing that many pretrained encoders (SearchSpec.encoders)


def input_shape(data: EcgArrays, task: str, task_params: Mapping[str, Any], encoders: int = 1) -> InputShape:
    """A model's input and output sizes: the data's leads, length and rate, the task's outputs; and its
    encoders (``SearchSpec.encoders``)."""
    created = get_registries().tasks.get(task).create(data.targets.shape[1], **dict(task_params))
    return InputShape(leads=data.signals.shape[1], samples=data.signals.shape[2], outputs=created.num_outputs,
                      sampling_rate=float(data.sampling_rate), encoders=encoders)


def candidate_costs(config: Mapping[str, Any], space: Space, shape: InputShape) -> Costs:
    """The candidate's cost features (a ``ValueError`` when its architecture rejects the combination)."""
    # deferred: costing imports torch; checking a space file (check_buildable) must not
    from ecgsearch.train.costs import estimate_costs
    from ecgsearch.train.estimators import estimator_costs

    resolved = space.resolve(space.active(config))
    arch_name, arch_params = resolved.choices["architecture"]
    samples = input_samples(shape.samples, resolved.params)
    info = get_registries().architectures.get(arch_name)
    if info.model_kind == ESTIMATOR:  # no network: the estimator says what its hyperparameters allow at most
        return estimator_costs(info.create(shape.leads, samples, shape.outputs, **arch_params), shape.sampling_rate)
    return estimate_costs(info.load(), shape.leads, samples, shape.outputs, arch_params, shape.sampling_rate,
                          shape.encoders)


CHECK_DRAWS = 200  # draws of the space per file check (each a few microseconds of argument checks)
CHECK_SAMPLES = 1_000_000  # so long that no input-length check of an architecture can fail


def check_buildable(spec: SearchSpec) -> None:
    """Before any data is read: every architecture the space draws can be built in some combination.

    A fixed value that no draw can build with (``heads: 4`` with ``width: 30``, a ConvNeXt block with a
    bottleneck block's ``group_width``) would otherwise end the run after the data is prepared. Only the
    architectures' own argument checks run (``AnalyticFactory.spec``: nothing is built), on the data
    section's leads (12 when it names none), a million samples (so input length is never the reason: that
    needs the data, and is checked per candidate) and two outputs; an estimator's factory (which builds
    nothing until it is fitted) is called; other factories are not checked here. Each drawn architecture
    must also fit the task and the transfer section (``check_model_kind``).
    """
    leads = spec.data.params.get("leads")
    leads = len(leads) if isinstance(leads, (list, tuple)) and leads else 12
    drawn: dict[str, tuple[int, str]] = {}  # architecture -> (draws that built, the last refusal)
    for index in range(CHECK_DRAWS):
        name, params = spec.space.resolve(spec.space.active(spec.space.sample(spec.seed, index))
                                          ).choices["architecture"]
        info = get_registries().architectures.get(name)
        if name not in drawn:
            check_model_kind(spec, info)
        check = argument_check(info.load()) if info.model_kind != ESTIMATOR else info.load()
        if check is None or drawn.get(name, (0, ""))[0]:
            continue
        try:
            check(leads, CHECK_SAMPLES, 2, **params)
            drawn[name] = (1, "")
        except ValueError as error:
            drawn[name] = (0, str(error))
    for name, (built, refusal) in drawn.items():
        if not built:
            raise file_error(spec.path, f"space.architecture.{name}", "none of its drawn combinations can be "
                             f"built; the last was rejected with: {refusal} Narrow the space to valid combinations.")


def check_model_kind(spec: SearchSpec, info: ArchitectureInfo) -> None:
    """An architecture that cannot learn the space's task (``ArchitectureInfo.tasks``), or an estimator in a
    transfer search, is refused before any data is read."""
    where = f"space.architecture.{info.name}"
    if info.tasks and spec.task.name not in info.tasks:
        raise file_error(spec.path, where, f"architecture '{info.name}' learns only {', '.join(info.tasks)} tasks, "
                         f"not {spec.task.name}; remove it from the space or change the task")
    if info.model_kind == ESTIMATOR and getattr(spec, "transfer", None) is not None:
        raise file_error(spec.path, where, f"architecture '{info.name}' is an estimator model (features + fitted "
                         "model) with no layers to pretrain or freeze; remove it from this space or remove the "
                         "transfer section")


def violations(costs: Costs, constraints: Any) -> list[str]:
    out = []
    if constraints.max_flops is not None and costs.flops > constraints.max_flops:
        out.append(f"cost.flops {costs.flops:.3g} > max_flops {constraints.max_flops:.3g}")
    if constraints.max_params is not None and costs.params > constraints.max_params:
        out.append(f"cost.params {costs.params:.3g} > max_params {constraints.max_params:.3g}")
    return out


def trial_ids(seed: int, index: int) -> dict[str, Any]:
    """The engine's private keys of trial ``index``: its id (``t0000``...) and its own training seed."""
    return {"_trial_id": f"t{index:04d}", "_seed": seed * 100_003 + index}


def feasible_candidate(spec: SearchSpec, shape: InputShape, index: int, screen: Any = None) -> dict[str, Any]:
    """The config of trial ``index``: hyperparameters plus ``_trial_id``, ``_seed`` and ``_costs``.

    screen: ``screen(config, costs) -> [reasons]``, more checks on a candidate within the cost limits
    (``ecgsearch.latency.screen``: predicted latency over ``max_latency_ms``).
    """
    last: list[str] = []
    invalid = 0  # draws whose architecture rejected the combination
    for attempt in range(MAX_ATTEMPTS):
        config = spec.space.sample(spec.seed + ATTEMPT_STRIDE * attempt, index)
        ids = trial_ids(spec.seed, index)
        try:
            costs = candidate_costs(config, spec.space, shape)
        except ValueError as error:  # an invalid combination: never trained, drawn again
            log.info("candidate %d, draw %d is not buildable (%s); drawing again", index, attempt, error)
            invalid, last = invalid + 1, [str(error)]
            continue
        except Exception as error:  # the trial will raise the same error in its worker and be recorded
            log.warning("candidate %d cannot be built (%s); it will be recorded as failed", index, error)
            return {**config, **ids}
        last = violations(costs, spec.constraints)
        if not last and screen is not None:
            last = screen(config, costs)
        if not last:
            return {**config, **ids, "_costs": costs.columns()}
    if invalid == MAX_ATTEMPTS:
        raise UserError(
            f"{spec.path}: space.architecture: none of {MAX_ATTEMPTS} draws for trial {index} could be built; "
            f"the last was rejected with: {last[0]} Narrow the space to valid combinations.")
    raise UserError(
        f"{spec.path}: constraints: no configuration satisfied the constraints in {MAX_ATTEMPTS} draws for "
        f"trial {index} (last: {'; '.join(last)}); raise the limits or narrow the space to smaller models."
    )

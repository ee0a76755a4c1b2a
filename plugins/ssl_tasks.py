"""Built-in self-supervised tasks: they read the records, never the labels, and only pretrain.

- ``masked_reconstruction``: hide random time patches (the same patches on every lead) and/or whole leads
  of the input; the model's output is a representation (``latent`` wide), a small decoder (the task's own
  module) reconstructs a coarse copy of the record (``points`` averages per patch and lead) from it, and the
  loss is the mean squared error on the hidden parts only.
- ``contrastive``: two views of each record (``positives: augment``: two draws of the task's
  augmentations of one window; ``positives: segments``: two different windows of the stored record, each
  augmented, the time-adjacent-segment pairs of CLOCS-style ECG pretraining; ``positives: patient``: the
  record and another record of the same patient, each augmented, the patient-contrastive pairs of CLOCS and
  PCLR, for datasets that name patients), through the model and a projection head (the task's own
  module), NT-Xent loss (SimCLR) at ``temperature``.

Both work with any architecture that follows the model contract: the model's output layer emits the
representation (the task's ``num_outputs``), so the encoder (stem and stages, with the head's pooling)
is what a downstream task inherits after ``reset_head``; decoder and projection head are dropped. Their
only metric is their loss (``metric: loss``, ``pretrain.val.loss``).

The factories check their arguments here (no torch); the tasks are in ``_ssl_impl.py``.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any

from ecgsearch import AugmentationParams, TaskInfo, float_param, hookimpl, int_param, str_param

if TYPE_CHECKING:  # annotations only
    from ecgsearch_plugins._ssl_impl import Contrastive, MaskedReconstruction

POSITIVES = ("augment", "segments", "patient")

def _fraction(task: str, key: str, value: Any, high: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= high:
        raise ValueError(f"task {task}: {key}={value!r} must be a number in [0, {high:g}].")
    return float(value)


def _count(task: str, key: str, value: Any, low: int = 1, high: int = 1_000_000) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"task {task}: {key}={value!r} must be an integer in [{low}, {high}].")
    return value


def build_masked_reconstruction(num_targets: int, *, mask_ratio: float = 0.5, patches: int = 20,
                                lead_ratio: float = 0.0, points: int = 4, latent: int = 128,
                                hidden: int = 256) -> MaskedReconstruction:
    """``num_targets`` is not read (the task learns no labels)."""
    from ecgsearch_plugins._ssl_impl import MaskedReconstruction  # deferred: torch

    name = "masked_reconstruction"
    mask_ratio = _fraction(name, "mask_ratio", mask_ratio, 0.95)
    lead_ratio = _fraction(name, "lead_ratio", lead_ratio, 0.95)
    if mask_ratio == 0 and lead_ratio == 0:
        raise ValueError(f"task {name}: mask_ratio and lead_ratio are both 0, so nothing is hidden to reconstruct; "
                         "set mask_ratio (time patches) or lead_ratio (whole leads) above 0.")
    return MaskedReconstruction(mask_ratio=mask_ratio, patches=_count(name, "patches", patches, 2, 1000),
                                lead_ratio=lead_ratio, points=_count(name, "points", points, 1, 100),
                                latent=_count(name, "latent", latent, 2, 65536),
                                hidden=_count(name, "hidden", hidden, 1, 65536))


def build_contrastive(num_targets: int, *, positives: str = "augment", temperature: float = 0.1, latent: int = 128,
                      projection: int = 64, amplitude_scale: float = 0.2, noise: float = 0.1,
                      baseline_wander: float = 0.1, time_mask: float = 0.1, lead_mask: float = 0.0,
                      time_warp: float = 0.05, p: float = 0.8) -> Contrastive:
    """The last seven: the augmentations of each view (the ``AugmentationParams`` fields, at the strengths
    contrastive ECG pretraining uses)."""
    from ecgsearch import Augmentation
    from ecgsearch_plugins._ssl_impl import Contrastive  # deferred: torch

    name = "contrastive"
    if positives not in POSITIVES:
        raise ValueError(f"task {name}: positives={positives!r} must be one of {', '.join(POSITIVES)}.")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature <= 10:
        raise ValueError(f"task {name}: temperature={temperature!r} must be a number in (0, 10].")
    views = {"amplitude_scale": amplitude_scale, "noise": noise, "baseline_wander": baseline_wander,
             "time_mask": time_mask, "lead_mask": lead_mask, "time_warp": time_warp, "p": p}
    try:
        augmentation = Augmentation.from_params(views)
    except ValueError as error:
        raise ValueError(f"task {name}: {error}") from None
    return Contrastive(positives=positives, temperature=float(temperature),
                       latent=_count(name, "latent", latent, 2, 65536),
                       projection=_count(name, "projection", projection, 2, 65536), augmentation=augmentation)


def _view_params() -> dict[str, Any]:
    """One declaration per augmentation field (``build_contrastive`` takes each; a test keeps them equal)."""
    return {f.name: float_param(0, 1, doc=f"views: {f.name.replace('_', ' ')}" if f.name != "p" else
                                "views: share of records each augmentation is applied to")
            for f in fields(AugmentationParams)}


def contrastive_needs(params: dict) -> tuple[str, ...]:
    """``TaskInfo.needs``: patient ids for ``positives: patient``."""
    return ("patients",) if params.get("positives") == "patient" else ()


@hookimpl
def ecgsearch_register_tasks() -> list[TaskInfo]:
    return [
        TaskInfo(name="masked_reconstruction", self_supervised=True, default_metric="loss",
                 description="self-supervised: reconstruct hidden time patches / leads (pretraining only)",
                 factory=build_masked_reconstruction,
                 params={"mask_ratio": float_param(0, 0.95, doc="share of time patches hidden"),
                         "patches": int_param(2, 1000, doc="time patches per record"),
                         "lead_ratio": float_param(0, 0.95, doc="share of leads hidden whole"),
                         "points": int_param(1, 100, doc="reconstructed averages per patch and lead"),
                         "latent": int_param(2, 65536, doc="representation width (the model's outputs)"),
                         "hidden": int_param(1, 65536, doc="decoder's hidden width")}),
        TaskInfo(name="contrastive", self_supervised=True, default_metric="loss",
                 description="self-supervised: NT-Xent between two views of each record (pretraining only)",
                 factory=build_contrastive, needs=contrastive_needs,
                 params={"positives": str_param(*POSITIVES, doc="augment: two views of one window; segments: "
                                                "two windows of the record; patient: two records of one patient"),
                         "temperature": float_param(0, 10, low_open=True, doc="NT-Xent temperature"),
                         "latent": int_param(2, 65536, doc="representation width (the model's outputs)"),
                         "projection": int_param(2, 65536, doc="projection head's output width"),
                         **_view_params()}),
    ]

"""The self-supervised tasks of ``ssl_tasks.py`` (masks, views, decoder, projection head, losses), imported
when a trial creates its task: listing the plugin or checking a space file needs only ``ssl_tasks.py``.

Evaluation (``Batch.generator`` None) draws masks and views from a fixed seed, so every epoch's
``val.loss`` is measured on the same masks and views (and patient partners) and epochs compare.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ecgsearch import Augmentation, Batch, UserError, random_crop

log = logging.getLogger(__name__)

EVAL_SEED = 20_211  # masks and views of evaluation
_REPORTED: set[tuple[str, int, int]] = set()  # (dataset, training records, alone) already logged


def _generator(batch: Batch) -> torch.Generator:
    return batch.generator if batch.generator is not None else torch.Generator().manual_seed(EVAL_SEED)


def _rand(shape: tuple[int, ...], generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """U[0, 1) from the (CPU) generator, on ``like``'s device."""
    return torch.rand(shape, generator=generator, device=generator.device).to(like.device)


@dataclass(eq=False)
class MaskedReconstruction:
    """Hide time patches (shared by the leads) and whole leads; reconstruct the hidden parts' patch averages."""

    mask_ratio: float
    patches: int
    lead_ratio: float
    points: int
    latent: int
    hidden: int
    kind: str = "masked_reconstruction"
    decoder: nn.Module | None = None

    @property
    def num_outputs(self) -> int:
        return self.latent

    def attach(self, model: nn.Module, leads: int, samples: int, stored: int) -> nn.Module:
        """The decoder: representation -> ``points`` averages per (lead, patch)."""
        if samples < self.patches:
            raise ValueError(f"task masked_reconstruction: patches={self.patches} is more than the model's "
                             f"{samples} input samples; use at most {samples} patches.")
        self.leads = leads
        self.decoder = nn.Sequential(nn.Linear(self.latent, self.hidden), nn.GELU(),
                                     nn.Linear(self.hidden, leads * self.patches * self.points))
        return self.decoder

    def hidden_cells(self, batch: Batch, generator: torch.Generator) -> torch.Tensor:
        """(records, leads, patches) booleans, True where hidden; at least one hidden cell per record."""
        n, leads, _ = batch.x.shape
        draw = _rand((n, 1, self.patches), generator, batch.x)
        hidden = (draw < self.mask_ratio).expand(n, leads, self.patches)
        if self.lead_ratio > 0:
            hidden = hidden | (_rand((n, leads, 1), generator, batch.x) < self.lead_ratio)
        # a record with nothing hidden would teach nothing: hide its patch with the smallest draw
        empty = ~hidden.flatten(1).any(dim=1)
        if empty.any():
            first = F.one_hot(draw[:, 0].argmin(dim=1), self.patches).bool()[:, None, :].expand(n, leads, -1)
            hidden = hidden | (first & empty[:, None, None])
        return hidden

    def batch_loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        assert self.decoder is not None, "attach() builds the decoder before training"
        x = batch.x
        n, leads, samples = x.shape
        hidden = self.hidden_cells(batch, _generator(batch))
        patch_of = torch.arange(samples, device=x.device) * self.patches // samples  # each sample's patch
        shown = x * (~hidden[..., patch_of]).to(x.dtype)
        reconstruction = self.decoder(model(shown)).float().view(n, leads, self.patches, self.points)
        target = F.adaptive_avg_pool1d(x.float(), self.patches * self.points).view(n, leads, self.patches, self.points)
        error = (reconstruction - target).pow(2).mean(dim=-1)  # (records, leads, patches)
        mask = hidden.to(error.dtype)
        return (error * mask).sum() / mask.sum().clamp(min=1)


def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's normalised-temperature cross-entropy: each row of ``a`` must pick its row of ``b`` (and back)
    among the other 2n - 1 embeddings of the batch."""
    z = F.normalize(torch.cat([a, b]).float(), dim=1)
    n = len(a)
    similarity = z @ z.T / temperature
    similarity = similarity.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(similarity, partner)


class PatientPartners:
    """Each dataset row's candidate positives: the other records of its patient, among the training rows the
    trial trains on for a training row, among its own split's records for a validation or test row (a
    patient-wise split keeps a patient's records together)."""

    def __init__(self, data: Any, train_rows: np.ndarray) -> None:
        self.signals = data.signals
        pool = np.asarray(data.split).astype(str)
        pool = np.where(pool == "train", "-", pool)  # training rows outside the trial's share: no partners
        pool[np.asarray(train_rows, dtype=np.int64)] = "train"
        keys = np.char.add(np.char.add(pool, "|"), np.asarray(data.patients).astype(str))
        _, self.key_of, counts = np.unique(keys, return_inverse=True, return_counts=True)
        self.key_of = self.key_of.reshape(-1)
        self.order = np.argsort(self.key_of, kind="stable")  # rows grouped by key
        self.starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.counts = counts

    def others(self, row: int) -> np.ndarray:
        """The other rows of ``row``'s patient in its pool."""
        key = self.key_of[row]
        members = self.order[self.starts[key]:self.starts[key] + self.counts[key]]
        return members[members != row]

    def alone(self, rows: np.ndarray) -> int:
        """How many of ``rows`` have no other record of their patient in their pool."""
        return int((self.counts[self.key_of[np.asarray(rows, dtype=np.int64)]] < 2).sum())

    def draw(self, rows: np.ndarray, generator: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A partner row per row (uniform among the patient's other records, one draw per row from
        ``generator``; the row itself where there is none) and whether each has a partner."""
        uniform = torch.rand(len(rows), generator=generator, device=generator.device).cpu().numpy()
        partners, found = np.empty(len(rows), dtype=np.int64), np.zeros(len(rows), dtype=bool)
        for i, (row, u) in enumerate(zip(np.asarray(rows, dtype=np.int64), uniform)):
            others = self.others(int(row))
            found[i] = len(others) > 0
            partners[i] = others[min(int(u * len(others)), len(others) - 1)] if found[i] else row
        return partners, found


@dataclass(eq=False)
class Contrastive:
    """Two views per record, model + projection head, NT-Xent."""

    positives: str
    temperature: float
    latent: int
    projection: int
    augmentation: Augmentation
    kind: str = "contrastive"
    head: nn.Module | None = None
    forward_passes: int = 2  # both views go through the model: training compute counts two samples per record
    partners: PatientPartners | None = None  # positives: patient (use_data)

    @property
    def num_outputs(self) -> int:
        return self.latent

    def attach(self, model: nn.Module, leads: int, samples: int, stored: int) -> nn.Module:
        """The projection head (representation -> ``projection``), SimCLR's two-layer MLP."""
        if self.positives == "segments" and stored < 2 * samples:
            raise ValueError(f"task contrastive: positives 'segments' needs records at least twice the model's "
                             f"input ({samples} samples) but they have {stored}; crop the input shorter (space: "
                             "crop) or use positives: augment.")
        self.head = nn.Sequential(nn.Linear(self.latent, self.latent), nn.ReLU(),
                                  nn.Linear(self.latent, self.projection))
        return self.head

    def use_data(self, data: Any, train_rows: np.ndarray, dataset: str) -> None:
        """``positives: patient``: index the records by patient (refused, in one sentence, without patients);
        say once how many training records have no other record of their patient (they pair with an
        augmented view of themselves)."""
        if self.positives != "patient":
            return
        if data.patients is None:
            raise UserError(f"task contrastive: positives 'patient' pairs two records of one patient, but dataset "
                            f"{dataset} names no patients (physionet2021 has none, synthetic only with "
                            "records_per_patient above 1); use positives: segments or augment, or a dataset "
                            "with patients (ptbxl, code15, synthetic with records_per_patient > 1).")
        self.partners = PatientPartners(data, train_rows)
        alone = self.partners.alone(train_rows)
        if alone and (dataset, len(train_rows), alone) not in _REPORTED:
            _REPORTED.add((dataset, len(train_rows), alone))
            log.info("contrastive positives 'patient': %d of the %d training records of %s have no other record "
                     "of their patient; each pairs with an augmented view of itself", alone, len(train_rows),
                     dataset)

    def patient_view(self, batch: Batch, generator: torch.Generator) -> torch.Tensor:
        """Each record's partner: a window of another record of its patient (the record's own input where its
        patient has no other record)."""
        if self.partners is None or batch.rows is None:
            raise ValueError("task contrastive: positives 'patient' needs the dataset (use_data) and the "
                             "batch's rows (Batch.rows) to find each record's patient.")
        partners, found = self.partners.draw(batch.rows, generator)
        stored = torch.from_numpy(np.ascontiguousarray(self.partners.signals[partners])).to(batch.x.device)
        window = random_crop(stored, batch.samples, generator).to(batch.x.dtype)
        keep = torch.from_numpy(found).to(batch.x.device)[:, None, None]
        return torch.where(keep, window, batch.x)

    def views(self, batch: Batch, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        rate = batch.sampling_rate
        if self.positives == "segments":  # two windows of the record (the input's window is not reused)
            first, second = (random_crop(batch.records, batch.samples, generator) for _ in range(2))
        elif self.positives == "patient":  # the input and a window of another record of the same patient
            first, second = batch.x, self.patient_view(batch, generator)
        else:
            first = second = batch.x
        return self.augmentation(first, generator, rate), self.augmentation(second, generator, rate)

    def batch_loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        assert self.head is not None, "attach() builds the projection head before training"
        first, second = self.views(batch, _generator(batch))
        both = self.head(model(torch.cat([first, second])))
        return nt_xent(both[:len(first)], both[len(first):], self.temperature)

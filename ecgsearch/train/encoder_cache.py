"""Pretrained encoders shared between the trials of a run: one pretraining, many downstream trials.

A pretraining depends on the model configuration and on every setting it trains with (architecture and
its parameters, optimizer, schedule, batch size, precision, augmentations, crop; the pretraining's data,
task, metric, epochs and data fraction; the run's seed), never on what only the downstream training uses
(``data_fraction``, ``freeze_stages``, ``transfer_mode``, another pretraining's fraction). ``encoder_key``
hashes the first list; trials with the same key share one pretrained model, stored in the run folder as
``encoders/<key>.pt`` (its weights, head included, before re-heading) with ``encoders/<key>.json`` (its
``pretrain.*`` columns). The pretraining is seeded from the key, so a trial's result does not depend on
which trial pretrained first, and a lock file makes a second trial with the same key wait for the first
instead of pretraining again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch

ENCODERS_DIR = "encoders"
DOWNSTREAM_ONLY = ("data_fraction", "freeze_stages", "transfer_mode")  # trial parameters a pretraining ignores


def encoder_key(active: Mapping[str, Any], pretrain: Mapping[str, Any], fraction_params: tuple[str, ...],
                seed: int) -> str:
    """The cache key of one pretraining: 16 hex digits.

    active: the trial's active hyperparameters; pretrain: the pretraining's plan (data entry, task, metric,
    epochs, data fraction); fraction_params: every pretraining's data-fraction parameter (this one's value
    is in ``pretrain``); seed: the run's seed.
    """
    ignored = set(DOWNSTREAM_ONLY) | set(fraction_params)
    payload = {"hyperparameters": {k: v for k, v in active.items() if k not in ignored},
               "pretrain": dict(pretrain), "seed": seed}
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def key_seed(key: str) -> int:
    """The pretraining's seed, from its key (31 bits)."""
    return int(key[:8], 16) & 0x7FFFFFFF


def _paths(out_dir: str | Path, key: str) -> tuple[Path, Path]:
    folder = Path(out_dir) / ENCODERS_DIR
    return folder / f"{key}.pt", folder / f"{key}.json"


@contextlib.contextmanager
def encoder_lock(out_dir: str | Path, key: str) -> Iterator[None]:
    """Hold ``encoders/<key>.lock`` (an exclusive ``flock``): trials of one key pretrain one at a time, so the
    second finds the first's encoder. Without ``fcntl`` (not POSIX) it locks nothing."""
    folder = Path(out_dir) / ENCODERS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock, at worst two trials pretrain the same encoder
        yield
        return
    with open(folder / f"{key}.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_encoder(out_dir: str | Path, key: str, model: torch.nn.Module) -> dict[str, Any] | None:
    """Load the stored encoder of ``key`` into ``model``; its columns, or None when none is stored."""
    weights, columns = _paths(out_dir, key)
    if not (weights.exists() and columns.exists()):
        return None
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return json.loads(columns.read_text())


def save_encoder(out_dir: str | Path, key: str, model: torch.nn.Module, columns: Mapping[str, Any]) -> None:
    """Store a pretrained model and its columns (each file written whole, then renamed into place)."""
    weights, table = _paths(out_dir, key)
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(state, weights.with_suffix(".tmp"))
    os.replace(weights.with_suffix(".tmp"), weights)
    table.with_suffix(".json.tmp").write_text(json.dumps(dict(columns), default=float))
    os.replace(table.with_suffix(".json.tmp"), table)

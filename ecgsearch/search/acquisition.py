"""Acquisition functions: how a surrogate's mean and spread rank candidates (larger is better)."""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from ecgsearch.space.search_options import ACQUISITIONS

__all__ = ["ACQUISITIONS", "acquire", "chebyshev", "expected_improvement", "normalise", "upper_confidence_bound"]

AUGMENT = 0.05  # weight of the weighted sum added to the Chebyshev term (keeps weakly dominated points out)


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float, xi: float) -> np.ndarray:
    """E[max(f - best - xi, 0)] under a normal predictive distribution; the mean's excess where std = 0."""
    excess = mean - best - xi
    safe = np.maximum(std, 1e-12)
    z = excess / safe
    ei = excess * norm.cdf(z) + safe * norm.pdf(z)
    return np.where(std > 1e-12, ei, np.maximum(excess, 0.0))


def upper_confidence_bound(mean: np.ndarray, std: np.ndarray, kappa: float) -> np.ndarray:
    return mean + kappa * std


def acquire(name: str, mean: np.ndarray, std: np.ndarray, best: float, scale: float, kappa: float,
            xi: float) -> np.ndarray:
    """The named acquisition; ``xi`` is in units of ``scale`` (the spread of the observed values).

    Ties in expected improvement (it vanishes far from the best) are broken by the mean, so a
    candidate pool with no hope of improvement still gets its most promising member picked.
    """
    if name == "ucb":
        return upper_confidence_bound(mean, std, kappa)
    ei = expected_improvement(mean, std, best, xi * scale)
    span = float(np.ptp(mean)) or 1.0
    return ei + 1e-9 * scale * (mean - mean.min()) / span


def chebyshev(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Augmented Chebyshev scalarisation of objectives already scaled to [0, 1], larger better.

    With weights drawn at random for each suggestion, maximising it reaches every part of a
    (possibly non-convex) Pareto front over the course of a search (ParEGO; Paria et al. 2019).
    """
    weighted = values * weights[None, :]
    return weighted.min(axis=1) + AUGMENT * weighted.sum(axis=1)


def normalise(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Scale to [0, 1] by a reference range (values outside it extend beyond 0 and 1)."""
    span = high - low
    return (values - low) / span if span > 0 else np.zeros_like(values)

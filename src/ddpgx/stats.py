"""Aggregates over seeds, computed with rliable (Agarwal et al. 2021), the library RL papers use
for them: the interquartile mean (IQM) and the mean with stratified bootstrap confidence intervals.

Only `ddpgx sweep`'s report uses this module; rliable comes with the `ray` extra.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

BOOTSTRAP_REPS = 2_000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95


class Summary(NamedTuple):
    """Final returns of one row (one trial) over its seeds."""

    seeds: int
    mean: float
    mean_ci: tuple[float, float]
    iqm: float
    iqm_ci: tuple[float, float]
    median: float
    worst: float
    best: float


def summarize(scores: dict[str, np.ndarray], reps: int = BOOTSTRAP_REPS, seed: int = BOOTSTRAP_SEED) -> dict[str, Summary]:
    """Per row label, the summary of its scores (one final return per seed).

    rliable's bootstrap draws from numpy's global generator; it is seeded here (and restored after),
    so the same scores give the same intervals.
    """
    try:
        from rliable import library as rly
        from rliable import metrics
    except ImportError:
        raise ImportError("the sweep's statistics need rliable: pip install 'ddpgx[ray]'") from None

    def aggregate(x: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_mean(x), metrics.aggregate_iqm(x)])

    matrices = {label: np.asarray(values, np.float64).reshape(-1, 1) for label, values in scores.items()}
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        points, intervals = rly.get_interval_estimates(matrices, aggregate, reps=reps, confidence_interval_size=CONFIDENCE)
    finally:
        np.random.set_state(saved)
    out = {}
    for label, values in matrices.items():
        point, interval = points[label], intervals[label]
        out[label] = Summary(len(values), float(point[0]), (float(interval[0, 0]), float(interval[1, 0])),
                             float(point[1]), (float(interval[0, 1]), float(interval[1, 1])),
                             float(np.median(values)), float(values.min()), float(values.max()))
    return out

"""Aggregates over seeds, computed with rliable (Agarwal et al. 2021), the library RL papers use
for them: the interquartile mean (IQM) and the mean with stratified bootstrap confidence intervals.

`ddpgx sweep`'s report and the benchmark reports use this module; rliable comes with the `ray`
extra.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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
    """Per row label, the summary of its scores (one final return per seed); the same scores give
    the same intervals."""
    rly, metrics = _rliable()

    def aggregate(x: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_mean(x), metrics.aggregate_iqm(x)])

    matrices = {label: np.asarray(values, np.float64).reshape(-1, 1) for label, values in scores.items()}
    with _seeded(seed):
        points, intervals = rly.get_interval_estimates(matrices, aggregate, reps=reps, confidence_interval_size=CONFIDENCE)
    out = {}
    for label, values in matrices.items():
        point, interval = points[label], intervals[label]
        out[label] = Summary(len(values), float(point[0]), (float(interval[0, 0]), float(interval[1, 0])),
                             float(point[1]), (float(interval[0, 1]), float(interval[1, 1])),
                             float(np.median(values)), float(values.min()), float(values.max()))
    return out


def mean_difference(x: np.ndarray, y: np.ndarray, reps: int = BOOTSTRAP_REPS,
                    seed: int = BOOTSTRAP_SEED) -> tuple[float, tuple[float, float]]:
    """mean(x) - mean(y) for two independent sets of runs (one score per seed each, of any sizes), and
    its 95% interval: each set is resampled on its own (rliable's StratifiedIndependentBootstrap),
    the percentile interval of the difference of the resampled means."""
    rly, _ = _rliable()
    x, y = (np.asarray(v, np.float64).reshape(-1, 1) for v in (x, y))
    with _seeded(seed):
        bootstrap = rly.StratifiedIndependentBootstrap(x, y)
        low, high = bootstrap.conf_int(lambda a, b: np.array([a.mean() - b.mean()]), reps=reps, size=CONFIDENCE,
                                       method="percentile")[:, 0]
    return float(x.mean() - y.mean()), (float(low), float(high))


def _rliable():
    try:
        from rliable import library, metrics
    except ImportError:
        raise ImportError("the sweep's statistics need rliable: pip install 'ddpgx[ray]'") from None
    return library, metrics


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """rliable's bootstrap draws from numpy's global generator: seeded here and restored after, so the
    same scores give the same intervals."""
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(saved)

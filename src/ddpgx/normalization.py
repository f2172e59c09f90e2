"""Running statistics of observations and returns, and what the networks see through them.

Both are host-side numpy, in float64, with a leading seed axis (each seed its own statistics), and
they are part of the loop's per-seed state, so a checkpoint saves them and a resumed run continues
them exactly.

Observation normalization (OpenAI Baselines' DDPG): the running mean m and variance v of the
observations stored so far, and

    s_norm = clip((s - m) / sqrt(max(v, 0.01)), -c, c)                      (c = obs_norm_clip, 5)

wherever a network sees an observation: the minibatches' s and s', the observations the next
actions are taken from, evaluation, a loaded policy and an exported one. The floor of 0.01 on the
variance is Baselines' (`RunningMeanStd`, `std = sqrt(max(var, 1e-2))`): a coordinate that hardly
varies is scaled up at most tenfold. Before the first observation m = 0 and v = 1.

Reward scaling: the critic learns from c_r * r instead of r (the replay buffer keeps r), with

    c_r = reward_scale                                   (a fixed scale), or
    c_r = reward_scale / sqrt(Var[R] + 1e-8)             (reward_norm)

where R_t = gamma * R_{t-1} + r_t is each environment's discounted return so far (reset at every
episode end) and Var[R] its running variance over every step: SB3's `VecNormalize(norm_reward=True)`,
the reward scaling of Engstrom et al. 2020 ("Implementation Matters in Deep Policy Gradients").
Unlike SB3, the scaled reward is not clipped.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

OBS_VAR_FLOOR = 1e-2
"""OpenAI Baselines' floor on the variance of an observation coordinate."""
RETURN_EPSILON = 1e-8
"""SB3 VecNormalize's epsilon under the square root of the return's variance."""


class MeanStd(NamedTuple):
    """Running count, mean and variance, with a leading seed axis: count (seeds,), mean and var
    (seeds, *shape)."""

    count: np.ndarray
    mean: np.ndarray
    var: np.ndarray


def init(num_seeds: int, shape: tuple[int, ...] = ()) -> MeanStd:
    """No data yet: count 0, mean 0, variance 1."""
    return MeanStd(np.zeros(num_seeds), np.zeros((num_seeds, *shape)), np.ones((num_seeds, *shape)))


def update(stats: MeanStd, x: np.ndarray) -> MeanStd:
    """Add a batch per seed, x of shape (seeds, k, *shape), by the parallel algorithm of Chan et al. 1979:
    the result equals the mean and (population) variance of all the data seen."""
    x = np.asarray(x, np.float64)
    n = x.shape[1]
    batch_mean, batch_var = x.mean(axis=1), x.var(axis=1)
    count = stats.count.reshape(-1, *([1] * (batch_mean.ndim - 1)))
    total = count + n
    delta = batch_mean - stats.mean
    mean = stats.mean + delta * (n / total)
    m2 = stats.var * count + batch_var * n + delta**2 * (count * n / total)
    return MeanStd(stats.count + n, mean, m2 / total)


def obs_std(stats: MeanStd) -> np.ndarray:
    return np.sqrt(np.maximum(stats.var, OBS_VAR_FLOOR))


def normalize_obs(stats: MeanStd, obs: np.ndarray, clip: float) -> np.ndarray:
    """clip((s - m) / std, -clip, clip) as float32, for obs of shape (seeds, ..., *obs_shape) with
    stats of shape (seeds, *obs_shape)."""
    lead = (obs.shape[0],) + (1,) * (obs.ndim - stats.mean.ndim)
    mean = stats.mean.reshape(lead + stats.mean.shape[1:])
    std = obs_std(stats).reshape(lead + stats.mean.shape[1:])
    return np.clip((obs - mean) / std, -clip, clip).astype(np.float32)


def reward_factor(reward_scale: float, stats: MeanStd | None) -> np.ndarray | float:
    """c_r per seed: the fixed scale, divided by the return's running standard deviation if given."""
    if stats is None:
        return reward_scale
    return reward_scale / np.sqrt(stats.var + RETURN_EPSILON)


def update_returns(returns: np.ndarray, stats: MeanStd, reward: np.ndarray, done: np.ndarray,
                   gamma: float) -> tuple[np.ndarray, MeanStd]:
    """R <- gamma * R + r for each environment (seeds, envs); the return statistics take every R;
    then R restarts at 0 where the episode ended."""
    returns = gamma * returns + reward
    stats = update(stats, returns)
    return np.where(done, 0.0, returns), stats


class ObsNormalizer(NamedTuple):
    """One seed's observation normalization, for a policy loaded from a run: obs (batch, *obs_shape)
    in, normalized float32 observations out, computed as the loop computes them."""

    mean: np.ndarray
    """(obs_size,) the running mean m."""
    std: np.ndarray
    """(obs_size,) sqrt(max(v, 0.01))."""
    clip: float

    @classmethod
    def from_stats(cls, stats: MeanStd, clip: float) -> ObsNormalizer:
        """From one seed's statistics (no seed axis)."""
        return cls(np.asarray(stats.mean, np.float64), obs_std(stats), float(clip))

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        flat = np.asarray(obs).reshape(len(obs), -1)
        return np.clip((flat - self.mean) / self.std, -self.clip, self.clip).astype(np.float32).reshape(np.shape(obs))

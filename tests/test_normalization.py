"""Running statistics of observations and returns: exact against numpy over all the data, seeds
kept apart, the normalization's floor and clip, and the reward factor."""

import numpy as np
import pytest

from ddpgx import normalization
from ddpgx.normalization import ObsNormalizer


def test_running_statistics_equal_those_of_all_the_data():
    rng = np.random.default_rng(0)
    stats = normalization.init(2, (3,))
    chunks = [rng.normal([1.0, -5.0, 100.0], [0.5, 2.0, 30.0], (2, k, 3)) for k in (1, 4, 1, 7, 2)]
    for chunk in chunks:
        stats = normalization.update(stats, chunk)
    data = np.concatenate(chunks, axis=1)
    np.testing.assert_array_equal(stats.count, [15, 15])
    np.testing.assert_allclose(stats.mean, data.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(stats.var, data.var(axis=1), rtol=1e-10)
    # each seed its own: seed 1's statistics are those of its data alone
    alone = normalization.init(1, (3,))
    for chunk in chunks:
        alone = normalization.update(alone, chunk[1:])
    np.testing.assert_allclose(alone.mean[0], stats.mean[1], rtol=1e-12)


def test_before_any_data_the_normalization_is_the_identity_within_the_clip():
    stats = normalization.init(1, (2,))
    obs = np.array([[[0.5, -2.0], [7.0, -9.0]]], np.float32)
    np.testing.assert_array_equal(normalization.normalize_obs(stats, obs, 5.0), [[[0.5, -2.0], [5.0, -5.0]]])


def test_normalization_divides_by_a_floored_std_and_clips():
    stats = normalization.MeanStd(np.array([10.0]), np.array([[1.0, 2.0, 3.0]]), np.array([[4.0, 1e-6, 0.25]]))
    obs = np.array([[[5.0, 2.5, 3.1]]], np.float32)
    got = normalization.normalize_obs(stats, obs, 5.0)
    # std: 2, sqrt(0.01) = 0.1 (Baselines' floor), 0.5
    np.testing.assert_allclose(got, [[[2.0, 5.0, 0.2]]], rtol=1e-6)  # 0.5 / 0.1 = 5: at the clip
    assert got.dtype == np.float32
    assert normalization.normalize_obs(stats, obs, 1.0)[0, 0, 0] == 1.0
    normalizer = ObsNormalizer.from_stats(normalization.MeanStd(stats.count[0], stats.mean[0], stats.var[0]), 5.0)
    np.testing.assert_array_equal(normalizer(obs[0]), got[0])  # a loaded policy computes the same


def test_discounted_returns_restart_at_episode_ends_and_feed_the_reward_factor():
    stats = normalization.init(1)
    returns = np.zeros((1, 2))
    seen = []
    for reward, done in [([1.0, 2.0], [False, False]), ([1.0, 2.0], [False, True]), ([1.0, 2.0], [False, False])]:
        returns, stats = normalization.update_returns(returns, stats, np.array([reward]), np.array([done]), 0.5)
        seen.append(returns.copy())
    # env 0: 1, 1.5, 1.75; env 1: 2, then 3 (the episode ends: restarts at 0), then 2
    np.testing.assert_allclose(seen[-1], [[1.75, 2.0]])
    all_returns = np.array([1.0, 2.0, 1.5, 3.0, 1.75, 2.0])
    np.testing.assert_allclose(stats.var, [all_returns.var()], rtol=1e-12)
    factor = normalization.reward_factor(2.0, stats)
    np.testing.assert_allclose(factor, 2.0 / np.sqrt(all_returns.var() + 1e-8))
    assert normalization.reward_factor(0.5, None) == 0.5


@pytest.mark.parametrize("shape", [(3,), ()])
def test_an_update_with_no_variance_gives_zero_variance(shape):
    stats = normalization.update(normalization.init(1, shape), np.full((1, 4, *shape), 2.0))
    np.testing.assert_array_equal(stats.var, np.zeros((1, *shape)))
    np.testing.assert_array_equal(stats.mean, np.full((1, *shape), 2.0))

"""Exploration noise: Gaussian scale, the Ornstein-Uhlenbeck recurrence and its statistics, resets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddpgx.noise import GaussianNoise, OrnsteinUhlenbeckNoise, make_noise, reset


def run(noise, key, steps, shape):
    """`steps` samples of `noise` from its initial state, one key per step; shape (steps, *shape)."""

    def body(state, key):
        eps, state = noise.sample(state, key)
        return state, eps

    _, out = jax.lax.scan(body, noise.init(shape), jax.random.split(key, steps))
    return np.asarray(out, np.float64)


@pytest.mark.parametrize("sigma", [0.1, 0.3])
def test_gaussian_noise_has_the_given_sigma_and_no_memory(sigma):
    noise = GaussianNoise(sigma)
    state = noise.init((200, 3))
    eps, new_state = noise.sample(state, jax.random.PRNGKey(1))
    assert eps.shape == (200, 3) and eps.dtype == jnp.float32
    np.testing.assert_array_equal(new_state, np.zeros((200, 3)))
    samples = run(noise, jax.random.PRNGKey(2), 100, (50, 2))  # 10,000 draws
    assert np.std(samples) == pytest.approx(sigma, rel=0.05)
    assert abs(np.mean(samples)) < 0.05 * sigma
    lag1 = np.corrcoef(samples[:-1].ravel(), samples[1:].ravel())[0, 1]
    assert abs(lag1) < 0.05


def run_from(noise, state, key, steps):
    """The noise process started at `state`: the states after each of `steps` samples."""

    def body(state, key):
        _, state = noise.sample(state, key)
        return state, state

    _, out = jax.lax.scan(body, state, jax.random.split(key, steps))
    return np.asarray(out, np.float64)


def test_ou_noise_reverts_to_zero_at_rate_theta():
    """From x0, E[x_t] = x0 (1 - theta dt)^t: averaged over 4,000 environments started at 1."""
    noise = OrnsteinUhlenbeckNoise(sigma=0.2, theta=1.0, dt=0.05)
    states = run_from(noise, jnp.ones((4000, 1), jnp.float32), jax.random.PRNGKey(5), 40)
    means = states.mean(axis=(1, 2))
    for t in (1, 10, 20, 40):
        assert means[t - 1] == pytest.approx(0.95**t, abs=0.01), t
    assert np.all(np.diff(means) < 0.01)  # decays, up to sampling error
    still = run_from(OrnsteinUhlenbeckNoise(0.0, 1.0, 0.05), jnp.ones((1, 1), jnp.float32), jax.random.PRNGKey(5), 3)
    np.testing.assert_allclose(still[:, 0, 0], [0.95, 0.95**2, 0.95**3], rtol=1e-6)  # sigma 0: pure decay


def test_ou_noise_has_the_stationary_variance_of_the_continuous_process():
    """For small theta * dt the spread approaches sigma^2 / (2 theta), the OU process's stationary variance."""
    sigma, theta, dt = 0.3, 1.0, 0.01
    states = run_from(OrnsteinUhlenbeckNoise(sigma, theta, dt), jnp.zeros((2000, 1), jnp.float32),
                      jax.random.PRNGKey(6), 1500)[700:]  # after 700 steps, 1e-3 of the start remains
    assert np.var(states) == pytest.approx(sigma**2 / (2 * theta), rel=0.05)


def test_ou_noise_reaches_the_stationary_std_of_its_discretization():
    """x' = (1 - theta dt) x + sigma sqrt(dt) N: Var = sigma^2 dt / (2 theta dt - (theta dt)^2)."""
    sigma, theta, dt = 0.3, 1.0, 0.5  # theta * dt = 0.5: fast mixing, far from sigma itself
    noise = OrnsteinUhlenbeckNoise(sigma, theta, dt)
    samples = run(noise, jax.random.PRNGKey(3), 60, (4000, 1))[20:]  # 20 steps: 1e-6 of the start remains
    expected = sigma * np.sqrt(dt / (2 * theta * dt - (theta * dt) ** 2))
    assert np.std(samples) == pytest.approx(expected, rel=0.03)
    assert abs(np.mean(samples)) < 0.02


def test_ou_noise_with_default_parameters_is_temporally_correlated():
    noise = make_noise("ou", 0.2)  # theta 0.15, dt 0.01: lag-1 autocorrelation 1 - theta dt = 0.9985
    samples = run(noise, jax.random.PRNGKey(4), 400, (50, 1))[:, :, 0]  # (steps, envs)
    x, y = samples[100:-1].ravel(), samples[101:].ravel()
    assert np.corrcoef(x, y)[0, 1] > 0.9
    gaussian = run(make_noise("gaussian", 0.2), jax.random.PRNGKey(4), 400, (50, 1))[:, :, 0]
    assert abs(np.corrcoef(gaussian[100:-1].ravel(), gaussian[101:].ravel())[0, 1]) < 0.1


def test_reset_zeroes_only_the_environments_that_are_done():
    state = jnp.arange(1.0, 9.0).reshape(4, 2)
    done = jnp.array([True, False, True, False])
    out = np.asarray(reset(state, done))
    np.testing.assert_array_equal(out, [[0, 0], [3, 4], [0, 0], [7, 8]])
    np.testing.assert_array_equal(np.asarray(reset(state, jnp.zeros(4, bool))), np.asarray(state))


def test_make_noise_builds_each_kind_with_its_parameters():
    assert make_noise("gaussian", 0.3) == GaussianNoise(0.3)
    assert make_noise("ou", 0.2, theta=0.5, dt=0.1) == OrnsteinUhlenbeckNoise(0.2, 0.5, 0.1)


def test_make_noise_rejects_unknown_kinds():
    with pytest.raises(ValueError) as error:
        make_noise("pink", 0.1)
    message = str(error.value)
    assert "unknown noise 'pink'" in message
    assert "'gaussian'" in message and "'ou'" in message

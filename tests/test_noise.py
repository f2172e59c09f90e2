"""Exploration noise: Gaussian scale, the Ornstein-Uhlenbeck recurrence and its statistics, resets,
the schedules of sigma, and parameter-space noise's perturbation, distance and adaptation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddpgx.noise import (GaussianNoise, OrnsteinUhlenbeckNoise, ParamNoise, Schedule, adapt, distance, make_noise,
                         perturb, reset)


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


# ----------------------------------------------------------------------------- schedules


@pytest.mark.parametrize("kind, expected", [
    ("constant", [0.4, 0.4, 0.4, 0.4]),
    ("linear", [0.4, 0.25, 0.1, 0.1]),          # 0.4 + (0.1 - 0.4) * t / 1000
    ("exponential", [0.4, 0.2, 0.1, 0.1]),      # 0.4 * (0.1 / 0.4) ** (t / 1000)
])
def test_schedules_reach_their_floor_after_their_steps_and_stay(kind, expected):
    schedule = Schedule(kind, 0.4, 0.1, 1000)
    got = [float(schedule(np.uint32(t))) for t in (0, 500, 1000, 5000)]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    jitted = jax.jit(lambda t: jnp.asarray(schedule(t)))
    np.testing.assert_allclose(float(jitted(np.uint32(500))), expected[1], rtol=1e-6)


def test_a_noise_sample_takes_the_scheduled_sigma():
    key = jax.random.PRNGKey(0)
    state = jnp.zeros((4, 2))
    full, _ = GaussianNoise(0.4).sample(state, key)
    half, _ = GaussianNoise(0.4).sample(state, key, 0.2)
    np.testing.assert_allclose(np.asarray(half), np.asarray(full) / 2, rtol=1e-6)
    x, _ = OrnsteinUhlenbeckNoise(0.4, 0.15, 1.0).sample(state, key, 0.2)  # from 0: one shock of std sigma
    np.testing.assert_allclose(np.asarray(x), np.asarray(full) / 2, rtol=1e-6)


# ----------------------------------------------------------------------------- parameter-space noise


@pytest.mark.slow
def test_perturbation_adds_gaussian_noise_to_weights_but_not_to_normalization_layers():
    from ddpgx.networks import Actor

    actor = Actor(2, (64, 64), layer_norm=True)
    params = actor.init(jax.random.PRNGKey(0), jnp.zeros((1, 5)))
    perturbed = perturb(params, 0.3, jax.random.PRNGKey(1))
    for name in ("Dense_0", "Dense_1", "Dense_2"):
        for leaf in ("kernel", "bias"):
            diff = np.asarray(perturbed["params"][name][leaf] - params["params"][name][leaf])
            if diff.size >= 64:
                assert np.std(diff) == pytest.approx(0.3, rel=0.15), (name, leaf)
            assert np.all(diff != 0)
    for name in ("LayerNorm_0", "LayerNorm_1"):
        for leaf in ("scale", "bias"):
            np.testing.assert_array_equal(perturbed["params"][name][leaf], params["params"][name][leaf])
    # each leaf draws its own noise: two layers of the same shape get different noise
    d1 = perturbed["params"]["Dense_1"]["bias"] - params["params"]["Dense_1"]["bias"]
    d0 = perturbed["params"]["Dense_0"]["bias"] - params["params"]["Dense_0"]["bias"]
    assert not np.allclose(d0, d1)


def test_the_distance_and_the_adaptation_rule():
    apply = lambda p, obs: obs * p["w"]  # noqa: E731
    obs = jnp.array([[1.0, 2.0], [3.0, -1.0]])
    d = distance(apply, {"w": jnp.array(1.0)}, {"w": jnp.array(1.5)}, obs)
    assert float(d) == pytest.approx(np.sqrt(np.mean((0.5 * np.array([[1, 2], [3, -1]])) ** 2)))
    # too far: shrink by the factor; close enough: grow by it (Plappert et al. 2018; Baselines' 1.01)
    assert float(adapt(jnp.array(0.2), jnp.array(0.3), 0.1, 1.01)) == pytest.approx(0.2 / 1.01)
    assert float(adapt(jnp.array(0.2), jnp.array(0.05), 0.1, 1.01)) == pytest.approx(0.2 * 1.01)
    assert isinstance(make_noise("param", 0.2), ParamNoise)

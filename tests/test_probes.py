"""Probe environments with known answers, trained end to end through `ddpgx.train`.

Each run trains a small agent on one probe (tests/probe_envs.py), then reads the final checkpoint
back and compares the learned Q or policy with the closed-form answer.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ddpgx
from ddpgx import checkpoint as ckpt
from ddpgx.learner import build_agent
from tests.conftest import quiet
from tests.logs import csv_rows
from tests.probe_envs import ObsDependentAction, OneStepReward, TruncatedOnly, TwoStep, factory, register

SEED = 0


def probe_config(**changes):
    values = dict(
        env_id="probe", seed=SEED, total_steps=2000, learning_starts=200, batch_size=64, buffer_size=5000,
        actor_hidden=(32, 32), critic_hidden=(32, 32), actor_lr=1e-3, critic_lr=1e-3, tau=0.05, gamma=0.9,
        eval_every=0, eval_episodes=2, checkpoint_every=0, log_every=1000, tensorboard=False,
    )
    values.update(changes)
    return ddpgx.Config(**values)


def train_probe(tmp_path, env, config, **env_kwargs):
    """Train on the probe; returns the agent and its final state read from the checkpoint."""
    result = ddpgx.train(config, tmp_path / "run", make_env=factory(env, **env_kwargs), progress=False,
                         print_fn=quiet)
    assert result.step == config.total_steps
    agent = build_agent(config, action_dim=1)
    template = agent.init(jax.random.PRNGKey(0), jnp.zeros((1, 1)), jnp.zeros((1, 1)))
    path = ckpt.latest_checkpoint(result.run_dirs[0])
    state = ckpt.unflatten(template, ckpt.Checkpoint(path).subtree(".agent"), path / "state.npz")
    E = config.num_envs  # learning iterations from the first step >= learning_starts, num_envs updates each
    assert int(state.updates) == (config.total_steps // E - -(-config.learning_starts // E) + 1) * E
    return agent, state, result


def q_values(agent, state, obs, actions):
    """Q(obs, a) for each action, with obs a scalar observation."""
    actions = np.asarray(actions, np.float32).reshape(-1, 1)
    obs = np.full((len(actions), 1), obs, np.float32)
    return np.asarray(agent.critic.apply(state.critic, obs, actions)).reshape(-1)


@pytest.mark.slow
def test_one_step_reward_learns_q_equal_one(tmp_path):
    agent, state, result = train_probe(tmp_path, OneStepReward, probe_config())
    pi = float(agent.act(state.actor, jnp.zeros((1, 1)))[0, 0])
    q = q_values(agent, state, 0.0, [pi, -0.5, 0.0, 0.5])
    np.testing.assert_allclose(q, 1.0, atol=0.1)
    np.testing.assert_allclose(result.final_returns, 1.0)  # the evaluation saw the reward too


@pytest.mark.slow
def test_two_step_learns_the_discounted_value(tmp_path):
    gamma = 0.5  # far from both 0 and 1, so a missing or doubled discount shows
    agent, state, _ = train_probe(tmp_path, TwoStep, probe_config(gamma=gamma))
    for obs, expected in [(0.0, gamma), (1.0, 1.0)]:
        pi = float(agent.act(state.actor, jnp.full((1, 1), obs))[0, 0])
        q = q_values(agent, state, obs, [pi, -0.5, 0.5])
        np.testing.assert_allclose(q, expected, atol=0.1, err_msg=f"Q(s={obs})")


@pytest.mark.slow
def test_obs_dependent_action_learns_the_best_action_per_observation(tmp_path):
    config = probe_config(total_steps=3000)
    agent, state, result = train_probe(tmp_path, ObsDependentAction, config)
    policy = ddpgx.load_policy(result.run_dirs[0])  # also the public path: the latest checkpoint's actor
    action = policy(np.array([[1.0], [-1.0]], np.float32))[:, 0]
    np.testing.assert_allclose(action, [0.5, -0.5], atol=0.15)
    np.testing.assert_array_equal(action, np.asarray(agent.act(state.actor, jnp.array([[1.0], [-1.0]])))[:, 0])
    # the critic ranks the best action above the opposite one for each observation
    for obs in (1.0, -1.0):
        best, worst = q_values(agent, state, obs, [0.5 * obs, -0.5 * obs])
        assert best > worst + 0.5, (obs, best, worst)
    assert result.final_returns.mean() > -0.15**2


@pytest.mark.slow
def test_truncation_bootstraps_from_the_true_final_observation(tmp_path):
    """A -> B -> B, truncated after 2 steps, reward 1 in B, gamma 0.9: Q(B) = 10 and Q(A) = 9. Bootstrapping
    from the reset observation A instead would give 5.3 and 4.7; masking the truncation, 1 and 0.9."""
    agent, state, _ = train_probe(tmp_path, TruncatedOnly, probe_config(total_steps=4000))
    for obs, expected in [(1.0, 10.0), (0.0, 9.0)]:
        pi = float(agent.act(state.actor, jnp.full((1, 1), obs))[0, 0])
        q = q_values(agent, state, obs, [pi, 0.0])
        np.testing.assert_allclose(q, expected, atol=1.0, err_msg=f"Q(s={obs})")


def test_probes_register_with_gymnasium():
    import gymnasium as gym

    ids = register()
    assert register() == ids  # idempotent
    env = gym.make(ids[TwoStep])
    try:
        obs, _ = env.reset(seed=0)
        assert obs.tolist() == [0.0]
        assert env.step(np.zeros(1, np.float32))[1:3] == (0.0, False)
        assert env.step(np.zeros(1, np.float32))[1:3] == (1.0, True)
    finally:
        env.close()


# ----------------------------------------------------------------------------- the extensions on the probes


@pytest.mark.slow
@pytest.mark.parametrize("n_step", [1, 3])
def test_n_step_returns_at_termination_truncation_and_mid_episode(tmp_path, n_step):
    """The closed-form values hold with one-step and three-step targets:
    - termination within the n steps (TwoStep, gamma 0.5): Q(s0) = gamma, Q(s1) = 1, no bootstrap;
    - truncation within them (TruncatedOnly, limit 2, gamma 0.9): Q(B) = 10, Q(A) = 9, bootstrapped
      from the true final observation B with gamma^m;
    - mid-episode (TruncatedOnly, limit 12, two environments): the same values, the sums of 1s in B
      bootstrapped with gamma^3."""
    agent, state, _ = train_probe(tmp_path / "terminated", TwoStep, probe_config(gamma=0.5, n_step=n_step))
    for obs, expected in [(0.0, 0.5), (1.0, 1.0)]:
        np.testing.assert_allclose(q_values(agent, state, obs, [-0.5, 0.5]), expected, atol=0.1,
                                   err_msg=f"terminated, Q(s={obs})")
    for limit, num_envs in [(2, 1), (12, 2)]:
        config = probe_config(total_steps=4000, n_step=n_step, num_envs=num_envs)
        agent, state, _ = train_probe(tmp_path / f"truncated{limit}", TruncatedOnly, config, limit=limit)
        for obs, expected in [(1.0, 10.0), (0.0, 9.0)]:
            np.testing.assert_allclose(q_values(agent, state, obs, [0.0, 0.5]), expected, atol=1.0,
                                       err_msg=f"limit {limit}, Q(s={obs})")


@pytest.mark.slow
def test_reward_scaling_scales_q_but_not_the_reported_returns(tmp_path):
    """reward_scale 2 on OneStepReward: the critic learns Q = 2; the evaluation reports the raw return 1."""
    agent, state, result = train_probe(tmp_path, OneStepReward, probe_config(reward_scale=2.0))
    np.testing.assert_allclose(q_values(agent, state, 0.0, [-0.5, 0.0, 0.5]), 2.0, atol=0.2)
    np.testing.assert_allclose(result.final_returns, 1.0)
    returns = [float(r["return"]) for r in csv_rows(result.run_dirs[0], "episodes")]
    assert set(returns) == {1.0}  # the training episodes are logged raw too


@pytest.mark.slow
def test_normalized_observations_give_the_best_action_for_raw_ones(tmp_path):
    """ObsDependentAction with observations +-1 seen by the networks as normalized values: the loaded
    policy, given raw observations, acts 0.5 * obs; prioritized replay and layer norm on as well."""
    config = probe_config(total_steps=3000, obs_norm=True, prioritized=True, critic_layer_norm=True,
                          actor_layer_norm=True)
    _, _, result = train_probe(tmp_path, ObsDependentAction, config)
    policy = ddpgx.load_policy(result.run_dirs[0])
    assert policy.normalizer is not None and np.all(np.abs(policy.normalizer.mean) < 0.3)
    np.testing.assert_allclose(policy(np.array([[1.0], [-1.0]], np.float32))[:, 0], [0.5, -0.5], atol=0.15)
    assert result.final_returns.mean() > -0.15**2


@pytest.mark.slow
def test_parameter_noise_learns_the_best_action(tmp_path):
    config = probe_config(total_steps=3000, noise="param", noise_sigma=0.2, param_noise_adapt_every=10)
    _, state, result = train_probe(tmp_path, ObsDependentAction, config)
    policy = ddpgx.load_policy(result.run_dirs[0])
    np.testing.assert_allclose(policy(np.array([[1.0], [-1.0]], np.float32))[:, 0], [0.5, -0.5], atol=0.15)
    checkpoint = ckpt.Checkpoint(ckpt.latest_checkpoint(result.run_dirs[0]))
    sigma = float(checkpoint.arrays[".param_sigma"])
    assert sigma > 0.0 and sigma != pytest.approx(0.2)  # adapted 280 times
